use std::time::Instant;

use proptest::prelude::*;

use super::synth::{self, Mix, Rng};
use super::*;

/// The specification: the first rule in order that matches.
fn linear(rules: &[Rule], key: &FlowKey) -> Option<u32> {
    rules.iter().find(|r| r.matches(key)).map(|r| r.id)
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    ipv4_mapped(u32::from_be_bytes([a, b, c, d]))
}

fn tcp(src: u128, dst: u128, dst_port: u16, tcp_flags: u8) -> FlowKey {
    FlowKey {
        src,
        dst,
        protocol: 6,
        src_port: 40000,
        dst_port,
        tcp_flags,
    }
}

/// Every key answers as the linear scan does, one by one and in batches.
fn assert_agrees(rules: &[Rule], keys: &[FlowKey]) {
    let classifier = Classifier::build(rules);
    let mut batch = vec![None; keys.len()];
    classifier.classify_batch(keys, &mut batch);
    for (key, batched) in keys.iter().zip(batch) {
        let expected = linear(rules, key);
        assert_eq!(classifier.classify(key), expected, "{key:?}");
        assert_eq!(batched, expected, "batched {key:?}");
    }
}

#[test]
fn the_first_matching_rule_wins_over_a_more_specific_later_one() {
    let mut web = Rule::any(1);
    web.dst = v4(10, 0, 0, 0);
    web.dst_mask = ipv4_mask(8);
    web.protocol = Some(6);
    web.dst_ports = (443, 443);
    let mut host = web;
    host.id = 2;
    host.dst = v4(10, 0, 0, 1);
    host.dst_mask = ipv4_mask(32);
    let classifier = Classifier::build(&[web, host, Rule::any(3)]);
    assert_eq!(
        classifier.classify(&tcp(v4(1, 1, 1, 1), v4(10, 0, 0, 1), 443, 0x02)),
        Some(1)
    );
    assert_eq!(
        classifier.classify(&tcp(v4(1, 1, 1, 1), v4(10, 0, 0, 1), 80, 0x02)),
        Some(3)
    );
}

#[test]
fn an_empty_rule_set_matches_nothing() {
    let classifier = Classifier::build(&[]);
    assert_eq!(classifier.classify(&FlowKey::default()), None);
    let mut out = [Some(7); 3];
    classifier.classify_batch(&[FlowKey::default(); 3], &mut out);
    assert_eq!(out, [None; 3]);
    assert!(classifier.memory_bytes() < 1024);
}

#[test]
fn all_wildcard_rules_answer_with_the_first_from_one_resolved_leaf() {
    let rules: Vec<Rule> = (0..10_000).map(Rule::any).collect();
    let classifier = Classifier::build(&rules);
    assert_eq!(classifier.classify(&FlowKey::default()), Some(0));
    // One resolved leaf: the answer without a single rule check.
    assert_eq!(classifier.stats().nodes, 1);
    assert_eq!(classifier.stats().leaf_entries, 0);
}

#[test]
fn established_needs_tcp_with_ack_or_rst() {
    let mut established = Rule::any(1);
    established.protocol = Some(6);
    established.established = true;
    let classifier = Classifier::build(&[established]);
    let key = |protocol, tcp_flags| FlowKey {
        protocol,
        tcp_flags,
        ..FlowKey::default()
    };
    assert_eq!(classifier.classify(&key(6, 0x02)), None, "SYN");
    assert_eq!(classifier.classify(&key(6, 0x12)), Some(1), "SYN+ACK");
    assert_eq!(classifier.classify(&key(6, 0x04)), Some(1), "RST");
    assert_eq!(
        classifier.classify(&key(17, 0x10)),
        None,
        "UDP with the ACK bit's value"
    );
}

#[test]
fn icmp_type_and_code_sit_in_the_port_fields() {
    let mut echo_request = Rule::any(8);
    echo_request.protocol = Some(1);
    echo_request.src_ports = (8, 8);
    echo_request.dst_ports = (0, 0);
    let classifier = Classifier::build(&[echo_request]);
    let icmp = |src_port, dst_port| FlowKey {
        protocol: 1,
        src_port,
        dst_port,
        ..FlowKey::default()
    };
    assert_eq!(classifier.classify(&icmp(8, 0)), Some(8));
    assert_eq!(classifier.classify(&icmp(0, 0)), None);
    assert_eq!(classifier.classify(&icmp(8, 1)), None);
}

