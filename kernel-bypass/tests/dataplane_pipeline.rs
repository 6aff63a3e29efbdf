//! The pipeline fed in memory: header rewriting, VLANs, ECMP, VXLAN
//! flooding, IPv4 fragmentation, IPv6 (forwarding, Neighbour Discovery,
//! ICMPv6), and random/malformed frames (never a panic; always counted).

mod support;

use grammar::config::{Config, Ipv6Route, NextHop, StaticRoute, VXLAN_DEFAULT_PORT};
use kernel_bypass::counters::{event_total, Counter, WorkerCounters};
use kernel_bypass::features::{Action, Family, FeatureNode, Packet as FeaturePacket, Point};
use kernel_bypass::frame::Batch;
use kernel_bypass::io::PacketPort;
use kernel_bypass::local::{LocalStack, UdpSocket};
use kernel_bypass::pipeline::{
    neighbor6_key, neighbor_key, LocalHandle, Pipeline, Shared, Verdict,
};
use kernel_bypass::snapshot::{mac_for, IfaceId, InterfaceIds, Snapshot, GLOBAL_TABLE};
use kernel_bypass::wire::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use support::dataplane::{config_of, interface, vxlan_interface};
use support::packets::*;

const HOST: Mac = [0x02, 0, 0, 0, 0, 0x10];
const ROUTER_A: Mac = [0x02, 0, 0, 0, 0, 0xa];
const ROUTER_B: Mac = [0x02, 0, 0, 0, 0, 0xb];

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An interface config with one IPv4 and one IPv6 address.
fn dual(v4: &str, v6: &str) -> grammar::config::Interface {
    let mut i = interface(&[v4]);
    i.ipv6_addresses.insert(v6.parse().unwrap());
    i
}

/// eth0 (port 0) 10.1.0.1/24 + 2001:db8:1::1/64 with eth0.100
/// 10.100.0.1/24 + 2001:db8:100::1/64, eth1 (port 1) 10.2.0.1/24 +
/// 2001:db8:2::1/64, vxlan7 10.7.0.1/24 + 2001:db8:7::1/64 over eth0 to two
/// remotes, and 10.9.0.0/16 and 2001:db8:9::/48 via two routers on eth1
/// (ECMP).
fn config() -> Config {
    let mut sub = dual("10.100.0.1/24", "2001:db8:100::1/64");
    sub.dot1q = Some(100);
    let mut tunnel = vxlan_interface("10.7.0.1/24", 7, "eth0", &["10.1.0.50", "10.1.0.51"]);
    tunnel
        .ipv6_addresses
        .insert("2001:db8:7::1/64".parse().unwrap());
    let mut c = config_of([
        ("eth0", dual("10.1.0.1/24", "2001:db8:1::1/64")),
        ("eth1", dual("10.2.0.1/24", "2001:db8:2::1/64")),
        ("eth0.100", sub),
        ("vxlan7", tunnel),
    ]);
    for (router, router6) in [("10.2.0.2", "2001:db8:2::2"), ("10.2.0.3", "2001:db8:2::3")] {
        c.routes_mut().add_ipv4(StaticRoute {
            prefix: "10.9.0.0/16".parse().unwrap(),
            next_hop: NextHop::Address(ip(router)),
            distance: 1,
        });
        c.routes_mut().add_ipv6(Ipv6Route {
            prefix: "2001:db8:9::/48".parse().unwrap(),
            next_hop: NextHop::Address(ip6(router6)),
            distance: 1,
        });
    }
    c
}

struct Harness {
    snap: Snapshot,
    shared: Arc<Shared>,
    counters: Arc<WorkerCounters>,
    pipeline: Pipeline,
    batch: Batch,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(config(), None)
    }

    /// A harness on `config` (interfaces named as in `config()`) whose
    /// pipeline delivers to and routes for `local`.
    fn with(config: Config, local: Option<LocalHandle>) -> Harness {
        let snap = Snapshot::compile(&config, &mut InterfaceIds::default(), &|name| match name {
            "eth0" => Some(0),
            "eth1" => Some(1),
            _ => None,
        })
        .expect("compile");
        let shared = Arc::new(Shared::default());
        let counters = Arc::new(WorkerCounters::default());
        let pipeline = Pipeline::new(shared.clone(), counters.clone(), local);
        let h = Harness {
            snap,
            shared,
            counters,
            pipeline,
            batch: Batch::new(64),
        };
        h.learn("eth0", "10.1.0.2", HOST);
        h.learn("eth0", "10.1.0.50", ROUTER_A);
        h.learn("eth0", "10.1.0.51", ROUTER_B);
        h.learn("eth1", "10.2.0.2", ROUTER_A);
        h.learn("eth1", "10.2.0.3", ROUTER_B);
        h.learn6("eth0", "2001:db8:1::2", HOST);
        h.learn6("eth1", "2001:db8:2::2", ROUTER_A);
        h.learn6("eth1", "2001:db8:2::3", ROUTER_B);
        h
    }

    fn id(&self, name: &str) -> IfaceId {
        self.snap
            .interfaces
            .iter()
            .flatten()
            .find(|i| i.name == name)
            .map(|i| i.id)
            .unwrap()
    }

    fn learn(&self, iface: &str, addr: &str, mac: Mac) {
        let key = neighbor_key(self.id(iface), ip(addr));
        self.shared.neighbors.learn(key, mac_to_u64(&mac), 0);
    }

    fn learn6(&self, iface: &str, addr: &str, mac: Mac) {
        let key = neighbor6_key(self.id(iface), ip6(addr));
        self.shared.neighbors6.learn(key, mac_to_u64(&mac), 0);
    }

    /// Runs frames received on `port` through the pipeline; returns each
    /// verdict with the frame's bytes afterwards.
    fn feed(&mut self, port: u16, frames: &[Vec<u8>]) -> Vec<(Verdict, Vec<u8>)> {
        self.batch.clear();
        for f in frames {
            assert!(self.batch.push_copy(f));
        }
        let verdicts = self
            .pipeline
            .process(&self.snap, port, &mut self.batch)
            .to_vec();
        verdicts
            .into_iter()
            .zip(self.batch.frames())
            .map(|(v, f)| (v, f.data().to_vec()))
            .collect()
    }

    fn total(&self, c: Counter) -> u64 {
        event_total(std::slice::from_ref(&self.counters), c)
    }
}

#[test]
fn forwarding_rewrites_macs_decrements_ttl_and_keeps_the_checksum_valid() {
    let mut h = Harness::new();
    let eth0 = mac_for("eth0");
    let packet = udp_packet(ip("10.1.0.2"), ip("10.2.0.2"), 1000, 53, b"q");
    let out = h.feed(0, &[ethernet(eth0, HOST, ETHERTYPE_IPV4, &packet)]);
    assert_eq!(out[0].0, Verdict::Tx(1));
    let f = &out[0].1;
    assert_eq!(mac_at(f, 0), ROUTER_A);
    assert_eq!(mac_at(f, 6), mac_for("eth1"));
    let ip_header = &f[ETH_HEADER..ETH_HEADER + IPV4_HEADER];
    assert_eq!(ip_header[IPV4_TTL], 63);
    assert_eq!(checksum(ip_header), 0);
}

#[test]
fn too_big_with_dont_fragment_tells_the_sender_the_mtu() {
    let mut h = Harness::new();
    h.learn("vxlan7", "10.7.0.9", [0x02, 0, 0, 0, 0, 0x79]);
    let mut packet = udp_packet(ip("10.1.0.2"), ip("10.7.0.9"), 1, 2, &[0; 1460]);
    packet[IPV4_FLAGS] |= 0x40;
    let sum = checksum_adjust(be16(&packet, IPV4_CHECKSUM), 0, IPV4_DF);
    put_be16(&mut packet, IPV4_CHECKSUM, sum);
    let out = h.feed(
        0,
        &[ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet)],
    );
    assert_eq!(out[0].0, Verdict::Tx(0));
    let icmp = &out[0].1[ETH_HEADER..];
    assert_eq!(ipv4_at(icmp, IPV4_DST), ip("10.1.0.2"));
    assert_eq!(
        icmp[IPV4_HEADER..IPV4_HEADER + 2],
        [ICMP_DEST_UNREACHABLE, ICMP_CODE_FRAGMENTATION_NEEDED]
    );
    assert_eq!(
        be16(icmp, IPV4_HEADER + 6),
        1450,
        "the VXLAN interface's MTU"
    );
    assert_eq!(h.total(Counter::Ipv4MtuExceeded), 1);
}

