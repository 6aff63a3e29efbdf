//! Route entries and how a snapshot derives them, the same way for IPv4
//! and IPv6: local routes for own addresses, connected routes for their
//! subnets, and static and learned (BGP) routes whose next hops resolve
//! through a connected subnet or name an interface; at one prefix the
//! lowest distance wins (a static route on a tie) and several next hops of
//! one source at that distance form an ECMP group.

use crate::fib::EcmpGroup;
use crate::snapshot::IfaceId;
use grammar::config::{NextHop, StaticRoute};
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One way out for a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop<A = Ipv4Addr> {
    pub iface: IfaceId,
    /// The neighbour to send to; None means the destination itself is on-link.
    pub gateway: Option<A>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteKind<A = Ipv4Addr> {
    /// One of the appliance's own addresses.
    Local {
        iface: IfaceId,
    },
    Connected {
        iface: IfaceId,
    },
    /// Static route; several hops at the best distance mean ECMP.
    Static {
        hops: EcmpGroup<Hop<A>>,
    },
}

/// The global table's IPv4 routes learned by routing protocols (BGP's
/// best paths), as the control plane last handed them over.
pub type Learned = std::sync::Arc<Vec<StaticRoute>>;

/// Where a route with next hops came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Static,
    /// Learned by BGP (the control plane's speaker).
    Bgp,
}

impl Source {
    /// Its code in `show ip route`.
    pub fn code(self) -> char {
        match self {
            Source::Static => 'S',
            Source::Bgp => 'B',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route<P = Ipv4Net, A = Ipv4Addr> {
    pub prefix: P,
    pub distance: u8,
    pub kind: RouteKind<A>,
    /// Static for local and connected routes too.
    pub source: Source,
}

pub type Route6 = Route<Ipv6Net, Ipv6Addr>;

/// What route building needs of a prefix type (`Ipv4Net`, `Ipv6Net`).
pub trait Prefix: Copy + Ord {
    type Addr: Copy + Ord;
    /// The prefix of the address alone (/32, /128).
    fn host(self) -> Self;
    /// The subnet, or None for a host prefix (it has no other members).
    fn subnet(self) -> Option<Self>;
    fn covers(&self, addr: &Self::Addr) -> bool;
    fn length(&self) -> u8;
}

/// Both families' prefixes answer the same questions; only the host
/// prefix length differs.
macro_rules! prefix_of {
    ($net:ty, $addr:ty, $host_len:literal) => {
        impl Prefix for $net {
            type Addr = $addr;
            fn host(self) -> Self {
                <$net>::new(self.addr(), $host_len).unwrap_or(self)
            }
            fn subnet(self) -> Option<Self> {
                (self.prefix_len() < $host_len).then(|| self.trunc())
            }
            fn covers(&self, addr: &$addr) -> bool {
                self.contains(addr)
            }
            fn length(&self) -> u8 {
                self.prefix_len()
            }
        }
    };
}

prefix_of!(Ipv4Net, Ipv4Addr, 32);
prefix_of!(Ipv6Net, Ipv6Addr, 128);

/// The best (distance, source) seen for a prefix and its next hops there.
type Candidates<A> = ((u8, Source), Vec<Hop<A>>);

/// The route table, sorted by prefix, from the up interfaces' addresses,
/// the configured static routes and the learned ones. `interface` finds
/// an up interface by name.
pub fn build<P: Prefix>(
    addresses: &[(IfaceId, P)],
    statics: impl Iterator<Item = StaticRoute<P, P::Addr>>,
    learned: impl Iterator<Item = StaticRoute<P, P::Addr>>,
    interface: &dyn Fn(&str) -> Option<IfaceId>,
) -> Vec<Route<P, P::Addr>> {
    let mut table: BTreeMap<P, Route<P, P::Addr>> = BTreeMap::new();
    let mut connected: Vec<(P, IfaceId)> = Vec::new();
    for &(iface, a) in addresses {
        let host = a.host();
        table.entry(host).or_insert(Route {
            prefix: host,
            distance: 0,
            kind: RouteKind::Local { iface },
            source: Source::Static,
        });
        if let Some(net) = a.subnet() {
            table.entry(net).or_insert_with(|| {
                connected.push((net, iface));
                Route {
                    prefix: net,
                    distance: 0,
                    kind: RouteKind::Connected { iface },
                    source: Source::Static,
                }
            });
        }
    }
    let mut best: BTreeMap<P, Candidates<P::Addr>> = BTreeMap::new();
    let tagged = (statics.map(|s| (s, Source::Static))).chain(learned.map(|s| (s, Source::Bgp)));
    for (s, source) in tagged {
        let hop = match &s.next_hop {
            NextHop::Address(gw) => connected
                .iter()
                .filter(|(p, _)| p.covers(gw))
                .max_by_key(|(p, _)| p.length())
                .map(|(_, iface)| Hop {
                    iface: *iface,
                    gateway: Some(*gw),
                }),
            NextHop::Interface(name) => interface(name).map(|iface| Hop {
                iface,
                gateway: None,
            }),
        };
        let Some(hop) = hop else { continue };
        let rank = (s.distance, source);
        let (best_rank, hops) = best.entry(s.prefix).or_insert((rank, Vec::new()));
        if rank < *best_rank {
            hops.clear();
            *best_rank = rank;
        }
        if rank == *best_rank && !hops.contains(&hop) {
            hops.push(hop);
        }
    }
    for (prefix, ((distance, source), hops)) in best {
        let Ok(hops) = EcmpGroup::new(hops) else {
            continue;
        };
        table.entry(prefix).or_insert(Route {
            prefix,
            distance,
            kind: RouteKind::Static { hops },
            source,
        });
    }
    table.into_values().collect()
}
