//! The load balancer's node, `slb`, at IPv4 and IPv6 pre-routing (before
//! NAT), one instance per family over that family's virtual servers:
//!
//! - a packet to a virtual server (VRF, protocol, address, port) goes to
//!   its flow's backend: the one its session names, else the Maglev
//!   table's choice for the client endpoint; a packet that opens a flow
//!   (TCP SYN, UDP) creates the session, so the flow stays on its backend
//!   for its whole life, whatever the pool and the commits do meanwhile.
//!   A TCP segment without a session (its session expired or was cleared)
//!   follows the Maglev choice without creating one, as Katran does. With
//!   full NAT (`nat client`) the client's endpoint is translated too, to
//!   an address of the appliance towards the backend, so the backend needs
//!   no route back to clients;
//! - a backend's reply gets the virtual server's address as its source
//!   (and, with full NAT, the client's endpoint as its destination first);
//! - an ICMP or ICMPv6 error about a balanced flow's packet (port
//!   unreachable, fragmentation needed, packet too big) is translated as
//!   that packet was, its outer header, quote and checksums: one about a
//!   client's packet to a backend (from the backend or a router on the
//!   way) goes to the client from the virtual server, one about a reply
//!   (from the client or a router on its way) goes to the backend.
//!
//! Sessions are a NAT translation table (of the family) sharded by the
//! client endpoint; the full-NAT leg is a NAT state of its own
//! (endpoint-independent mappings of client endpoints to appliance
//! ports). The virtual servers and reals themselves are family-neutral
//! (socket addresses); the node reads its family's addresses from them.

use crate::counters::{Count, PerWorker};
use crate::features::{Action, Ahead, FeatureNode, Packet, Prefetch};
use crate::lb::maglev::Maglev;
use crate::nat::{
    rewrite, rewrite_icmp_error, Address, End, Endpoint, Flow, KeyHasher, NatState, Translation,
    TranslationTable,
};
use crate::sessions::{TcpState, Timeouts};
use crate::snapshot::VrfId;
use crate::state_sync::{Kind, StateSync, SyncRecord};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// A real's health, kept across commits: `up` is what the node reads.
pub struct RealHealth {
    pub up: AtomicBool,
    /// Successes (> 0) or failures (< 0) in a row, and the last result.
    pub streak: std::sync::Mutex<(i32, String)>,
}

impl Default for RealHealth {
    /// Up until a probe says otherwise: traffic flows from the first
    /// commit, as on IOS.
    fn default() -> Self {
        RealHealth {
            up: AtomicBool::new(true),
            streak: std::sync::Mutex::new((0, "not probed yet".to_string())),
        }
    }
}

/// A backend of one virtual server.
pub struct RealPath {
    pub endpoint: SocketAddr,
    pub weight: u32,
    pub inservice: bool,
    pub health: Arc<RealHealth>,
    /// Full NAT: the appliance's address on the way to it.
    pub snat: Option<IpAddr>,
}

/// What a virtual server counted, in one worker's slot.
#[derive(Default)]
pub struct VserverCounters {
    pub packets: Count,
    pub sessions_created: Count,
    pub no_backend: Count,
    pub table_full: Count,
    pub not_balanced: Count,
}

pub struct VserverPath {
    pub name: String,
    pub vrf: VrfId,
    pub protocol: u8,
    pub vip: SocketAddr,
    /// Of the virtual address's family (the commit checks see to it).
    pub reals: Vec<RealPath>,
    pub full_nat: bool,
    pub table_size: u32,
    /// Rebuilt when a real's health changes (None: no real can serve).
    pub lookup: RwLock<Option<Arc<Maglev>>>,
    pub counters: Arc<PerWorker<VserverCounters>>,
}

impl VserverPath {
    /// Builds the Maglev table over the reals in service and up.
    pub fn rebuild(&self) {
        let backends: Vec<_> = (self.reals.iter())
            .map(|r| {
                let serving = r.inservice && r.health.up.load(Ordering::Relaxed);
                crate::lb::maglev::Backend {
                    id: backend_id(r.endpoint),
                    weight: if serving { r.weight } else { 0 },
                }
            })
            .collect();
        let table = Maglev::build(&backends, self.table_size).map(Arc::new);
        *self.lookup.write().unwrap_or_else(|p| p.into_inner()) = table;
    }

    fn choose<A: Address>(&self, client: Endpoint<A>) -> Option<&RealPath> {
        let table = self
            .lookup
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        self.reals
            .get(table.lookup(flow_hash(client, self.protocol)))
    }
}

