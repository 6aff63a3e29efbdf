//! The load balancer fed in memory: weights, sessions that outlive pool
//! changes and commits, drain, probe results, full NAT, a full session
//! table, ICMP errors about balanced flows translated back, and random
//! packets to the virtual server (never a panic); the same for an IPv6
//! virtual server, its packets' checksums verified.

mod support;

use kernel_bypass::pipeline::Verdict;
use kernel_bypass::wire::{checksum, ipv6_payload_checksum, IPV6_HEADER, PROTO_ICMP, PROTO_TCP};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use support::harness::Harness;
use support::packets::*;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// Clients behind eth0, backends 10.2.0.11-14 behind eth1; the virtual
/// server 198.51.100.10:80 over reals .11 (weight 1), .12 (1), .13 (2).
fn site(extra_real: &str, farm_extra: &str) -> String {
    format!(
        "ip inspect max-sessions 100000\n\
         interface eth0\n ip address 10.1.0.1/24\n\
         interface eth1\n ip address 10.2.0.1/24\n\
         ip slb serverfarm WEB\n{farm_extra}\
          real 10.2.0.11\n  weight 1\n  inservice\n\
          real 10.2.0.12\n  weight 1\n  inservice\n\
          real 10.2.0.13\n  weight 2\n  inservice\n{extra_real}\
         ip slb vserver SITE\n virtual 198.51.100.10 tcp 80\n serverfarm WEB\n inservice\n"
    )
}

const NEIGHBORS: &[(&str, &str)] = &[
    ("eth0", "10.1.0.2"),
    ("eth1", "10.2.0.11"),
    ("eth1", "10.2.0.12"),
    ("eth1", "10.2.0.13"),
    ("eth1", "10.2.0.14"),
];

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn syn(client_port: u16) -> Vec<u8> {
    tcp_packet(ip("10.1.0.2"), ip("198.51.100.10"), client_port, 80, SYN)
}

fn addr_at(p: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(p[at], p[at + 1], p[at + 2], p[at + 3])
}

/// The backend each of `packets` went to (None: not sent to eth1).
fn backends_of(h: &mut Harness, packets: &[Vec<u8>]) -> Vec<Option<Ipv4Addr>> {
    let mut out = Vec::new();
    for chunk in packets.chunks(64) {
        let verdicts = h.feed(0, chunk);
        let frames = h.batch.frames().iter().zip(&verdicts);
        out.extend(
            frames.map(|(f, v)| (*v == Verdict::Tx(1)).then(|| addr_at(&f.data()[14..], 16))),
        );
    }
    out
}

fn counts(backends: &[Option<Ipv4Addr>]) -> HashMap<Ipv4Addr, usize> {
    let mut out = HashMap::new();
    for b in backends.iter().flatten() {
        *out.entry(*b).or_default() += 1;
    }
    out
}

#[test]
fn flows_spread_by_weight_and_stay_on_their_backend_through_pool_changes() {
    let mut h = Harness::new(&site("", ""), NEIGHBORS);
    let syns: Vec<_> = (0..4000).map(|p| syn(10000 + p)).collect();
    let first = backends_of(&mut h, &syns);
    assert!(first.iter().all(Option::is_some), "every SYN balanced");
    let shares = counts(&first);
    let share = |a: &str| shares.get(&ip(a)).copied().unwrap_or(0) as f64 / 4000.0;
    assert!((share("10.2.0.11") - 0.25).abs() < 0.05, "{shares:?}");
    assert!((share("10.2.0.13") - 0.5).abs() < 0.05, "{shares:?}");

    // A fourth real joins and .11 is drained: every existing flow's next
    // segment still goes where its SYN went.
    let text = site(" real 10.2.0.14\n  inservice\n", "").replace(
        "real 10.2.0.11\n  weight 1\n  inservice\n",
        "real 10.2.0.11\n  weight 1\n",
    );
    h.apply(&text);
    let acks: Vec<_> = (0..4000)
        .map(|p| tcp_packet(ip("10.1.0.2"), ip("198.51.100.10"), 10000 + p, 80, ACK))
        .collect();
    assert_eq!(
        backends_of(&mut h, &acks),
        first,
        "sessions keep their backend"
    );
    // New flows: none to the drained real, some to the new one.
    let new: Vec<_> = (0..2000).map(|p| syn(30000 + p)).collect();
    let after = counts(&backends_of(&mut h, &new));
    assert_eq!(after.get(&ip("10.2.0.11")), None, "{after:?}");
    assert!(
        after.get(&ip("10.2.0.14")).is_some_and(|n| *n > 200),
        "{after:?}"
    );
    let reals = h.show("ip slb reals");
    assert!(reals.contains("OUTOFSERVICE"), "{reals}");
}

