//! The forwarding pipeline: each received batch runs to completion through
//! Ethernet/VLAN input, ARP, IPv4 (local delivery, ICMP, forwarding), IPv6
//! (Neighbour Discovery, ICMPv6, forwarding), VXLAN decap/encap and
//! neighbour resolution, and leaves with one verdict per frame: dropped (and
//! counted) or queued on a port. Packets the pipeline itself creates (ARP
//! requests, neighbour solicitations, packets released after resolution,
//! the local stack's output) go through a second "generated" batch; VXLAN
//! head-end replicas and L2 flood copies through a third, IPv4 fragments
//! through a fourth and fifth (see `fragment`). All are allocated once.
//! Frames of L2 domain members are bridged (`l2`), not routed.

mod fragment;
mod icmp;
mod icmp6;
mod input;
mod ipv6;
mod l2;
mod nd;
pub(crate) use nd::{write_unsolicited_advert, ND_PACKET};
mod output;
pub(crate) use output::source_towards;
mod pending;

use crate::counters::{Counter, WorkerCounters};
use crate::features::{Action, Family, Packet, Point};
use crate::frame::{Batch, Frame, BATCH_SIZE};
use crate::io::PacketPort;
use crate::learned::LearnedTable;
use crate::local::LocalPort;
use crate::snapshot::{IfaceId, PortId, Snapshot, VrfId, GLOBAL_TABLE};
use crate::token_bucket::TokenBucket;
use crate::wire::{
    ipv4_at, ipv6_at, mac_from_u64, mac_to_u64, multicast_mac, Mac, BROADCAST_MAC, ETHERTYPE_ARP,
    ETHERTYPE_IPV6, IPV4_SRC, IPV6_DST, IPV6_HEADER,
};
use input::prefetch_flow;
use pending::Pending;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

/// ARP and IPv6 neighbour entries older than this are resolved again (seconds).
pub const ARP_MAX_AGE_SECS: u32 = 300;
/// Entries in use and older than this are re-requested before they expire,
/// so busy flows never wait for resolution (seconds).
pub const ARP_REFRESH_SECS: u32 = 240;
/// VXLAN MAC -> VTEP entries older than this are flooded again (seconds).
pub const VTEP_MAX_AGE_SECS: u32 = 300;
/// How often a worker collects its ports' receive-ring drop counts (ms).
const RING_DROPS_EVERY_MS: u64 = 500;
/// How many packets ahead of the one processed the elements' tables are
/// warmed: far enough for memory to answer, near enough to stay cached.
const PREFETCH_AHEAD: usize = 16;
/// How often the elements' timers (`features::Ticker`) run.
const TICK_EVERY_MS: u64 = 10;
/// Capacity of the generated and replica batches.
const GENERATED_CAPACITY: usize = 256;

/// Tables learned from traffic, shared by every worker of a dataplane.
pub struct Shared {
    /// (interface, IPv4) -> MAC.
    pub neighbors: LearnedTable,
    /// (interface, IPv6) -> MAC.
    pub neighbors6: LearnedTable<3>,
    /// (VXLAN interface, inner MAC) -> remote VTEP address.
    pub vteps: LearnedTable,
    /// What the elements log about packets (`show logging`).
    pub log: crate::event_log::EventLog,
    /// The HA pair's synchronised tables and the journal of new entries.
    pub sync: Arc<crate::state_sync::StateSync>,
    epoch: Instant,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            neighbors: LearnedTable::new(16384),
            neighbors6: LearnedTable::new(4096),
            vteps: LearnedTable::new(16384),
            log: Default::default(),
            sync: Default::default(),
            epoch: Instant::now(),
        }
    }
}

/// Key of a neighbour entry; the inverse is `split_neighbor_key`.
pub fn neighbor_key(iface: IfaceId, ip: Ipv4Addr) -> [u64; 1] {
    [u64::from(iface) << 32 | u64::from(u32::from(ip))]
}

pub fn split_neighbor_key([key]: [u64; 1]) -> (IfaceId, Ipv4Addr) {
    ((key >> 32) as IfaceId, Ipv4Addr::from(key as u32))
}

/// Key of an IPv6 neighbour entry; the inverse is `split_neighbor6_key`.
pub fn neighbor6_key(iface: IfaceId, ip: Ipv6Addr) -> [u64; 3] {
    let a = u128::from(ip);
    [u64::from(iface), (a >> 64) as u64, a as u64]
}

