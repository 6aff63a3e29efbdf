//! `Lpm` checked against a linear scan over the prefix set.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use proptest::prelude::*;

use super::{Lpm, LpmError, MAX_ROUTE_VALUE};

/// The obviously correct table: every prefix in a map, lookups scan them all.
#[derive(Default)]
struct Reference {
    routes: BTreeMap<Ipv4Net, u32>,
}

impl Reference {
    fn insert(&mut self, prefix: Ipv4Net, value: u32) {
        self.routes.insert(prefix.trunc(), value);
    }

    fn remove(&mut self, prefix: Ipv4Net) -> bool {
        self.routes.remove(&prefix.trunc()).is_some()
    }

    fn lookup(&self, addr: u32) -> Option<u32> {
        self.routes
            .iter()
            .filter(|(prefix, _)| prefix.contains(&Ipv4Addr::from(addr)))
            .max_by_key(|(prefix, _)| prefix.prefix_len())
            .map(|(_, &value)| value)
    }
}

fn net(text: &str) -> Ipv4Net {
    text.parse().unwrap()
}

fn ip(text: &str) -> u32 {
    u32::from(text.parse::<Ipv4Addr>().unwrap())
}

/// Addresses where answers change: each prefix's first and last address and
/// their neighbours.
fn probes(prefixes: impl Iterator<Item = Ipv4Net>) -> Vec<u32> {
    let mut probes = vec![0, u32::MAX];
    for prefix in prefixes {
        let (first, last) = (u32::from(prefix.network()), u32::from(prefix.broadcast()));
        probes.extend([
            first.wrapping_sub(1),
            first,
            first.wrapping_add(1),
            last.wrapping_sub(1),
            last,
            last.wrapping_add(1),
        ]);
    }
    probes
}

fn assert_same(lpm: &Lpm, reference: &Reference, probes: &[u32]) {
    let mut batch = vec![None; probes.len()];
    lpm.lookup_batch(probes, &mut batch);
    for (&addr, batched) in probes.iter().zip(batch) {
        let expected = reference.lookup(addr);
        assert_eq!(
            lpm.lookup(addr),
            expected,
            "lookup {}",
            Ipv4Addr::from(addr)
        );
        assert_eq!(batched, expected, "lookup_batch {}", Ipv4Addr::from(addr));
    }
    let listed: Vec<_> = lpm.iter().collect();
    let expected: Vec<_> = reference.routes.iter().map(|(&p, &v)| (p, v)).collect();
    assert_eq!(listed, expected);
    assert_eq!(lpm.len(), reference.routes.len());
}

#[test]
fn empty_table_finds_nothing() {
    let lpm = Lpm::new();
    assert!(lpm.is_empty());
    assert_eq!(lpm.lookup(0), None);
    assert_eq!(lpm.lookup(u32::MAX), None);
    assert_eq!(lpm.iter().count(), 0);
}

#[test]
fn default_route_covers_everything_until_removed() {
    let mut lpm = Lpm::new();
    lpm.insert(net("0.0.0.0/0"), 1).unwrap();
    lpm.insert(net("10.1.2.0/24"), 2).unwrap();
    assert_eq!(lpm.lookup(0), Some(1));
    assert_eq!(lpm.lookup(u32::MAX), Some(1));
    assert_eq!(lpm.lookup(ip("10.1.2.3")), Some(2));
    assert_eq!(lpm.lookup(ip("10.1.3.3")), Some(1));
    assert!(lpm.remove(net("0.0.0.0/0")));
    assert_eq!(lpm.lookup(ip("10.1.3.3")), None);
    assert_eq!(lpm.lookup(ip("10.1.2.3")), Some(2));
}

#[test]
fn host_routes_and_their_neighbours() {
    let mut lpm = Lpm::new();
    lpm.insert(net("192.0.2.7/32"), 7).unwrap();
    lpm.insert(net("255.255.255.255/32"), 9).unwrap();
    lpm.insert(net("0.0.0.0/32"), 3).unwrap();
    assert_eq!(lpm.lookup(ip("192.0.2.7")), Some(7));
    assert_eq!(lpm.lookup(ip("192.0.2.6")), None);
    assert_eq!(lpm.lookup(ip("192.0.2.8")), None);
    assert_eq!(lpm.lookup(u32::MAX), Some(9));
    assert_eq!(lpm.lookup(0), Some(3));
    assert_eq!(lpm.lookup(1), None);
}

#[test]
fn slash25_splits_its_slash24() {
    let mut lpm = Lpm::new();
    lpm.insert(net("198.51.100.0/24"), 24).unwrap();
    lpm.insert(net("198.51.100.128/25"), 25).unwrap();
    assert_eq!(lpm.lookup(ip("198.51.100.127")), Some(24));
    assert_eq!(lpm.lookup(ip("198.51.100.128")), Some(25));
    assert_eq!(lpm.lookup(ip("198.51.100.255")), Some(25));
    assert_eq!(lpm.lookup(ip("198.51.101.0")), None);
}