#[test]
fn replies_come_from_the_virtual_server_and_failed_reals_get_no_new_flows() {
    let mut h = Harness::new(
        &site("", " probe CHECK\n").replace(
            "ip slb serverfarm",
            "ip slb probe CHECK tcp\n fall 2\nip slb serverfarm",
        ),
        NEIGHBORS,
    );
    let sent = backends_of(&mut h, &[syn(40000)]);
    let backend = sent[0].expect("balanced");
    let reply = tcp_packet(backend, ip("10.1.0.2"), 80, 40000, SYN | ACK);
    let verdicts = h.feed(1, &[reply]);
    let out = h.sent_on(&verdicts, 0);
    assert_eq!(out.len(), 1);
    assert_eq!(
        addr_at(&out[0], 12),
        ip("198.51.100.10"),
        "the reply's source is the virtual server"
    );
    assert!(h.show("ip slb sessions").starts_with("1 sessions"));

    // Two failed probes of .13 take it out of the table.
    let targets = h.load_balancer.probe_targets();
    assert_eq!(targets.len(), 3);
    let key = ("WEB".to_string(), "10.2.0.13:80".parse().unwrap());
    h.load_balancer.report(&key, false, "tcp connect: refused");
    let state_of_13 = |h: &Harness| {
        let reals = h.show("ip slb reals");
        let line = reals.lines().find(|l| l.starts_with("10.2.0.13:80"));
        line.unwrap_or("").to_string()
    };
    let line = state_of_13(&h);
    assert!(
        line.contains("OPERATIONAL"),
        "one failure is not enough: {line}"
    );
    h.load_balancer.report(&key, false, "tcp connect: refused");
    let flows: Vec<_> = (0..1000).map(|p| syn(20000 + p)).collect();
    let shares = counts(&backends_of(&mut h, &flows));
    assert_eq!(shares.get(&ip("10.2.0.13")), None, "{shares:?}");
    let line = state_of_13(&h);
    assert!(
        line.contains("FAILED") && line.ends_with("tcp connect: refused"),
        "{line}"
    );
    assert!(h.show("logging").contains("is down"));
}

#[test]
fn full_nat_hides_clients_behind_the_appliance() {
    let mut h = Harness::new(&site("", " nat client\n"), NEIGHBORS);
    let verdicts = h.feed(0, &[syn(41000)]);
    let out = h.sent_on(&verdicts, 1);
    assert_eq!(out.len(), 1, "{verdicts:?}");
    assert_eq!(
        addr_at(&out[0], 12),
        ip("10.2.0.1"),
        "the client is translated to the appliance"
    );
    let backend = addr_at(&out[0], 16);
    let port = u16::from_be_bytes([out[0][20], out[0][21]]);
    let reply = tcp_packet(backend, ip("10.2.0.1"), 80, port, SYN | ACK);
    let verdicts = h.feed(1, &[reply]);
    let back = h.sent_on(&verdicts, 0);
    assert_eq!(back.len(), 1, "{verdicts:?}");
    assert_eq!(addr_at(&back[0], 12), ip("198.51.100.10"));
    assert_eq!(addr_at(&back[0], 16), ip("10.1.0.2"));
    assert_eq!(u16::from_be_bytes([back[0][22], back[0][23]]), 41000);
}

#[test]
fn a_full_session_table_drops_new_flows_and_keeps_the_old() {
    let text = site("", "").replace("max-sessions 100000", "max-sessions 64");
    let mut h = Harness::new(&text, NEIGHBORS);
    let syns: Vec<_> = (0..1000).map(|p| syn(1000 + p)).collect();
    let sent = backends_of(&mut h, &syns);
    let kept = sent.iter().flatten().count();
    assert!(kept <= 64 && kept > 0, "{kept}");
    assert!(h.show("ip slb vserver").contains("SITE"));
    assert_eq!(
        h.exec("clear ip slb sessions"),
        Ok(format!("{kept} sessions cleared\n"))
    );
}

