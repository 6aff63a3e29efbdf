//! Feature points: named places on the IPv4 and IPv6 paths where network
//! elements run their nodes, in the spirit of VPP's feature arcs. The IPv4
//! and IPv6 code calls the points; it never names an element. An element
//! registers a node at a point with an order (lower runs first) when it
//! compiles its part of the snapshot; a point with no node costs the
//! pipeline one bit test per packet.
//!
//! | point | where | for (next) |
//! |---|---|---|
//! | interface-input | after Ethernet, 802.1Q and VXLAN demultiplexing, before the IP header is checked | per-interface policers |
//! | pre-routing | IP header checked, before the route lookup | destination NAT, load balancer, inbound ACL |
//! | post-routing | route found, before neighbour resolution | outbound ACL, source NAT, tunnels |
//! | local-in | addressed to the appliance, before it answers or delivers | control-plane protection |
//! | local-out | the appliance's own stack's packets, before routing | |

use crate::snapshot::{IfaceId, VrfId};
use std::sync::Arc;

/// A named place on the IPv4 or IPv6 path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    InterfaceInput,
    PreRouting,
    PostRouting,
    LocalIn,
    LocalOut,
}

impl Point {
    pub const ALL: [Point; 5] = [
        Point::InterfaceInput,
        Point::PreRouting,
        Point::PostRouting,
        Point::LocalIn,
        Point::LocalOut,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Point::InterfaceInput => "interface-input",
            Point::PreRouting => "pre-routing",
            Point::PostRouting => "post-routing",
            Point::LocalIn => "local-in",
            Point::LocalOut => "local-out",
        }
    }
}

/// The address family of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// What a node saw: the packet (its IP header first; at interface-input
/// not yet checked, so nodes read it through `wire`'s checked views) and
/// where it is.
pub struct Packet<'a> {
    pub data: &'a mut [u8],
    /// The interface it came in on (None for the appliance's own packets).
    pub ingress: Option<IfaceId>,
    /// The routing table it is in. A pre-routing node may change it: the
    /// packet is then routed in that table (destination NAT into a
    /// tenant's VRF).
    pub vrf: VrfId,
    /// After the route lookup: the interface it leaves by.
    pub egress: Option<IfaceId>,
    /// The dataplane's clock (the same for every worker), in seconds and
    /// in milliseconds.
    pub now_secs: u32,
    pub now_ms: u64,
}

/// A node's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// On to the next node, then the path.
    Continue,
    /// Dropped; the node has counted why in its own counters.
    Drop,
    /// The node turned the packet into an answer to its sender (same
    /// length or shorter, addresses swapped): route it back. Only at
    /// local-in.
    Reply,
    /// The node took the packet for itself (a protocol it speaks, such as
    /// VRRP's advertisements): neither forwarded nor counted as dropped.
    Consumed,
}

/// A network element's packet processing at one point.
pub trait FeatureNode: Send + Sync {
    /// `acl-in`, `nat44-in2out`, ...: the name in `show features`.
    fn name(&self) -> &'static str;
    fn process(&self, packet: &mut Packet<'_>) -> Action;
}

/// A frame an element sends on its own (not in answer to a packet).
pub struct Emitted<'a> {
    pub iface: IfaceId,
    pub dst: crate::wire::Mac,
    pub src: crate::wire::Mac,
    pub ethertype: u16,
    /// What follows the Ethernet header.
    pub payload: &'a [u8],
}