/// A backend's identity for Maglev: its endpoint, so the same backend
/// keeps its entries across commits.
fn backend_id(e: SocketAddr) -> u64 {
    let addr = match e.ip() {
        IpAddr::V4(a) => a.fold(),
        IpAddr::V6(a) => a.fold(),
    };
    addr.rotate_left(16) ^ u64::from(e.port())
}

fn flow_hash<A: Address>(client: Endpoint<A>, protocol: u8) -> u64 {
    let mut h =
        (client.addr.fold().rotate_left(24) ^ u64::from(client.port) << 8 ^ u64::from(protocol))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ h >> 32
}

/// (vrf, protocol, virtual address, port).
pub type VserverKey<A> = (VrfId, u8, A, u16);

type Addresses<A> = HashSet<(VrfId, A), BuildHasherDefault<KeyHasher>>;

/// The compiled configuration the node of one family reads.
pub struct LbPath<A: Address> {
    pub vservers: HashMap<VserverKey<A>, Arc<VserverPath>, BuildHasherDefault<KeyHasher>>,
    /// (vrf, address) of every virtual server, backend and full-NAT
    /// address: the node's first, cheap test.
    pub vips: Addresses<A>,
    pub backends: Addresses<A>,
    pub snat_addresses: Addresses<A>,
    pub sessions: Arc<TranslationTable<A>>,
    pub snat: Arc<NatState<A>>,
    pub timeouts: Timeouts,
    /// The HA pair's journal of new sessions.
    sync: Arc<StateSync>,
}

impl<A: Address> LbPath<A> {
    /// No virtual server yet, over the family's tables.
    pub fn new(
        sessions: Arc<TranslationTable<A>>,
        snat: Arc<NatState<A>>,
        timeouts: Timeouts,
        sync: Arc<StateSync>,
    ) -> LbPath<A> {
        LbPath {
            vservers: Default::default(),
            vips: Default::default(),
            backends: Default::default(),
            snat_addresses: Default::default(),
            sessions,
            snat,
            timeouts,
            sync,
        }
    }

    /// Serves `vs` (its virtual address of this family).
    pub fn add(&mut self, vs: &Arc<VserverPath>) {
        let Some(vip) = Endpoint::<A>::of(vs.vip) else {
            return;
        };
        self.vips.insert((vs.vrf, vip.addr));
        self.vservers
            .insert((vs.vrf, vs.protocol, vip.addr, vip.port), vs.clone());
        for r in &vs.reals {
            self.backends
                .extend(A::of(r.endpoint.ip()).map(|a| (vs.vrf, a)));
            let snat = r.snat.and_then(A::of);
            self.snat_addresses.extend(snat.map(|a| (vs.vrf, a)));
        }
    }

    /// A packet to a virtual server (its destination).
    fn forward(&self, packet: &mut Packet<'_>, flow: &Flow<A>, vs: &VserverPath) -> Action {
        vs.counters.here().packets.add();
        if !flow.has_ports {
            vs.counters.here().not_balanced.add();
            return Action::Drop;
        }
        let (client, vip, now) = (flow.src, flow.dst, packet.now_secs);
        let mut released = None;
        let found = self.sessions.inbound(
            (flow.protocol, vs.vrf),
            vip,
            client,
            flow.tcp_flags,
            (now, &self.timeouts),
            &mut released,
        );
        let backend = match found {
            Some((backend, _)) => backend,
            None => {
                let Some(real) = vs.choose(client).and_then(|r| Endpoint::of(r.endpoint)) else {
                    vs.counters.here().no_backend.add();
                    return Action::Drop;
                };
                if flow.opens_flow() {
                    let translation = Translation {
                        protocol: flow.protocol,
                        inside_vrf: vs.vrf,
                        outside_vrf: vs.vrf,
                        inside: real,
                        public: vip,
                        remote: client,
                        from_outside: true,
                    };
                    let mut swept = Vec::new();
                    if self
                        .sessions
                        .create(&translation, (now, &self.timeouts), &mut swept)
                        .is_err()
                    {
                        vs.counters.here().table_full.add();
                        return Action::Drop;
                    }
                    vs.counters.here().sessions_created.add();
                    (self.sync.journal).note(|| {
                        SyncRecord::of_translation(
                            Kind::SlbSession,
                            &translation,
                            TcpState::SynSent,
                        )
                    });
                }
                real
            }
        };
        rewrite(packet.data, flow, End::Destination, backend);
        if !vs.full_nat {
            return Action::Continue;
        }
        let snat = (vs.reals.iter())
            .find(|r| r.endpoint == backend.socket())
            .and_then(|r| r.snat.and_then(A::of));
        let Some(public) = snat.and_then(|addr| self.client_leg(flow, vs.vrf, backend, addr, now))
        else {
            vs.counters.here().no_backend.add();
            return Action::Drop;
        };
        match A::flow(packet.data) {
            Some(turned) => {
                rewrite(packet.data, &turned, End::Source, public);
                Action::Continue
            }
            None => Action::Drop,
        }
    }

