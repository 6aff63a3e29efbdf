//! The load balancer fed in memory: weights, sessions that outlive pool
//! changes and commits, drain, probe results, full NAT, a full session
//! table, and random packets to the virtual server (never a panic).

mod support;

use kernel_bypass::pipeline::Verdict;
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::Ipv4Addr;
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Corrupted packets to the virtual server and from the backends.
    #[test]
    fn hostile_packets_to_the_virtual_server_never_panic(
        udp in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        from_backend in any::<bool>(),
    ) {
        let mut h = Harness::new(&site("", " nat client\n"), NEIGHBORS);
        let _ = h.feed(0, &[syn(5000)]);
        let mut packet = match (udp, from_backend) {
            (true, false) => udp_packet(ip("10.1.0.2"), ip("198.51.100.10"), 5000, 80, b"q"),
            (false, false) => syn(5000),
            (_, true) => tcp_packet(ip("10.2.0.13"), ip("10.2.0.1"), 80, 1024, SYN | ACK),
        };
        for (at, byte) in edits {
            let at = at % packet.len();
            packet[at] = byte;
        }
        if let Some(cut) = cut {
            packet.truncate(cut % (packet.len() + 1));
        }
        let _ = h.feed(u16::from(from_backend), &[packet]);
    }
}
