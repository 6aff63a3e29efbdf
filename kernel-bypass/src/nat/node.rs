//! NAT44's two nodes and what they share.
//!
//! - `nat44-out2in`, at pre-routing: a packet that comes in on an outside
//!   interface to a public endpoint (a static translation's, or a dynamic
//!   one's from a remote endpoint its inside host has sent to) gets the
//!   inside endpoint as destination and is routed in the inside VRF; an
//!   ICMP error about a translated packet is translated back. On an inside
//!   interface, a packet to a public endpoint is hairpinned: translated as
//!   if it had come from outside, and its source as if it were leaving.
//! - `nat44-in2out`, at post-routing: a packet from an inside interface
//!   leaving by an outside one gets its public source endpoint: a static
//!   translation's, else its flow's, else a new one from the first dynamic
//!   rule whose access list permits it (only a packet that opens a flow
//!   makes one: TCP SYN, UDP, ICMP echo request). A packet a rule covers
//!   that cannot be translated (a later fragment, another protocol, a TCP
//!   segment of an unknown flow, no free port) is dropped and counted,
//!   never sent with its private address.
//!
//! Static translations need no state: they are looked up in the compiled
//! configuration. An elastic IP (a one-to-one static translation) may be
//! policed in each direction.

use super::address::{Address, Endpoint};
use super::mappings::Mappings;
use super::rewrite::{rewrite, rewrite_icmp_error, End, Ipv4Flow};
use super::table::{Released, Translation, TranslationTable};
use crate::classify::FlowKey;
use crate::counters::{Count, PerWorker};
use crate::features::{Action, Ahead, FeatureNode, Packet, Prefetch};
use crate::firewall::CompiledAcl;
use crate::sessions::{addr_bits, Adopted, TcpState, Timeouts};
use crate::snapshot::{IfaceId, VrfId, GLOBAL_TABLE};
use crate::state_sync::{Kind, SyncRecord};
use crate::token_bucket::TokenBucket;
use grammar::config::NatSide;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// What NAT counted, in one worker's slot.
#[derive(Default)]
pub struct NatCounters {
    pub outbound_translated: Count,
    pub inbound_translated: Count,
    pub icmp_errors_translated: Count,
    pub created: Count,
    pub exhausted: Count,
    pub table_full: Count,
    pub untranslatable: Count,
}

impl NatCounters {
    /// (name, value) of each counter summed over workers.
    pub fn rows(all: &PerWorker<NatCounters>) -> [(&'static str, u64); 7] {
        let get = |c: fn(&NatCounters) -> &Count| all.total(c);
        [
            ("translated out", get(|c| &c.outbound_translated)),
            ("translated in", get(|c| &c.inbound_translated)),
            ("ICMP errors translated", get(|c| &c.icmp_errors_translated)),
            ("dynamic translations created", get(|c| &c.created)),
            (
                "dropped, addresses or ports exhausted",
                get(|c| &c.exhausted),
            ),
            ("dropped, translation table full", get(|c| &c.table_full)),
            ("dropped, cannot be translated", get(|c| &c.untranslatable)),
        ]
    }
}

/// What lives across commits: the table, the mappings, the counters (of
/// one address family).
pub struct NatState<A: Address = Ipv4Addr> {
    pub table: TranslationTable<A>,
    pub mappings: Mappings<A>,
    pub counters: PerWorker<NatCounters>,
}

impl<A: Address> NatState<A> {
    /// Empty, for at most `max` translations.
    pub fn new(max: usize) -> NatState<A> {
        NatState {
            table: TranslationTable::new(max),
            mappings: Mappings::default(),
            counters: PerWorker::default(),
        }
    }

    /// Takes in a translation the HA peer holds, with its mapping; false
    /// when it conflicts with this box's own or the table is full.
    pub fn adopt(&self, tr: &Translation<A>, tcp: TcpState, times: (u32, &Timeouts)) -> bool {
        let flow = (tr.inside_vrf, tr.protocol);
        if !tr.from_outside && !self.mappings.adopt(flow, tr.inside, tr.public) {
            return false;
        }
        let mut swept = Vec::new();
        let adopted = self.table.adopt(tr, tcp, times, &mut swept);
        self.release(swept);
        if adopted != Ok(Adopted::New) && !tr.from_outside {
            self.mappings.unmap(flow, tr.inside); // the one taken above
        }
        adopted.is_ok()
    }

