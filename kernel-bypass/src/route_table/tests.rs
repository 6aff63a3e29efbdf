//! The incremental path checked against full rebuilds and against a
//! reference that ranks routes and scans for the longest prefix.

use super::*;
use grammar::config::NextHop;
use proptest::prelude::*;

const ETH0: IfaceId = 0;

fn net(text: &str) -> Ipv4Net {
    text.parse().unwrap()
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn via(prefix: Ipv4Net, gateway: Ipv4Addr, distance: u8) -> StaticRoute {
    StaticRoute {
        prefix,
        next_hop: NextHop::Address(gateway),
        distance,
    }
}

/// eth0 at 10.0.0.1/24 with these static routes, no learned route.
fn configured(statics: &[StaticRoute]) -> RouteTable {
    let addresses = [(ETH0, net("10.0.0.1/24"))];
    let routes = routes::build(&addresses, statics.iter().cloned(), &|_| None);
    let interfaces = HashMap::from([("eth0".to_string(), ETH0)]);
    RouteTable::new(routes, Vec::new(), interfaces).unwrap()
}

/// (source, distance, first gateway) of the route `dst` takes.
fn taken(table: &RouteTable, dst: &str) -> Option<(Source, u8, Option<Ipv4Addr>)> {
    table.route(ip(dst)).map(summary)
}

fn summary(entry: &Entry) -> (Source, u8, Option<Ipv4Addr>) {
    let gateway = match &entry.kind {
        RouteKind::Static { hops } => hops.members()[0].gateway,
        RouteKind::Local { .. } | RouteKind::Connected { .. } => None,
    };
    (entry.source, entry.distance, gateway)
}

fn announce(prefix: &str, gateway: &str, distance: u8) -> RouteChange {
    RouteChange::Announce(via(net(prefix), ip(gateway), distance))
}

#[test]
fn learned_routes_are_added_replaced_and_withdrawn() {
    let mut table = configured(&[]);
    table
        .apply_learned(&[announce("10.8.0.0/16", "10.0.0.2", 20)])
        .unwrap();
    let bgp = Some((Source::Bgp, 20, Some(ip("10.0.0.2"))));
    assert_eq!(taken(&table, "10.8.1.1"), bgp);
    table
        .apply_learned(&[announce("10.8.0.0/16", "10.0.0.3", 200)])
        .unwrap();
    let replaced = Some((Source::Bgp, 200, Some(ip("10.0.0.3"))));
    assert_eq!(taken(&table, "10.8.1.1"), replaced);
    table
        .apply_learned(&[RouteChange::Withdraw(net("10.8.0.0/16"))])
        .unwrap();
    assert_eq!(taken(&table, "10.8.1.1"), None);
    assert_eq!(table.len(), 2, "the connected and local routes are left");
}

#[test]
fn configured_routes_win_by_distance_and_come_back_on_withdrawal() {
    let statics = [
        via(net("10.7.0.0/16"), ip("10.0.0.9"), 1),
        via(net("10.6.0.0/16"), ip("10.0.0.9"), 250),
    ];
    let mut table = configured(&statics);
    table
        .apply_learned(&[
            announce("10.7.0.0/16", "10.0.0.2", 20),
            announce("10.6.0.0/16", "10.0.0.2", 20),
            announce("10.0.0.0/24", "10.0.0.2", 20),
            announce("10.0.0.1/32", "10.0.0.2", 20),
        ])
        .unwrap();
    let floating = Some((Source::Static, 250, Some(ip("10.0.0.9"))));
    assert_eq!(taken(&table, "10.7.0.1").map(|r| r.0), Some(Source::Static));
    assert_eq!(taken(&table, "10.6.0.1").map(|r| r.0), Some(Source::Bgp));
    assert!(matches!(
        table.route(ip("10.0.0.5")).map(|r| &r.kind),
        Some(RouteKind::Connected { .. })
    ));
    assert!(matches!(
        table.route(ip("10.0.0.1")).map(|r| &r.kind),
        Some(RouteKind::Local { .. })
    ));
    let originated: Vec<Ipv4Net> = table.configured_routes().map(|(p, _)| p).collect();
    assert!(!originated.contains(&net("10.6.0.0/16")), "displaced");
    assert!(originated.contains(&net("10.7.0.0/16")));
    table
        .apply_learned(&[RouteChange::Withdraw(net("10.6.0.0/16"))])
        .unwrap();
    assert_eq!(taken(&table, "10.6.0.1"), floating);
}

#[test]
fn a_next_hop_off_every_connected_subnet_is_not_installed() {
    let mut table = configured(&[]);
    table
        .apply_learned(&[announce("10.8.0.0/16", "10.0.0.2", 20)])
        .unwrap();
    table
        .apply_learned(&[announce("10.8.0.0/16", "192.0.2.1", 20)])
        .unwrap();
    assert_eq!(taken(&table, "10.8.1.1"), None, "its replacement goes too");
}

#[test]
fn a_batch_changes_a_copy_and_shares_what_it_does_not_change() {
    let mut published = configured(&[]);
    published
        .apply_learned(&[announce("10.8.0.0/16", "10.0.0.2", 20)])
        .unwrap();
    let mut next = published.clone();
    next.apply_learned(&[announce("172.16.0.0/24", "10.0.0.2", 20)])
        .unwrap();
    assert_eq!(
        taken(&published, "172.16.0.1"),
        None,
        "readers' table as it was"
    );
    assert!(taken(&next, "172.16.0.1").is_some());
    assert!(
        Arc::ptr_eq(&published.entries, &next.entries),
        "no new entry"
    );
    assert!(Arc::ptr_eq(&published.configured, &next.configured));
}

/// Prefixes that nest and overlap the connected subnet, the local
/// address and each other.
fn pool() -> Vec<Ipv4Net> {
    let mut pool = vec![net("0.0.0.0/0"), net("10.0.0.0/24"), net("10.0.0.1/32")];
    for base in ["10.1.2.128", "10.1.0.0", "10.200.3.7", "11.0.0.0"] {
        for len in [7, 8, 12, 16, 20, 23, 24, 25, 28, 31, 32] {
            pool.push(Ipv4Net::new(ip(base), len).unwrap().trunc());
        }
    }
    pool.sort();
    pool.dedup();
    pool
}

/// Gateways on eth0's subnet, and one off it.
const GATEWAYS: [&str; 4] = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "192.0.2.1"];
const DISTANCES: [u8; 3] = [1, 20, 250];

