//! Route entries and how a snapshot derives them, the same way for IPv4
//! and IPv6: local routes for own addresses, connected routes for their
//! subnets, and static routes whose next hops resolve through a connected
//! subnet or name an interface; at one prefix the lowest distance wins (a
//! local or connected route before any) and several next hops at that
//! distance form an ECMP group. Learned (BGP) routes resolve their next
//! hops the same way (`resolve`) and join a table in `crate::route_table`.

use crate::fib::EcmpGroup;
use crate::snapshot::IfaceId;
use grammar::config::{NextHop, StaticRoute};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One way out for a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hop<A = Ipv4Addr> {
    pub iface: IfaceId,
    /// The neighbour to send to; None means the destination itself is on-link.
    pub gateway: Option<A>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteKind<A = Ipv4Addr> {
    /// One of the appliance's own addresses.
    Local { iface: IfaceId },
    Connected {
        iface: IfaceId,
        /// The subnet's prefix length (the entry holds no prefix): enough
        /// to tell its broadcast address.
        prefix_len: u8,
    },
    /// Static or learned route; several hops at the best distance mean ECMP.
    Static { hops: EcmpGroup<Hop<A>> },
}

/// Where a route with next hops came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// How the packets of a prefix are forwarded: what a FIB's values name.
/// It holds no prefix, so every prefix forwarded the same way (all the
/// BGP prefixes through one next hop) shares one entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry<A = Ipv4Addr> {
    pub distance: u8,
    pub kind: RouteKind<A>,
    /// Static for local and connected routes too.
    pub source: Source,
}

pub type Entry6 = Entry<Ipv6Addr>;

impl<A> Entry<A> {
    /// What it competes with at its prefix: the lower wins.
    pub fn rank(&self) -> (u8, Source) {
        (self.distance, self.source)
    }
}

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

prefix_of!(ipnet::Ipv4Net, Ipv4Addr, 32);
prefix_of!(ipnet::Ipv6Net, Ipv6Addr, 128);

/// The best distance seen for a prefix and its next hops there.
type Candidates<A> = (u8, Vec<Hop<A>>);

/// The way out of a route with `next_hop`: through the interface of
/// `connected`'s subnet holding the address, or the up interface the
/// route names (`interface`).
pub fn resolve<A: Copy>(
    next_hop: &NextHop<A>,
    connected: impl Fn(&A) -> Option<IfaceId>,
    interface: &dyn Fn(&str) -> Option<IfaceId>,
) -> Option<Hop<A>> {
    match next_hop {
        NextHop::Address(gw) => connected(gw).map(|iface| Hop {
            iface,
            gateway: Some(*gw),
        }),
        NextHop::Interface(name) => interface(name).map(|iface| Hop {
            iface,
            gateway: None,
        }),
    }
}

/// The configured routes of a table, sorted by prefix, from the up
/// interfaces' addresses and the static routes. `interface` finds an up
/// interface by name.
pub fn build<P: Prefix>(
    addresses: &[(IfaceId, P)],
    statics: impl Iterator<Item = StaticRoute<P, P::Addr>>,
    interface: &dyn Fn(&str) -> Option<IfaceId>,
) -> Vec<(P, Entry<P::Addr>)> {
    let mut table: BTreeMap<P, Entry<P::Addr>> = BTreeMap::new();
    let mut connected: Vec<(P, IfaceId)> = Vec::new();
    let direct = |kind| Entry {
        distance: 0,
        kind,
        source: Source::Static,
    };
    for &(iface, a) in addresses {
        table
            .entry(a.host())
            .or_insert(direct(RouteKind::Local { iface }));
        if let Some(net) = a.subnet() {
            table.entry(net).or_insert_with(|| {
                connected.push((net, iface));
                direct(RouteKind::Connected {
                    iface,
                    prefix_len: net.length(),
                })
            });
        }
    }
    let longest_connected = |gw: &P::Addr| {
        (connected.iter())
            .filter(|(p, _)| p.covers(gw))
            .max_by_key(|(p, _)| p.length())
            .map(|(_, iface)| *iface)
    };
    let mut best: BTreeMap<P, Candidates<P::Addr>> = BTreeMap::new();
    for s in statics {
        let Some(hop) = resolve(&s.next_hop, longest_connected, interface) else {
            continue;
        };
        let (best_distance, hops) = best.entry(s.prefix).or_insert((s.distance, Vec::new()));
        if s.distance < *best_distance {
            hops.clear();
            *best_distance = s.distance;
        }
        if s.distance == *best_distance && !hops.contains(&hop) {
            hops.push(hop);
        }
    }
    for (prefix, (distance, hops)) in best {
        let Ok(hops) = EcmpGroup::new(hops) else {
            continue;
        };
        table.entry(prefix).or_insert(Entry {
            distance,
            kind: RouteKind::Static { hops },
            source: Source::Static,
        });
    }
    table.into_iter().collect()
}