/// An element with timers (VRRP's advertisements): one worker calls it
/// every few milliseconds, and sends what it emits.
pub trait Ticker: Send + Sync {
    fn tick(&self, now_ms: u64, emit: &mut dyn FnMut(Emitted<'_>));
}

/// A packet a few places ahead in the batch, as [`Prefetch`] sees it.
pub struct Ahead<'a> {
    /// From the IP header on, not yet checked (read it through checked views).
    pub ip: &'a [u8],
    pub family: Family,
    pub ingress: IfaceId,
    pub vrf: VrfId,
}

/// An element with a large table (sessions, translations) warms the cache
/// line a packet will look up while the packets before it are processed,
/// as VPP's nodes prefetch the next packets' buckets: with a million
/// entries, waiting for memory is most of a lookup's cost.
pub trait Prefetch: Send + Sync {
    fn prefetch(&self, packet: &Ahead<'_>);
}

/// Admission of ARP packets addressed to the appliance (control-plane
/// protection's ARP class): ARP is answered before IP, so before any
/// feature point.
pub trait ArpGuard: Send + Sync {
    /// Whether one more ARP packet for us may be taken at `now_ms`.
    fn admit(&self, now_ms: u64) -> bool;
}

/// The nodes registered at every point of both families, in order.
#[derive(Clone, Default)]
pub struct FeatureArcs {
    nodes: [Vec<(u16, Arc<dyn FeatureNode>)>; 2 * Point::ALL.len()],
    /// Bit `slot` set when that point has nodes: the path's one check.
    active: u16,
    /// Elements with timers.
    tickers: Vec<Arc<dyn Ticker>>,
    arp_guard: Option<Arc<dyn ArpGuard>>,
    prefetchers: Vec<Arc<dyn Prefetch>>,
}

#[inline]
fn slot(family: Family, point: Point) -> usize {
    let base = match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => Point::ALL.len(),
    };
    base + point as usize
}

impl FeatureArcs {
    /// Adds `node` at `point` of `family`, after the nodes of lower or
    /// equal `order` registered before it.
    pub fn register(
        &mut self,
        family: Family,
        point: Point,
        order: u16,
        node: Arc<dyn FeatureNode>,
    ) {
        let nodes = &mut self.nodes[slot(family, point)];
        let at = nodes.partition_point(|(o, _)| *o <= order);
        nodes.insert(at, (order, node));
        self.active |= 1 << slot(family, point);
    }

    /// Adds an element with timers.
    pub fn register_ticker(&mut self, ticker: Arc<dyn Ticker>) {
        self.tickers.push(ticker);
    }

    pub fn tickers(&self) -> &[Arc<dyn Ticker>] {
        &self.tickers
    }

    /// Sets what admits ARP packets for the appliance.
    pub fn register_arp_guard(&mut self, guard: Arc<dyn ArpGuard>) {
        self.arp_guard = Some(guard);
    }

    /// Adds an element's table warming (see [`Prefetch`]).
    pub fn register_prefetch(&mut self, prefetcher: Arc<dyn Prefetch>) {
        self.prefetchers.push(prefetcher);
    }

    /// Whether any element warms its tables ahead of the path.
    #[inline]
    pub fn prefetches(&self) -> bool {
        !self.prefetchers.is_empty()
    }

    /// Lets every element warm what `packet` will look up.
    pub fn prefetch(&self, packet: &Ahead<'_>) {
        self.prefetchers.iter().for_each(|p| p.prefetch(packet));
    }

    /// Whether an ARP packet for the appliance may be taken (yes without a guard).
    #[inline]
    pub fn admits_arp(&self, now_ms: u64) -> bool {
        self.arp_guard.as_ref().is_none_or(|g| g.admit(now_ms))
    }

    /// Runs the nodes of a point until one drops or answers the packet.
    pub fn run(&self, family: Family, point: Point, packet: &mut Packet<'_>) -> Action {
        run_nodes(&self.nodes[slot(family, point)], packet)
    }

    /// Whether a point has nodes (the path skips building a `Packet` otherwise).
    #[inline]
    pub fn is_active(&self, family: Family, point: Point) -> bool {
        self.active & 1 << slot(family, point) != 0
    }

    /// `show features`: the nodes of every point in order.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            for point in Point::ALL {
                let names: Vec<_> = self.nodes[slot(family, point)]
                    .iter()
                    .map(|(_, n)| n.name())
                    .collect();
                let family = match family {
                    Family::Ipv4 => "ip4",
                    Family::Ipv6 => "ip6",
                };
                let nodes = if names.is_empty() {
                    "-".to_string()
                } else {
                    names.join(" -> ")
                };
                out.push_str(&format!("{family}-{:<16} {nodes}\n", point.name()));
            }
        }
        out
    }
}

fn run_nodes(nodes: &[(u16, Arc<dyn FeatureNode>)], packet: &mut Packet<'_>) -> Action {
    for (_, node) in nodes {
        match node.process(packet) {
            Action::Continue => {}
            done => return done,
        }
    }
    Action::Continue
}
