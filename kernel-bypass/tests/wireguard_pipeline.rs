//! WireGuard fed in memory, with boringtun as the remote peer: a packet
//! from the LAN starts a handshake out of the WAN port, the remote's data
//! comes out decrypted on the LAN, the LAN's goes out encrypted to the
//! remote; a replayed message, a packet from an address the peer is not
//! allowed, and random or corrupted datagrams to the listen port never
//! reach the LAN and never panic.

mod support;

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use grammar::config::WgKey;
use kernel_bypass::pipeline::Verdict;
use kernel_bypass::wire::PROTO_UDP;
use proptest::prelude::*;
use std::net::Ipv4Addr;
use support::harness::Harness;
use support::packets::{echo_request, udp_packet};

const APPLIANCE_KEY: [u8; 32] = [0x11; 32];
const REMOTE_KEY: [u8; 32] = [0x22; 32];
const LAN_HOST: &str = "10.1.0.2";
const REMOTE_HOST: &str = "10.9.0.5";
const REMOTE_WAN: &str = "192.0.2.2";
const NEIGHBORS: &[(&str, &str)] = &[("eth0", LAN_HOST), ("eth1", REMOTE_WAN)];

fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn public(private: [u8; 32]) -> WgKey {
    WgKey(PublicKey::from(&StaticSecret::from(private)).to_bytes())
}

fn site() -> String {
    [
        "interface eth0\n ip address 10.1.0.1/24".to_string(),
        "interface eth1\n ip address 192.0.2.1/24".into(),
        "interface wg0\n ip address 10.99.0.1/24".into(),
        format!(" wireguard private-key {}", WgKey(APPLIANCE_KEY)),
        format!(" wireguard peer {}", public(REMOTE_KEY)),
        format!("  endpoint {REMOTE_WAN} 51820"),
        "  allowed-ips 10.9.0.0/24".into(),
        "ip route 10.9.0.0/24 wg0\n".into(),
    ]
    .join("\n")
}

/// The remote's end of the tunnel.
fn remote_tunn() -> Tunn {
    let appliance = PublicKey::from(&StaticSecret::from(APPLIANCE_KEY));
    Tunn::new(
        StaticSecret::from(REMOTE_KEY),
        appliance,
        None,
        None,
        7,
        None,
    )
}

/// The WireGuard message in a UDP packet the appliance sent to the remote.
fn message(packet: &[u8]) -> &[u8] {
    assert_eq!(packet[9], PROTO_UDP);
    assert_eq!(&packet[16..20], &addr(REMOTE_WAN).octets());
    assert_eq!(u16::from_be_bytes([packet[22], packet[23]]), 51820);
    &packet[28..]
}

/// A message from the remote, as a UDP packet to the appliance.
fn from_remote(message: &[u8]) -> Vec<u8> {
    udp_packet(addr(REMOTE_WAN), addr("192.0.2.1"), 51820, 51820, message)
}

/// A harness whose tunnel is up: the handshake done with `remote`, and a
/// packet from the LAN decrypted by it.
fn connected() -> (Harness, Tunn) {
    let mut h = Harness::new(&site(), NEIGHBORS);
    let mut remote = remote_tunn();
    let mut buf = vec![0u8; 2048];
    // A packet to the remote site starts the handshake (and waits for it).
    let verdicts = h.feed(0, &[echo_request(addr(LAN_HOST), addr(REMOTE_HOST), 64)]);
    let sent = h.sent_on(&verdicts, 1);
    assert_eq!(sent.len(), 1, "a handshake initiation: {verdicts:?}");
    let response = match remote.decapsulate(None, message(&sent[0]), &mut buf) {
        TunnResult::WriteToNetwork(r) => r.to_vec(),
        other => panic!("the remote took the initiation: {other:?}"),
    };
    let verdicts = h.feed(1, &[from_remote(&response)]);
    assert!(!verdicts.contains(&Verdict::Tx(0)), "{verdicts:?}");
    // The initiator's first data message confirms the session to the
    // responder (the remote sends only after it).
    let outbound = echo_request(addr(LAN_HOST), addr(REMOTE_HOST), 64);
    let verdicts = h.feed(0, &[outbound.clone()]);
    let sent = h.sent_on(&verdicts, 1);
    assert_eq!(sent.len(), 1, "{verdicts:?}");
    match remote.decapsulate(None, message(&sent[0]), &mut buf) {
        TunnResult::WriteToTunnelV4(p, src) => {
            assert_eq!(src, addr(LAN_HOST));
            assert_eq!(&p[20..], &outbound[20..], "the same ICMP message");
        }
        other => panic!("the remote decrypts it: {other:?}"),
    }
    (h, remote)
}