/// UDP over IPv4 with its checksum right over the pseudo-header.
fn udp_checksummed(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut p = udp_packet(src, dst, sport, dport, b"ask");
    let sum = udp4_sum(&p);
    p[26..28].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The UDP checksum of an IPv4 packet (0 over a right one).
fn udp4_sum(p: &[u8]) -> u16 {
    let mut pseudo = p[12..20].to_vec();
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&((p.len() - 20) as u16).to_be_bytes());
    pseudo.extend_from_slice(&p[20..]);
    checksum(&pseudo)
}

/// An ICMP error (`kind`: type, code) from `src` to `dst` quoting `about`.
fn icmp_error(kind: (u8, u8), src: Ipv4Addr, dst: Ipv4Addr, about: &[u8]) -> Vec<u8> {
    let mut icmp = vec![kind.0, kind.1, 0, 0, 0, 0, 0x05, 0xdc];
    icmp.extend_from_slice(about);
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ipv4(src, dst, PROTO_ICMP, 64, &icmp)
}

/// The quote of an ICMP error sent on, every checksum of it verified
/// (the outer header's, the message's, the quote's header and UDP).
fn quote_of(error: &[u8]) -> &[u8] {
    assert_eq!(checksum(&error[..20]), 0, "outer header checksum");
    assert_eq!(checksum(&error[20..]), 0, "ICMP checksum");
    let quote = &error[28..];
    assert_eq!(checksum(&quote[..20]), 0, "quoted header checksum");
    assert_eq!(udp4_sum(quote), 0, "quoted UDP checksum");
    quote
}

const PORT_UNREACHABLE: (u8, u8) = (3, 3);
const FRAGMENTATION_NEEDED: (u8, u8) = (3, 4);

#[test]
fn icmp_errors_about_balanced_flows_are_translated_back_both_ways() {
    for full_nat in [false, true] {
        let farm = if full_nat {
            " nat client
"
        } else {
            ""
        };
        let mut h = Harness::new(&site("", farm).replace("tcp 80", "udp 80"), NEIGHBORS);
        let (client, vip) = (ip("10.1.0.2"), ip("198.51.100.10"));
        let verdicts = h.feed(0, &[udp_checksummed(client, vip, 5000, 80)]);
        let sent = h.sent_on(&verdicts, 1);
        assert_eq!(sent.len(), 1, "{verdicts:?}");
        let (backend, towards) = (addr_at(&sent[0], 16), addr_at(&sent[0], 12));
        let client_port = port_at(&sent[0], 20);

        // The backend has no listener, a router on its way a smaller MTU:
        // the client hears of its own packet, from the virtual server.
        for (kind, from) in [
            (PORT_UNREACHABLE, backend),
            (FRAGMENTATION_NEEDED, ip("10.2.0.254")),
        ] {
            let error = icmp_error(kind, from, towards, &sent[0]);
            let verdicts = h.feed(1, &[error]);
            let back = h.sent_on(&verdicts, 0);
            assert_eq!(back.len(), 1, "{full_nat} {kind:?}: {verdicts:?}");
            assert_eq!(addr_at(&back[0], 12), vip, "from the virtual server");
            assert_eq!(addr_at(&back[0], 16), client);
            let quote = quote_of(&back[0]);
            assert_eq!((addr_at(quote, 12), port_at(quote, 20)), (client, 5000));
            assert_eq!((addr_at(quote, 16), port_at(quote, 22)), (vip, 80));
        }

        // The client's port is closed: the backend hears of its reply.
        let reply = udp_checksummed(backend, towards, 80, client_port);
        let verdicts = h.feed(1, &[reply]);
        let replied = h.sent_on(&verdicts, 0);
        assert_eq!(replied.len(), 1, "{verdicts:?}");
        let error = icmp_error(PORT_UNREACHABLE, client, vip, &replied[0]);
        let verdicts = h.feed(0, &[error]);
        let out = h.sent_on(&verdicts, 1);
        assert_eq!(out.len(), 1, "{full_nat}: {verdicts:?}");
        assert_eq!(addr_at(&out[0], 12), towards, "from the client's stand-in");
        assert_eq!(addr_at(&out[0], 16), backend);
        let quote = quote_of(&out[0]);
        assert_eq!((addr_at(quote, 12), port_at(quote, 20)), (backend, 80));
        assert_eq!(
            (addr_at(quote, 16), port_at(quote, 22)),
            (towards, client_port)
        );

        // About no flow of ours: routed as it is.
        let stranger = udp_checksummed(client, backend, 5999, 80);
        let verdicts = h.feed(
            1,
            &[icmp_error(PORT_UNREACHABLE, backend, client, &stranger)],
        );
        let passed = h.sent_on(&verdicts, 0);
        assert_eq!(passed.len(), 1, "{verdicts:?}");
        assert_eq!(addr_at(&passed[0], 12), backend);
    }
}