#[test]
fn directed_broadcasts_are_not_forwarded() {
    let mut h = Harness::new();
    let packet = udp_packet(ip("10.1.0.2"), ip("10.2.0.255"), 1000, 53, b"q");
    let out = h.feed(
        0,
        &[ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet)],
    );
    assert_eq!(out[0].0, Verdict::Done);
    assert_eq!(h.total(Counter::Ipv4NotRoutable), 1);
}

#[test]
fn echo_on_a_vlan_subinterface_is_answered_with_the_same_tag() {
    let mut h = Harness::new();
    h.learn("eth0.100", "10.100.0.2", HOST);
    let request = echo_request(ip("10.100.0.2"), ip("10.100.0.1"), 64);
    let frame = tagged(mac_for("eth0"), HOST, 100, ETHERTYPE_IPV4, &request);
    let out = h.feed(0, &[frame]);
    assert_eq!(out[0].0, Verdict::Tx(0));
    let f = &out[0].1;
    assert_eq!(be16(f, 12), ETHERTYPE_VLAN);
    assert_eq!(be16(f, 14), 100);
    let reply = &f[ETH_HEADER + VLAN_TAG..];
    assert_eq!(ipv4_at(reply, IPV4_DST), ip("10.100.0.2"));
    assert_eq!(reply[IPV4_HEADER], ICMP_ECHO_REPLY);
    assert_eq!(checksum(&reply[IPV4_HEADER..]), 0);
    let unknown = tagged(
        mac_for("eth0"),
        HOST,
        200,
        ETHERTYPE_IPV4,
        &echo_request(ip("10.100.0.2"), ip("10.100.0.1"), 64),
    );
    assert_eq!(h.feed(0, &[unknown])[0].0, Verdict::Done);
    assert_eq!(h.total(Counter::EthernetUnknownVlan), 1);
}

#[test]
fn ecmp_spreads_flows_over_both_next_hops_and_keeps_each_flow_on_one() {
    let mut h = Harness::new();
    let mut seen = std::collections::HashSet::new();
    for sport in 0..64u16 {
        let packet = udp_packet(ip("10.1.0.2"), ip("10.9.1.1"), 1000 + sport, 80, b"x");
        let frame = ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet);
        let out = h.feed(0, &[frame.clone(), frame]);
        assert_eq!(out[0].1[..6], out[1].1[..6], "one flow, one next hop");
        seen.insert(mac_at(&out[0].1, 0));
    }
    assert_eq!(seen, [ROUTER_A, ROUTER_B].into());
}

#[test]
fn unknown_unicast_into_vxlan_is_replicated_to_every_remote() {
    let mut h = Harness::new();
    h.learn("vxlan7", "10.7.0.9", [0x02, 0, 0, 0, 0, 0x79]);
    let packet = udp_packet(ip("10.1.0.2"), ip("10.7.0.9"), 1, 2, b"overlay");
    let out = h.feed(
        0,
        &[ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet)],
    );
    let (replicas, replica_verdicts) = h.pipeline.replicas();
    assert_eq!(out[0].0, Verdict::Tx(0));
    assert_eq!(replica_verdicts, &[Verdict::Tx(0)]);
    let mut remotes = vec![ipv4_at(&out[0].1, ETH_HEADER + IPV4_DST)];
    remotes.push(ipv4_at(replicas[0].data(), ETH_HEADER + IPV4_DST));
    remotes.sort();
    assert_eq!(remotes, vec![ip("10.1.0.50"), ip("10.1.0.51")]);
    let outer = &out[0].1[ETH_HEADER..];
    assert_eq!(be16(outer, IPV4_HEADER + 2), VXLAN_DEFAULT_PORT);
    assert_eq!(be32(outer, IPV4_HEADER + UDP_HEADER + 4) >> 8, 7);
    let inner = &outer[VXLAN_OVERHEAD..];
    assert_eq!(ipv4_at(inner, ETH_HEADER + IPV4_DST), ip("10.7.0.9"));
    assert_eq!(h.total(Counter::VxlanFlooded), 1);
}

/// `inner` on VNI 7 from the remote VTEP 10.1.0.51, received on eth0.
fn from_remote_vtep(inner: &[u8]) -> Vec<u8> {
    let outer = udp_packet(
        ip("10.1.0.51"),
        ip("10.1.0.1"),
        50000,
        VXLAN_DEFAULT_PORT,
        &vxlan(7, inner),
    );
    ethernet(mac_for("eth0"), ROUTER_B, ETHERTYPE_IPV4, &outer)
}

#[test]
fn pieces_of_packets_for_us_are_counted_not_answered_or_decapsulated() {
    let mut h = Harness::new();
    h.learn("eth0", "10.1.0.2", HOST);
    let more_fragments = 0x2000;
    let echo = with_header(
        &echo_request(ip("10.1.0.2"), ip("10.1.0.1"), 64),
        1,
        more_fragments,
        &[],
    );
    let inner = ethernet(mac_for("vxlan7"), HOST, ETHERTYPE_IPV4, &echo);
    let tunnelled = from_remote_vtep(&inner);
    let outer = with_header(&tunnelled[ETH_HEADER..], 2, more_fragments, &[]);
    let frames = [
        ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &echo),
        ethernet(mac_for("eth0"), ROUTER_B, ETHERTYPE_IPV4, &outer),
    ];
    let out = h.feed(0, &frames);
    assert!(out.iter().all(|(v, _)| *v == Verdict::Done), "{out:?}");
    assert_eq!(h.total(Counter::LocalFragment), 2);
    assert_eq!(h.total(Counter::IcmpEchoReplied), 0);
    assert_eq!(h.total(Counter::VxlanDecapsulated), 0);
}

#[test]
fn decapsulated_frames_teach_the_vtep_so_replies_go_unicast() {
    let mut h = Harness::new();
    let remote_host: Mac = [0x02, 0, 0, 0, 0, 0x77];
    let request = echo_request(ip("10.7.0.9"), ip("10.7.0.1"), 64);
    let inner = ethernet(mac_for("vxlan7"), remote_host, ETHERTYPE_IPV4, &request);
    h.learn("vxlan7", "10.7.0.9", remote_host);
    let out = h.feed(0, &[from_remote_vtep(&inner)]);
    assert_eq!(out[0].0, Verdict::Tx(0));
    assert!(
        h.pipeline.replicas().0.is_empty(),
        "learned VTEP: no flooding"
    );
    assert_eq!(ipv4_at(&out[0].1, ETH_HEADER + IPV4_DST), ip("10.1.0.51"));
    assert_eq!(h.total(Counter::VxlanDecapsulated), 1);
    assert_eq!(h.total(Counter::IcmpEchoReplied), 1);
}

#[test]
fn ttl_expiry_and_missing_routes_become_icmp_errors_to_the_sender() {
    let mut h = Harness::new();
    let expiring = echo_request(ip("10.1.0.2"), ip("10.2.0.2"), 1);
    let unroutable = echo_request(ip("10.1.0.2"), ip("192.0.2.1"), 64);
    let frames: Vec<_> = [expiring, unroutable]
        .iter()
        .map(|p| ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, p))
        .collect();
    let out = h.feed(0, &frames);
    for ((verdict, f), kind) in out.iter().zip([ICMP_TIME_EXCEEDED, ICMP_DEST_UNREACHABLE]) {
        assert_eq!(*verdict, Verdict::Tx(0));
        let icmp = &f[ETH_HEADER..];
        assert_eq!(ipv4_at(icmp, IPV4_SRC), ip("10.1.0.1"));
        assert_eq!(ipv4_at(icmp, IPV4_DST), ip("10.1.0.2"));
        assert_eq!(icmp[IPV4_HEADER], kind);
        assert_eq!(checksum(&icmp[IPV4_HEADER..]), 0);
    }
}

