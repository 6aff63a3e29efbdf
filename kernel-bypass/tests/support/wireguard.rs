//! A WireGuard site in memory with boringtun as the remote peer, for the
//! WireGuard tests and benchmark: LAN eth0 10.1.0.0/24, WAN eth1
//! 192.0.2.0/24, the remote at 192.0.2.2 with its site 10.9.0.0/16 behind
//! wg0.

use super::harness::Harness;
use super::packets::{echo_request, udp_packet};
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use grammar::config::WgKey;
use kernel_bypass::pipeline::Verdict;
use kernel_bypass::wire::PROTO_UDP;
use std::net::Ipv4Addr;

pub const APPLIANCE_KEY: [u8; 32] = [0x11; 32];
pub const REMOTE_KEY: [u8; 32] = [0x22; 32];
pub const LAN_HOST: &str = "10.1.0.2";
pub const REMOTE_HOST: &str = "10.9.0.5";
pub const REMOTE_WAN: &str = "192.0.2.2";
pub const NEIGHBORS: &[(&str, &str)] = &[("eth0", LAN_HOST), ("eth1", REMOTE_WAN)];

pub fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn public(private: [u8; 32]) -> WgKey {
    WgKey(PublicKey::from(&StaticSecret::from(private)).to_bytes())
}

pub fn site() -> String {
    [
        "interface eth0\n ip address 10.1.0.1/24".to_string(),
        "interface eth1\n ip address 192.0.2.1/24".into(),
        "interface wg0\n ip address 10.99.0.1/24".into(),
        format!(" wireguard private-key {}", WgKey(APPLIANCE_KEY)),
        format!(" wireguard peer {}", public(REMOTE_KEY)),
        format!("  endpoint {REMOTE_WAN} 51820"),
        "  allowed-ips 10.9.0.0/16".into(),
        "ip route 10.9.0.0/16 wg0\n".into(),
    ]
    .join("\n")
}

/// The remote's end of the tunnel.
pub fn remote_tunn() -> Tunn {
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

/// The appliance's end as a bare boringtun `Tunn` (the benchmark's baseline).
pub fn appliance_tunn() -> Tunn {
    let remote = PublicKey::from(&StaticSecret::from(REMOTE_KEY));
    Tunn::new(
        StaticSecret::from(APPLIANCE_KEY),
        remote,
        None,
        None,
        9,
        None,
    )
}

/// The WireGuard message in a UDP packet the appliance sent to the remote.
pub fn message(packet: &[u8]) -> &[u8] {
    assert_eq!(packet[9], PROTO_UDP);
    assert_eq!(&packet[16..20], &addr(REMOTE_WAN).octets());
    assert_eq!(u16::from_be_bytes([packet[22], packet[23]]), 51820);
    &packet[28..]
}

/// A message from the remote, as a UDP packet to the appliance.
pub fn from_remote(message: &[u8]) -> Vec<u8> {
    udp_packet(addr(REMOTE_WAN), addr("192.0.2.1"), 51820, 51820, message)
}

/// A harness whose tunnel is up: the handshake done with `remote`, and a
/// packet from the LAN decrypted by it.
pub fn connected() -> (Harness, Tunn) {
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
    let verdicts = h.feed(0, std::slice::from_ref(&outbound));
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
pub fn encrypted(remote: &mut Tunn, inner: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    match remote.encapsulate(inner, &mut buf) {
        TunnResult::WriteToNetwork(m) => from_remote(m),
        other => panic!("the remote has a session: {other:?}"),
    }
}