pub fn split_neighbor6_key([iface, hi, lo]: [u64; 3]) -> (IfaceId, Ipv6Addr) {
    let a = u128::from(hi) << 64 | u128::from(lo);
    (iface as IfaceId, Ipv6Addr::from(a))
}

/// Key of a VTEP entry; the inverse is `split_vtep_key`.
pub fn vtep_key(iface: IfaceId, mac: &Mac) -> [u64; 1] {
    [u64::from(iface) << 48 | mac_to_u64(mac)]
}

pub fn split_vtep_key([key]: [u64; 1]) -> (IfaceId, Mac) {
    ((key >> 48) as IfaceId, mac_from_u64(key & 0xffff_ffff_ffff))
}

impl Shared {
    /// Milliseconds since the dataplane started.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Seconds since the dataplane started (the learned tables' clock).
    pub fn now_secs(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    /// The neighbour's MAC and the entry's age in seconds, unless expired.
    fn neighbor(&self, iface: IfaceId, ip: IpAddr, now: u32) -> Option<(Mac, u32)> {
        let e = match ip {
            IpAddr::V4(ip) => self.neighbors.get(neighbor_key(iface, ip)),
            IpAddr::V6(ip) => self.neighbors6.get(neighbor6_key(iface, ip)),
        }?;
        let age = now.wrapping_sub(e.stamp);
        (age <= ARP_MAX_AGE_SECS).then(|| (mac_from_u64(e.value), age))
    }

    /// The source address for the local stack to reach `dst` from, as the
    /// routes and neighbours know it: an address of the egress interface
    /// (of the destination's scope), or for a link-local peer the
    /// link-local address of the first interface where it is a neighbour.
    /// None when they do not know (the stack then chooses).
    pub fn local_source(&self, snap: &Snapshot, vrf: VrfId, dst: IpAddr) -> Option<IpAddr> {
        if matches!(dst, IpAddr::V6(v6) if v6.is_unicast_link_local()) {
            let now = self.now_secs();
            let mut up = snap.up_interfaces().filter(|i| i.vrf == vrf);
            let link = up.find(|i| self.neighbor(i.id, dst, now).is_some())?;
            return Some(IpAddr::V6(link.link_local));
        }
        // A global peer is not answered from a link-local address.
        output::source_towards(snap, vrf, dst)
            .filter(|source| !matches!(source, IpAddr::V6(s) if s.is_unicast_link_local()))
    }

    fn vtep(&self, iface: IfaceId, mac: &Mac, now: u32) -> Option<Ipv4Addr> {
        self.vteps
            .get(vtep_key(iface, mac))
            .filter(|e| now.wrapping_sub(e.stamp) <= VTEP_MAX_AGE_SECS)
            .map(|e| Ipv4Addr::from(e.value as u32))
    }
}

/// What happens to a frame after the pipeline ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Consumed: dropped (and counted), queued for resolution, or delivered locally.
    Done,
    /// Transmit on this port.
    Tx(PortId),
}

/// What a frame of the generated batch holds.
#[derive(Clone, Copy, Debug)]
enum Generated {
    /// An IPv4 or IPv6 packet of the local stack to route in this table.
    Route(VrfId),
    /// A packet whose next hop on this interface got resolved.
    Released(IfaceId),
    /// An ARP request payload to broadcast on an interface.
    ArpRequest(IfaceId),
    /// A neighbour solicitation (IPv6 packet) to multicast on an interface.
    NeighborSolicit(IfaceId),
    /// A packet whose next hop on this interface never answered ARP or
    /// ND: its sender is told.
    Unresolved(IfaceId),
    /// A tunnel driver's own packet (a handshake, a keepalive): route it
    /// in this table.
    RouteIn(VrfId),
    /// An element's own frame (`features::Ticker`): the payload, to send
    /// on the interface with these addresses and ethertype.
    Emitted {
        iface: IfaceId,
        dst: Mac,
        src: Mac,
        ethertype: u16,
    },
}

/// A worker's access to the local stack: every worker delivers to it, one
/// worker also routes its output (and polls its wake-up descriptor).
pub struct LocalHandle {
    pub port: Arc<LocalPort>,
    pub drains: bool,
}