/// An in-memory port: frames queued in `incoming` are received, frames
/// sent are recorded in `sent`.
#[derive(Default)]
struct MemoryPort {
    incoming: VecDeque<Vec<u8>>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl MemoryPort {
    /// A port that receives `frame` and records what it sends in `sent`
    /// (the record of the port it replaces).
    fn answering(sent: &Arc<Mutex<Vec<Vec<u8>>>>, frame: Vec<u8>) -> MemoryPort {
        MemoryPort {
            incoming: [frame].into(),
            sent: sent.clone(),
        }
    }
}

impl PacketPort for MemoryPort {
    fn name(&self) -> &str {
        "memory"
    }

    fn recv(&mut self, batch: &mut Batch) -> std::io::Result<usize> {
        let mut n = 0;
        while !batch.is_full() {
            let Some(f) = self.incoming.pop_front() else {
                break;
            };
            batch.push_copy(&f);
            n += 1;
        }
        Ok(n)
    }

    fn send(&mut self, frames: &mut dyn Iterator<Item = &[u8]>) -> std::io::Result<usize> {
        let mut sent = self.sent.lock().unwrap();
        let before = sent.len();
        sent.extend(frames.map(<[u8]>::to_vec));
        Ok(sent.len() - before)
    }

    fn poll_fd(&self) -> std::os::fd::RawFd {
        -1
    }

    fn rx_ring_drops(&mut self) -> u64 {
        0
    }
}

#[test]
fn unresolved_next_hops_park_a_bounded_queue_and_release_it_on_arp_reply() {
    let mut h = Harness::new();
    let mut eth0 = MemoryPort::default();
    let eth1 = MemoryPort::default();
    let (sent0, sent1) = (eth0.sent.clone(), eth1.sent.clone());
    for i in 0..100u16 {
        let packet = udp_packet(ip("10.1.0.2"), ip("10.2.0.77"), i, 9, b"wait");
        eth0.incoming
            .push_back(ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet));
    }
    let mut ports: Vec<Option<Box<dyn PacketPort>>> =
        vec![Some(Box::new(eth0)), Some(Box::new(eth1))];
    while h.pipeline.run_once(&h.snap, &mut ports) {}
    assert!(sent0.lock().unwrap().is_empty());
    let requests = std::mem::take(&mut *sent1.lock().unwrap());
    assert_eq!(requests.len(), 1, "one ARP request for all waiting packets");
    assert_eq!(be16(&requests[0], 12), ETHERTYPE_ARP);
    assert_eq!(
        ipv4_at(&requests[0], ETH_HEADER + ARP_TARGET_IP),
        ip("10.2.0.77")
    );
    let parked = h.total(Counter::NeighborQueued);
    assert_eq!(parked + h.total(Counter::NeighborQueueFull), 100);
    assert!(parked > 0 && parked < 100, "bounded queue: {parked} parked");

    let resolved: Mac = [0x02, 0, 0, 0, 0, 0x77];
    let mut reply = vec![0; ARP_PACKET];
    write_arp(
        &mut reply,
        ARP_REPLY,
        (&resolved, ip("10.2.0.77")),
        (&mac_for("eth1"), ip("10.2.0.1")),
    );
    let answer = ethernet(mac_for("eth1"), resolved, ETHERTYPE_ARP, &reply);
    ports[1] = Some(Box::new(MemoryPort::answering(&sent1, answer)));
    while h.pipeline.run_once(&h.snap, &mut ports) {}
    let released = sent1.lock().unwrap();
    assert_eq!(released.len() as u64, parked);
    assert!(released.iter().all(|f| mac_at(f, 0) == resolved));
    assert_eq!(h.total(Counter::NeighborReleased), parked);
}

#[test]
fn old_neighbours_in_use_are_asked_again_before_they_expire() {
    let mut h = Harness::new();
    let key = neighbor_key(h.id("eth1"), ip("10.2.0.2"));
    h.shared
        .neighbors
        .learn(key, mac_to_u64(&ROUTER_A), 0u32.wrapping_sub(250));
    let mut eth0 = MemoryPort::default();
    let eth1 = MemoryPort::default();
    let sent1 = eth1.sent.clone();
    for _ in 0..3 {
        let packet = udp_packet(ip("10.1.0.2"), ip("10.2.0.2"), 7, 9, b"busy");
        eth0.incoming
            .push_back(ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet));
    }
    let mut ports: Vec<Option<Box<dyn PacketPort>>> =
        vec![Some(Box::new(eth0)), Some(Box::new(eth1))];
    while h.pipeline.run_once(&h.snap, &mut ports) {}
    let sent = sent1.lock().unwrap();
    let arp: Vec<_> = sent
        .iter()
        .filter(|f| be16(f, 12) == ETHERTYPE_ARP)
        .collect();
    assert_eq!(
        sent.len() - arp.len(),
        3,
        "traffic keeps flowing on the old entry"
    );
    assert_eq!(arp.len(), 1, "one refresh request");
    assert_eq!(ipv4_at(arp[0], ETH_HEADER + ARP_TARGET_IP), ip("10.2.0.2"));
}

fn on_eth0_v6(packet: &[u8]) -> Vec<u8> {
    ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV6, packet)
}

#[test]
fn loopback_mapped_and_unspecified_addresses_are_never_routed_or_answered() {
    let mut c = config();
    c.routes_mut().add_ipv6(Ipv6Route {
        prefix: "::/0".parse().unwrap(),
        next_hop: NextHop::Address(ip6("2001:db8:2::2")),
        distance: 1,
    });
    let mut h = Harness::with(c, None);
    let host = ip6("2001:db8:1::2");
    let frames: Vec<Vec<u8>> = [
        (host, ip6("::1")),
        (host, ip6("::ffff:192.0.2.1")),
        (host, ip6("::")),
        (ip6("::1"), ip6("2001:db8:1::1")),
        (ip6("::ffff:10.1.0.2"), ip6("2001:db8:9::5")),
    ]
    .iter()
    .map(|(src, dst)| on_eth0_v6(&echo6_request(*src, *dst, 64)))
    .collect();
    let out = h.feed(0, &frames);
    assert!(out.iter().all(|(v, _)| *v == Verdict::Done), "{out:?}");
    assert_eq!(h.total(Counter::Ipv6NotRoutable), 5);
    assert_eq!(h.total(Counter::Icmp6EchoReplied), 0);
    assert_eq!(h.total(Counter::Ipv6Forwarded), 0);
}

#[test]
fn ipv6_forwarding_decrements_the_hop_limit_and_spreads_flows_over_ecmp() {
    let mut h = Harness::new();
    let mut seen = std::collections::HashSet::new();
    for sport in 0..64u16 {
        let packet = udp6_packet(ip6("2001:db8:1::2"), ip6("2001:db8:9::5"), sport, b"x");
        let frame = on_eth0_v6(&packet);
        let out = h.feed(0, &[frame.clone(), frame]);
        assert_eq!(out[0].0, Verdict::Tx(1));
        assert_eq!(out[0].1[..6], out[1].1[..6], "one flow, one next hop");
        let f = &out[0].1;
        assert_eq!(mac_at(f, 6), mac_for("eth1"));
        assert_eq!(be16(f, 12), ETHERTYPE_IPV6);
        assert_eq!(f[ETH_HEADER + IPV6_HOP_LIMIT], 63);
        seen.insert(mac_at(f, 0));
    }
    assert_eq!(seen, [ROUTER_A, ROUTER_B].into());
    assert_eq!(h.total(Counter::Ipv6Forwarded), 128);
}

