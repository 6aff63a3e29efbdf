//! The firewall fed in memory: stateful return traffic, `established`,
//! hit counters, the session table full, the SYN guard's challenge, and
//! random TCP flag combinations and malformed packets (never a panic).

mod support;

use kernel_bypass::pipeline::Verdict;
use kernel_bypass::wire::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;
use support::harness::Harness;
use support::packets::*;

/// eth0 (port 0, inside 10.1.0.1/24) and eth1 (port 1, outside
/// 10.2.0.1/24); the outside may reach only 10.1.0.2 port 443 and, with
/// `established`, TCP segments to 10.1.0.3.
const POLICY: &str = "ip inspect max-sessions 64\n\
    ip access-list extended OUTSIDE-IN\n 10 permit tcp any host 10.1.0.2 eq 443\n \
    20 permit tcp any host 10.1.0.3 established\n\
    interface eth0\n ip address 10.1.0.1/24\n\
    interface eth1\n ip address 10.2.0.1/24\n ip access-group OUTSIDE-IN in\n\
    ip route 192.0.2.0/24 10.1.0.2\n";
const NEIGHBORS: &[(&str, &str)] = &[
    ("eth0", "10.1.0.2"),
    ("eth0", "10.1.0.3"),
    ("eth1", "10.2.0.2"),
];

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Vec<u8> {
    tcp_packet(ip(src), ip(dst), sport, dport, flags)
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

#[test]
fn replies_to_inside_flows_come_back_and_outside_reaches_only_the_permitted_port() {
    let mut h = Harness::new(POLICY, NEIGHBORS);
    let out = h.feed(
        0,
        &[
            tcp("10.1.0.2", 40000, "10.2.0.2", 80, SYN),
            udp_packet(ip("10.1.0.2"), ip("10.2.0.2"), 5000, 53, b"q"),
            echo_request(ip("10.1.0.2"), ip("10.2.0.2"), 64),
        ],
    );
    assert_eq!(out, [Verdict::Tx(1); 3], "the inside may open flows");
    let mut echo_reply = echo_request(ip("10.2.0.2"), ip("10.1.0.2"), 64);
    echo_reply[20] = ICMP_ECHO_REPLY;
    let back = h.feed(
        1,
        &[
            tcp("10.2.0.2", 80, "10.1.0.2", 40000, SYN | ACK),
            udp_packet(ip("10.2.0.2"), ip("10.1.0.2"), 53, 5000, b"a"),
            echo_reply,
            tcp("10.2.0.2", 1234, "10.1.0.2", 443, SYN),
            tcp("10.2.0.2", 1235, "10.1.0.2", 22, SYN),
            udp_packet(ip("10.2.0.2"), ip("10.1.0.2"), 53, 5001, b"unsolicited"),
        ],
    );
    assert_eq!(
        back,
        [
            Verdict::Tx(0),
            Verdict::Tx(0),
            Verdict::Tx(0),
            Verdict::Tx(0),
            Verdict::Done,
            Verdict::Done
        ]
    );
    let lists = h.show("access-lists");
    assert!(
        lists.contains("10 permit tcp any host 10.1.0.2 eq 443 (1 matches)"),
        "{lists}"
    );
    assert!(lists.contains("denied, no rule matched: 2"), "{lists}");
    let sessions = h.show("sessions");
    assert!(sessions.starts_with("4 sessions"), "{sessions}");
    assert!(h.show("sessions udp").starts_with("1 sessions"));
    assert!(h.show("sessions tcp").starts_with("2 sessions"));
    assert!(h.show("sessions icmp").starts_with("1 sessions"));
    assert!(h
        .show("sessions address 10.2.0.2 tcp")
        .starts_with("2 sessions"));
    assert!(h
        .show("sessions address 10.2.0.2 udp")
        .starts_with("1 sessions"));
    assert!(h
        .show("sessions address 192.0.2.9")
        .starts_with("0 sessions"));
    assert!(h
        .show("sessions vrf NOPE")
        .starts_with("% VRF NOPE does not exist"));
}

/// An ICMP error from `router` to `to` quoting (at most 28 bytes of) `sent`.
fn icmp_error(router: &str, to: &str, kind: u8, code: u8, sent: &[u8]) -> Vec<u8> {
    let mut icmp = vec![kind, code, 0, 0, 0, 0, 0x05, 0xdc];
    icmp.extend_from_slice(&sent[..sent.len().min(28)]);
    ipv4(ip(router), ip(to), PROTO_ICMP, 64, &icmp)
}

#[test]
fn icmp_errors_about_a_known_flow_pass_and_others_do_not() {
    let mut h = Harness::new(POLICY, NEIGHBORS);
    let syn = tcp("10.1.0.2", 40000, "10.2.0.2", 80, SYN);
    assert_eq!(h.feed(0, std::slice::from_ref(&syn)), [Verdict::Tx(1)]);
    let stranger = tcp("10.1.0.2", 40001, "10.2.0.2", 80, SYN | ACK);
    let verdicts = h.feed(
        1,
        &[
            icmp_error(
                "10.2.0.2",
                "10.1.0.2",
                ICMP_DEST_UNREACHABLE,
                ICMP_CODE_FRAGMENTATION_NEEDED,
                &syn,
            ),
            icmp_error("10.2.0.2", "10.1.0.2", ICMP_TIME_EXCEEDED, 0, &syn),
            icmp_error("10.2.0.2", "10.1.0.2", ICMP_DEST_UNREACHABLE, 1, &stranger),
            icmp_error("10.2.0.2", "10.1.0.2", ICMP_DEST_UNREACHABLE, 1, &syn[..20]),
        ],
    );
    assert_eq!(
        verdicts,
        [Verdict::Tx(0), Verdict::Tx(0), Verdict::Done, Verdict::Done],
        "related errors pass; one about no flow, or quoting too little, does not"
    );
    assert!(h
        .show("access-lists")
        .contains("passed as related (ICMP errors): 2"));
}

/// A piece of packet `id`: `payload` at `offset` bytes (a multiple of
/// 8), with more to come or not.
fn fragment(src: &str, dst: &str, id: u16, (offset, more): (u16, bool), payload: &[u8]) -> Vec<u8> {
    let mut p = ipv4(ip(src), ip(dst), PROTO_UDP, 64, payload);
    put_be16(&mut p, IPV4_ID, id);
    put_be16(
        &mut p,
        IPV4_FLAGS,
        (offset / 8) | if more { IPV4_MF } else { 0 },
    );
    put_be16(&mut p, IPV4_CHECKSUM, 0);
    let sum = checksum(&p[..IPV4_HEADER]);
    put_be16(&mut p, IPV4_CHECKSUM, sum);
    p
}

#[test]
fn later_fragments_follow_their_first_and_strays_are_dropped() {
    let mut h = Harness::new(POLICY, NEIGHBORS);
    let query = udp_packet(ip("10.1.0.2"), ip("10.2.0.2"), 5000, 53, b"q");
    assert_eq!(h.feed(0, &[query]), [Verdict::Tx(1)]);
    // The answer, in two pieces: the first (UDP header) passes by the
    // session, the second by the first; a stray later piece and the
    // pieces of an unsolicited datagram do not.
    let head = [&udp(53, 5000, &[])[..], &[0xab; 16]].concat();
    let verdicts = h.feed(
        1,
        &[
            fragment("10.2.0.2", "10.1.0.2", 7, (0, true), &head),
            fragment("10.2.0.2", "10.1.0.2", 7, (24, false), &[0xcd; 40]),
            fragment("10.2.0.2", "10.1.0.2", 8, (24, false), &[0xcd; 40]),
            fragment(
                "10.2.0.2",
                "10.1.0.2",
                9,
                (0, true),
                &udp(53, 5001, &[0; 16]),
            ),
            fragment("10.2.0.2", "10.1.0.2", 9, (24, false), &[0xcd; 40]),
        ],
    );
    assert_eq!(
        verdicts,
        [
            Verdict::Tx(0),
            Verdict::Tx(0),
            Verdict::Done,
            Verdict::Done,
            Verdict::Done
        ]
    );
    let lists = h.show("access-lists");
    assert!(
        lists.contains("later fragments passed with their first: 1"),
        "{lists}"
    );
    assert!(
        lists.contains("later fragments dropped, first not passed: 2"),
        "{lists}"
    );
}

#[test]
fn established_lets_segments_with_ack_or_rst_through_but_not_syns() {
    let mut h = Harness::new(POLICY, NEIGHBORS);
    let out = h.feed(
        1,
        &[
            tcp("10.2.0.2", 1000, "10.1.0.3", 8080, SYN),
            tcp("10.2.0.2", 1000, "10.1.0.3", 8080, ACK),
            tcp("10.2.0.2", 1000, "10.1.0.3", 8080, 0x04),
        ],
    );
    assert_eq!(out, [Verdict::Done, Verdict::Tx(0), Verdict::Tx(0)]);
}

#[test]
fn a_full_session_table_refuses_new_flows_and_keeps_the_old_ones() {
    let mut h = Harness::new(POLICY, NEIGHBORS);
    let flows: Vec<_> = (0..200u16)
        .map(|p| udp_packet(ip("10.1.0.2"), ip("10.2.0.2"), 10_000 + p, 53, b"q"))
        .collect();
    let mut admitted = Vec::new();
    for chunk in flows.chunks(50) {
        let verdicts = h.feed(0, chunk);
        admitted.extend(
            chunk
                .iter()
                .zip(verdicts)
                .filter(|(_, v)| *v == Verdict::Tx(1))
                .map(|(p, _)| p.clone()),
        );
    }
    assert!(
        admitted.len() <= 64 && admitted.len() >= 32,
        "{}",
        admitted.len()
    );
    assert!(h
        .show("access-lists")
        .contains("refused, session table full: "));
    let replies: Vec<_> = admitted
        .iter()
        .map(|p| {
            let sport = be16(p, 20);
            udp_packet(ip("10.2.0.2"), ip("10.1.0.2"), 53, sport, b"a")
        })
        .collect();
    for chunk in replies.chunks(50) {
        assert!(
            h.feed(1, chunk).iter().all(|v| *v == Verdict::Tx(0)),
            "old flows keep working"
        );
    }
}

#[test]
fn a_syn_flood_to_the_appliance_is_answered_with_challenges_not_delivered() {
    let mut h = Harness::new(POLICY, NEIGHBORS);
    let syns: Vec<_> = (0..64u16)
        .map(|i| {
            tcp(
                &format!("192.0.2.{}", i + 1),
                30000 + i,
                "10.1.0.1",
                22,
                SYN,
            )
        })
        .collect();
    let mut challenged = 0;
    for chunk in syns.chunks(32) {
        challenged += h
            .feed(0, chunk)
            .iter()
            .filter(|v| **v == Verdict::Tx(0))
            .count();
    }
    assert_eq!(
        challenged, 48,
        "all but the first burst of 16 are challenged"
    );
    let shown = h.show("control-plane");
    assert!(
        shown.contains("challenging (SYN flood); 48 SYNs challenged"),
        "{shown}"
    );
}

/// An ARP request for `target` from host number `n` on eth0's subnet.
fn arp_request(n: u8, target: Ipv4Addr) -> Vec<u8> {
    let sender_mac = [0x02, 0, 0, 0, 0x33, n];
    let mut arp = [0u8; ARP_PACKET];
    let sender = (&sender_mac, Ipv4Addr::new(10, 1, 0, 100 + n));
    write_arp(&mut arp, ARP_REQUEST, sender, (&[0; 6], target));
    ethernet(BROADCAST_MAC, sender_mac, ETHERTYPE_ARP, &arp)
}

#[test]
fn arp_for_the_appliance_is_policed_by_the_arp_nd_class() {
    let own: Ipv4Addr = "10.1.0.1".parse().unwrap();
    let requests: Vec<_> = (0..50).map(|n| arp_request(n, own)).collect();
    let answered = |h: &mut Harness| {
        let verdicts = h.feed_frames(0, &requests);
        verdicts.iter().filter(|v| **v == Verdict::Tx(0)).count()
    };
    let site = "interface eth0\n ip address 10.1.0.1/24\n";
    assert_eq!(
        answered(&mut Harness::new(site, &[])),
        50,
        "the default rate takes a burst of 50"
    );
    let policed = format!("{site}control-plane\n police arp-nd rate 10 burst 5\n");
    let mut h = Harness::new(&policed, &[]);
    let replies = answered(&mut h);
    assert!(
        (5..=6).contains(&replies),
        "the burst, not the flood: {replies}"
    );
    let shown = h.show("control-plane");
    assert!(shown.contains("arp-nd"), "{shown}");
}

proptest! {
    #[test]
    fn no_tcp_flags_or_bytes_make_the_firewall_panic(
        flags in any::<u8>(),
        sport in any::<u16>(),
        dport in any::<u16>(),
        tail in proptest::collection::vec(any::<u8>(), 0..40),
        cut in 0usize..60,
    ) {
        let mut h = Harness::new(POLICY, NEIGHBORS);
        let mut inward = tcp("10.2.0.2", sport, "10.1.0.3", dport, flags);
        inward.extend_from_slice(&tail);
        let mut outward = tcp("10.1.0.2", sport, "10.2.0.2", dport, flags);
        outward.truncate(cut.max(20));
        let mut to_us = tcp("10.2.0.2", sport, "10.2.0.1", dport, flags);
        to_us.extend_from_slice(&tail);
        let _ = h.feed(1, &[inward, to_us]);
        let _ = h.feed(0, &[outward]);
    }
}