/// Clients behind eth0 (2001:db8:1::/64), backends 2001:db8:2::11-14
/// behind eth1; virtual server [2001:db8:80::80]:80 over ::11-::13 and
/// udp 53 over ::11 and ::12.
fn site6(farm_extra: &str, extra_real: &str) -> String {
    format!(
        "ip inspect max-sessions 100000\n\
         interface eth0\n ipv6 address 2001:db8:1::1/64\n\
         interface eth1\n ipv6 address 2001:db8:2::1/64\n\
         ip slb serverfarm WEB6\n{farm_extra}\
          real 2001:db8:2::11\n  inservice\n\
          real 2001:db8:2::12\n  inservice\n\
          real 2001:db8:2::13\n  inservice\n{extra_real}\
         ip slb serverfarm DNS6\n\
          real 2001:db8:2::11\n  inservice\n\
          real 2001:db8:2::12\n  inservice\n\
         ip slb vserver SITE6\n virtual 2001:db8:80::80 tcp 80\n serverfarm WEB6\n inservice\n\
         ip slb vserver NAMES6\n virtual 2001:db8:80::80 udp 53\n serverfarm DNS6\n inservice\n"
    )
}

const NEIGHBORS6: &[(&str, &str)] = &[
    ("eth0", "2001:db8:1::2"),
    ("eth1", "2001:db8:2::11"),
    ("eth1", "2001:db8:2::12"),
    ("eth1", "2001:db8:2::13"),
    ("eth1", "2001:db8:2::14"),
];

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn addr6_at(p: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0; 16];
    a.copy_from_slice(&p[at..at + 16]);
    Ipv6Addr::from(a)
}

fn port_at(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

const CLIENT6: &str = "2001:db8:1::2";
const VIP6: &str = "2001:db8:80::80";

fn syn6(client_port: u16) -> Vec<u8> {
    tcp6_packet(ip6(CLIENT6), ip6(VIP6), client_port, 80, SYN)
}

/// The packets sent on `port`, each checked: TCP/UDP checksum right over
/// the IPv6 pseudo-header, hop limit one less.
fn sent6(h: &Harness, verdicts: &[Verdict], port: u16) -> Vec<Vec<u8>> {
    let out = h.sent_on(verdicts, port);
    for p in &out {
        assert_eq!(ipv6_payload_checksum(p), 0, "checksum of {p:02x?}");
        assert_eq!(p[7], 63, "hop limit");
    }
    out
}

/// The backend each of `packets` (to the virtual server) went to.
fn backends6(h: &mut Harness, packets: &[Vec<u8>]) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for chunk in packets.chunks(64) {
        let verdicts = h.feed6(0, chunk);
        let sent = sent6(h, &verdicts, 1);
        assert_eq!(sent.len(), chunk.len(), "{verdicts:?}");
        out.extend(sent.iter().map(|p| {
            assert_eq!(port_at(p, IPV6_HEADER + 2), 80);
            addr6_at(p, 24)
        }));
    }
    out
}