#[test]
fn removing_more_specific_restores_covering_routes() {
    let mut lpm = Lpm::new();
    lpm.insert(net("10.0.0.0/8"), 8).unwrap();
    lpm.insert(net("10.1.0.0/16"), 16).unwrap();
    lpm.insert(net("10.1.1.0/24"), 24).unwrap();
    lpm.insert(net("10.1.1.1/32"), 32).unwrap();
    let addr = ip("10.1.1.1");
    assert_eq!(lpm.lookup(addr), Some(32));
    assert!(lpm.remove(net("10.1.1.1/32")));
    assert_eq!(lpm.lookup(addr), Some(24));
    assert!(lpm.remove(net("10.1.1.0/24")));
    assert_eq!(lpm.lookup(addr), Some(16));
    assert!(lpm.remove(net("10.1.0.0/16")));
    assert_eq!(lpm.lookup(addr), Some(8));
    assert!(lpm.remove(net("10.0.0.0/8")));
    assert_eq!(lpm.lookup(addr), None);
    assert!(!lpm.remove(net("10.0.0.0/8")));
}

#[test]
fn removing_less_specific_first_keeps_more_specific() {
    let mut lpm = Lpm::new();
    lpm.insert(net("10.0.0.0/8"), 8).unwrap();
    lpm.insert(net("10.0.0.0/12"), 12).unwrap();
    lpm.insert(net("10.2.0.0/16"), 16).unwrap();
    assert!(lpm.remove(net("10.0.0.0/12")));
    assert_eq!(lpm.lookup(ip("10.2.3.4")), Some(16));
    assert_eq!(lpm.lookup(ip("10.3.3.4")), Some(8));
    assert!(lpm.remove(net("10.0.0.0/8")));
    assert_eq!(lpm.lookup(ip("10.2.3.4")), Some(16));
    assert_eq!(lpm.lookup(ip("10.3.3.4")), None);
}

#[test]
fn insert_truncates_host_bits_and_replaces() {
    let mut lpm = Lpm::new();
    lpm.insert(net("172.16.5.9/20"), 1).unwrap();
    lpm.insert(net("172.16.0.0/20"), 2).unwrap();
    assert_eq!(lpm.len(), 1);
    assert_eq!(lpm.get(net("172.16.15.255/20")), Some(2));
    assert_eq!(lpm.lookup(ip("172.16.15.255")), Some(2));
    assert_eq!(
        lpm.iter().collect::<Vec<_>>(),
        vec![(net("172.16.0.0/20"), 2)]
    );
}

#[test]
fn reserved_value_is_refused() {
    let mut lpm = Lpm::new();
    assert_eq!(
        lpm.insert(net("10.0.0.0/8"), u32::MAX),
        Err(LpmError::ValueOutOfRange(u32::MAX))
    );
    lpm.insert(net("10.0.0.0/8"), MAX_ROUTE_VALUE).unwrap();
    assert_eq!(lpm.lookup(ip("10.0.0.1")), Some(MAX_ROUTE_VALUE));
}

#[test]
fn full_table_refuses_new_routes_but_accepts_replacements() {
    let mut lpm = Lpm::with_max_routes(2);
    lpm.insert(net("10.0.0.0/8"), 1).unwrap();
    lpm.insert(net("10.0.0.0/24"), 1).unwrap();
    let full = Err(LpmError::Full { max_routes: 2 });
    assert_eq!(lpm.insert(net("10.0.1.0/24"), 1), full);
    assert_eq!(lpm.insert(net("11.0.0.0/8"), 1), full);
    lpm.insert(net("10.0.0.0/24"), 5).unwrap();
    assert_eq!(lpm.lookup(ip("10.0.0.1")), Some(5));
    assert_eq!(lpm.lookup(ip("10.0.1.1")), Some(1));
    let routes = [(net("12.0.0.0/8"), 1), (net("10.0.0.0/8"), 3)];
    assert_eq!(lpm.insert_many(routes), full);
    assert_eq!(lpm.len(), 2);
}

#[test]
fn iter_lists_in_prefix_order_across_lengths() {
    let mut lpm = Lpm::new();
    for (prefix, value) in [
        ("10.1.0.0/16", 3),
        ("10.0.0.0/8", 1),
        ("10.1.0.0/24", 4),
        ("9.255.255.255/32", 0),
        ("10.0.0.0/16", 2),
        ("10.1.0.0/17", 5),
    ] {
        lpm.insert(net(prefix), value).unwrap();
    }
    let order: Vec<_> = lpm.iter().map(|(prefix, _)| prefix.to_string()).collect();
    assert_eq!(
        order,
        [
            "9.255.255.255/32",
            "10.0.0.0/8",
            "10.0.0.0/16",
            "10.1.0.0/16",
            "10.1.0.0/17",
            "10.1.0.0/24"
        ]
    );
}

#[test]
fn clone_is_an_independent_snapshot() {
    let mut lpm = Lpm::new();
    lpm.insert(net("10.1.1.0/24"), 1).unwrap();
    let snapshot = std::sync::Arc::new(lpm.clone());
    lpm.insert(net("10.1.1.0/24"), 2).unwrap();
    lpm.insert(net("0.0.0.0/0"), 3).unwrap();
    assert_eq!(snapshot.lookup(ip("10.1.1.1")), Some(1));
    assert_eq!(snapshot.lookup(ip("10.1.2.1")), None);
    assert_eq!(lpm.lookup(ip("10.1.1.1")), Some(2));
    assert_eq!(lpm.lookup(ip("10.1.2.1")), Some(3));
}

