//! Bridge domains fed in memory: VLANs on eth0 (port 0) and VXLAN
//! segments behind two remote VTEPs on eth1 (port 1) in one L2 segment.
//! Tagged frames cross to the overlay encapsulated and back tagged, MACs
//! are learned on both sides and age out, unknown destinations flood with
//! split horizon, the MAC limit holds under a flood of random sources,
//! two domains in two VRFs with the same addresses stay apart, the BDIs
//! answer ARP and IPv6 neighbour discovery on their domain and route
//! between domains and to a routed interface; random frames
//! never panic and never loop back to the overlay.

mod support;

use kernel_bypass::counters::Counter;
use kernel_bypass::pipeline::Verdict;
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::{
    link_local_for, multicast_mac, solicited_node, Mac, BROADCAST_MAC, ETHERTYPE_ARP,
    ETHERTYPE_IPV4, ETHERTYPE_IPV6, ICMPV6_NEIGHBOR_ADVERT,
};
use proptest::prelude::*;
use std::net::Ipv4Addr;
use support::harness::{Harness, HOST_MACS};
use support::packets::{echo_request, ethernet, neighbor_solicit, tagged, udp_packet, vxlan};

/// A host on VLAN 100, one behind VTEP .7, one behind VTEP .8.
const A: Mac = [0x02, 0, 0, 0, 0, 0xa1];
const B: Mac = [0x02, 0, 0, 0, 0, 0xb1];
const C: Mac = [0x02, 0, 0, 0, 0, 0xc1];
const UNKNOWN: Mac = [0x02, 0, 0, 0, 0, 0xee];
/// An ethertype no interface handles: bridged only.
const TEST_TYPE: u16 = 0x88b5;
const VTEP_7: &str = "192.0.2.7";
const VTEP_8: &str = "192.0.2.8";
const NEIGHBORS: &[(&str, &str)] = &[("eth1", VTEP_7), ("eth1", VTEP_8)];

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Two domains: 10 (VLAN 100, VNI 5010 to both VTEPs, bdi10) and 20
/// (VLAN 200, VNI 5020 to .7, bdi20); `extra` lines go in front.
fn config(extra: &[&str], bdi20_address: &str) -> String {
    let mut lines: Vec<String> = extra.iter().map(|l| l.to_string()).collect();
    lines.extend(
        [
            "interface eth0",
            "interface eth0.100",
            "interface eth0.200",
            "interface eth1",
            " ip address 192.0.2.1 255.255.255.0",
            "interface vxlan1",
            " vni 5010",
            " source-interface eth1",
            " remote 192.0.2.7",
            " remote 192.0.2.8",
            "interface vxlan2",
            " vni 5020",
            " source-interface eth1",
            " remote 192.0.2.7",
            "interface bdi10",
            " ip address 10.10.0.1 255.255.255.0",
            "interface bdi20",
        ]
        .map(String::from),
    );
    lines.push(format!(" ip address {bdi20_address}"));
    lines.extend(
        [
            "bridge-domain 10",
            " member eth0.100",
            " member vni 5010",
            "bridge-domain 20",
            " member eth0.200",
            " member vni 5020",
        ]
        .map(String::from),
    );
    lines.join("\n") + "\n"
}

fn harness() -> Harness {
    Harness::new(&config(&[], "10.20.0.1 255.255.255.0"), NEIGHBORS)
}

/// An Ethernet frame of the test type.
fn frame(dst: Mac, src: Mac) -> Vec<u8> {
    ethernet(dst, src, TEST_TYPE, &[0x5a; 46])
}

/// `inner` as VTEP `vtep` sends it to the appliance in `vni`.
fn from_vtep(vtep: &str, vni: u32, inner: &[u8]) -> Vec<u8> {
    let datagram = udp_packet(ip(vtep), ip("192.0.2.1"), 49999, 4789, &vxlan(vni, inner));
    ethernet(mac_for("eth1"), HOST_MACS[1], ETHERTYPE_IPV4, &datagram)
}