#[test]
fn solicitations_for_our_addresses_are_answered_and_teach_the_sender() {
    let mut h = Harness::new();
    let host2: Mac = [0x02, 0, 0, 0, 0, 0x22];
    let link_local = link_local_for(&mac_for("eth0"));
    let solicit = |target| {
        let ns = neighbor_solicit(ip6("2001:db8:1::5"), host2, target);
        let group = ipv6_at(&ns, IPV6_DST);
        ethernet(multicast_mac(group), host2, ETHERTYPE_IPV6, &ns)
    };
    let frames = [
        solicit(ip6("2001:db8:1::1")),
        solicit(link_local),
        solicit(ip6("2001:db8:1::9")),
    ];
    let out = h.feed(0, &frames);
    // A group address as the sender's link-layer address is not used.
    let group_mac: Mac = [0x33, 0x33, 0, 0, 0, 1];
    let ns = neighbor_solicit(ip6("2001:db8:1::6"), group_mac, ip6("2001:db8:1::1"));
    let group = ipv6_at(&ns, IPV6_DST);
    let spoofed = h.feed(
        0,
        &[ethernet(multicast_mac(group), host2, ETHERTYPE_IPV6, &ns)],
    );
    assert!(
        spoofed.iter().all(|(_, f)| mac_at(f, 0) != group_mac),
        "{spoofed:?}"
    );
    for ((verdict, f), target) in out.iter().zip([ip6("2001:db8:1::1"), link_local]) {
        assert_eq!(*verdict, Verdict::Tx(0));
        assert_eq!(
            mac_at(f, 0),
            host2,
            "answered to the source link-layer option"
        );
        let na = &f[ETH_HEADER..];
        assert_eq!(ipv6_at(na, IPV6_SRC), target);
        assert_eq!(ipv6_at(na, IPV6_DST), ip6("2001:db8:1::5"));
        assert_eq!(na[IPV6_HOP_LIMIT], ND_HOP_LIMIT);
        assert_eq!(na[IPV6_HEADER], ICMPV6_NEIGHBOR_ADVERT);
        assert_eq!(
            na[IPV6_HEADER + 4],
            ND_FLAG_ROUTER | ND_FLAG_SOLICITED | ND_FLAG_OVERRIDE
        );
        assert_eq!(ipv6_at(na, IPV6_HEADER + ND_TARGET), target);
        let option = &na[IPV6_HEADER + ND_OPTIONS..];
        assert_eq!(option[..2], [ND_OPTION_TARGET_LINK, 1]);
        assert_eq!(mac_at(option, 2), mac_for("eth0"));
        assert_eq!(ipv6_payload_checksum(na), 0);
    }
    assert_eq!(out[2].0, Verdict::Done);
    assert_eq!(
        h.total(Counter::Ipv6NotRoutable),
        1,
        "another host's solicited-node group"
    );
    let learned = h
        .shared
        .neighbors6
        .get(neighbor6_key(h.id("eth0"), ip6("2001:db8:1::5")));
    assert_eq!(learned.map(|e| e.value), Some(mac_to_u64(&host2)));

    let echo = on_eth0_v6(&echo6_request(
        ip6("2001:db8:1::2"),
        ip6("2001:db8:1::1"),
        64,
    ));
    let out = h.feed(0, &[echo]);
    assert_eq!(out[0].0, Verdict::Tx(0));
    let reply = &out[0].1[ETH_HEADER..];
    assert_eq!(ipv6_at(reply, IPV6_SRC), ip6("2001:db8:1::1"));
    assert_eq!(ipv6_at(reply, IPV6_DST), ip6("2001:db8:1::2"));
    assert_eq!(reply[IPV6_HEADER], ICMPV6_ECHO_REPLY);
    assert_eq!(ipv6_payload_checksum(reply), 0);
}

#[test]
fn ipv6_echo_is_answered_on_vlan_and_vxlan_interfaces() {
    let mut h = Harness::new();
    h.learn6("eth0.100", "2001:db8:100::2", HOST);
    let request = echo6_request(ip6("2001:db8:100::2"), ip6("2001:db8:100::1"), 64);
    let out = h.feed(
        0,
        &[tagged(mac_for("eth0"), HOST, 100, ETHERTYPE_IPV6, &request)],
    );
    assert_eq!(out[0].0, Verdict::Tx(0));
    let f = &out[0].1;
    assert_eq!(
        (be16(f, 12), be16(f, 14), be16(f, 16)),
        (ETHERTYPE_VLAN, 100, ETHERTYPE_IPV6)
    );
    let reply = &f[ETH_HEADER + VLAN_TAG..];
    assert_eq!(ipv6_at(reply, IPV6_DST), ip6("2001:db8:100::2"));
    assert_eq!(ipv6_payload_checksum(reply), 0);

    let remote_host: Mac = [0x02, 0, 0, 0, 0, 0x77];
    h.learn6("vxlan7", "2001:db8:7::9", remote_host);
    let request = echo6_request(ip6("2001:db8:7::9"), ip6("2001:db8:7::1"), 64);
    let inner = ethernet(mac_for("vxlan7"), remote_host, ETHERTYPE_IPV6, &request);
    let out = h.feed(0, &[from_remote_vtep(&inner)]);
    assert_eq!(out[0].0, Verdict::Tx(0));
    assert_eq!(ipv4_at(&out[0].1, ETH_HEADER + IPV4_DST), ip("10.1.0.51"));
    let inner = &out[0].1[ETH_HEADER + VXLAN_OVERHEAD..];
    assert_eq!(
        (mac_at(inner, 0), be16(inner, 12)),
        (remote_host, ETHERTYPE_IPV6)
    );
    let reply = &inner[ETH_HEADER..];
    assert_eq!(ipv6_at(reply, IPV6_DST), ip6("2001:db8:7::9"));
    assert_eq!(reply[IPV6_HEADER], ICMPV6_ECHO_REPLY);
    assert_eq!(ipv6_payload_checksum(reply), 0);
    assert_eq!(h.total(Counter::Icmp6EchoReplied), 2);
}

#[test]
fn hop_limit_expiry_missing_routes_and_too_big_become_icmpv6_errors() {
    let mut h = Harness::new();
    let sender = ip6("2001:db8:1::2");
    let expiring = echo6_request(sender, ip6("2001:db8:9::5"), 1);
    let unroutable = echo6_request(sender, ip6("2001:db8:ffff::1"), 64);
    let too_big = udp6_packet(sender, ip6("2001:db8:9::5"), 7, &[0; 1600]);
    let frames: Vec<_> = [expiring, unroutable, too_big.clone()]
        .iter()
        .map(|p| on_eth0_v6(p))
        .collect();
    let out = h.feed(0, &frames);
    let expected = [
        (ICMPV6_TIME_EXCEEDED, 0),
        (ICMPV6_DEST_UNREACHABLE, ICMPV6_CODE_NO_ROUTE),
        (ICMPV6_PACKET_TOO_BIG, 0),
    ];
    for ((verdict, f), (kind, code)) in out.iter().zip(expected) {
        assert_eq!(*verdict, Verdict::Tx(0));
        let error = &f[ETH_HEADER..];
        assert_eq!(ipv6_at(error, IPV6_SRC), ip6("2001:db8:1::1"));
        assert_eq!(ipv6_at(error, IPV6_DST), sender);
        assert_eq!(error[IPV6_HEADER..IPV6_HEADER + 2], [kind, code]);
        assert_eq!(ipv6_payload_checksum(error), 0);
        assert!(error.len() <= IPV6_MIN_MTU);
    }
    let too_big_error = &out[2].1[ETH_HEADER..];
    assert_eq!(be32(too_big_error, IPV6_HEADER + 4), 1500, "eth1's MTU");
    assert_eq!(
        too_big_error.len(),
        IPV6_MIN_MTU,
        "quoted up to the minimum MTU"
    );
    assert_eq!(
        too_big_error[IPV6_HEADER + 8..],
        too_big[..IPV6_MIN_MTU - IPV6_HEADER - 8]
    );
    assert_eq!(h.total(Counter::Ipv6HopLimitExpired), 1);
    assert_eq!(h.total(Counter::Ipv6NoRoute), 1);
    assert_eq!(h.total(Counter::Ipv6MtuExceeded), 1);
    // An error about an error is never sent.
    let mut error_in = out[0].1[ETH_HEADER..].to_vec();
    error_in[IPV6_SRC..IPV6_DST].copy_from_slice(&sender.octets());
    error_in[IPV6_DST..IPV6_DST + 16].copy_from_slice(&ip6("2001:db8:ffff::1").octets());
    assert_eq!(h.feed(0, &[on_eth0_v6(&error_in)])[0].0, Verdict::Done);
}

