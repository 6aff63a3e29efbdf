//! The routes the peers sent (their Adj-RIBs-In, kept together by
//! prefix) and best-path selection, a subset of RFC 4271 section 9.1:
//! highest LOCAL_PREF, shortest AS_PATH, lowest ORIGIN, lowest MED between
//! paths from the same neighbouring AS, eBGP over iBGP, lowest peer router
//! id, lowest peer address. No IGP cost (next hops are not resolved
//! recursively: a path whose next hop is not on a connected subnet is
//! kept here but not installed by the dataplane). It records which
//! prefixes changed, so installation sends only their new best paths.

use super::message::{Attributes, Update};
use grammar::config::{NextHop, StaticRoute};
use ipnet::Ipv4Net;
use kernel_bypass::snapshot::RouteChange;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Administrative distances of BGP routes (IOS's).
pub const EBGP_DISTANCE: u8 = 20;
pub const IBGP_DISTANCE: u8 = 200;
/// LOCAL_PREF of a path that has none.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Who sent a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub address: Ipv4Addr,
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub ebgp: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub peer: PeerInfo,
    pub attributes: Arc<Attributes>,
}

impl Path {
    pub fn local_pref(&self) -> u32 {
        self.attributes.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
    }

    /// The route the dataplane installs for it.
    pub fn route(&self, prefix: Ipv4Net) -> StaticRoute {
        StaticRoute {
            prefix,
            next_hop: NextHop::Address(self.attributes.next_hop),
            distance: match self.peer.ebgp {
                true => EBGP_DISTANCE,
                false => IBGP_DISTANCE,
            },
        }
    }
}

/// `Less` when `a` is the better path.
pub fn compare(a: &Path, b: &Path) -> Ordering {
    let (x, y) = (&a.attributes, &b.attributes);
    let med_applies = x.first_as() == y.first_as();
    let med = |p: &Attributes| if med_applies { p.med.unwrap_or(0) } else { 0 };
    (b.local_pref().cmp(&a.local_pref()))
        .then(x.path_length().cmp(&y.path_length()))
        .then(x.origin.cmp(&y.origin))
        .then(med(x).cmp(&med(y)))
        .then(b.peer.ebgp.cmp(&a.peer.ebgp))
        .then(a.peer.router_id.cmp(&b.peer.router_id))
        .then(a.peer.address.cmp(&b.peer.address))
}

#[derive(Debug, Default)]
pub struct Rib {
    paths: BTreeMap<Ipv4Net, Vec<Path>>,
    /// Prefixes each peer has here.
    counts: BTreeMap<Ipv4Addr, usize>,
    /// Prefixes whose paths changed since the last `take_changes`.
    changed: BTreeSet<Ipv4Net>,
}

impl Rib {
    /// Applies a peer's UPDATE: withdrawals, then announcements (which
    /// replace the peer's earlier path to the prefix). `import` gives
    /// what enters for each announced prefix (None: nothing, as for an
    /// AS loop or a route the policy denies).
    pub fn apply(
        &mut self,
        peer: PeerInfo,
        update: &Update,
        import: impl Fn(Ipv4Net, &Arc<Attributes>) -> Option<Arc<Attributes>>,
    ) {
        for prefix in &update.withdrawn {
            self.remove(peer.address, *prefix);
        }
        let Some(attributes) = &update.attributes else {
            return;
        };
        let attributes = Arc::new(attributes.clone());
        for prefix in &update.nlri {
            self.remove(peer.address, *prefix);
            if let Some(attributes) = import(*prefix, &attributes) {
                let path = Path { peer, attributes };
                self.paths.entry(*prefix).or_default().push(path);
                *self.counts.entry(peer.address).or_default() += 1;
                self.changed.insert(*prefix);
            }
        }
    }

    fn remove(&mut self, peer: Ipv4Addr, prefix: Ipv4Net) {
        let Some(paths) = self.paths.get_mut(&prefix) else {
            return;
        };
        let before = paths.len();
        paths.retain(|p| p.peer.address != peer);
        if paths.len() < before {
            if let Some(count) = self.counts.get_mut(&peer) {
                *count -= 1;
            }
            self.changed.insert(prefix);
        }
        if paths.is_empty() {
            self.paths.remove(&prefix);
        }
    }

    /// Forgets every path of `peer` (its session went down).
    pub fn drop_peer(&mut self, peer: Ipv4Addr) {
        if self.counts.remove(&peer).is_none() {
            return;
        }
        let changed = &mut self.changed;
        self.paths.retain(|prefix, paths| {
            let before = paths.len();
            paths.retain(|p| p.peer.address != peer);
            if paths.len() < before {
                changed.insert(*prefix);
            }
            !paths.is_empty()
        });
    }

    /// How many prefixes `peer` has here.
    pub fn received_from(&self, peer: Ipv4Addr) -> usize {
        self.counts.get(&peer).copied().unwrap_or(0)
    }