#[test]
fn an_ios_wildcard_mask_matches_every_value_of_its_free_octet_only() {
    // permit ip 10.1.0.5 0.0.255.0 any
    let mut rule = Rule::any(1);
    rule.src = v4(10, 1, 0, 5);
    rule.src_mask = ipv4_mask(32) & !ipv4_mapped(0x0000_ff00);
    let mut rules = vec![rule];
    // Enough other rules to make the tree cut the address space.
    rules.extend(
        synth::acl_rules(200, 3, Mix::default())
            .into_iter()
            .map(|mut r| {
                r.id += 10;
                r
            }),
    );
    let classifier = Classifier::build(&rules);
    assert_eq!(classifier.stats().inexact_rules, 1);
    assert_eq!(
        classifier.classify(&tcp(v4(10, 1, 77, 5), 0, 22, 0)),
        Some(1)
    );
    assert_ne!(
        classifier.classify(&tcp(v4(10, 1, 77, 6), 0, 22, 0)),
        Some(1)
    );
    assert_agrees(&rules, &synth::trace(&rules, 2_000, 4));
}

#[test]
fn a_rule_with_an_empty_port_range_never_matches() {
    let mut empty = Rule::any(1);
    empty.dst_ports = (90, 80);
    let classifier = Classifier::build(&[empty, Rule::any(2)]);
    assert_eq!(classifier.classify(&tcp(0, 0, 85, 0)), Some(2));
}

#[test]
fn ipv6_rules_do_not_match_ipv4_mapped_keys_outside_them() {
    let mut v6 = Rule::any(6);
    v6.dst = 0x2001_0db8 << 96;
    v6.dst_mask = u128::MAX << 96;
    let classifier = Classifier::build(&[v6]);
    assert_eq!(
        classifier.classify(&tcp(0, (0x2001_0db8 << 96) | 1, 1, 0)),
        Some(6)
    );
    assert_eq!(classifier.classify(&tcp(0, v4(32, 1, 13, 184), 1, 0)), None);
}

#[test]
fn a_batch_fills_only_as_many_results_as_both_slices_hold() {
    let rules = synth::acl_rules(100, 1, Mix::default());
    let keys = synth::trace(&rules, 21, 2);
    let classifier = Classifier::build(&rules);
    let mut short = [Some(u32::MAX); 13];
    classifier.classify_batch(&keys, &mut short);
    for (key, got) in keys.iter().zip(short) {
        assert_eq!(got, linear(&rules, key));
    }
    let mut long = [Some(u32::MAX); 30];
    classifier.classify_batch(&keys[..5], &mut long);
    assert_eq!(long[5..], [Some(u32::MAX); 25]);
}

#[test]
fn ten_thousand_realistic_rules_agree_with_the_linear_scan() {
    let mix = Mix {
        established: 10,
        wildcards: 2,
    };
    let rules = synth::acl_rules(10_000, 11, mix);
    let started = Instant::now();
    let classifier = Classifier::build(&rules);
    let took = started.elapsed();
    let stats = classifier.stats();
    eprintln!(
        "10,000 rules: built in {took:?}, {} bytes, {stats:?}",
        classifier.memory_bytes()
    );
    assert!(stats.trees > 1, "separable trees: {stats:?}");
    assert!(stats.max_leaf <= 64, "{stats:?}");
    assert_agrees(&rules, &synth::trace(&rules, 20_000, 12));
    assert_agrees(&rules, &boundary_keys(&rules, 20_000, 13));
}

#[test]
fn a_hundred_thousand_rules_still_build_and_answer() {
    let rules = synth::acl_rules(100_000, 21, Mix::default());
    let started = Instant::now();
    let classifier = Classifier::build(&rules);
    let took = started.elapsed();
    eprintln!(
        "100,000 rules: built in {took:?}, {} bytes, {:?}",
        classifier.memory_bytes(),
        classifier.stats()
    );
    // The budget: 1 KB of tree per rule at most, plus the rules themselves.
    assert!(classifier.memory_bytes() < rules.len() * (1024 + size_of::<Rule>()));
    assert_agrees(&rules, &synth::trace(&rules, 5_000, 22));
}