#[test]
fn unresolved_ipv6_next_hops_are_solicited_and_released_on_advertisement() {
    let mut h = Harness::new();
    let mut eth0 = MemoryPort::default();
    let eth1 = MemoryPort::default();
    let sent1 = eth1.sent.clone();
    let waiting = ip6("2001:db8:2::77");
    for sport in 0..3 {
        let packet = udp6_packet(ip6("2001:db8:1::2"), waiting, sport, b"wait");
        eth0.incoming.push_back(on_eth0_v6(&packet));
    }
    let mut ports: Vec<Option<Box<dyn PacketPort>>> =
        vec![Some(Box::new(eth0)), Some(Box::new(eth1))];
    while h.pipeline.run_once(&h.snap, &mut ports) {}
    let solicitations = std::mem::take(&mut *sent1.lock().unwrap());
    assert_eq!(
        solicitations.len(),
        1,
        "one solicitation for all waiting packets"
    );
    let ns = &solicitations[0];
    assert_eq!(mac_at(ns, 0), [0x33, 0x33, 0xff, 0, 0, 0x77]);
    assert_eq!(ipv6_at(ns, ETH_HEADER + IPV6_DST), solicited_node(waiting));
    assert_eq!(ipv6_at(ns, ETH_HEADER + IPV6_SRC), ip6("2001:db8:2::1"));
    assert_eq!(ipv6_at(ns, ETH_HEADER + IPV6_HEADER + ND_TARGET), waiting);
    assert_eq!(ipv6_payload_checksum(&ns[ETH_HEADER..]), 0);
    assert_eq!(h.total(Counter::NeighborQueued), 3);

    let resolved: Mac = [0x02, 0, 0, 0, 0, 0x77];
    let na = neighbor_advert(waiting, resolved, ip6("2001:db8:2::1"));
    let answer = ethernet(mac_for("eth1"), resolved, ETHERTYPE_IPV6, &na);
    ports[1] = Some(Box::new(MemoryPort::answering(&sent1, answer)));
    while h.pipeline.run_once(&h.snap, &mut ports) {}
    let released = sent1.lock().unwrap();
    assert_eq!(released.len(), 3);
    assert!(released.iter().all(|f| mac_at(f, 0) == resolved));
    assert_eq!(h.total(Counter::NeighborReleased), 3);
}

#[test]
fn the_local_stack_sources_from_the_egress_interface_or_the_peers_link() {
    let h = Harness::new();
    h.learn6("eth1", "fe80::9", ROUTER_A);
    let source = |dst: &str| {
        let source = h
            .shared
            .local_source(&h.snap, GLOBAL_TABLE, dst.parse().unwrap());
        source.map(|s| s.to_string())
    };
    assert_eq!(
        source("10.9.1.1").as_deref(),
        Some("10.2.0.1"),
        "static route"
    );
    assert_eq!(source("10.1.0.7").as_deref(), Some("10.1.0.1"), "connected");
    assert_eq!(source("2001:db8:9::1").as_deref(), Some("2001:db8:2::1"));
    assert_eq!(
        source("2001:db8:100::7").as_deref(),
        Some("2001:db8:100::1")
    );
    let eth1_link_local = link_local_for(&mac_for("eth1")).to_string();
    assert_eq!(source("fe80::9"), Some(eth1_link_local), "the peer's link");
    assert_eq!(source("fe80::8"), None, "an unknown link-local peer");
    assert_eq!(source("2001:db8:99::1"), None, "no route");
}

/// A harness on `config` whose pipeline delivers to and routes for a local
/// stack owning the config's addresses; the stack's tasks run on the runtime.
fn with_local_stack(config: Config) -> (tokio::runtime::Runtime, LocalStack, Harness) {
    let runtime = support::local::runtime();
    let (stack, port) = kernel_bypass::local::local_stack(runtime.handle().clone()).unwrap();
    let local = LocalHandle {
        port: Arc::new(port),
        drains: true,
    };
    let h = Harness::with(config, Some(local));
    stack.set_addresses(&h.snap.own_addresses());
    (runtime, stack, h)
}

/// A UDP socket of `stack` that sent `payload` to `peer` (kept open so the
/// datagram is not dropped with it).
fn sent_datagram(
    runtime: &tokio::runtime::Runtime,
    stack: &LocalStack,
    peer: &str,
    payload: &[u8],
) -> UdpSocket {
    let peer: SocketAddr = peer.parse().unwrap();
    runtime.block_on(async {
        let socket = stack.udp_bind(0).await.unwrap();
        socket.send_to(payload, peer).await.unwrap();
        socket
    })
}

/// eth0 and eth0.100 share one MAC and so one link-local address: a
/// datagram of the local stack to a link-local peer leaves on the one of
/// them where the peer is a neighbour.
#[test]
fn local_stack_output_to_a_link_local_peer_leaves_on_the_peers_link() {
    let (runtime, stack, mut h) = with_local_stack(config());
    h.learn6("eth0.100", "fe80::9", HOST);
    let _socket = sent_datagram(&runtime, &stack, "[fe80::9]:9", b"on-link");
    let eth0 = MemoryPort::default();
    let sent = eth0.sent.clone();
    let mut ports: Vec<Option<Box<dyn PacketPort>>> =
        vec![Some(Box::new(eth0)), Some(Box::new(MemoryPort::default()))];
    let is_ours = |f: &Vec<u8>| f.ends_with(b"on-link");
    support::wait_until("the datagram on eth0", || {
        h.pipeline.run_once(&h.snap, &mut ports);
        sent.lock().unwrap().iter().any(is_ours)
    });
    let frames = sent.lock().unwrap();
    let frame = frames.iter().find(|f| is_ours(f)).unwrap();
    assert_eq!(mac_at(frame, 0), HOST);
    assert_eq!(be16(frame, 12), ETHERTYPE_VLAN, "tagged for eth0.100");
    assert_eq!(be16(frame, 14) & 0x0fff, 100);
    let packet = &frame[ETH_HEADER + VLAN_TAG..];
    assert_eq!(ipv6_at(packet, IPV6_SRC), link_local_for(&mac_for("eth0")));
}

/// The local stack does not fragment IPv6: a datagram over the egress MTU
/// is dropped and counted, never sent oversized.
#[test]
fn local_stack_ipv6_output_over_the_egress_mtu_is_counted_not_sent() {
    let (runtime, stack, mut h) = with_local_stack(config_with_mtus(&[("eth1", 1280)]));
    let _big = sent_datagram(&runtime, &stack, "[2001:db8:2::2]:9", &[7; 1300]);
    let _small = sent_datagram(&runtime, &stack, "[2001:db8:2::2]:9", b"fits");
    let eth1 = MemoryPort::default();
    let sent = eth1.sent.clone();
    let mut ports: Vec<Option<Box<dyn PacketPort>>> =
        vec![Some(Box::new(MemoryPort::default())), Some(Box::new(eth1))];
    support::wait_until("both datagrams handled", || {
        h.pipeline.run_once(&h.snap, &mut ports);
        h.total(Counter::Ipv6MtuExceeded) == 1 && !sent.lock().unwrap().is_empty()
    });
    let frames = sent.lock().unwrap();
    assert!(
        frames.iter().all(|f| f.len() <= ETH_HEADER + 1280),
        "nothing oversized"
    );
    assert!(frames.iter().any(|f| f.ends_with(b"fits")));
}

/// `config()` with these interface MTUs.
fn config_with_mtus(mtus: &[(&str, u16)]) -> Config {
    let mut c = config();
    for (name, mtu) in mtus {
        c.interfaces_mut().get_mut(*name).expect("interface").mtu = Some(*mtu);
    }
    c
}

/// An IPv4 packet's (identification, fragment offset in bytes, MF).
fn fragment_fields(packet: &[u8]) -> (u16, usize, bool) {
    let word = be16(packet, IPV4_FLAGS);
    let offset = usize::from(word & IPV4_FRAGMENT_OFFSET) * 8;
    (be16(packet, 4), offset, word & 0x2000 != 0)
}