    /// Every prefix with its paths, the best one first.
    pub fn table(&self) -> impl Iterator<Item = (Ipv4Net, Vec<&Path>)> + '_ {
        self.paths.iter().map(|(prefix, paths)| {
            let mut sorted: Vec<&Path> = paths.iter().collect();
            if let Some(best) = (0..sorted.len()).min_by(|&i, &j| compare(sorted[i], sorted[j])) {
                sorted.swap(0, best);
            }
            (*prefix, sorted)
        })
    }

    /// What the dataplane must change since the last call, in prefix
    /// order: the best path's route of each prefix that changed, or its
    /// withdrawal when it has no path left. A prefix that changed several
    /// times gives one change.
    pub fn take_changes(&mut self) -> Vec<RouteChange> {
        let changed = std::mem::take(&mut self.changed);
        (changed.into_iter())
            .map(|prefix| {
                let paths = self.paths.get(&prefix).into_iter().flatten();
                match paths.min_by(|a, b| compare(a, b)) {
                    Some(best) => RouteChange::Announce(best.route(prefix)),
                    None => RouteChange::Withdraw(prefix),
                }
            })
            .collect()
    }

    /// Marks the prefixes of `changes` changed again (they were not
    /// installed): the next `take_changes` gives their state then.
    pub fn retry(&mut self, changes: &[RouteChange]) {
        self.changed
            .extend(changes.iter().map(|change| match change {
                RouteChange::Announce(route) => route.prefix,
                RouteChange::Withdraw(prefix) => *prefix,
            }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::message::{Origin, Segment};

    fn path(peer: u8, ebgp: bool, path: &[u32], f: impl FnOnce(&mut Attributes)) -> Path {
        let mut attributes = Attributes {
            origin: Origin::Igp,
            as_path: vec![Segment::Sequence(path.to_vec())],
            next_hop: Ipv4Addr::new(10, 0, 0, peer),
            med: None,
            local_pref: None,
            communities: Vec::new(),
        };
        f(&mut attributes);
        Path {
            peer: PeerInfo {
                address: Ipv4Addr::new(10, 0, 0, peer),
                router_id: Ipv4Addr::new(192, 0, 2, 10 - peer),
                asn: path.first().copied().unwrap_or(65000),
                ebgp,
            },
            attributes: Arc::new(attributes),
        }
    }

    fn best(paths: &[Path]) -> u8 {
        let best = paths.iter().min_by(|a, b| compare(a, b)).unwrap();
        best.peer.address.octets()[3]
    }

    #[test]
    fn best_path_follows_rfc_4271_in_order() {
        let short = path(1, true, &[65001], |_| {});
        let long = path(2, true, &[65002, 65003], |a| a.local_pref = Some(200));
        assert_eq!(best(&[short.clone(), long.clone()]), 2, "local-pref first");
        let long = path(2, true, &[65002, 65003], |_| {});
        assert_eq!(
            best(&[long.clone(), short.clone()]),
            1,
            "then the shorter path"
        );
        let incomplete = path(2, true, &[65002], |a| a.origin = Origin::Incomplete);
        assert_eq!(
            best(&[incomplete, short.clone()]),
            1,
            "then the lower origin"
        );
        let a = path(1, true, &[65001], |a| a.med = Some(50));
        let b = path(2, true, &[65001], |a| a.med = Some(10));
        assert_eq!(best(&[a.clone(), b]), 2, "then the lower MED from one AS");
        let c = path(2, true, &[65002], |a| a.med = Some(10));
        assert_eq!(best(&[a, c]), 2, "MED not compared across ASes: router id");
        let internal = path(1, false, &[65001], |_| {});
        let external = path(2, true, &[65001], |_| {});
        assert_eq!(best(&[internal, external]), 2, "eBGP over iBGP");
    }

    #[test]
    fn a_peer_going_down_takes_its_paths_and_counts_with_it() {
        let mut rib = Rib::default();
        let p = path(1, true, &[65001], |_| {});
        let update = Update {
            withdrawn: vec![],
            attributes: Some((*p.attributes).clone()),
            nlri: vec![
                "10.9.0.0/16".parse().unwrap(),
                "10.8.0.0/16".parse().unwrap(),
            ],
            treated_as_withdraw: None,
        };
        let all = |_, a: &Arc<Attributes>| Some(a.clone());
        rib.apply(p.peer, &update, all);
        rib.apply(p.peer, &update, all);
        assert_eq!(rib.received_from(p.peer.address), 2);
        let announced = rib.take_changes();
        assert_eq!(announced.len(), 2, "one change a prefix: {announced:?}");
        assert!(matches!(&announced[0], RouteChange::Announce(r) if r.distance == EBGP_DISTANCE));
        assert!(rib.take_changes().is_empty(), "nothing new since");
        let withdraw = Update {
            withdrawn: vec!["10.9.0.0/16".parse().unwrap()],
            ..Update::default()
        };
        rib.apply(p.peer, &withdraw, all);
        assert_eq!(rib.received_from(p.peer.address), 1);
        let withdrawn = rib.take_changes();
        assert_eq!(
            withdrawn,
            [RouteChange::Withdraw("10.9.0.0/16".parse().unwrap())]
        );
        rib.retry(&withdrawn);
        assert_eq!(
            rib.take_changes(),
            withdrawn,
            "a failed installation is retried"
        );
        rib.drop_peer(p.peer.address);
        assert_eq!(rib.table().count(), 0);
        assert_eq!(rib.received_from(p.peer.address), 0);
        assert_eq!(
            rib.take_changes(),
            [RouteChange::Withdraw("10.8.0.0/16".parse().unwrap())]
        );
    }
}