/// Every frame the last batch sent (the batch's and the flood copies),
/// with its port.
fn sent(h: &Harness, verdicts: &[Verdict]) -> Vec<(u16, Vec<u8>)> {
    let (replicas, replica_verdicts) = h.pipeline.replicas();
    let batch = h.batch.frames().iter().zip(verdicts);
    (batch.chain(replicas.iter().zip(replica_verdicts)))
        .filter_map(|(f, v)| match v {
            Verdict::Tx(port) => Some((*port, f.data().to_vec())),
            Verdict::Done => None,
        })
        .collect()
}

/// A VXLAN frame out of eth1: (remote VTEP, VNI, inner frame).
fn decap(frame: &[u8]) -> (Ipv4Addr, u32, Vec<u8>) {
    assert_eq!(frame[12..14], [0x08, 0x00], "IPv4");
    assert_eq!(frame[23], 17, "UDP");
    assert_eq!(u16::from_be_bytes([frame[36], frame[37]]), 4789);
    let dst = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
    let vni = u32::from_be_bytes([frame[46], frame[47], frame[48], frame[49]]) >> 8;
    (dst, vni, frame[50..].to_vec())
}

/// A tagged frame out of eth0: (VLAN, the frame untagged).
fn untag(frame: &[u8]) -> (u16, Vec<u8>) {
    assert_eq!(frame[12..14], [0x81, 0x00], "802.1Q");
    let mut plain = frame[..12].to_vec();
    plain.extend_from_slice(&frame[16..]);
    (u16::from_be_bytes([frame[14], frame[15]]) & 0xfff, plain)
}

fn remotes_of(out: &[(u16, Vec<u8>)]) -> Vec<(Ipv4Addr, u32)> {
    let mut r: Vec<_> = (out.iter())
        .filter(|(port, _)| *port == 1)
        .map(|(_, f)| {
            let (vtep, vni, _) = decap(f);
            (vtep, vni)
        })
        .collect();
    r.sort();
    r
}

#[test]
fn tagged_frames_cross_to_the_vni_encapsulated_and_back_with_learning_on_both_sides() {
    let mut h = harness();
    let hello = frame(BROADCAST_MAC, A);
    let v = h.feed_frames(0, &[tagged(BROADCAST_MAC, A, 100, TEST_TYPE, &[0x5a; 46])]);
    let out = sent(&h, &v);
    assert_eq!(
        remotes_of(&out),
        [(ip(VTEP_7), 5010), (ip(VTEP_8), 5010)],
        "flooded to every remote VTEP of the VNI"
    );
    for (_, f) in &out {
        assert_eq!(
            decap(f).2,
            hello,
            "the inner frame is the untagged original"
        );
    }
    assert_eq!(h.total(Counter::VxlanEncapsulated), 2);

    let v = h.feed_frames(1, &[from_vtep(VTEP_7, 5010, &frame(A, B))]);
    let out = sent(&h, &v);
    assert_eq!(out.len(), 1, "A is known: one frame");
    assert_eq!(out[0].0, 0);
    assert_eq!(untag(&out[0].1), (100, frame(A, B)), "tagged for VLAN 100");

    let v = h.feed_frames(0, &[tagged(B, A, 100, TEST_TYPE, &[0x5a; 46])]);
    let out = sent(&h, &v);
    assert_eq!(
        remotes_of(&out),
        [(ip(VTEP_7), 5010)],
        "B is known behind .7 only"
    );

    let table = h.show("mac address-table bridge-domain 10");
    assert!(
        table.contains("02:00:00:00:00:a1") && table.contains("eth0.100"),
        "{table}"
    );
    assert!(
        table.contains("02:00:00:00:00:b1") && table.contains("vxlan1 192.0.2.7"),
        "{table}"
    );
    assert!(table.contains("Total Mac Addresses: 2"), "{table}");
    let domain = h.show("bridge-domain 10");
    assert!(domain.contains("MAC addresses learned: 2"), "{domain}");
    assert!(domain.contains("eth0.100 (VLAN 100)"), "{domain}");
    assert!(
        domain.contains("vxlan1 (VNI 5010, 2 remote VTEPs)"),
        "{domain}"
    );
    assert!(
        domain.contains("BDI interface: bdi10 (10.10.0.1/24)"),
        "{domain}"
    );

    assert_eq!(h.exec("clear mac address-table dynamic"), Ok(String::new()));
    let v = h.feed_frames(0, &[tagged(B, A, 100, TEST_TYPE, &[0x5a; 46])]);
    assert_eq!(
        remotes_of(&sent(&h, &v)).len(),
        2,
        "flooded again once cleared"
    );
}