/// Everything the stages need except the batch being processed.
struct Stage {
    shared: Arc<Shared>,
    counters: Arc<WorkerCounters>,
    local: Option<LocalHandle>,
    pending: Pending,
    replicas: Batch,
    replica_verdicts: Vec<Verdict>,
    fragments: [fragment::Fragments; 2],
    /// Identification of the next VXLAN outer packet, which may be fragmented.
    next_ip_id: u16,
    icmp_budget: TokenBucket,
    now_ms: u64,
    now_secs: u32,
}

/// One worker's pipeline.
pub struct Pipeline {
    stage: Stage,
    rx: Batch,
    rx_verdicts: Vec<Verdict>,
    generated: Batch,
    generated_kinds: Vec<Generated>,
    generated_verdicts: Vec<Verdict>,
    ring_drops_due_ms: u64,
    tick_due_ms: u64,
}

impl Pipeline {
    pub fn new(
        shared: Arc<Shared>,
        counters: Arc<WorkerCounters>,
        local: Option<LocalHandle>,
    ) -> Pipeline {
        Pipeline {
            stage: Stage {
                shared,
                counters,
                local,
                pending: Pending::new(),
                replicas: Batch::new(GENERATED_CAPACITY),
                replica_verdicts: Vec::with_capacity(GENERATED_CAPACITY),
                fragments: fragment::sets(),
                // Random per worker, so that workers sending to the same
                // remote VTEP rarely reuse each other's identifications.
                next_ip_id: std::hash::BuildHasher::hash_one(
                    &std::collections::hash_map::RandomState::new(),
                    0,
                ) as u16,
                icmp_budget: TokenBucket::new(icmp::ERRORS_PER_SEC, icmp::ERRORS_PER_SEC),
                now_ms: 0,
                now_secs: 0,
            },
            rx: Batch::new(BATCH_SIZE),
            rx_verdicts: Vec::with_capacity(BATCH_SIZE),
            generated: Batch::new(GENERATED_CAPACITY),
            generated_kinds: Vec::with_capacity(GENERATED_CAPACITY),
            generated_verdicts: Vec::with_capacity(GENERATED_CAPACITY),
            ring_drops_due_ms: 0,
            tick_due_ms: 0,
        }
    }

