//! Per-worker counters: each worker is the only writer of its own set, so an
//! increment is a relaxed load and store (no atomic read-modify-write); the
//! control side sums all workers' sets while traffic runs. The pipeline's
//! own counters live in the worker's [`WorkerCounters`]; a network
//! element's (NAT's, the firewall's, a virtual server's) are a
//! [`PerWorker`] set of [`Count`]s, one set per worker slot.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Interface ids are indexes into fixed counter arrays; ids are never reused.
pub const MAX_INTERFACES: usize = 256;

macro_rules! counters {
    ($($variant:ident => ($node:literal, $name:literal, $drop:literal),)*) => {
        /// Every event the pipeline counts, grouped by the node that counts it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Counter { $($variant,)* }

        impl Counter {
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)*];
            /// The pipeline node that counts this event.
            pub fn node(self) -> &'static str {
                match self { $(Counter::$variant => $node,)* }
            }
            pub fn name(self) -> &'static str {
                match self { $(Counter::$variant => $name,)* }
            }
            /// True when the event means a packet was dropped.
            pub fn is_drop(self) -> bool {
                match self { $(Counter::$variant => $drop,)* }
            }
        }
    };
}

counters! {
    EthernetRunt => ("ethernet-input", "runt", true),
    EthernetOtherHost => ("ethernet-input", "other-host", true),
    EthernetOwnSource => ("ethernet-input", "own-source", true),
    EthernetUnknownVlan => ("ethernet-input", "unknown-vlan", true),
    EthernetUnknownType => ("ethernet-input", "unknown-ethertype", true),
    EthernetNoInterface => ("ethernet-input", "no-interface", true),
    InterfaceDown => ("ethernet-input", "interface-down", true),
    ArpMalformed => ("arp-input", "malformed", true),
    ArpNotForUs => ("arp-input", "not-for-us", true),
    ArpPoliced => ("arp-input", "policed", true),
    ArpReplySent => ("arp-input", "replies-sent", false),
    ArpReplyReceived => ("arp-input", "replies-received", false),
    ArpLearned => ("arp-input", "learned", false),
    Ipv4Malformed => ("ip4-input", "malformed", true),
    Ipv4BadChecksum => ("ip4-input", "bad-checksum", true),
    Ipv4NotRoutable => ("ip4-input", "not-routable", true),
    Ipv4TtlExpired => ("ip4-forward", "ttl-expired", true),
    Ipv4Forwarded => ("ip4-forward", "forwarded", false),
    Ipv4NoRoute => ("ip4-lookup", "no-route", true),
    Ipv4MtuExceeded => ("ip4-output", "mtu-exceeded", true),
    Ipv4Fragmented => ("ip4-fragment", "packets-fragmented", false),
    Ipv4FragmentsCreated => ("ip4-fragment", "fragments-created", false),
    // The packet's fragments did not all fit the preallocated frames.
    Ipv4FragmentNoBuffer => ("ip4-fragment", "no-buffer", true),
    // Options whose lengths overrun the header, or an offset past 64 KiB.
    Ipv4FragmentMalformed => ("ip4-fragment", "malformed", true),
    // Both families: packets to and from the local stack (smoltcp).
    LocalDelivered => ("local", "delivered", false),
    LocalQueueFull => ("local", "queue-full", true),
    LocalUnreachable => ("local", "no-local-stack", true),
    // A network element's node at a feature point dropped it (its own
    // counters say why).
    FeatureDropped => ("feature", "dropped", true),
    // The appliance's own services answer in the global table only (in a
    // VRF, only ICMP reaches the stack: answers to ping and traceroute).
    LocalOtherVrf => ("local", "not-in-global-table", true),
    LocalSent => ("local", "sent", false),
    // A fragment for one of our addresses: there is no reassembly.
    LocalFragment => ("ip4-local", "fragment-not-reassembled", true),
    IcmpEchoReplied => ("icmp", "echo-replies", false),
    IcmpErrorSent => ("icmp", "errors-sent", false),
    IcmpRateLimited => ("icmp", "errors-rate-limited", false),
    ArpRequestSent => ("arp-resolve", "requests-sent", false),
    NdSolicitSent => ("nd-resolve", "solicitations-sent", false),
    // Both families share one waiting queue (pending.rs).
    NeighborQueued => ("neighbor-resolve", "queued", false),
    NeighborReleased => ("neighbor-resolve", "released", false),
    NeighborQueueFull => ("neighbor-resolve", "queue-full", true),
    NeighborTimeout => ("neighbor-resolve", "timeout", true),
    Ipv6Malformed => ("ip6-input", "malformed", true),
    Ipv6NotRoutable => ("ip6-input", "not-routable", true),
    Ipv6HopLimitExpired => ("ip6-forward", "hop-limit-expired", true),
    Ipv6Forwarded => ("ip6-forward", "forwarded", false),
    Ipv6NoRoute => ("ip6-lookup", "no-route", true),
    Ipv6MtuExceeded => ("ip6-output", "mtu-exceeded", true),
    // Neither TCP, UDP nor ICMPv6 the pipeline answers (extension headers
    // included: they are not parsed).
    Ipv6LocalUnhandled => ("ip6-local", "unhandled", true),
    Icmp6EchoReplied => ("icmp6", "echo-replies", false),
    Icmp6ErrorSent => ("icmp6", "errors-sent", false),
    Icmp6RateLimited => ("icmp6", "errors-rate-limited", false),
    Icmp6Malformed => ("icmp6", "malformed", true),
    NdMalformed => ("nd", "malformed", true),
    NdNotForUs => ("nd", "not-for-us", true),
    NdAdvertSent => ("nd", "advertisements-sent", false),
    NdAdvertReceived => ("nd", "advertisements-received", false),
    NdLearned => ("nd", "learned", false),
    VxlanDecapsulated => ("vxlan", "decapsulated", false),
    VxlanEncapsulated => ("vxlan", "encapsulated", false),
    VxlanFlooded => ("vxlan", "flood-copies", false),
    VxlanMalformed => ("vxlan", "malformed", true),
    VxlanUnknownVni => ("vxlan", "unknown-vni", true),
    VxlanNoRemote => ("vxlan", "no-remote", true),
    VxlanLoop => ("vxlan", "nested-tunnel", true),
    // L2 domains (bridge domains): frames of member ports, VLANs and VNIs.
    L2Forwarded => ("l2-bridge", "forwarded", false),
    L2Flooded => ("l2-bridge", "flood-copies", false),
    // The destination is behind the member the frame came from.
    L2SameMember => ("l2-bridge", "same-member", true),
    // From the overlay to the overlay: never sent back (split horizon).
    L2SplitHorizon => ("l2-bridge", "split-horizon", true),
    // A new source MAC not learned: the domain holds its `mac limit`.
    L2MacLimit => ("l2-bridge", "mac-limit-not-learned", false),
    L2MtuExceeded => ("l2-bridge", "mtu-exceeded", true),
    L2MulticastSource => ("l2-bridge", "multicast-source", true),
    // Flooded to nobody: the domain has no other member.
    L2NoMember => ("l2-bridge", "no-member", true),
    TunnelNested => ("tunnel", "nested-tunnel", true),
    TunnelDecapsulated => ("tunnel", "decapsulated", false),
    RxRingFull => ("interface-input", "rx-ring-full", true),
    TxNoPort => ("interface-output", "no-port", true),
    TxFull => ("interface-output", "tx-full", true),
    GeneratedOverflow => ("interface-output", "generated-overflow", true),
}