#[test]
fn ipv6_flows_spread_over_the_reals_keep_them_and_replies_come_from_the_virtual_server() {
    let mut h = Harness::new(&site6("", ""), NEIGHBORS6);
    let syns: Vec<_> = (0..3000).map(|p| syn6(10000 + p)).collect();
    let first = backends6(&mut h, &syns);
    let mut shares: HashMap<Ipv6Addr, usize> = HashMap::new();
    for b in &first {
        *shares.entry(*b).or_default() += 1;
    }
    assert_eq!(shares.len(), 3, "{shares:?}");
    assert!(
        shares.values().all(|n| (800..1200).contains(n)),
        "{shares:?}"
    );

    // A fourth real joins: every flow's next segment goes where its SYN
    // went, its checksum right again.
    h.apply(&site6("", " real 2001:db8:2::14\n  inservice\n"));
    let acks: Vec<_> = (0..3000)
        .map(|p| tcp6_packet(ip6(CLIENT6), ip6(VIP6), 10000 + p, 80, ACK))
        .collect();
    assert_eq!(
        backends6(&mut h, &acks),
        first,
        "sessions keep their backend"
    );

    // The backend's answer leaves from the virtual server to the client.
    let backend = first[0];
    let reply = tcp6_packet(backend, ip6(CLIENT6), 80, 10000, SYN | ACK);
    let verdicts = h.feed6(1, &[reply]);
    let back = sent6(&h, &verdicts, 0);
    assert_eq!(back.len(), 1, "{verdicts:?}");
    assert_eq!(addr6_at(&back[0], 8), ip6(VIP6), "from the virtual server");
    assert_eq!(addr6_at(&back[0], 24), ip6(CLIENT6));
    assert_eq!(port_at(&back[0], IPV6_HEADER), 80);
    assert_eq!(port_at(&back[0], IPV6_HEADER + 2), 10000);

    // UDP: to a real of its own farm and back, checksums right.
    let ask = udp6_checksummed(ip6(CLIENT6), ip6(VIP6), 5353, 53, b"who");
    let verdicts = h.feed6(0, &[ask]);
    let asked = sent6(&h, &verdicts, 1);
    assert_eq!(asked.len(), 1, "{verdicts:?}");
    let dns = addr6_at(&asked[0], 24);
    assert!(
        [ip6("2001:db8:2::11"), ip6("2001:db8:2::12")].contains(&dns),
        "{dns}"
    );
    let answer = udp6_checksummed(dns, ip6(CLIENT6), 53, 5353, b"dns");
    let verdicts = h.feed6(1, &[answer]);
    let answered = sent6(&h, &verdicts, 0);
    assert_eq!(answered.len(), 1, "{verdicts:?}");
    assert_eq!(addr6_at(&answered[0], 8), ip6(VIP6));

    let vservers = h.show("ip slb vserver");
    assert!(vservers.contains("[2001:db8:80::80]:80"), "{vservers}");
    assert!(vservers.contains("[2001:db8:80::80]:53"), "{vservers}");
    let reals = h.show("ip slb reals");
    assert!(reals.contains("[2001:db8:2::14]:80"), "{reals}");
    let sessions = h.show("ip slb sessions");
    assert!(sessions.starts_with("3001 sessions"), "{sessions}");
    let line = format!("tcp [{CLIENT6}]:10000 -> [{VIP6}]:80 -> real [{backend}]:80");
    assert!(sessions.contains(&line), "{line} in {sessions}");
    assert_eq!(
        h.exec("clear ip slb sessions"),
        Ok("3001 sessions cleared\n".to_string())
    );
}

/// An ICMPv6 error (type, code, and the word after: the MTU of a packet
/// too big) quoting `about`.
fn icmp6_error(kind: (u8, u8, u32), src: Ipv6Addr, dst: Ipv6Addr, about: &[u8]) -> Vec<u8> {
    let mut message = vec![kind.0, kind.1, 0, 0];
    message.extend_from_slice(&kind.2.to_be_bytes());
    message.extend_from_slice(about);
    icmp6(src, dst, 64, &message)
}