/// (prefix, Some((gateway, distance))) as indices into the pools; None
/// withdraws.
type Change = (usize, Option<(usize, usize)>);

fn change_of(pool: &[Ipv4Net], (prefix, route): Change) -> RouteChange {
    let prefix = pool[prefix % pool.len()];
    match route {
        Some((gateway, distance)) => RouteChange::Announce(via(
            prefix,
            ip(GATEWAYS[gateway % GATEWAYS.len()]),
            DISTANCES[distance % DISTANCES.len()],
        )),
        None => RouteChange::Withdraw(prefix),
    }
}

/// The route `dst` takes, from first principles: at each prefix the
/// better ranked of the configured and the learned route (the configured
/// on a tie), then the longest prefix holding `dst`.
fn reference(
    statics: &BTreeMap<Ipv4Net, StaticRoute>,
    learned: &BTreeMap<Ipv4Net, StaticRoute>,
    dst: Ipv4Addr,
) -> Option<(Source, u8, Option<Ipv4Addr>)> {
    let resolvable = |r: &&StaticRoute| match r.next_hop {
        NextHop::Address(gw) => net("10.0.0.0/24").contains(&gw),
        NextHop::Interface(_) => false,
    };
    let gateway = |r: &StaticRoute| match r.next_hop {
        NextHop::Address(gw) => Some(gw),
        NextHop::Interface(_) => None,
    };
    let mut winners: BTreeMap<Ipv4Net, (Source, u8, Option<Ipv4Addr>)> = BTreeMap::new();
    for (prefix, r) in learned.iter().filter(|(_, r)| resolvable(r)) {
        winners.insert(*prefix, (Source::Bgp, r.distance, gateway(r)));
    }
    for (prefix, r) in statics.iter().filter(|(_, r)| resolvable(r)) {
        let beaten = winners.get(prefix).is_some_and(|l| l.1 < r.distance);
        if !beaten {
            winners.insert(*prefix, (Source::Static, r.distance, gateway(r)));
        }
    }
    winners.insert(net("10.0.0.0/24"), (Source::Static, 0, None));
    winners.insert(net("10.0.0.1/32"), (Source::Static, 0, None));
    (winners.iter())
        .filter(|(prefix, _)| prefix.contains(&dst))
        .max_by_key(|(prefix, _)| prefix.prefix_len())
        .map(|(_, route)| *route)
}

/// Addresses where answers change: each prefix's ends and their neighbours.
fn probes(pool: &[Ipv4Net]) -> Vec<Ipv4Addr> {
    (pool.iter())
        .flat_map(|p| {
            let (first, last) = (u32::from(p.network()), u32::from(p.broadcast()));
            [first.wrapping_sub(1), first, last, last.wrapping_add(1)]
        })
        .map(Ipv4Addr::from)
        .collect()
}

fn listing(table: &RouteTable) -> Vec<(Ipv4Net, Entry)> {
    table.routes().map(|(p, e)| (p, e.clone())).collect()
}

proptest! {
    #[test]
    fn batches_give_the_lookups_of_a_full_rebuild(
        statics in prop::collection::vec((0usize..100, 0usize..4, 0usize..3), 0..8),
        batches in prop::collection::vec(
            prop::collection::vec((0usize..100, prop::option::weighted(0.7, (0usize..4, 0usize..3))), 0..24),
            1..8,
        ),
    ) {
        let pool = pool();
        let statics: BTreeMap<Ipv4Net, StaticRoute> = (statics.into_iter())
            .map(|(prefix, gateway, distance)| change_of(&pool, (prefix, Some((gateway, distance)))))
            .filter_map(|change| match change {
                RouteChange::Announce(r) => Some((r.prefix, r)),
                RouteChange::Withdraw(_) => None,
            })
            .collect();
        let statics_list: Vec<StaticRoute> = statics.values().cloned().collect();
        let mut incremental = configured(&statics_list);
        let mut learned = LearnedRoutes::default();
        for batch in batches {
            let changes: Vec<RouteChange> = batch.into_iter().map(|c| change_of(&pool, c)).collect();
            incremental.apply_learned(&changes).unwrap();
            learned.apply(None, &changes);
        }
        let mut rebuilt = configured(&statics_list);
        rebuilt.apply_learned(learned.announcements(None)).unwrap();
        let learned_now: BTreeMap<Ipv4Net, StaticRoute> = (learned.announcements(None))
            .filter_map(|change| match change {
                RouteChange::Announce(r) => Some((r.prefix, r)),
                RouteChange::Withdraw(_) => None,
            })
            .collect();
        for dst in probes(&pool) {
            let expected = reference(&statics, &learned_now, dst);
            prop_assert_eq!(incremental.route(dst).map(summary), expected, "{}", dst);
            prop_assert_eq!(rebuilt.route(dst).map(summary), expected, "{}", dst);
        }
        prop_assert_eq!(listing(&incremental), listing(&rebuilt));
    }
}