    /// The local stack's wake-up descriptor, for the idle poll set of the
    /// worker that drains it.
    pub fn local_wake_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.stage.local {
            Some(l) if l.drains => Some(l.port.wake_fd()),
            _ => None,
        }
    }

    /// One round: a batch from every port, then generated packets. Returns
    /// true when any packet was handled (the caller polls when idle).
    pub fn run_once(&mut self, snap: &Snapshot, ports: &mut [Option<Box<dyn PacketPort>>]) -> bool {
        self.stage.now_ms = self.stage.shared.now_ms();
        self.stage.now_secs = self.stage.shared.now_secs();
        let mut busy = false;
        for index in 0..ports.len() {
            let Some(port) = ports[index].as_mut() else {
                continue;
            };
            self.rx.clear();
            // A failing port (e.g. its interface vanished) is skipped this round.
            if !matches!(port.recv(&mut self.rx), Ok(n) if n > 0) {
                continue;
            }
            busy = true;
            let port = index as PortId;
            self.stage
                .input_batch(snap, port, &mut self.rx, &mut self.rx_verdicts);
            send(&mut self.stage, ports, &self.rx, &self.rx_verdicts);
        }
        busy |= self.run_generated(snap, ports);
        if self.stage.now_ms >= self.ring_drops_due_ms {
            self.ring_drops_due_ms = self.stage.now_ms + RING_DROPS_EVERY_MS;
            self.collect_ring_drops(snap, ports);
        }
        busy
    }

    /// Charges frames the kernel dropped in front of each port (the worker
    /// fell behind) to the port's interface.
    fn collect_ring_drops(&mut self, snap: &Snapshot, ports: &mut [Option<Box<dyn PacketPort>>]) {
        for (index, slot) in ports.iter_mut().enumerate() {
            let iface = snap.ingress(index as PortId, None);
            if let (Some(port), Some(iface)) = (slot.as_mut(), iface) {
                self.stage
                    .counters
                    .set_drops(iface, Counter::RxRingFull, port.rx_ring_drops());
            }
        }
    }

    /// Feeds one batch of frames received on `port` through the pipeline and
    /// returns the verdicts (in-memory use: benchmarks and property tests).
    pub fn process(&mut self, snap: &Snapshot, port: PortId, batch: &mut Batch) -> &[Verdict] {
        self.stage.now_ms = self.stage.shared.now_ms();
        self.stage.now_secs = self.stage.shared.now_secs();
        self.stage.replicas.clear();
        self.stage.replica_verdicts.clear();
        self.stage.fragments.iter_mut().for_each(|f| f.clear());
        self.stage
            .input_batch(snap, port, batch, &mut self.rx_verdicts);
        &self.rx_verdicts
    }

    /// Frames replicated during the last `process` call (VXLAN flooding).
    pub fn replicas(&self) -> (&[Frame], &[Verdict]) {
        (self.stage.replicas.frames(), &self.stage.replica_verdicts)
    }

    /// IPv4 fragments made during the last `process` call, after the first
    /// of each packet (which takes the packet's place in the batch).
    pub fn fragments(&self) -> impl Iterator<Item = (&Frame, &Verdict)> {
        self.stage
            .fragments
            .iter()
            .flat_map(|f| f.frames.frames().iter().zip(&f.verdicts))
    }

    /// Routes the local stack's output and packets waiting for ARP that are
    /// now resolved, and sends due ARP requests.
    fn run_generated(
        &mut self,
        snap: &Snapshot,
        ports: &mut [Option<Box<dyn PacketPort>>],
    ) -> bool {
        self.generated.clear();
        self.generated_kinds.clear();
        let stage = &mut self.stage;
        let generated = &mut self.generated;
        let kinds = &mut self.generated_kinds;
        if let Some(local) = stage.local.as_ref().filter(|l| l.drains) {
            let counters = &stage.counters;
            local.port.drain_outgoing(&mut |packet, vrf| {
                if generated.push_copy(packet) {
                    kinds.push(Generated::Route(vrf));
                    counters.event(Counter::LocalSent);
                } else {
                    counters.event(Counter::GeneratedOverflow);
                }
            });
        }
        stage.service_pending(snap, generated, kinds);
        stage.service_refresh(snap, generated, kinds);
        if stage.local.as_ref().is_some_and(|l| l.drains) && stage.now_ms >= self.tick_due_ms {
            self.tick_due_ms = stage.now_ms + TICK_EVERY_MS;
            let counters = &stage.counters;
            for ticker in snap.features.tickers() {
                ticker.tick(stage.now_ms, &mut |e| {
                    if generated.push_copy(e.payload) {
                        kinds.push(Generated::Emitted {
                            iface: e.iface,
                            dst: e.dst,
                            src: e.src,
                            ethertype: e.ethertype,
                        });
                    } else {
                        counters.event(Counter::GeneratedOverflow);
                    }
                });
            }
            for tunnel in snap.tunnel_drivers() {
                tunnel.0.tick(snap, stage.now_ms, &mut |vrf, packet| {
                    if generated.push_copy(packet) {
                        kinds.push(Generated::RouteIn(vrf));
                    } else {
                        counters.event(Counter::GeneratedOverflow);
                    }
                });
            }
        }
        if self.generated.is_empty() {
            return false;
        }
        self.generated_verdicts.clear();
        for (frame, kind) in self
            .generated
            .frames_mut()
            .iter_mut()
            .zip(&self.generated_kinds)
        {
            let v = self.stage.generated_input(snap, frame, *kind);
            self.generated_verdicts.push(v);
        }
        send(
            &mut self.stage,
            ports,
            &self.generated,
            &self.generated_verdicts,
        );
        true
    }
}

/// Sends a processed batch and the replicas and fragments it produced, then
/// empties those for the next one.
fn send(
    stage: &mut Stage,
    ports: &mut [Option<Box<dyn PacketPort>>],
    batch: &Batch,
    verdicts: &Vec<Verdict>,
) {
    flush(
        &stage.counters,
        ports,
        &[
            (batch, verdicts),
            (&stage.replicas, &stage.replica_verdicts),
            (&stage.fragments[0].frames, &stage.fragments[0].verdicts),
            (&stage.fragments[1].frames, &stage.fragments[1].verdicts),
        ],
    );
    stage.replicas.clear();
    stage.replica_verdicts.clear();
    stage.fragments.iter_mut().for_each(|f| f.clear());
}