#[test]
fn icmpv6_errors_about_balanced_flows_are_translated_back_both_ways() {
    let mut h = Harness::new(&site6("", ""), NEIGHBORS6);
    let (client, vip) = (ip6(CLIENT6), ip6(VIP6));
    let ask = udp6_checksummed(client, vip, 5353, 53, b"who");
    let verdicts = h.feed6(0, &[ask]);
    let asked = sent6(&h, &verdicts, 1);
    assert_eq!(asked.len(), 1, "{verdicts:?}");
    let dns = addr6_at(&asked[0], 24);

    // No listener at the backend: the client hears of its own datagram,
    // from the virtual server, every checksum right.
    let unreachable = icmp6_error((1, 4, 0), dns, client, &asked[0]);
    let verdicts = h.feed6(1, &[unreachable]);
    let back = sent6_icmp(&h, &verdicts, 0);
    assert_eq!(back.len(), 1, "{verdicts:?}");
    assert_eq!(addr6_at(&back[0], 8), vip, "from the virtual server");
    let quote = &back[0][IPV6_HEADER + 8..];
    assert_eq!(ipv6_payload_checksum(quote), 0, "the quote's UDP checksum");
    assert_eq!(
        (addr6_at(quote, 8), port_at(quote, IPV6_HEADER)),
        (client, 5353)
    );
    assert_eq!(
        (addr6_at(quote, 24), port_at(quote, IPV6_HEADER + 2)),
        (vip, 53)
    );

    // A big answer meets a smaller link on the client's side: the router
    // there tells the backend, quoting what fits in 1280 bytes.
    let answer = udp6_checksummed(dns, client, 53, 5353, &[7; 1400]);
    let verdicts = h.feed6(1, std::slice::from_ref(&answer));
    let answered = sent6(&h, &verdicts, 0);
    assert_eq!(answered.len(), 1, "{verdicts:?}");
    let router = ip6("2001:db8:1::fe");
    let quoted = &answered[0][..1280 - IPV6_HEADER - 8];
    let too_big = icmp6_error((2, 0, 1400), router, vip, quoted);
    let verdicts = h.feed6(0, &[too_big]);
    let out = sent6_icmp(&h, &verdicts, 1);
    assert_eq!(out.len(), 1, "{verdicts:?}");
    assert_eq!(addr6_at(&out[0], 24), dns, "to the backend");
    let quote = &out[0][IPV6_HEADER + 8..];
    assert_eq!((addr6_at(quote, 8), port_at(quote, IPV6_HEADER)), (dns, 53));
    assert_eq!(
        quote[IPV6_HEADER + 6..IPV6_HEADER + 8],
        answer[IPV6_HEADER + 6..IPV6_HEADER + 8],
        "the cut quote's UDP checksum is the backend's own again"
    );
}

/// The ICMPv6 messages sent on `port`, their checksums verified.
fn sent6_icmp(h: &Harness, verdicts: &[Verdict], port: u16) -> Vec<Vec<u8>> {
    let out = h.sent_on(verdicts, port);
    for p in &out {
        assert_eq!(p[6], 58, "ICMPv6");
        assert_eq!(ipv6_payload_checksum(p), 0, "checksum of {p:02x?}");
    }
    out
}

#[test]
fn ipv6_full_nat_hides_clients_behind_the_appliance() {
    let mut h = Harness::new(&site6(" nat client\n", ""), NEIGHBORS6);
    let verdicts = h.feed6(0, &[syn6(41000)]);
    let out = sent6(&h, &verdicts, 1);
    assert_eq!(out.len(), 1, "{verdicts:?}");
    let appliance = ip6("2001:db8:2::1");
    assert_eq!(addr6_at(&out[0], 8), appliance, "the client is translated");
    let backend = addr6_at(&out[0], 24);
    let port = port_at(&out[0], IPV6_HEADER);
    assert_ne!(port, 0);
    let reply = tcp6_packet(backend, appliance, 80, port, SYN | ACK);
    let verdicts = h.feed6(1, &[reply]);
    let back = sent6(&h, &verdicts, 0);
    assert_eq!(back.len(), 1, "{verdicts:?}");
    assert_eq!(addr6_at(&back[0], 8), ip6(VIP6));
    assert_eq!(addr6_at(&back[0], 24), ip6(CLIENT6));
    assert_eq!(port_at(&back[0], IPV6_HEADER + 2), 41000);
    // The same flow keeps its backend and its appliance port.
    let verdicts = h.feed6(0, &[tcp6_packet(ip6(CLIENT6), ip6(VIP6), 41000, 80, ACK)]);
    let again = sent6(&h, &verdicts, 1);
    assert_eq!(again.len(), 1, "{verdicts:?}");
    assert_eq!(addr6_at(&again[0], 24), backend);
    assert_eq!(port_at(&again[0], IPV6_HEADER), port);
}