#[test]
fn the_overlay_floods_to_the_vlan_only_and_never_back_to_the_overlay() {
    let mut h = harness();
    h.feed_frames(1, &[from_vtep(VTEP_8, 5010, &frame(BROADCAST_MAC, C))]);
    let v = h.feed_frames(1, &[from_vtep(VTEP_7, 5010, &frame(UNKNOWN, B))]);
    let out = sent(&h, &v);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(untag(&out[0].1), (100, frame(UNKNOWN, B)));
    let v = h.feed_frames(1, &[from_vtep(VTEP_7, 5010, &frame(BROADCAST_MAC, B))]);
    let out = sent(&h, &v);
    assert!(out.iter().all(|(port, _)| *port == 0), "{out:?}");
    assert_eq!(out.len(), 1);
    let v = h.feed_frames(1, &[from_vtep(VTEP_7, 5010, &frame(C, B))]);
    assert!(sent(&h, &v).is_empty(), "C is behind .8: not relayed");
    assert_eq!(h.total(Counter::L2SplitHorizon), 1);
    assert_eq!(h.total(Counter::VxlanEncapsulated), 0);
}

#[test]
fn the_mac_limit_holds_under_a_flood_of_random_sources_and_frames_still_flood() {
    let mut h = Harness::new(
        &config(&[], "10.20.0.1 255.255.255.0")
            .replace("bridge-domain 10\n", "bridge-domain 10\n mac limit 100\n"),
        NEIGHBORS,
    );
    let mut seed = 0x1234_5678u64;
    let mut flooded = 0;
    for _ in 0..16 {
        let frames: Vec<_> = (0..64)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let b = (seed >> 16).to_be_bytes();
                let src = [0x02, b[2], b[3], b[4], b[5], b[6]];
                tagged(UNKNOWN, src, 100, TEST_TYPE, &[0; 46])
            })
            .collect();
        let v = h.feed_frames(0, &frames);
        flooded += remotes_of(&sent(&h, &v)).len();
    }
    assert_eq!(flooded, 1024 * 2, "every frame flooded to both VTEPs");
    let domain = h.show("bridge-domain 10");
    assert!(domain.contains("Maximum address limit: 100"), "{domain}");
    assert!(
        domain.contains("MAC addresses learned: 100, not learned (limit): 924"),
        "{domain}"
    );
    assert_eq!(h.total(Counter::L2MacLimit), 924);
}

#[test]
fn two_domains_in_two_vrfs_with_the_same_addresses_stay_apart() {
    let text = config(
        &[
            "vrf definition RED",
            "vrf definition BLUE",
            "interface bdi10",
            " vrf forwarding RED",
            "interface bdi20",
            " vrf forwarding BLUE",
        ],
        "10.10.0.1 255.255.255.0",
    );
    let mut h = Harness::new(&text, NEIGHBORS);
    let arp = |vlan| {
        let mut request = vec![0, 1, 8, 0, 6, 4, 0, 1];
        request.extend_from_slice(&A);
        request.extend_from_slice(&[10, 10, 0, 50]);
        request.extend_from_slice(&[0; 6]);
        request.extend_from_slice(&[10, 10, 0, 1]);
        tagged(BROADCAST_MAC, A, vlan, ETHERTYPE_ARP, &request)
    };
    for (vlan, bdi) in [(100, "bdi10"), (200, "bdi20")] {
        let v = h.feed_frames(0, &[arp(vlan)]);
        let out = sent(&h, &v);
        let replies: Vec<_> = (out.iter())
            .filter(|(port, f)| *port == 0 && f[12..14] == [0x81, 0x00])
            .map(|(_, f)| untag(f))
            .collect();
        assert_eq!(replies.len(), 1, "{out:?}");
        let (tag, reply) = &replies[0];
        assert_eq!(*tag, vlan, "answered on the VLAN it was asked on");
        assert_eq!(reply[6..12], mac_for(bdi), "by that domain's BDI");
        assert_eq!(reply[0..6], A);
    }
    let table = h.show("mac address-table");
    assert_eq!(table.matches("02:00:00:00:00:a1").count(), 2, "{table}");
    // B is known in domain 20 only: domain 10 floods, never to VLAN 200.
    h.feed_frames(0, &[tagged(BROADCAST_MAC, B, 200, TEST_TYPE, &[0; 46])]);
    let v = h.feed_frames(0, &[tagged(B, A, 100, TEST_TYPE, &[0; 46])]);
    let out = sent(&h, &v);
    assert_eq!(remotes_of(&out), [(ip(VTEP_7), 5010), (ip(VTEP_8), 5010)]);
    assert!(out.iter().all(|(port, _)| *port == 1));
}