#[test]
fn table_is_shareable_across_threads() {
    fn assert_send_sync<T: Clone + Send + Sync>() {}
    assert_send_sync::<Lpm>();
}

#[test]
fn batch_with_shorter_output_fills_what_fits() {
    let mut lpm = Lpm::new();
    lpm.insert(net("0.0.0.0/0"), 1).unwrap();
    let mut out = [None; 2];
    lpm.lookup_batch(&[1, 2, 3], &mut out);
    assert_eq!(out, [Some(1), Some(1)]);
}

#[test]
fn memory_grows_with_routes() {
    let mut lpm = Lpm::new();
    let empty = lpm.memory_bytes();
    let routes = (0..1000u32).map(|i| (Ipv4Net::new(Ipv4Addr::from(i << 12), 24).unwrap(), i));
    lpm.insert_many(routes).unwrap();
    assert_eq!(lpm.len(), 1000);
    assert!(lpm.memory_bytes() > empty);
}

#[test]
fn thousands_of_routes_then_half_removed_match_reference() {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        // xorshift64: deterministic, so a failure reproduces.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let routes: Vec<(Ipv4Net, u32)> = (0..4000)
        .map(|_| {
            let bits = next();
            // Addresses confined to 10.0.0.0/12 so /16 blocks hold many routes.
            let addr = 0x0a00_0000 | (bits as u32 & 0x000f_ffff);
            let len = 12 + (bits >> 40) as u8 % 21;
            let prefix = Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc();
            (prefix, (bits >> 48) as u32)
        })
        .collect();
    let mut lpm = Lpm::new();
    let mut reference = Reference::default();
    lpm.insert_many(routes.iter().copied()).unwrap();
    for &(prefix, value) in &routes {
        reference.insert(prefix, value);
    }
    // Every eighth boundary probe keeps the linear-scan reference quick.
    let addrs: Vec<u32> = probes(routes.iter().map(|&(prefix, _)| prefix))
        .into_iter()
        .step_by(8)
        .collect();
    assert_same(&lpm, &reference, &addrs);
    for &(prefix, _) in routes.iter().step_by(2) {
        assert_eq!(lpm.remove(prefix), reference.remove(prefix));
    }
    assert_same(&lpm, &reference, &addrs);
    for &(prefix, _) in &routes {
        lpm.remove(prefix);
    }
    assert!(lpm.is_empty());
    assert_eq!(lpm.lookup(0x0a01_0203), None);
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Ipv4Net, u32),
    Remove(Ipv4Net),
}

/// Prefixes drawn from a few base addresses so they overlap, nest and
/// share /16 blocks and /24s often.
fn prefix() -> impl Strategy<Value = Ipv4Net> {
    let base = prop_oneof![
        Just(0x0a00_0000u32),
        Just(0x0a01_0100),
        Just(0xc0a8_0000),
        Just(0xffff_ff00),
        any::<u32>(),
    ];
    // Small offsets pile several /25-/32 routes into the same few /24s.
    let offset = prop_oneof![0u32..0x1_0000, 0u32..0x300];
    (base, offset, 0u8..=32).prop_map(|(base, offset, len)| {
        Ipv4Net::new(Ipv4Addr::from(base ^ offset), len)
            .unwrap()
            .trunc()
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (prefix(), 0u32..8).prop_map(|(p, v)| Op::Insert(p, v)),
        1 => prefix().prop_map(Op::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn matches_reference_after_inserts_and_removes(ops in prop::collection::vec(op(), 1..60), extra in prop::collection::vec(any::<u32>(), 16)) {
        let mut lpm = Lpm::new();
        let mut reference = Reference::default();
        let mut touched = Vec::new();
        for op in ops {
            match op {
                Op::Insert(prefix, value) => {
                    lpm.insert(prefix, value).unwrap();
                    reference.insert(prefix, value);
                    touched.push(prefix);
                }
                Op::Remove(prefix) => {
                    prop_assert_eq!(lpm.remove(prefix), reference.remove(prefix));
                    touched.push(prefix);
                }
            }
        }
        let mut addrs = probes(touched.into_iter());
        addrs.extend(extra);
        assert_same(&lpm, &reference, &addrs);
    }

    #[test]
    fn bulk_load_matches_single_inserts(routes in prop::collection::vec((prefix(), 0u32..1000), 0..80)) {
        let mut single = Lpm::new();
        let mut reference = Reference::default();
        for &(prefix, value) in &routes {
            single.insert(prefix, value).unwrap();
            reference.insert(prefix, value);
        }
        let mut bulk = Lpm::new();
        bulk.insert_many(routes.iter().copied()).unwrap();
        let addrs = probes(routes.iter().map(|&(prefix, _)| prefix));
        assert_same(&single, &reference, &addrs);
        assert_same(&bulk, &reference, &addrs);
    }
}