/// `site6` with both interfaces and the virtual servers in VRF T, or
/// (`vservers_global`) the virtual servers left in the global table.
fn site6_in_vrf(farm_extra: &str, vservers_global: bool) -> String {
    let text = site6(farm_extra, "")
        .replace(
            "interface eth0\n",
            "vrf definition T\ninterface eth0\n vrf forwarding T\n",
        )
        .replace("interface eth1\n", "interface eth1\n vrf forwarding T\n");
    match vservers_global {
        true => text,
        false => text
            .replace("tcp 80\n", "tcp 80\n vrf T\n")
            .replace("udp 53\n", "udp 53\n vrf T\n"),
    }
}

#[test]
fn an_ipv6_virtual_server_in_a_vrf_balances_that_vrf_only() {
    for farm in ["", " nat client\n"] {
        let mut h = Harness::new(&site6_in_vrf(farm, false), NEIGHBORS6);
        let verdicts = h.feed6(0, &[syn6(43000)]);
        let out = sent6(&h, &verdicts, 1);
        assert_eq!(out.len(), 1, "{farm:?}: {verdicts:?}");
        let backend = addr6_at(&out[0], 24);
        assert_ne!(backend, ip6(VIP6), "balanced");
        let (towards, port) = (addr6_at(&out[0], 8), port_at(&out[0], IPV6_HEADER));
        let reply = tcp6_packet(backend, towards, 80, port, SYN | ACK);
        let verdicts = h.feed6(1, &[reply]);
        let back = sent6(&h, &verdicts, 0);
        assert_eq!(back.len(), 1, "{farm:?}: {verdicts:?}");
        assert_eq!(addr6_at(&back[0], 8), ip6(VIP6), "from the virtual server");
        assert_eq!(addr6_at(&back[0], 24), ip6(CLIENT6));
        assert_eq!(port_at(&back[0], IPV6_HEADER + 2), 43000);
        let vservers = h.show("ip slb vserver");
        assert!(
            vservers.contains("[2001:db8:80::80]:80 vrf T"),
            "{vservers}"
        );
        assert!(h.show("ip slb sessions").starts_with("1 sessions"));
    }
    // The same virtual server in the global table: the VRF's clients do
    // not reach it.
    let mut h = Harness::new(&site6_in_vrf("", true), NEIGHBORS6);
    let verdicts = h.feed6(0, &[syn6(43000)]);
    assert_eq!(
        h.sent_on(&verdicts, 1),
        Vec::<Vec<u8>>::new(),
        "{verdicts:?}"
    );
    assert!(h.show("ip slb sessions").starts_with("0 sessions"));
}

#[test]
fn ipv6_extension_headers_are_walked_to_the_ports() {
    let mut h = Harness::new(&site6("", ""), NEIGHBORS6);
    // A destination-options header (8 bytes of padding) before TCP.
    let plain = syn6(42000);
    let mut with_options = plain[..IPV6_HEADER].to_vec();
    with_options[6] = 60;
    with_options.extend_from_slice(&[PROTO_TCP, 0, 1, 4, 0, 0, 0, 0]);
    with_options.extend_from_slice(&plain[IPV6_HEADER..]);
    let len = (with_options.len() - IPV6_HEADER) as u16;
    with_options[4..6].copy_from_slice(&len.to_be_bytes());
    let verdicts = h.feed6(0, &[with_options]);
    let out = h.sent_on(&verdicts, 1);
    assert_eq!(out.len(), 1, "{verdicts:?}");
    // Without its options header it is the plain SYN, rewritten: the
    // checksum is right over the new pseudo-header.
    let mut stripped = out[0][..IPV6_HEADER].to_vec();
    stripped[6] = PROTO_TCP;
    stripped[4..6].copy_from_slice(&((out[0].len() - IPV6_HEADER - 8) as u16).to_be_bytes());
    stripped.extend_from_slice(&out[0][IPV6_HEADER + 8..]);
    assert_eq!(ipv6_payload_checksum(&stripped), 0);
    assert_ne!(addr6_at(&out[0], 24), ip6(VIP6), "balanced");
}