    /// Gives released records' public endpoints back.
    pub fn release(&self, released: impl IntoIterator<Item = Released<A>>) {
        for r in released.into_iter().filter(|r| !r.from_outside) {
            if !self
                .mappings
                .unbind(r.inside_vrf, r.inside.addr, r.public.addr)
            {
                self.mappings.unmap((r.inside_vrf, r.protocol), r.inside);
            }
        }
    }
}

/// An elastic IP's policers (in, out) and counters, kept across commits.
#[derive(Default)]
pub struct Eip {
    pub police: Option<[Mutex<TokenBucket>; 2]>,
    /// [in, out] x (packets, bytes, policed).
    pub counters: PerWorker<[[Count; 3]; 2]>,
}

pub const IN: usize = 0;
pub const OUT: usize = 1;

impl Eip {
    /// Counts a packet; false when the policer drops it.
    fn pass(&self, direction: usize, bytes: usize, now_ms: u64) -> bool {
        let [packets, octets, policed] = &self.counters.here()[direction];
        let ok = self.police.as_ref().is_none_or(|p| {
            let mut bucket = p[direction].lock().unwrap_or_else(|e| e.into_inner());
            bucket.take_n(now_ms, bytes as u64)
        });
        if ok {
            packets.add();
            octets.add_n(bytes as u64);
        } else {
            policed.add();
        }
        ok
    }
}

/// A static translation, found by either end.
pub struct StaticEntry {
    pub inside: Endpoint,
    pub inside_vrf: VrfId,
    pub global: Endpoint,
    pub outside_vrf: VrfId,
    /// 0 for one-to-one (the ports are kept).
    pub protocol: u8,
    pub eip: Option<Arc<Eip>>,
}

/// (vrf, protocol or 0, address, port or 0).
pub type StaticMatch = (VrfId, u8, Ipv4Addr, u16);

/// A multiplicative hash for the static maps' small keys, a few
/// nanoseconds where SipHash costs tens on every packet. Its weakness to
/// chosen keys does not matter: the configuration, not packets, fills
/// the maps.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0 ^ self.0 >> 29
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n.into());
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(n.into());
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(n.into());
    }
}

/// Static translations by one end.
pub type StaticMap = HashMap<StaticMatch, Arc<StaticEntry>, BuildHasherDefault<KeyHasher>>;

/// A dynamic rule of one inside VRF.
pub struct DynamicRule {
    pub vrf: VrfId,
    pub acl: Arc<CompiledAcl>,
    pub addresses: Vec<Ipv4Addr>,
    pub overload: bool,
    pub outside_vrf: VrfId,
}

/// The compiled configuration both nodes read.
pub struct NatPath {
    /// By interface id: its side and VRF.
    pub interfaces: Vec<Option<(NatSide, VrfId)>>,
    pub statics_by_inside: StaticMap,
    pub statics_by_global: StaticMap,
    pub dynamic: Vec<DynamicRule>,
    /// The static translations' global ports, never given out.
    pub reserved: HashSet<(u8, Ipv4Addr, u16)>,
    /// Every public address (statics, pools, interfaces) with its VRF,
    /// sorted: the hairpin check of every inside packet is a binary search.
    pub public: Vec<(VrfId, Ipv4Addr)>,
    pub timeouts: Timeouts,
    pub state: Arc<NatState>,
    pub log: Arc<crate::pipeline::Shared>,
}

impl NatPath {
    fn side(&self, iface: Option<IfaceId>) -> Option<(NatSide, VrfId)> {
        *self.interfaces.get(usize::from(iface?))?
    }

    /// The static translation of an endpoint, port-specific first.
    fn static_of(
        map: &StaticMap,
        vrf: VrfId,
        protocol: u8,
        e: Endpoint,
    ) -> Option<&Arc<StaticEntry>> {
        if map.is_empty() {
            return None;
        }
        map.get(&(vrf, protocol, e.addr, e.port))
            .or_else(|| map.get(&(vrf, 0, e.addr, 0)))
    }