    /// Full NAT: the appliance endpoint standing for the client towards
    /// `backend` (found, or made from `addr`).
    fn client_leg(
        &self,
        flow: &Flow<A>,
        vrf: VrfId,
        backend: Endpoint<A>,
        addr: A,
        now: u32,
    ) -> Option<Endpoint<A>> {
        let state = &self.snat;
        let (client, times) = (flow.src, (now, &self.timeouts));
        let mut released = None;
        let known = state.table.outbound(
            (flow.protocol, vrf),
            client,
            backend,
            flow.tcp_flags,
            times,
            &mut released,
        );
        state.release(released);
        if known.is_some() {
            return known;
        }
        let public = state
            .mappings
            .map((vrf, flow.protocol), client, &[addr], &HashSet::new())?;
        let translation = Translation {
            protocol: flow.protocol,
            inside_vrf: vrf,
            outside_vrf: vrf,
            inside: client,
            public,
            remote: backend,
            from_outside: false,
        };
        let mut swept = Vec::new();
        let created = state.table.create(&translation, times, &mut swept);
        state.release(swept);
        if created.is_err() {
            state.mappings.unmap((vrf, flow.protocol), client);
            return None;
        }
        (self.sync.journal)
            .note(|| SyncRecord::of_translation(Kind::SlbSnat, &translation, TcpState::SynSent));
        Some(public)
    }

    /// A backend's reply: to the client (full NAT: from the appliance
    /// endpoint standing for it), from the virtual server.
    fn reply(&self, packet: &mut Packet<'_>, flow: &Flow<A>, full_nat: bool) -> Action {
        let (vrf, now) = (packet.vrf, packet.now_secs);
        let mut flow = *flow;
        if full_nat {
            let mut released = None;
            let client = self.snat.table.inbound(
                (flow.protocol, vrf),
                flow.dst,
                flow.src,
                flow.tcp_flags,
                (now, &self.timeouts),
                &mut released,
            );
            self.snat.release(released);
            let Some((client, _)) = client else {
                return Action::Continue; // for the appliance itself
            };
            rewrite(packet.data, &flow, End::Destination, client);
            flow = match A::flow(packet.data) {
                Some(f) => f,
                None => return Action::Drop,
            };
        }
        let mut released = None;
        let vip = self.sessions.outbound(
            (flow.protocol, vrf),
            flow.src,
            flow.dst,
            flow.tcp_flags,
            (now, &self.timeouts),
            &mut released,
        );
        if let Some(vip) = vip {
            rewrite(packet.data, &flow, End::Source, vip);
        }
        Action::Continue
    }

    /// An ICMP error (`outer`) about a balanced flow's packet, by which
    /// way that packet went; Continue when it is about no flow of ours.
    fn icmp_error(&self, packet: &mut Packet<'_>, outer: &Flow<A>) -> Action {
        let vrf = packet.vrf;
        let Some(quoted) = outer.quoted(packet.data).filter(|q| q.has_ports) else {
            return Action::Continue;
        };
        let at = ((quoted.protocol, vrf), packet.now_secs);
        let legs = if self.vips.contains(&(vrf, quoted.src.addr)) {
            self.legs_of_reply(&quoted, at)
        } else if self.backends.contains(&(vrf, quoted.dst.addr)) {
            self.legs_of_request(&quoted, at)
        } else {
            None
        };
        match legs {
            Some(legs) => rewrite_legs(packet.data, outer, &quoted, legs),
            None => Action::Continue,
        }
    }

    /// An error about a reply the virtual server sent the client (the
    /// quote: from the virtual server) goes to the backend, about the
    /// backend's packet (with full NAT, to the appliance endpoint standing
    /// for the client).
    fn legs_of_reply(&self, quoted: &Flow<A>, (key, now): ((u8, VrfId), u32)) -> Option<Legs<A>> {
        let (protocol, vrf) = key;
        let vs = (self.vservers).get(&(vrf, protocol, quoted.src.addr, quoted.src.port))?;
        let times = (now, &self.timeouts);
        let (client, vip) = (quoted.dst, quoted.src);
        let mut released = None;
        let (backend, _) = (self.sessions).inbound(key, vip, client, 0, times, &mut released)?;
        let public = match vs.full_nat {
            true => {
                let mut released = None;
                let public =
                    (self.snat.table).outbound(key, client, backend, 0, times, &mut released);
                self.snat.release(released);
                Some(public?)
            }
            false => None,
        };
        Some([(End::Destination, Some(backend)), (End::Source, public)])
    }