fn address() -> impl Strategy<Value = (u128, u128)> {
    let bases = vec![
        ipv4_mapped(0x0a00_0000),
        ipv4_mapped(0x0a00_0100),
        ipv4_mapped(0x0a01_0000),
        ipv4_mapped(0xc0a8_0000),
        0x2001_0db8 << 96,
    ];
    let value = (prop::sample::select(bases), 0u128..512).prop_map(|(b, low)| b ^ low);
    let mask = prop_oneof![
        (0u8..=32).prop_map(ipv4_mask),
        // IOS wildcards: one free octet, or any bits free.
        (0u32..4).prop_map(|octet| ipv4_mask(32) & !(0xff << (8 * octet))),
        any::<u32>().prop_map(|free| ipv4_mask(32) & !u128::from(free)),
        // IPv6 prefixes of any length.
        (0u32..=128).prop_map(|len| u128::MAX.checked_shl(128 - len).unwrap_or(0)),
    ];
    (value, mask)
}

const PORTS: [u16; 12] = [0, 1, 8, 22, 79, 80, 81, 443, 1023, 1024, 65534, 65535];

fn ports() -> impl Strategy<Value = (u16, u16)> {
    let port = || prop::sample::select(PORTS.to_vec());
    prop_oneof![(port(), port()), Just((0, u16::MAX))]
}

fn rule() -> impl Strategy<Value = Rule> {
    let protocol = prop::option::of(prop::sample::select(vec![1u8, 6, 17]));
    (
        address(),
        address(),
        protocol,
        ports(),
        ports(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |((src, src_mask), (dst, dst_mask), protocol, src_ports, dst_ports, established)| {
                Rule {
                    src,
                    src_mask,
                    dst,
                    dst_mask,
                    protocol,
                    src_ports,
                    dst_ports,
                    established,
                    id: 0,
                }
            },
        )
}

/// Keys on and next to the rules' boundaries: a rule's address with a few
/// low bits flipped, its port bounds and their neighbours.
fn boundary_keys(rules: &[Rule], count: usize, seed: u64) -> Vec<FlowKey> {
    let mut rng = Rng::new(seed);
    let near = |rng: &mut Rng, (lo, hi): (u16, u16)| {
        let listed = rng.pick(&PORTS);
        let bound = rng.pick(&[lo, hi, listed]);
        bound.wrapping_add(rng.pick(&[0, 0, 1, u16::MAX]))
    };
    (0..count)
        .map(|_| {
            let rule = rules[rng.below(rules.len() as u32) as usize];
            let flip = |rng: &mut Rng| {
                if rng.percent(50) {
                    0
                } else {
                    1 << rng.below(10)
                }
            };
            FlowKey {
                src: rule.src ^ flip(&mut rng),
                dst: rule.dst ^ flip(&mut rng),
                protocol: rng.pick(&[rule.protocol.unwrap_or(6), 1, 6, 17, 0]),
                src_port: near(&mut rng, rule.src_ports),
                dst_port: near(&mut rng, rule.dst_ports),
                tcp_flags: rng.pick(&[0, 0x02, 0x04, 0x10, 0x12, 0x11, 0xff]),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_tree_answers_as_the_linear_first_match(
        rules in prop::collection::vec(rule(), 1..80),
        seed in any::<u64>(),
    ) {
        let rules: Vec<Rule> = (0..).zip(rules).map(|(id, r)| Rule { id: id * 3 + 1, ..r }).collect();
        let keys = boundary_keys(&rules, 300, seed);
        let classifier = Classifier::build(&rules);
        let mut batch = vec![None; keys.len()];
        classifier.classify_batch(&keys, &mut batch);
        for (key, batched) in keys.iter().zip(batch) {
            let expected = linear(&rules, key);
            prop_assert_eq!(classifier.classify(key), expected, "{:?}", key);
            prop_assert_eq!(batched, expected, "batched {:?}", key);
        }
    }
}