    /// The first dynamic rule of `vrf` whose list permits the packet.
    fn rule_for(&self, vrf: VrfId, flow: &Ipv4Flow) -> Option<&DynamicRule> {
        let key = FlowKey {
            src: addr_bits(flow.src.addr.into()),
            dst: addr_bits(flow.dst.addr.into()),
            protocol: flow.protocol,
            src_port: flow.src.port,
            dst_port: flow.dst.port,
            tcp_flags: flow.tcp_flags,
        };
        self.dynamic
            .iter()
            .filter(|r| r.vrf == vrf)
            .find(|r| r.acl.classify(&key).is_some_and(|rule| rule.permit))
    }

    fn untranslatable(&self) -> Action {
        self.state.counters.here().untranslatable.add();
        Action::Drop
    }

    /// The inside end of a packet to public endpoint `public` from `remote`
    /// (static, else a flow's): (inside endpoint, its VRF, the EIP).
    fn inbound_end(
        &self,
        (protocol, vrf): (u8, VrfId),
        public: Endpoint,
        remote: Endpoint,
        (tcp, now): (u8, u32),
    ) -> Option<(Endpoint, VrfId, Option<&Arc<Eip>>)> {
        if let Some(s) = Self::static_of(&self.statics_by_global, vrf, protocol, public) {
            let port = if s.protocol == 0 {
                public.port
            } else {
                s.inside.port
            };
            return Some((
                Endpoint::new(s.inside.addr, port),
                s.inside_vrf,
                s.eip.as_ref(),
            ));
        }
        let mut released = None;
        let found = self.state.table.inbound(
            (protocol, vrf),
            public,
            remote,
            tcp,
            (now, &self.timeouts),
            &mut released,
        );
        self.state.release(released);
        found.map(|(inside, vrf)| (inside, vrf, None))
    }

    /// The public end of an existing translation of `inside` towards `remote`.
    fn outbound_end(
        &self,
        (protocol, vrf): (u8, VrfId),
        inside: Endpoint,
        remote: Endpoint,
        (tcp, now): (u8, u32),
    ) -> Option<(Endpoint, Option<&Arc<Eip>>)> {
        if let Some(s) = Self::static_of(&self.statics_by_inside, vrf, protocol, inside) {
            let port = if s.protocol == 0 {
                inside.port
            } else {
                s.global.port
            };
            return Some((Endpoint::new(s.global.addr, port), s.eip.as_ref()));
        }
        let mut released = None;
        let found = self.state.table.outbound(
            (protocol, vrf),
            inside,
            remote,
            tcp,
            (now, &self.timeouts),
            &mut released,
        );
        self.state.release(released);
        found.map(|public| (public, None))
    }

    /// Destination translation of a packet to a public address in table
    /// `vrf`: None when it is not to a translated endpoint.
    fn translate_inbound(
        &self,
        packet: &mut Packet<'_>,
        flow: &Ipv4Flow,
        vrf: VrfId,
    ) -> Option<Action> {
        if flow.is_icmp_error() {
            return self.inbound_icmp_error(packet, flow, vrf);
        }
        if !flow.has_ports {
            // A whole-address static translation needs no ports.
            let s = Self::static_of(&self.statics_by_global, vrf, flow.protocol, flow.dst)?;
            if s.protocol != 0 {
                return None;
            }
            return Some(self.inbound_to(
                packet,
                flow,
                (
                    Endpoint::new(s.inside.addr, 0),
                    s.inside_vrf,
                    s.eip.as_ref(),
                ),
            ));
        }
        let end = self.inbound_end(
            (flow.protocol, vrf),
            flow.dst,
            flow.src,
            (flow.tcp_flags, packet.now_secs),
        )?;
        Some(self.inbound_to(packet, flow, end))
    }

    fn inbound_to(
        &self,
        packet: &mut Packet<'_>,
        flow: &Ipv4Flow,
        (inside, inside_vrf, eip): (Endpoint, VrfId, Option<&Arc<Eip>>),
    ) -> Action {
        if eip.is_some_and(|e| !e.pass(IN, flow.len, packet.now_ms)) {
            return Action::Drop;
        }
        let inside = if flow.has_ports {
            inside
        } else {
            Endpoint::new(inside.addr, flow.dst.port)
        };
        rewrite(packet.data, flow, End::Destination, inside);
        packet.vrf = inside_vrf;
        self.state.counters.here().inbound_translated.add();
        Action::Continue
    }