/// Traffic of one interface as seen by one worker.
pub struct InterfaceCounters {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub drops: [AtomicU64; Counter::ALL.len()],
}

/// One worker's counters.
pub struct WorkerCounters {
    interfaces: Box<[InterfaceCounters]>,
    events: [AtomicU64; Counter::ALL.len()],
}

fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            interfaces: (0..MAX_INTERFACES)
                .map(|_| InterfaceCounters {
                    rx_packets: AtomicU64::new(0),
                    rx_bytes: AtomicU64::new(0),
                    tx_packets: AtomicU64::new(0),
                    tx_bytes: AtomicU64::new(0),
                    drops: std::array::from_fn(|_| AtomicU64::new(0)),
                })
                .collect(),
            events: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WorkerCounters {
    /// Counts an event that concerns no interface in particular.
    pub fn event(&self, c: Counter) {
        bump(&self.events[c as usize], 1);
    }

    /// Counts an event, and for drops also charges it to `iface`.
    pub fn on_interface(&self, iface: u16, c: Counter) {
        self.event(c);
        if c.is_drop() {
            if let Some(i) = self.interfaces.get(usize::from(iface)) {
                bump(&i.drops[c as usize], 1);
            }
        }
    }

    /// Records a drop count kept elsewhere (a port's own cumulative count)
    /// as `iface`'s count of `c`, adding the increase to the node total.
    pub fn set_drops(&self, iface: u16, c: Counter, total: u64) {
        let Some(i) = self.interfaces.get(usize::from(iface)) else {
            return;
        };
        let previous = i.drops[c as usize].swap(total, Ordering::Relaxed);
        // A smaller total means a newly opened port counting from zero.
        let increase = total.checked_sub(previous).unwrap_or(total);
        bump(&self.events[c as usize], increase);
    }

    pub fn rx(&self, iface: u16, bytes: usize) {
        if let Some(i) = self.interfaces.get(usize::from(iface)) {
            bump(&i.rx_packets, 1);
            bump(&i.rx_bytes, bytes as u64);
        }
    }

    pub fn tx(&self, iface: u16, bytes: usize) {
        if let Some(i) = self.interfaces.get(usize::from(iface)) {
            bump(&i.tx_packets, 1);
            bump(&i.tx_bytes, bytes as u64);
        }
    }
}

/// An element's count of one event in one worker slot (see [`PerWorker`]).
#[derive(Default)]
pub struct Count(AtomicU64);

impl Count {
    /// One more.
    #[inline]
    pub fn add(&self) {
        bump(&self.0, 1);
    }