/// `packet` (20-byte header) with this identification, fragment word and
/// options, checksummed.
fn with_header(packet: &[u8], id: u16, word: u16, options: &[u8]) -> Vec<u8> {
    let header_len = IPV4_HEADER + options.len();
    let mut p = packet[..IPV4_HEADER].to_vec();
    p.extend_from_slice(options);
    p.extend_from_slice(&packet[IPV4_HEADER..]);
    p[0] = 0x40 | (header_len / 4) as u8;
    let total = p.len() as u16;
    put_be16(&mut p, 2, total);
    put_be16(&mut p, 4, id);
    put_be16(&mut p, IPV4_FLAGS, word);
    put_be16(&mut p, IPV4_CHECKSUM, 0);
    let sum = checksum(&p[..header_len]);
    put_be16(&mut p, IPV4_CHECKSUM, sum);
    p
}

/// Checks that `pieces` are fragments of one packet, each valid and no
/// larger than `mtu`, together covering its data without gap or overlap;
/// returns (offset of the first, MF of the last, the data reassembled).
fn reassemble(pieces: &[Vec<u8>], mtu: usize) -> (usize, bool, Vec<u8>) {
    let mut sorted: Vec<&Vec<u8>> = pieces.iter().collect();
    sorted.sort_by_key(|p| fragment_fields(p).1);
    let (id, first_offset, _) = fragment_fields(sorted[0]);
    let mut data = Vec::new();
    for (i, p) in sorted.iter().enumerate() {
        let header_len = ipv4_header_len(p);
        assert!(p.len() <= mtu, "{} bytes over MTU {mtu}", p.len());
        assert_eq!(usize::from(be16(p, 2)), p.len(), "total length");
        assert_eq!(checksum(&p[..header_len]), 0, "header checksum");
        let (piece_id, offset, more) = fragment_fields(p);
        assert_eq!(piece_id, id, "one identification");
        assert_eq!(offset, first_offset + data.len(), "contiguous offsets");
        if i + 1 < sorted.len() {
            assert!(more, "MF on all but the last");
            assert_eq!((p.len() - header_len) % 8, 0, "data in 8-byte units");
            assert_eq!(be16(p, IPV4_FLAGS) & IPV4_DF, 0);
        }
        data.extend_from_slice(&p[header_len..]);
    }
    let (_, _, last_more) = fragment_fields(sorted[sorted.len() - 1]);
    (first_offset, last_more, data)
}

/// Every IPv4 packet the last `feed` sent out of `port` (the batch, its
/// replicas and its fragments), without Ethernet header, by identification.
fn sent_by_id(h: &Harness, out: &[(Verdict, Vec<u8>)], port: u16) -> BTreeMap<u16, Vec<Vec<u8>>> {
    let (replicas, replica_verdicts) = h.pipeline.replicas();
    let batch = out.iter().map(|(v, f)| (*v, f.as_slice()));
    let replicas = replica_verdicts
        .iter()
        .zip(replicas)
        .map(|(v, f)| (*v, f.data()));
    let fragments = h.pipeline.fragments().map(|(f, v)| (*v, f.data()));
    let mut by_id: BTreeMap<u16, Vec<Vec<u8>>> = BTreeMap::new();
    for (_, f) in batch
        .chain(replicas)
        .chain(fragments)
        .filter(|(v, _)| *v == Verdict::Tx(port))
    {
        let packet = &f[ETH_HEADER..];
        by_id
            .entry(fragment_fields(packet).0)
            .or_default()
            .push(packet.to_vec());
    }
    by_id
}

#[test]
fn too_big_without_dont_fragment_leaves_as_fragments_that_reassemble() {
    let mut h = Harness::with(config_with_mtus(&[("eth1", 1280)]), None);
    let payload: Vec<u8> = (0..1472u32).map(|i| (i * 7) as u8).collect();
    let packet = udp_packet(ip("10.1.0.2"), ip("10.2.0.2"), 1000, 53, &payload);
    let out = h.feed(
        0,
        &[ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet)],
    );
    assert_eq!(out[0].0, Verdict::Tx(1));
    let mut frames = vec![out[0].1.clone()];
    frames.extend(h.pipeline.fragments().map(|(f, v)| {
        assert_eq!(*v, Verdict::Tx(1));
        f.data().to_vec()
    }));
    assert_eq!(frames.len(), 2, "1500 bytes into 1280: two fragments");
    for f in &frames {
        assert_eq!((mac_at(f, 0), mac_at(f, 6)), (ROUTER_A, mac_for("eth1")));
        assert_eq!(f[ETH_HEADER + IPV4_TTL], 63);
    }
    let pieces: Vec<Vec<u8>> = frames.iter().map(|f| f[ETH_HEADER..].to_vec()).collect();
    assert_eq!(pieces[0].len(), 20 + 1256, "the most 8-byte units that fit");
    let (offset, more, data) = reassemble(&pieces, 1280);
    assert_eq!((offset, more), (0, false));
    assert_eq!(data, packet[IPV4_HEADER..]);
    assert_eq!(h.total(Counter::Ipv4Fragmented), 1);
    assert_eq!(h.total(Counter::Ipv4FragmentsCreated), 2);
    assert_eq!(h.total(Counter::Ipv4MtuExceeded), 0);
}

#[test]
fn fragments_are_fragmented_again_and_only_copied_options_repeat() {
    let mut h = Harness::with(config_with_mtus(&[("eth1", 576)]), None);
    let data: Vec<u8> = (0..1400u32).map(|i| (i % 251) as u8).collect();
    let plain = ipv4(ip("10.1.0.2"), ip("10.2.0.2"), PROTO_UDP, 64, &data);
    // NOP, record route (not copied), a copied 3-byte option, end of list.
    let options = [1, 7, 7, 4, 0, 0, 0, 0, 0x82, 3, 9, 0];
    // A middle fragment (MF, offset 800) with options, and a last one.
    let middle = with_header(&plain, 1, 0x2000 | 100, &options);
    let last = with_header(&plain, 2, 200, &[]);
    let frames = [&middle, &last].map(|p| ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, p));
    let out = h.feed(0, &frames);
    let sent = sent_by_id(&h, &out, 1);
    let (offset, more, reassembled) = reassemble(&sent[&1], 576);
    assert_eq!((offset, more), (800, true), "the last piece keeps MF");
    assert_eq!(reassembled, data);
    assert_eq!(sent[&1].len(), 3);
    for piece in &sent[&1] {
        let options_sent = &piece[IPV4_HEADER..ipv4_header_len(piece)];
        match fragment_fields(piece).1 {
            800 => assert_eq!(options_sent, options, "the first keeps all"),
            _ => assert_eq!(options_sent, [0x82, 3, 9, 0], "copied ones only"),
        }
    }
    let (offset, more, reassembled) = reassemble(&sent[&2], 576);
    assert_eq!((offset, more, reassembled), (1600, false, data));
}

#[test]
fn vxlan_packets_too_big_for_the_underlay_are_fragmented_as_outer_packets() {
    // The tunnel admits 1500-byte inner packets: with 50 bytes of
    // encapsulation they no longer fit eth0's 1500.
    let mut h = Harness::with(config_with_mtus(&[("vxlan7", 1500)]), None);
    let remote_host: Mac = [0x02, 0, 0, 0, 0, 0x79];
    h.learn("vxlan7", "10.7.0.9", remote_host);
    let packet = udp_packet(ip("10.1.0.2"), ip("10.7.0.9"), 1, 2, &[0x5a; 1472]);
    // The inner MAC has no VTEP yet: a copy to each remote, each fragmented.
    let out = h.feed(
        0,
        &[ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet)],
    );
    let sent = sent_by_id(&h, &out, 0);
    let mut remotes = Vec::new();
    for pieces in sent.values() {
        assert_eq!(pieces.len(), 2);
        let (offset, more, outer) = reassemble(pieces, 1500);
        assert_eq!((offset, more), (0, false));
        remotes.push(ipv4_at(&pieces[0], IPV4_DST));
        assert_eq!(be16(&outer, 2), VXLAN_DEFAULT_PORT);
        assert_eq!(be32(&outer, UDP_HEADER + 4) >> 8, 7);
        let inner = &outer[UDP_HEADER + VXLAN_HEADER..];
        assert_eq!(mac_at(inner, 0), remote_host);
        let inner_ip = &inner[ETH_HEADER..];
        assert_eq!(inner_ip[IPV4_TTL], 63);
        assert_eq!(inner_ip[IPV4_HEADER..], packet[IPV4_HEADER..]);
        assert_eq!(be16(inner_ip, IPV4_FLAGS), 0, "the inner packet is whole");
    }
    remotes.sort();
    assert_eq!(remotes, vec![ip("10.1.0.50"), ip("10.1.0.51")]);
    assert_eq!(h.total(Counter::Ipv4Fragmented), 2);
}