#[test]
fn the_bdis_route_between_domains_and_to_a_routed_interface() {
    let mut h = harness();
    let a_ip = ip("10.10.0.50");
    let b_ip = ip("10.20.0.50");
    // B, behind VTEP .7 in domain 20, asks for its gateway: answered
    // through the overlay, and B becomes a neighbour of bdi20.
    let mut request = vec![0, 1, 8, 0, 6, 4, 0, 1];
    request.extend_from_slice(&B);
    request.extend_from_slice(&b_ip.octets());
    request.extend_from_slice(&[0; 6]);
    request.extend_from_slice(&[10, 20, 0, 1]);
    let arp = ethernet(BROADCAST_MAC, B, ETHERTYPE_ARP, &request);
    let v = h.feed_frames(1, &[from_vtep(VTEP_7, 5020, &arp)]);
    let out = sent(&h, &v);
    let replies: Vec<_> = (out.iter())
        .filter(|(port, _)| *port == 1)
        .map(|(_, f)| decap(f))
        .filter(|(_, _, inner)| inner[12..14] == [0x08, 0x06])
        .collect();
    assert_eq!(replies.len(), 1, "{out:?}");
    assert_eq!((replies[0].0, replies[0].1), (ip(VTEP_7), 5020));
    assert_eq!(replies[0].2[0..6], B);
    assert_eq!(replies[0].2[6..12], mac_for("bdi20"));

    // A pings B through bdi10 -> bdi20: routed, then bridged into the overlay.
    let echo = echo_request(a_ip, b_ip, 64);
    let v = h.feed_frames(
        0,
        &[tagged(mac_for("bdi10"), A, 100, ETHERTYPE_IPV4, &echo)],
    );
    let out = sent(&h, &v);
    assert_eq!(out.len(), 1, "{out:?}");
    let (vtep, vni, inner) = decap(&out[0].1);
    assert_eq!((vtep, vni), (ip(VTEP_7), 5020));
    assert_eq!(
        (inner[0..6].to_vec(), inner[6..12].to_vec()),
        (B.to_vec(), mac_for("bdi20").to_vec())
    );
    assert_eq!(inner[14 + 8], 63, "TTL decremented once");
    assert_eq!(inner[14 + 16..14 + 20], b_ip.octets());

    // And to a routed interface: A reaches VTEP .7's own address on eth1.
    let echo = echo_request(a_ip, ip(VTEP_7), 64);
    let v = h.feed_frames(
        0,
        &[tagged(mac_for("bdi10"), A, 100, ETHERTYPE_IPV4, &echo)],
    );
    let out = sent(&h, &v);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, 1);
    assert_eq!(out[0].1[0..6], HOST_MACS[1]);
    assert_eq!(out[0].1[12..14], [0x08, 0x00], "plain IPv4, not bridged");
    assert_eq!(out[0].1[30..34], ip(VTEP_7).octets());
}