    /// `n` more.
    #[inline]
    pub fn add_n(&self, n: u64) {
        bump(&self.0, n);
    }
}

/// Worker slots of an element's counters: a power of two, so that a
/// slot's index needs no bounds check.
const WORKER_SLOTS: usize = 16;

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's worker slot, taken the first time it counts.
    static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn worker_slot() -> usize {
    SLOT.with(|slot| match slot.get() {
        usize::MAX => {
            let taken = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % WORKER_SLOTS;
            slot.set(taken);
            taken
        }
        taken => taken,
    })
}

/// A set of one element's counters on cache lines of its own.
#[derive(Default)]
#[repr(align(64))]
struct Lines<T>(T);

/// An element's counters (`T`: a struct of [`Count`]s), one set per worker
/// slot: counting is a relaxed load and store in the counting thread's own
/// cache lines, where a shared atomic would cost a locked instruction per
/// packet and move its line between workers; a show sums the slots. A
/// thread takes a slot the first time it counts (the workers, started
/// first, each get their own); threads beyond 16 share slots, where two
/// counting the same event at once may lose one.
pub struct PerWorker<T> {
    /// In place, not boxed: counting follows no pointer more.
    slots: [Lines<T>; WORKER_SLOTS],
}

impl<T: Default> Default for PerWorker<T> {
    fn default() -> Self {
        PerWorker {
            slots: std::array::from_fn(|_| Lines::default()),
        }
    }
}

impl<T> PerWorker<T> {
    /// The calling thread's set, to count in.
    #[inline]
    pub fn here(&self) -> &T {
        &self.slots[worker_slot() % WORKER_SLOTS].0
    }

    /// Every slot's set.
    pub fn each(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|s| &s.0)
    }

    /// One counter (`count` picks it from a set) summed over the slots.
    pub fn total(&self, count: impl Fn(&T) -> &Count) -> u64 {
        (self.each())
            .map(|s| load(&count(s).0))
            .fold(0, u64::wrapping_add)
    }
}

/// Counters of one interface summed over workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InterfaceTotals {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Non-zero drop counts by reason.
    pub drops: Vec<(Counter, u64)>,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Sums one interface's counters over all workers.
pub fn interface_totals(workers: &[std::sync::Arc<WorkerCounters>], iface: u16) -> InterfaceTotals {
    let mut t = InterfaceTotals::default();
    let mut drops = [0u64; Counter::ALL.len()];
    for w in workers {
        let Some(i) = w.interfaces.get(usize::from(iface)) else {
            continue;
        };
        t.rx_packets += load(&i.rx_packets);
        t.rx_bytes += load(&i.rx_bytes);
        t.tx_packets += load(&i.tx_packets);
        t.tx_bytes += load(&i.tx_bytes);
        for (sum, d) in drops.iter_mut().zip(i.drops.iter()) {
            *sum += load(d);
        }
    }
    t.drops = Counter::ALL
        .iter()
        .zip(drops)
        .filter(|(_, n)| *n > 0)
        .map(|(c, n)| (*c, n))
        .collect();
    t
}

/// Sums one event counter over all workers.
pub fn event_total(workers: &[std::sync::Arc<WorkerCounters>], c: Counter) -> u64 {
    workers.iter().map(|w| load(&w.events[c as usize])).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn drops_are_summed_per_interface_and_per_node() {
        let a = Arc::new(WorkerCounters::default());
        let b = Arc::new(WorkerCounters::default());
        a.on_interface(3, Counter::Ipv4NoRoute);
        b.on_interface(3, Counter::Ipv4NoRoute);
        b.on_interface(3, Counter::Ipv4Forwarded);
        a.rx(3, 100);
        a.set_drops(3, Counter::RxRingFull, 5);
        a.set_drops(3, Counter::RxRingFull, 7);
        let all = [a, b];
        let t = interface_totals(&all, 3);
        assert_eq!(t.rx_packets, 1);
        assert_eq!(t.rx_bytes, 100);
        assert_eq!(
            t.drops,
            vec![(Counter::Ipv4NoRoute, 2), (Counter::RxRingFull, 7)]
        );
        assert_eq!(event_total(&all, Counter::RxRingFull), 7);
        assert_eq!(event_total(&all, Counter::Ipv4Forwarded), 1);
        assert_eq!(interface_totals(&all, 9999), InterfaceTotals::default());
    }

    #[test]
    fn element_counts_of_every_thread_are_summed() {
        #[derive(Default)]
        struct Seen {
            packets: Count,
            bytes: Count,
        }
        let counters = Arc::new(PerWorker::<Seen>::default());
        // More threads than slots: those that share one count in turn.
        for _ in 0..20 {
            let counters = counters.clone();
            let thread = std::thread::spawn(move || {
                counters.here().packets.add();
                counters.here().bytes.add_n(100);
            });
            thread.join().unwrap();
        }
        counters.here().packets.add();
        assert_eq!(counters.total(|c| &c.packets), 21);
        assert_eq!(counters.total(|c| &c.bytes), 2000);
    }
}