    /// An error about a client's packet to a backend (the quote: to the
    /// backend) goes to the client (with full NAT, from the appliance
    /// endpoint standing for it), from the virtual server.
    fn legs_of_request(&self, quoted: &Flow<A>, (key, now): ((u8, VrfId), u32)) -> Option<Legs<A>> {
        let times = (now, &self.timeouts);
        let backend = quoted.dst;
        let client = match self.snat_addresses.contains(&(key.1, quoted.src.addr)) {
            true => {
                let mut released = None;
                let client =
                    (self.snat.table).inbound(key, quoted.src, backend, 0, times, &mut released);
                self.snat.release(released);
                Some(client?.0)
            }
            false => None,
        };
        let from = client.unwrap_or(quoted.src);
        let mut released = None;
        let vip = (self.sessions).outbound(key, backend, from, 0, times, &mut released)?;
        Some([(End::Destination, client), (End::Source, Some(vip))])
    }
}

/// What an ICMP error's translation changes: an end of the outer packet
/// (and the quote's opposite one) each, if any.
type Legs<A> = [(End, Option<Endpoint<A>>); 2];

/// Rewrites an ICMP error leg by leg (an end of the outer packet and the
/// quote's opposite one, see `rewrite_icmp_error`), reading it again after
/// each; one that cannot be read again is dropped half translated.
fn rewrite_legs<A: Address>(
    data: &mut [u8],
    outer: &Flow<A>,
    quoted: &Flow<A>,
    legs: Legs<A>,
) -> Action {
    let (mut outer, mut quoted) = (*outer, *quoted);
    let mut rewritten = false;
    for (end, new) in legs {
        let Some(new) = new else {
            continue;
        };
        if rewritten {
            let again = A::flow(data).and_then(|o| Some((o, o.quoted(data)?)));
            let Some(again) = again else {
                return Action::Drop;
            };
            (outer, quoted) = again;
        }
        rewrite_icmp_error(data, &outer, &quoted, end, new);
        rewritten = true;
    }
    Action::Continue
}

/// `slb`, at pre-routing of `A`'s family.
pub struct SlbNode<A: Address>(pub Arc<LbPath<A>>);

impl<A: Address> FeatureNode for SlbNode<A> {
    fn name(&self) -> &'static str {
        "slb"
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let path = &self.0;
        let vrf = packet.vrf;
        // Pre-routing comes after the IP header's checks: the addresses
        // are there.
        let dst = A::read(packet.data, A::DST);
        let to_vip = path.vips.contains(&(vrf, dst));
        // An ICMP error about a flow may come from any router on its way.
        let icmp = packet.data.get(A::PROTOCOL) == Some(&A::ICMP);
        // A client's packet needs no more tests than this one.
        let from_backend = || (path.backends).contains(&(vrf, A::read(packet.data, A::SRC)));
        if !to_vip && !icmp && !from_backend() {
            return Action::Continue;
        }
        let Some(flow) = A::flow(packet.data) else {
            return Action::Continue;
        };
        if flow.is_icmp_error() {
            return path.icmp_error(packet, &flow);
        }
        if to_vip {
            let key = (vrf, flow.protocol, dst, flow.dst.port);
            if let Some(vs) = path.vservers.get(&key) {
                return path.forward(packet, &flow, vs);
            }
        }
        if flow.has_ports && from_backend() {
            let to_snat = !to_vip && path.snat_addresses.contains(&(vrf, dst));
            return path.reply(packet, &flow, to_snat);
        }
        Action::Continue
    }
}

/// Warms the session a packet ahead in the batch will look up: a client's
/// to a virtual server, or a backend's reply.
pub struct SessionPrefetch<A: Address>(pub Arc<LbPath<A>>);

impl<A: Address> Prefetch for SessionPrefetch<A> {
    fn prefetch(&self, packet: &Ahead<'_>) {
        let path = &self.0;
        let Some(flow) = A::flow(packet.ip) else {
            return;
        };
        let key = (flow.protocol, packet.vrf);
        if path.vips.contains(&(packet.vrf, flow.dst.addr)) {
            path.sessions.prefetch(false, key, flow.dst, flow.src);
        } else if path.backends.contains(&(packet.vrf, flow.src.addr)) {
            path.sessions.prefetch(true, key, flow.src, flow.dst);
        }
    }
}