    fn inbound_icmp_error(
        &self,
        packet: &mut Packet<'_>,
        flow: &Ipv4Flow,
        vrf: VrfId,
    ) -> Option<Action> {
        let quoted = flow.quoted(packet.data)?;
        // The quote is of a packet we sent: its source is the public end.
        let (inside, inside_vrf, _) = if quoted.has_ports {
            self.inbound_end(
                (quoted.protocol, vrf),
                quoted.src,
                quoted.dst,
                (0, packet.now_secs),
            )?
        } else {
            let s = Self::static_of(&self.statics_by_global, vrf, quoted.protocol, quoted.src)?;
            (s.inside, s.inside_vrf, None)
        };
        let inside = if quoted.has_ports {
            inside
        } else {
            Endpoint::new(inside.addr, 0)
        };
        rewrite_icmp_error(packet.data, flow, &quoted, End::Destination, inside);
        packet.vrf = inside_vrf;
        self.state.counters.here().icmp_errors_translated.add();
        Some(Action::Continue)
    }

    /// Source translation of a packet from inside VRF `vrf` that leaves by
    /// an outside interface (or is hairpinned).
    fn translate_outbound(&self, packet: &mut Packet<'_>, flow: &Ipv4Flow, vrf: VrfId) -> Action {
        if flow.is_icmp_error() {
            return self.outbound_icmp_error(packet, flow, vrf);
        }
        let now = packet.now_secs;
        let known = match flow.has_ports {
            true => self.outbound_end(
                (flow.protocol, vrf),
                flow.src,
                flow.dst,
                (flow.tcp_flags, now),
            ),
            false => Self::static_of(&self.statics_by_inside, vrf, flow.protocol, flow.src)
                .filter(|s| s.protocol == 0)
                .map(|s| (Endpoint::new(s.global.addr, 0), s.eip.as_ref())),
        };
        if let Some((public, eip)) = known {
            if eip.is_some_and(|e| !e.pass(OUT, flow.len, packet.now_ms)) {
                return Action::Drop;
            }
            let public = if flow.has_ports {
                public
            } else {
                Endpoint::new(public.addr, flow.src.port)
            };
            rewrite(packet.data, flow, End::Source, public);
            self.state.counters.here().outbound_translated.add();
            return Action::Continue;
        }
        let Some(rule) = self.rule_for(vrf, flow) else {
            return Action::Continue; // no rule covers it: routed as it is, as on IOS
        };
        if !flow.opens_flow() {
            return self.untranslatable();
        }
        self.create(packet, flow, (vrf, rule))
    }

    /// A new dynamic translation for a packet that opens a flow.
    fn create(
        &self,
        packet: &mut Packet<'_>,
        flow: &Ipv4Flow,
        (vrf, rule): (VrfId, &DynamicRule),
    ) -> Action {
        let state = &self.state;
        let public = match rule.overload {
            true => state.mappings.map(
                (vrf, flow.protocol),
                flow.src,
                &rule.addresses,
                &self.reserved,
            ),
            false => state
                .mappings
                .bind(vrf, flow.src.addr, &rule.addresses)
                .map(|a| Endpoint::new(a, flow.src.port)),
        };
        let Some(public) = public else {
            state.counters.here().exhausted.add();
            let (src, acl) = (flow.src.addr, &rule.acl.name);
            self.log.log.record(packet.now_secs, || {
                format!("%IPNAT-4-ADDR_ALLOC_FAILURE: no public address or port for {src} (list {acl}); flow dropped")
            });
            return Action::Drop;
        };
        let translation = Translation {
            protocol: flow.protocol,
            inside_vrf: vrf,
            outside_vrf: rule.outside_vrf,
            inside: flow.src,
            public,
            remote: flow.dst,
            from_outside: false,
        };
        let mut swept = Vec::new();
        let created =
            state
                .table
                .create(&translation, (packet.now_secs, &self.timeouts), &mut swept);
        state.release(swept);
        if created.is_err() {
            state.release([Released {
                inside_vrf: vrf,
                protocol: flow.protocol,
                inside: flow.src,
                public,
                from_outside: false,
            }]);
            state.counters.here().table_full.add();
            return Action::Drop;
        }
        state.counters.here().created.add();
        (self.log.sync.journal)
            .note(|| SyncRecord::of_translation(Kind::Nat, &translation, TcpState::SynSent));
        state.counters.here().outbound_translated.add();
        rewrite(packet.data, flow, End::Source, public);
        Action::Continue
    }