#[test]
fn fragments_beyond_the_preallocated_frames_drop_whole_packets_and_are_counted() {
    // 1500 bytes into an MTU of 68: 31 fragments each.
    let mut h = Harness::with(config_with_mtus(&[("eth1", 68)]), None);
    let frames: Vec<_> = (0..64u16)
        .map(|id| {
            let plain = udp_packet(ip("10.1.0.2"), ip("10.2.0.2"), 1, 2, &[id as u8; 1472]);
            let packet = with_header(&plain, id, 0, &[]);
            ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet)
        })
        .collect();
    let out = h.feed(0, &frames);
    let sent = out.iter().filter(|(v, _)| *v == Verdict::Tx(1)).count() as u64;
    let dropped = h.total(Counter::Ipv4FragmentNoBuffer);
    assert!(sent > 0 && dropped > 0, "{sent} sent, {dropped} dropped");
    assert_eq!(sent + dropped, 64);
    let by_id = sent_by_id(&h, &out, 1);
    assert_eq!(by_id.len() as u64, sent, "no piece of a dropped packet");
    for (id, pieces) in &by_id {
        assert_eq!(pieces.len(), 31);
        let (_, _, data) = reassemble(pieces, 68);
        assert_eq!(data[UDP_HEADER..], [*id as u8; 1472]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn oversized_packets_are_fragmented_or_counted_and_always_reassemble(
        mtu in 68u16..1600,
        packets in prop::collection::vec(
            (0usize..1840, any::<bool>(), any::<bool>(), 0u16..0x400, prop::collection::vec(any::<u8>(), 0..=40)),
            1..64,
        ),
    ) {
        let mut h = Harness::with(config_with_mtus(&[("eth1", mtu)]), None);
        let mut originals = Vec::new();
        let frames: Vec<_> = packets
            .iter()
            .enumerate()
            .map(|(id, (len, df, mf, offset, options))| {
                let data: Vec<u8> = (0..*len).map(|i| (i * 31 + id) as u8).collect();
                let plain = ipv4(ip("10.1.0.2"), ip("10.2.0.2"), PROTO_UDP, 64, &data);
                let word = u16::from(*df) << 14 | u16::from(*mf) << 13 | offset;
                let options = &options[..options.len() / 4 * 4];
                let packet = with_header(&plain, id as u16, word, options);
                originals.push((packet.clone(), data));
                ethernet(mac_for("eth0"), HOST, ETHERTYPE_IPV4, &packet)
            })
            .collect();
        let out = h.feed(0, &frames);
        let sent = sent_by_id(&h, &out, 1);
        let mtu = usize::from(mtu);
        for (id, ((verdict, _), (packet, data))) in out.iter().zip(&originals).enumerate() {
            let too_big = packet.len() > mtu;
            let df = be16(packet, IPV4_FLAGS) & IPV4_DF != 0;
            match verdict {
                Verdict::Tx(1) => {
                    prop_assert!(!too_big || !df);
                    let (offset, more, reassembled) = reassemble(&sent[&(id as u16)], mtu);
                    let (_, original_offset, original_more) = fragment_fields(packet);
                    prop_assert_eq!((offset, more), (original_offset, original_more));
                    prop_assert_eq!(&reassembled, data);
                }
                Verdict::Tx(0) => prop_assert!(too_big && df, "only fragmentation needed goes back"),
                Verdict::Done => prop_assert!(too_big && !sent.contains_key(&(id as u16))),
                Verdict::Tx(_) => prop_assert!(false, "{:?}", verdict),
            }
        }
        let sent_packets = out.iter().filter(|(v, _)| *v == Verdict::Tx(1)).count();
        prop_assert_eq!(sent.len(), sent_packets, "no piece of a dropped packet");
        let done = out.iter().filter(|(v, _)| *v == Verdict::Done).count() as u64;
        let counted = h.total(Counter::Ipv4FragmentNoBuffer)
            + h.total(Counter::Ipv4FragmentMalformed)
            + h.total(Counter::Ipv4MtuExceeded)
            - h.total(Counter::IcmpErrorSent);
        prop_assert_eq!(done, counted, "every packet not sent is counted");
    }
}

/// Frames built to reach deep into the pipeline, then cut or corrupted.
fn hostile_frame() -> impl Strategy<Value = Vec<u8>> {
    let targets = prop_oneof![
        Just(ip("10.1.0.1")),
        Just(ip("10.2.0.2")),
        Just(ip("10.9.3.4")),
        Just(ip("10.7.0.9")),
        any::<u32>().prop_map(Ipv4Addr::from),
    ];
    let targets6 = prop_oneof![
        Just(ip6("2001:db8:1::1")),
        Just(ip6("2001:db8:2::2")),
        Just(ip6("2001:db8:9::4")),
        Just(link_local_for(&mac_for("eth0"))),
        Just(ip6("ff02::1")),
        Just(solicited_node(ip6("2001:db8:1::1"))),
        any::<u128>().prop_map(Ipv6Addr::from),
    ];
    let shaped = (
        (targets, targets6),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..64),
        0usize..10,
    )
        .prop_map(|((dst, dst6), ttl, proto, payload, shape)| {
            let src6 = ip6("2001:db8:1::2");
            let link_local_src = ip6("fe80::2");
            let packet = match shape {
                0 => ipv4(ip("10.1.0.2"), dst, proto, ttl, &payload),
                1 => udp_packet(
                    ip("10.1.0.2"),
                    dst,
                    9,
                    VXLAN_DEFAULT_PORT,
                    &vxlan(7, &payload),
                ),
                2 => payload.clone(),
                3 => echo_request(ip("10.1.0.2"), dst, ttl),
                4 => ipv6(src6, dst6, proto, ttl, &payload),
                5 => echo6_request(src6, dst6, ttl),
                6 => neighbor_solicit(src6, HOST, dst6),
                7 => neighbor_advert(dst6, HOST, src6),
                // TCP and UDP for the local stack, from global and link-local peers.
                8 => udp6_packet(src6, dst6, 7, &payload),
                _ => ipv6(link_local_src, dst6, PROTO_TCP, ttl, &payload),
            };
            let ethertype = match shape {
                2 => ETHERTYPE_ARP,
                0 | 1 | 3 => ETHERTYPE_IPV4,
                _ => ETHERTYPE_IPV6,
            };
            ethernet(mac_for("eth0"), HOST, ethertype, &packet)
        });
    let mutated = (
        shaped,
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut f, at, byte, cut)| {
            let i = at.index(f.len());
            f[i] ^= byte;
            f.truncate(cut.index(f.len() + 1));
            f
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..2200), mutated,]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn any_bytes_are_forwarded_or_counted_never_a_panic(frames in prop::collection::vec(hostile_frame(), 1..48)) {
        let mut h = Harness::new();
        let frames: Vec<Vec<u8>> = frames.into_iter().map(|mut f| { f.truncate(kernel_bypass::frame::MAX_FRAME); f }).collect();
        let out = h.feed(0, &frames);
        prop_assert_eq!(out.len(), frames.len());
        let done = out.iter().filter(|(v, _)| *v == Verdict::Done).count() as u64;
        let accounted: u64 = Counter::ALL
            .iter()
            .filter(|c| c.is_drop() || matches!(c, Counter::NeighborQueued | Counter::LocalDelivered | Counter::ArpReplyReceived | Counter::NdAdvertReceived))
            .map(|c| h.total(*c))
            .sum();
        prop_assert!(done <= accounted, "{} frames consumed, {} counted", done, accounted);
        for (v, _) in &out {
            prop_assert!(matches!(v, Verdict::Done | Verdict::Tx(0) | Verdict::Tx(1)));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn workers_rounds_on_hostile_traffic_settle_and_send_only_whole_frames(
        on_eth0 in prop::collection::vec(hostile_frame(), 0..200),
        on_eth1 in prop::collection::vec(hostile_frame(), 0..200),
    ) {
        let mut h = Harness::new();
        let (mut eth0, mut eth1) = (MemoryPort::default(), MemoryPort::default());
        let sent = [eth0.sent.clone(), eth1.sent.clone()];
        let clip = |mut f: Vec<u8>| { f.truncate(kernel_bypass::frame::MAX_FRAME); f };
        eth0.incoming.extend(on_eth0.into_iter().map(clip));
        eth1.incoming.extend(on_eth1.into_iter().map(clip));
        let mut ports: Vec<Option<Box<dyn PacketPort>>> = vec![Some(Box::new(eth0)), Some(Box::new(eth1))];
        // Each round consumes a batch per port; a few rounds must drain them.
        let rounds = (0..100).take_while(|_| h.pipeline.run_once(&h.snap, &mut ports)).count();
        prop_assert!(rounds < 100, "the pipeline never went idle");
        for port in &sent {
            for frame in port.lock().unwrap().iter() {
                prop_assert!(frame.len() >= ETH_HEADER && frame.len() <= kernel_bypass::frame::MAX_FRAME);
            }
        }
    }
}

/// `config()` with `text` applied on top (as typed at the CLI).
fn config_and(text: &str) -> Config {
    let mut c = config();
    let errors = grammar::apply_text(&mut c, text);
    assert_eq!(errors, [], "{text}");
    assert_eq!(grammar::validate(&c), Vec::<String>::new());
    c
}

#[test]
fn a_dedicated_line_in_a_vrf_reaches_the_customer_network_and_nothing_else() {
    let mut h = Harness::with(
        config_and(
            "vrf definition CUST-A\ninterface eth0.100\n vrf forwarding CUST-A\n \
             ip address 10.100.0.1/24\nip route vrf CUST-A 192.168.50.0/24 10.100.0.2\n",
        ),
        None,
    );
    h.learn("eth0.100", "10.100.0.2", ROUTER_A);
    let eth0 = mac_for("eth0");
    let from_customer = |dst: &str| {
        let packet = udp_packet(ip("10.100.0.2"), ip(dst), 1000, 53, b"q");
        tagged(eth0, HOST, 100, ETHERTYPE_IPV4, &packet)
    };
    let to_customer = udp_packet(ip("10.1.0.2"), ip("192.168.50.7"), 1000, 53, b"q");
    let out = h.feed(
        0,
        &[
            from_customer("192.168.50.7"),
            from_customer("10.9.1.1"),
            ethernet(eth0, HOST, ETHERTYPE_IPV4, &to_customer),
        ],
    );
    assert_eq!(out[0].0, Verdict::Tx(0), "the customer's route in its VRF");
    assert_eq!(mac_at(&out[0].1, 0), ROUTER_A);
    assert_eq!(
        be16(&out[0].1, 14) & 0x0fff,
        100,
        "back on the customer's VLAN"
    );
    let icmp = |f: &[u8]| f[ETH_HEADER + VLAN_TAG + IPV4_HEADER];
    assert_eq!(
        icmp(&out[1].1),
        ICMP_DEST_UNREACHABLE,
        "the global table's routes are not the customer's"
    );
    let back = &out[2].1[ETH_HEADER..];
    assert_eq!(
        (back[IPV4_HEADER], ipv4_at(back, IPV4_DST)),
        (ICMP_DEST_UNREACHABLE, ip("10.1.0.2")),
        "nor the customer's network the global table's"
    );
    assert_eq!(h.total(Counter::Ipv4Forwarded), 1);
}

#[test]
fn tenant_traffic_inside_a_vni_of_a_vrf_stays_in_that_vrf() {
    let mut h = Harness::with(
        config_and(
            "vrf definition T\ninterface vxlan7\n vrf forwarding T\n ip address 10.7.0.1/24\n",
        ),
        None,
    );
    let remote_host: Mac = [0x02, 0, 0, 0, 0, 0x77];
    h.learn("vxlan7", "10.7.0.9", remote_host);
    let inner = |dst: &str| {
        let packet = udp_packet(ip("10.7.0.9"), ip(dst), 1000, 53, b"q");
        from_remote_vtep(&ethernet(
            mac_for("vxlan7"),
            remote_host,
            ETHERTYPE_IPV4,
            &packet,
        ))
    };
    let echo = echo_request(ip("10.7.0.9"), ip("10.7.0.1"), 64);
    let echo = from_remote_vtep(&ethernet(
        mac_for("vxlan7"),
        remote_host,
        ETHERTYPE_IPV4,
        &echo,
    ));
    let out = h.feed(0, &[echo, inner("10.2.0.2"), inner("10.1.0.2")]);
    assert_eq!(out[0].0, Verdict::Tx(0), "the tenant's gateway answers");
    assert_eq!(h.total(Counter::IcmpEchoReplied), 1);
    assert_eq!(
        h.total(Counter::Ipv4Forwarded),
        0,
        "nothing from the VNI reaches the global table's networks"
    );
    let routes = kernel_bypass::snapshot::Snapshot::vrf_id(&h.snap, Some("T")).unwrap();
    assert!(h.snap.table(routes).route(ip("10.7.0.9")).is_some());
    assert!(
        h.snap.route(ip("10.7.0.9")).is_none(),
        "not in the global table"
    );
}

/// A node that drops UDP to one port and records which packets it saw.
struct DropPort {
    name: &'static str,
    port: u16,
    seen: Mutex<Vec<(Point, Option<IfaceId>)>>,
    point: Point,
}

impl FeatureNode for DropPort {
    fn name(&self) -> &'static str {
        self.name
    }

    fn process(&self, packet: &mut FeaturePacket<'_>) -> Action {
        self.seen.lock().unwrap().push((self.point, packet.egress));
        let d = &packet.data;
        let is_udp_to_port = d.len() >= IPV4_HEADER + UDP_HEADER
            && d[IPV4_PROTOCOL] == PROTO_UDP
            && be16(d, ipv4_header_len(d) + 2) == self.port;
        match is_udp_to_port {
            true => Action::Drop,
            false => Action::Continue,
        }
    }
}

