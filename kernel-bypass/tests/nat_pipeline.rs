//! NAT44 fed in memory: a full translation table, fragments, and random
//! and malformed packets in both directions (never a panic, and never a
//! private source address on the outside).

mod support;

use kernel_bypass::pipeline::Verdict;
use kernel_bypass::wire::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;
use support::harness::Harness;
use support::packets::*;

/// eth0 inside (10.1.0.0/24, masqueraded), eth1 outside (203.0.113.1/24);
/// 10.1.0.9 has the elastic IP 203.0.113.9.
const SITE: &str = "ip nat translation max-entries 64\n\
    ip access-list extended INSIDE\n permit ip 10.1.0.0 0.0.0.255 any\n\
    interface eth0\n ip address 10.1.0.1/24\n ip nat inside\n\
    interface eth1\n ip address 203.0.113.1/24\n ip nat outside\n\
    ip nat inside source list INSIDE interface eth1 overload\n\
    ip nat inside source static 10.1.0.9 203.0.113.9\n";
const NEIGHBORS: &[(&str, &str)] = &[
    ("eth0", "10.1.0.2"),
    ("eth0", "10.1.0.9"),
    ("eth1", "203.0.113.2"),
];

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn source(packet: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15])
}

fn is_inside(a: Ipv4Addr) -> bool {
    a.octets()[..3] == [10, 1, 0]
}

#[test]
fn a_full_table_drops_new_flows_and_counts_them_and_old_flows_keep_working() {
    let mut h = Harness::new(SITE, NEIGHBORS);
    let mut translated = Vec::new();
    let mut dropped = 0;
    for port in 0..20u16 {
        let flows: Vec<_> = (0..32)
            .map(|i| {
                udp_packet(
                    ip("10.1.0.2"),
                    ip("203.0.113.2"),
                    1000 + port * 32 + i,
                    53,
                    b"q",
                )
            })
            .collect();
        let verdicts = h.feed(0, &flows);
        dropped += verdicts.iter().filter(|v| **v == Verdict::Done).count();
        translated.extend(h.sent_on(&verdicts, 1));
    }
    assert!(
        translated.len() <= 64 && !translated.is_empty(),
        "{}",
        translated.len()
    );
    assert_eq!(translated.len() + dropped, 640);
    let statistics = h.show("ip nat statistics");
    assert!(
        statistics.contains(&format!("dropped, translation table full: {dropped}")),
        "{statistics}"
    );
    // Every translated flow still gets its replies.
    let replies: Vec<_> = translated
        .iter()
        .map(|p| {
            let public_port = u16::from_be_bytes([p[20], p[21]]);
            udp_packet(ip("203.0.113.2"), ip("203.0.113.1"), 53, public_port, b"a")
        })
        .collect();
    for chunk in replies.chunks(32) {
        let verdicts = h.feed(1, chunk);
        assert!(
            verdicts.iter().all(|v| *v == Verdict::Tx(0)),
            "{verdicts:?}"
        );
    }
    assert_eq!(
        h.exec("clear ip nat translation *"),
        Ok(format!("{} translations cleared\n", translated.len()))
    );
    assert!(
        h.show("ip nat translations").lines().count() <= 2,
        "only the static one is left"
    );
}

#[test]
fn fragments_keep_their_flow_or_are_dropped_never_sent_untranslated() {
    let mut h = Harness::new(SITE, NEIGHBORS);
    let mut first = udp_packet(ip("10.1.0.2"), ip("203.0.113.2"), 4000, 53, &[7; 40]);
    let mut later = first.clone();
    first[6] = 0x20; // more fragments
    later[6] = 0x00;
    later[7] = 0x06; // offset 48 bytes: no ports
    let mut eip_later = later.clone();
    eip_later[15] = 9; // from 10.1.0.9, the elastic IP's host
    for p in [&mut first, &mut later, &mut eip_later] {
        p[10] = 0;
        p[11] = 0;
        let sum = checksum(&p[..20]);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
    }
    let verdicts = h.feed(0, &[first, later, eip_later]);
    assert_eq!(verdicts, [Verdict::Tx(1), Verdict::Done, Verdict::Tx(1)]);
    let sent = h.sent_on(&verdicts, 1);
    assert_eq!(source(&sent[0]), ip("203.0.113.1"));
    assert_eq!(
        source(&sent[1]),
        ip("203.0.113.9"),
        "a whole-address translation needs no ports"
    );
    assert!(h
        .show("ip nat statistics")
        .contains("dropped, cannot be translated: 1"));
}

#[test]
fn the_appliance_answers_arp_for_public_addresses_on_the_outside_link() {
    let mut h = Harness::new(SITE, NEIGHBORS);
    let host = support::harness::HOST_MACS[1];
    let ask = |target: [u8; 4]| {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&host);
        arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&host);
        arp.extend_from_slice(&[203, 0, 113, 2, 0, 0, 0, 0, 0, 0]);
        arp.extend_from_slice(&target);
        arp
    };
    let verdicts = h.feed_frames(1, &[ask([203, 0, 113, 9]), ask([203, 0, 113, 77])]);
    assert_eq!(
        verdicts,
        [Verdict::Tx(1), Verdict::Done],
        "the elastic IP is answered, a stranger not"
    );
    let reply = h.batch.frames()[0].data().to_vec();
    assert_eq!(reply[20..22], [0, 2], "an ARP reply");
    assert_eq!(reply[28..32], [203, 0, 113, 9]);
    assert_eq!(reply[22..28], kernel_bypass::snapshot::mac_for("eth1"));
}

/// A packet to mutate: a TCP SYN, a UDP datagram, an echo request, or an
/// ICMP error quoting (part of) one of them; from `src` to `dst`.
fn seed(kind: u8, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let udp = udp_packet(src, dst, 5000, 53, b"xyz");
    match kind % 4 {
        0 => tcp_packet(src, dst, 40000, 443, 0x02),
        1 => udp,
        2 => echo_request(src, dst, 64),
        _ => {
            let mut icmp = vec![ICMP_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
            icmp.extend_from_slice(&udp_packet(dst, src, 61000, 33434, b"probe"));
            ipv4(src, dst, PROTO_ICMP, 64, &icmp)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random corruptions of every kind of packet, fed from inside and
    /// from outside: no panic, and nothing leaves by the outside interface
    /// with an inside source address.
    #[test]
    fn hostile_packets_never_panic_or_leak_an_inside_address(
        kind in any::<u8>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        from_outside in any::<bool>(),
    ) {
        let mut h = Harness::new(SITE, NEIGHBORS);
        // A translation for replies and errors to find.
        let _ = h.feed(0, &[udp_packet(ip("10.1.0.2"), ip("203.0.113.2"), 5000, 53, b"q")]);
        let (src, dst) = match from_outside {
            true => (ip("203.0.113.2"), ip("203.0.113.1")),
            false => (ip("10.1.0.2"), ip("203.0.113.2")),
        };
        let mut packet = seed(kind, src, dst);
        for (at, byte) in edits {
            let at = at % packet.len();
            packet[at] = byte;
        }
        if let Some(cut) = cut {
            packet.truncate(cut % (packet.len() + 1));
        }
        let port = u16::from(from_outside);
        let verdicts = h.feed(port, &[packet]);
        for sent in h.sent_on(&verdicts, 1) {
            prop_assert!(sent.len() < 20 || !is_inside(source(&sent)), "leaked {:?}", sent);
        }
    }
}