#[test]
fn the_bdi_answers_ipv6_neighbour_discovery_on_the_domain() {
    let mut h = harness();
    let gateway = link_local_for(&mac_for("bdi10"));
    let solicit = neighbor_solicit("fe80::a1".parse().unwrap(), A, gateway);
    let group = multicast_mac(solicited_node(gateway));
    let v = h.feed_frames(0, &[tagged(group, A, 100, ETHERTYPE_IPV6, &solicit)]);
    let out = sent(&h, &v);
    assert_eq!(
        remotes_of(&out).len(),
        2,
        "multicast flooded to the overlay"
    );
    let answers: Vec<_> = (out.iter())
        .filter(|(port, _)| *port == 0)
        .map(|(_, f)| untag(f))
        .collect();
    assert_eq!(answers.len(), 1, "{out:?}");
    let (vlan, advert) = &answers[0];
    assert_eq!(*vlan, 100);
    assert_eq!(
        (advert[0..6].to_vec(), advert[6..12].to_vec()),
        (A.to_vec(), mac_for("bdi10").to_vec())
    );
    assert_eq!(advert[14 + 40], ICMPV6_NEIGHBOR_ADVERT);
}

#[test]
fn a_frame_too_big_for_the_overlay_is_counted_not_cut() {
    let mut h = harness();
    let v = h.feed_frames(0, &[tagged(UNKNOWN, A, 100, TEST_TYPE, &[0; 1460])]);
    let out = sent(&h, &v);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(h.total(Counter::L2MtuExceeded), 2, "once per remote VTEP");
    let v = h.feed_frames(0, &[tagged(UNKNOWN, A, 100, TEST_TYPE, &[0; 1450])]);
    assert_eq!(remotes_of(&sent(&h, &v)).len(), 2, "1450 fits");
}

#[test]
fn learned_macs_age_out() {
    let mut h = Harness::new(
        &config(&[], "10.20.0.1 255.255.255.0").replace(
            "bridge-domain 10\n",
            "bridge-domain 10\n mac aging-time 10\n",
        ),
        NEIGHBORS,
    );
    h.feed_frames(1, &[from_vtep(VTEP_7, 5010, &frame(BROADCAST_MAC, B))]);
    let v = h.feed_frames(0, &[tagged(B, A, 100, TEST_TYPE, &[0; 46])]);
    assert_eq!(remotes_of(&sent(&h, &v)).len(), 1, "B learned");
    std::thread::sleep(std::time::Duration::from_secs(11));
    let v = h.feed_frames(0, &[tagged(B, A, 100, TEST_TYPE, &[0; 46])]);
    assert_eq!(remotes_of(&sent(&h, &v)).len(), 2, "B aged out: flooded");
}

/// A frame from the overlay in domain 10 or 20, or a tagged or untagged
/// frame from eth0, from random bytes.
fn any_frame() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let macs = prop_oneof![
        Just(BROADCAST_MAC),
        Just(A),
        Just(B),
        Just(C),
        Just(mac_for("bdi10")),
        any::<[u8; 6]>()
    ];
    (
        0u8..4,
        macs.clone(),
        macs,
        prop_oneof![
            Just(TEST_TYPE),
            Just(ETHERTYPE_ARP),
            Just(ETHERTYPE_IPV4),
            any::<u16>()
        ],
        proptest::collection::vec(any::<u8>(), 0..120),
    )
        .prop_map(|(how, dst, src, ethertype, payload)| match how {
            0 => (0, tagged(dst, src, 100, ethertype, &payload)),
            1 => (0, tagged(dst, src, 200, ethertype, &payload)),
            2 => (
                1,
                from_vtep(VTEP_7, 5010, &ethernet(dst, src, ethertype, &payload)),
            ),
            _ => (0, payload),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random frames never panic, and a bridged frame from the overlay is
    /// never sent back to it (the BDI's frames aside: it answers and routes).
    #[test]
    fn random_frames_never_panic_and_never_loop(frames in proptest::collection::vec(any_frame(), 1..32)) {
        let mut h = harness();
        for (port, f) in frames {
            let overlay_bridged = port == 1 && f.get(50..56) != Some(&mac_for("bdi10")[..])
                && f.get(50..56) != Some(&BROADCAST_MAC[..]) && f.get(50) .is_some_and(|b| b & 1 == 0);
            let v = h.feed_frames(port, &[f]);
            let out = sent(&h, &v);
            prop_assert!(out.len() <= 3, "{:?}", out);
            if overlay_bridged {
                prop_assert!(out.iter().all(|(port, _)| *port == 0), "{:?}", out);
            }
        }
    }
}