#[test]
fn nodes_at_feature_points_see_packets_in_order_and_may_drop_them() {
    let mut h = Harness::new();
    let node = |name, port, point| {
        Arc::new(DropPort {
            name,
            port,
            seen: Mutex::new(Vec::new()),
            point,
        })
    };
    let pre = node("test-pre", 9, Point::PreRouting);
    let post = node("test-post", 19, Point::PostRouting);
    let features = &mut h.snap.features;
    features.register(Family::Ipv4, Point::PostRouting, 10, post.clone());
    features.register(Family::Ipv4, Point::PreRouting, 10, pre.clone());
    assert_eq!(
        features.describe().lines().nth(1),
        Some("ip4-pre-routing      test-pre")
    );
    let eth0 = mac_for("eth0");
    let to = |port| {
        let packet = udp_packet(ip("10.1.0.2"), ip("10.2.0.2"), 1000, port, b"q");
        ethernet(eth0, HOST, ETHERTYPE_IPV4, &packet)
    };
    let out = h.feed(0, &[to(9), to(19), to(53)]);
    let verdicts: Vec<_> = out.iter().map(|(v, _)| *v).collect();
    assert_eq!(verdicts, [Verdict::Done, Verdict::Done, Verdict::Tx(1)]);
    assert_eq!(h.total(Counter::FeatureDropped), 2);
    assert_eq!(
        pre.seen.lock().unwrap().len(),
        3,
        "pre-routing sees every packet"
    );
    let eth1 = h.id("eth1");
    assert_eq!(
        *post.seen.lock().unwrap(),
        [(Point::PostRouting, Some(eth1)); 2],
        "post-routing sees what pre-routing let through, with its egress"
    );
}