/// The remote's packet `inner`, encrypted for the appliance.
fn encrypted(remote: &mut Tunn, inner: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    match remote.encapsulate(inner, &mut buf) {
        TunnResult::WriteToNetwork(m) => from_remote(m),
        other => panic!("the remote has a session: {other:?}"),
    }
}

#[test]
fn traffic_crosses_the_tunnel_both_ways_with_a_boringtun_peer() {
    let (mut h, mut remote) = connected();
    let inner = echo_request(addr(REMOTE_HOST), addr(LAN_HOST), 64);
    let verdicts = h.feed(1, &[encrypted(&mut remote, &inner)]);
    let on_lan = h.sent_on(&verdicts, 0);
    assert_eq!(on_lan.len(), 1, "decrypted onto the LAN: {verdicts:?}");
    assert_eq!(&on_lan[0][12..20], &inner[12..20], "same addresses");
    assert_eq!(on_lan[0][8], 63, "routed: TTL one less");

    let shown = h.show("wireguard wg0");
    assert!(shown.contains("latest handshake: 0 seconds ago"), "{shown}");
}

#[test]
fn replays_and_sources_outside_allowed_ips_are_dropped_and_counted() {
    let (mut h, mut remote) = connected();
    let allowed = encrypted(
        &mut remote,
        &echo_request(addr(REMOTE_HOST), addr(LAN_HOST), 64),
    );
    let verdicts = h.feed(1, &[allowed.clone(), allowed]);
    assert_eq!(
        h.sent_on(&verdicts, 0).len(),
        1,
        "the replay is not forwarded"
    );
    let spoofed = encrypted(
        &mut remote,
        &echo_request(addr("10.50.0.1"), addr(LAN_HOST), 64),
    );
    let verdicts = h.feed(1, &[spoofed]);
    assert!(h.sent_on(&verdicts, 0).is_empty(), "{verdicts:?}");
    let shown = h.show("wireguard");
    assert!(shown.contains("replayed 1"), "{shown}");
    assert!(shown.contains("source-not-allowed 1"), "{shown}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random datagrams, and valid messages with a byte changed, to the
    /// listen port: nothing reaches the LAN, nothing panics.
    #[test]
    fn random_and_corrupted_datagrams_never_reach_the_lan(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8),
        flip in (0usize..200, 1u8..),
        kind in prop_oneof![Just(1u8), Just(2), Just(3), Just(4)],
    ) {
        let (mut h, mut remote) = connected();
        let mut datagrams: Vec<_> = payloads.into_iter().map(|mut p| {
            // Some look like WireGuard: a known type and zeroes after it.
            if p.len() >= 4 { p[..4].copy_from_slice(&[kind, 0, 0, 0]); }
            from_remote(&p)
        }).collect();
        let mut valid = encrypted(&mut remote, &echo_request(addr(REMOTE_HOST), addr(LAN_HOST), 64));
        let at = 28 + flip.0 % (valid.len() - 28);
        valid[at] ^= flip.1;
        datagrams.push(valid);
        let verdicts = h.feed(1, &datagrams);
        prop_assert!(h.sent_on(&verdicts, 0).is_empty(), "{:?}", verdicts);
    }
}
