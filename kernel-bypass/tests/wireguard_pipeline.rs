//! WireGuard fed in memory, with boringtun as the remote peer: a packet
//! from the LAN starts a handshake out of the WAN port, the remote's data
//! comes out decrypted on the LAN, the LAN's goes out encrypted to the
//! remote; a replayed message, a packet from an address the peer is not
//! allowed, and random or corrupted datagrams to the listen port never
//! reach the LAN and never panic.

mod support;

use proptest::prelude::*;
use support::packets::echo_request;
use support::wireguard::{addr, connected, encrypted, from_remote, LAN_HOST, REMOTE_HOST};

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