#[test]
fn an_ipv6_virtual_address_on_the_clients_link_is_answered_by_neighbour_discovery() {
    let on_link = ip6("2001:db8:1::80");
    let mut h = Harness::new(&site6("", "").replace(VIP6, "2001:db8:1::80"), NEIGHBORS6);
    let client_mac = support::harness::HOST_MACS[0];
    for solicit in [
        neighbor_solicit(ip6(CLIENT6), client_mac, on_link),
        // Unreachability detection: unicast to the address itself.
        {
            let mut p = neighbor_solicit(ip6(CLIENT6), client_mac, on_link);
            p[24..40].copy_from_slice(&on_link.octets());
            p[42..44].copy_from_slice(&[0, 0]);
            let sum = ipv6_payload_checksum(&p);
            p[42..44].copy_from_slice(&sum.to_be_bytes());
            p
        },
    ] {
        let verdicts = h.feed6(0, &[solicit]);
        let answer = h.sent_on(&verdicts, 0);
        assert_eq!(answer.len(), 1, "{verdicts:?}");
        assert_eq!(answer[0][IPV6_HEADER], 136, "an advertisement");
        assert_eq!(addr6_at(&answer[0], IPV6_HEADER + 8), on_link);
    }
    let verdicts = h.feed6(0, &[tcp6_packet(ip6(CLIENT6), on_link, 40000, 80, SYN)]);
    assert_eq!(sent6(&h, &verdicts, 1).len(), 1, "balanced: {verdicts:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Corrupted packets of either family to a full-NAT virtual server and
    /// from its backends, or ICMP errors quoting them; IPv6 with or
    /// without an extension header of any kind in front.
    #[test]
    fn hostile_packets_to_the_virtual_server_never_panic(
        ipv6 in any::<bool>(),
        udp in any::<bool>(),
        error in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        from_backend in any::<bool>(),
        extension in proptest::option::of((prop_oneof![Just(0u8), Just(43), Just(44), Just(60)], any::<[u8; 8]>())),
    ) {
        let (mut h, mut packet) = match ipv6 {
            false => {
                let mut h = Harness::new(&site("", " nat client\n"), NEIGHBORS);
                let _ = h.feed(0, &[syn(5000)]);
                let packet = match (udp, from_backend) {
                    (true, false) => udp_packet(ip("10.1.0.2"), ip("198.51.100.10"), 5000, 80, b"q"),
                    (false, false) => syn(5000),
                    (_, true) => tcp_packet(ip("10.2.0.13"), ip("10.2.0.1"), 80, 1024, SYN | ACK),
                };
                (h, packet)
            }
            true => {
                let mut h = Harness::new(&site6(" nat client\n", ""), NEIGHBORS6);
                let _ = h.feed6(0, &[syn6(5000)]);
                let mut packet = match (udp, from_backend) {
                    (true, false) => udp6_checksummed(ip6(CLIENT6), ip6(VIP6), 5000, 53, b"q"),
                    (false, false) => syn6(5000),
                    (_, true) => tcp6_packet(ip6("2001:db8:2::13"), ip6("2001:db8:2::1"), 80, 1024, SYN | ACK),
                };
                if let Some((kind, mut header)) = extension {
                    header[0] = packet[6];
                    packet[6] = kind;
                    packet.splice(IPV6_HEADER..IPV6_HEADER, header);
                    let len = (packet.len() - IPV6_HEADER) as u16;
                    packet[4..6].copy_from_slice(&len.to_be_bytes());
                }
                (h, packet)
            }
        };
        if error {
            // About the packet, from where it went, to where it came from.
            packet = match ipv6 {
                false => icmp_error(PORT_UNREACHABLE, addr_at(&packet, 16), addr_at(&packet, 12), &packet),
                true => icmp6_error((1, 4, 0), addr6_at(&packet, 24), addr6_at(&packet, 8), &packet),
            };
        }
        for (at, byte) in edits {
            let at = at % packet.len();
            packet[at] = byte;
        }
        if let Some(cut) = cut {
            packet.truncate(cut % (packet.len() + 1));
        }
        let port = u16::from(from_backend);
        let _ = if ipv6 { h.feed6(port, &[packet]) } else { h.feed(port, &[packet]) };
    }
}