/// Hands every frame with a `Tx` verdict to its port, one send per port.
fn flush(
    counters: &WorkerCounters,
    ports: &mut [Option<Box<dyn PacketPort>>],
    batches: &[(&Batch, &Vec<Verdict>)],
) {
    for (index, slot) in ports.iter_mut().enumerate() {
        let target = Verdict::Tx(index as PortId);
        let queued: usize = batches
            .iter()
            .map(|(_, v)| v.iter().filter(|v| **v == target).count())
            .sum();
        if queued == 0 {
            continue;
        }
        let Some(port) = slot.as_mut() else {
            (0..queued).for_each(|_| counters.event(Counter::TxNoPort));
            continue;
        };
        let mut frames = batches.iter().flat_map(|(b, v)| {
            b.frames()
                .iter()
                .zip(v.iter())
                .filter(move |(_, v)| **v == target)
                .map(|(f, _)| f.data())
        });
        let sent = port.send(&mut frames).unwrap_or(0);
        (sent..queued).for_each(|_| counters.event(Counter::TxFull));
    }
}

impl Stage {
    /// Runs every frame of a batch received on `port` through the pipeline.
    fn input_batch(
        &mut self,
        snap: &Snapshot,
        port: PortId,
        batch: &mut Batch,
        verdicts: &mut Vec<Verdict>,
    ) {
        verdicts.clear();
        let warm = snap.features.prefetches();
        let frames = batch.frames_mut();
        if warm {
            for frame in frames.iter().take(PREFETCH_AHEAD) {
                prefetch_flow(snap, port, frame.data());
            }
        }
        for at in 0..frames.len() {
            if let Some(ahead) = frames.get(at + PREFETCH_AHEAD).filter(|_| warm) {
                prefetch_flow(snap, port, ahead.data());
            }
            let frame = &mut frames[at];
            frame.port = port;
            verdicts.push(self.ethernet_input(snap, frame));
        }
    }

    fn generated_input(&mut self, snap: &Snapshot, frame: &mut Frame, kind: Generated) -> Verdict {
        let is_ipv6 = frame.data().first().is_some_and(|b| b >> 4 == 6);
        // Packets of a link are routed in its table; the local stack's in
        // the one it names (the global table but for a tool's VRF flows).
        let vrf_of = |iface| snap.interface(iface).map_or(GLOBAL_TABLE, |i| i.vrf);
        match kind {
            Generated::Released(iface) if is_ipv6 => {
                self.ip6_output(snap, frame, snap.interface(iface))
            }
            Generated::Route(vrf) => {
                let family = if is_ipv6 { Family::Ipv6 } else { Family::Ipv4 };
                let at = (None, vrf, None);
                if let Some(verdict) = self.feature(snap, (family, Point::LocalOut), frame, at) {
                    return verdict;
                }
                match family {
                    Family::Ipv6 => self.local6_output(snap, frame, vrf),
                    Family::Ipv4 => self.ip_output(snap, frame, vrf, 0),
                }
            }
            Generated::Released(iface) => self.ip_output(snap, frame, vrf_of(iface), 0),
            Generated::RouteIn(vrf) => self.route_in(snap, frame, vrf, 1),
            Generated::ArpRequest(iface) => match snap.interface(iface) {
                Some(out) => self.l2_output(snap, frame, out, &BROADCAST_MAC, ETHERTYPE_ARP, 0),
                None => Verdict::Done,
            },
            Generated::NeighborSolicit(iface) if frame.len() >= IPV6_HEADER => {
                let group = multicast_mac(ipv6_at(frame.data(), IPV6_DST));
                match snap.interface(iface) {
                    Some(out) => self.l2_output(snap, frame, out, &group, ETHERTYPE_IPV6, 0),
                    None => Verdict::Done,
                }
            }
            Generated::NeighborSolicit(_) => Verdict::Done,
            Generated::Emitted {
                iface,
                dst,
                src,
                ethertype,
            } => match snap.interface(iface) {
                Some(out) => self.l2_output_from(snap, frame, out, (&dst, &src), ethertype),
                None => Verdict::Done,
            },
            Generated::Unresolved(iface) if is_ipv6 => {
                self.icmp6_unresolved(snap, frame, vrf_of(iface))
            }
            Generated::Unresolved(iface) => {
                let src = ipv4_at(frame.data(), IPV4_SRC);
                match output::interface_towards(snap, vrf_of(iface), src) {
                    Some(back) => {
                        self.icmp_error(snap, frame, back, icmp::IcmpError::HostUnreachable)
                    }
                    // Our own packet (the local stack's): nobody to tell.
                    None => Verdict::Done,
                }
            }
        }
    }