    /// An inside host's ICMP error about a packet it received through a
    /// translation: the quote's destination and the outer source become
    /// public; one that cannot be is dropped if a rule covers its source.
    fn outbound_icmp_error(&self, packet: &mut Packet<'_>, flow: &Ipv4Flow, vrf: VrfId) -> Action {
        let public = flow.quoted(packet.data).and_then(|quoted| {
            let (public, _) = match quoted.has_ports {
                true => self.outbound_end(
                    (quoted.protocol, vrf),
                    quoted.dst,
                    quoted.src,
                    (0, packet.now_secs),
                )?,
                false => Self::static_of(&self.statics_by_inside, vrf, quoted.protocol, quoted.dst)
                    .map(|s| (Endpoint::new(s.global.addr, 0), None))?,
            };
            Some((quoted, public))
        });
        match public {
            Some((quoted, public)) => {
                rewrite_icmp_error(packet.data, flow, &quoted, End::Source, public);
                self.state.counters.here().icmp_errors_translated.add();
                Action::Continue
            }
            None if self.rule_for(vrf, flow).is_some() => self.untranslatable(),
            None => Action::Continue,
        }
    }
}

/// `nat44-out2in`, at pre-routing.
pub struct Out2In(pub Arc<NatPath>);

impl FeatureNode for Out2In {
    fn name(&self) -> &'static str {
        "nat44-out2in"
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let path = &self.0;
        let Some((side, _)) = path.side(packet.ingress) else {
            return Action::Continue;
        };
        let Some(flow) = Ipv4Flow::parse(packet.data, false) else {
            return Action::Continue; // the path counts a malformed header
        };
        let vrf = packet.vrf;
        match side {
            NatSide::Outside => path
                .translate_inbound(packet, &flow, vrf)
                .unwrap_or(Action::Continue),
            NatSide::Inside if path.public.contains(&(GLOBAL_TABLE, flow.dst.addr)) => {
                hairpin(path, packet, &flow, vrf)
            }
            NatSide::Inside => Action::Continue,
        }
    }
}

/// An inside host's packet to a public endpoint: translated in as if from
/// outside (public addresses live in the global table), then its source
/// out, so that the answer comes back through the appliance.
fn hairpin(path: &NatPath, packet: &mut Packet<'_>, flow: &Ipv4Flow, vrf: VrfId) -> Action {
    match path.translate_inbound(packet, flow, GLOBAL_TABLE) {
        Some(Action::Continue) => {}
        Some(other) => return other,
        None => return Action::Continue,
    }
    match Ipv4Flow::parse(packet.data, false) {
        Some(turned) => path.translate_outbound(packet, &turned, vrf),
        None => Action::Drop,
    }
}

/// `nat44-in2out`, at post-routing.
pub struct In2Out(pub Arc<NatPath>);

impl FeatureNode for In2Out {
    fn name(&self) -> &'static str {
        "nat44-in2out"
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let path = &self.0;
        let leaving = matches!(path.side(packet.egress), Some((NatSide::Outside, _)));
        if !leaving || !matches!(path.side(packet.ingress), Some((NatSide::Inside, _))) {
            return Action::Continue;
        }
        let Some(flow) = Ipv4Flow::parse(packet.data, false) else {
            return path.untranslatable();
        };
        let vrf = packet.vrf;
        path.translate_outbound(packet, &flow, vrf)
    }
}

/// Warms the translation a packet ahead in the batch will look up, from
/// the side of the interface it came in on.
pub struct TranslationPrefetch(pub Arc<NatPath>);

impl Prefetch for TranslationPrefetch {
    fn prefetch(&self, packet: &Ahead<'_>) {
        let Some((side, _)) = self.0.side(Some(packet.ingress)) else {
            return;
        };
        let Some(flow) = Ipv4Flow::parse(packet.ip, false) else {
            return;
        };
        let from_inside = side == NatSide::Inside;
        let (local, remote) = if from_inside {
            (flow.src, flow.dst)
        } else {
            (flow.dst, flow.src)
        };
        let table = &self.0.state.table;
        table.prefetch(from_inside, (flow.protocol, packet.vrf), local, remote);
    }
}