    /// Runs the nodes at a feature point: None to go on, or what became
    /// of the packet (dropped, counted on the interface it is on; or
    /// answered, routed back).
    #[inline]
    fn feature(
        &mut self,
        snap: &Snapshot,
        (family, point): (Family, Point),
        frame: &mut Frame,
        (ingress, mut vrf, egress): (Option<IfaceId>, VrfId, Option<IfaceId>),
    ) -> Option<Verdict> {
        if !snap.features.is_active(family, point) {
            return None;
        }
        self.feature_nodes(snap, (family, point), frame, (ingress, &mut vrf, egress))
    }

    /// Pre-routing: as `feature`; when nodes ran, the table the packet is
    /// routed in, which one may have changed (destination NAT into a
    /// tenant's VRF), and Ok(None) when none did.
    #[inline(always)]
    fn pre_routing(
        &mut self,
        snap: &Snapshot,
        family: Family,
        frame: &mut Frame,
        ingress: &crate::snapshot::Iface,
    ) -> Result<Option<VrfId>, Verdict> {
        if !snap.features.is_active(family, Point::PreRouting) {
            return Ok(None);
        }
        let mut vrf = ingress.vrf;
        let at = (Some(ingress.id), &mut vrf, None);
        match self.feature_nodes(snap, (family, Point::PreRouting), frame, at) {
            Some(verdict) => Err(verdict),
            None => Ok(Some(vrf)),
        }
    }

    /// Runs the nodes of an active point (out of line: the path with no
    /// node stays small).
    #[inline(never)]
    fn feature_nodes(
        &mut self,
        snap: &Snapshot,
        (family, point): (Family, Point),
        frame: &mut Frame,
        (ingress, vrf, egress): (Option<IfaceId>, &mut VrfId, Option<IfaceId>),
    ) -> Option<Verdict> {
        let mut packet = Packet {
            data: frame.data_mut(),
            ingress,
            vrf: *vrf,
            egress,
            now_secs: self.now_secs,
            now_ms: self.now_ms,
        };
        let action = snap.features.run(family, point, &mut packet);
        *vrf = packet.vrf;
        match action {
            Action::Continue => None,
            Action::Reply => Some(match family {
                Family::Ipv4 => self.ip_output(snap, frame, *vrf, 0),
                Family::Ipv6 => {
                    let link = ingress.and_then(|i| snap.interface(i));
                    self.ip6_output(snap, frame, link)
                }
            }),
            Action::Drop => {
                match egress.or(ingress) {
                    Some(at) => self.counters.on_interface(at, Counter::FeatureDropped),
                    None => self.counters.event(Counter::FeatureDropped),
                }
                Some(Verdict::Done)
            }
            Action::Consumed => Some(Verdict::Done),
        }
    }

    /// Runs `send` on a copy of `frame` in the replica batch (a flood
    /// copy); false, counted on `iface`, when the batch is full.
    fn replicate(
        &mut self,
        frame: &Frame,
        iface: IfaceId,
        send: impl FnOnce(&mut Self, &mut Frame) -> Verdict,
    ) -> bool {
        // The replica batch is moved out while its frame runs through the
        // stages (which need `self`); an empty batch holds no allocation,
        // and a copy made meanwhile finds it full.
        let mut replicas = std::mem::replace(&mut self.replicas, Batch::new(0));
        let copied = replicas.push_copy(frame.data());
        let done = match (copied, replicas.frames_mut().last_mut()) {
            (true, Some(copy)) => {
                let v = send(self, copy);
                self.replica_verdicts.push(v);
                true
            }
            _ => {
                self.counters
                    .on_interface(iface, Counter::GeneratedOverflow);
                false
            }
        };
        self.replicas = replicas;
        done
    }

    fn count(&self, iface: IfaceId, c: Counter) -> Verdict {
        self.counters.on_interface(iface, c);
        Verdict::Done
    }
}
