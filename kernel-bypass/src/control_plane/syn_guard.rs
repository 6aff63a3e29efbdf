//! Keeps the appliance's TCP listeners reachable under a SYN flood.
//!
//! The local stack (smoltcp) holds a half-open connection in one of a
//! small pool of listening sockets; a flood from random sources would fill
//! the pool and refuse everyone. While SYNs arrive faster than a listener
//! can take them, the guard is in challenge mode: a SYN from a source not
//! yet verified never reaches the stack; it is answered with a SYN-ACK
//! whose acknowledgement number is a keyed hash of the connection (a
//! cookie) instead of the client's sequence number plus one. A real TCP
//! stack answers an acknowledgement of something it never sent with a RST
//! carrying that number as its sequence (RFC 9293 3.10.7.3); a RST that
//! proves the cookie marks its source verified for a while, and the
//! client's own SYN retransmission (one second later on Linux) goes
//! through to the stack. Spoofed sources never answer, so they never take
//! a listening socket. Sources that talk TCP to the appliance outside a
//! flood are verified as they go, so the operators already connected pay
//! nothing, and nothing at all changes while there is no flood.
//!
//! The answers are rate limited, so the appliance reflects at most that
//! many packets.

use super::police::{is_syn, Bucket};
use crate::headers::{tcp_flags, FlowInfo};
use crate::learned::LearnedTable;
use crate::sessions::addr_bits;
use crate::wire::{be32, fold, ipv4_header_len, ones_sum, put_be16, DEFAULT_TTL};
use crate::wire::{IPV4_CHECKSUM, IPV4_DST, IPV4_HEADER, IPV4_SRC, IPV4_TTL};
use crate::wire::{IPV6_DST, IPV6_HEADER, IPV6_HOP_LIMIT, IPV6_SRC};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// SYNs per second the stack takes before the guard challenges (with a
/// burst of half the listening pool).
const SYN_RATE: u32 = 64;
const SYN_BURST: u32 = 16;
/// Challenge mode lasts this long after the last SYN over the rate (s).
const CHALLENGE_HOLD_SECS: u32 = 10;
/// Challenges sent per second at most (the reflection budget).
const CHALLENGES_PER_SEC: u32 = 20_000;
/// A verified source stays verified this long without traffic (s).
const VERIFIED_SECS: u32 = 300;
/// Cookies are keyed with the time in slots of this many seconds; the
/// current and the previous slot are accepted.
const COOKIE_SLOT_SECS: u32 = 64;

pub struct SynGuard {
    secret: RandomState,
    syns: Bucket,
    challenges: Bucket,
    challenge_until: AtomicU32,
    verified: LearnedTable<2>,
    pub challenged: AtomicU64,
    pub verified_by_cookie: AtomicU64,
}

/// What the guard decided about a TCP packet to the appliance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    Pass,
    /// Rewritten in place into the challenge: send it back.
    Challenge,
    Drop,
}

impl Default for SynGuard {
    fn default() -> Self {
        SynGuard {
            secret: RandomState::new(),
            syns: Bucket::new(SYN_RATE, SYN_BURST),
            challenges: Bucket::new(CHALLENGES_PER_SEC, CHALLENGES_PER_SEC / 10),
            challenge_until: AtomicU32::new(0),
            verified: LearnedTable::new(16_384),
            challenged: AtomicU64::new(0),
            verified_by_cookie: AtomicU64::new(0),
        }
    }
}

fn source_key(addr: IpAddr) -> [u64; 2] {
    let bits = addr_bits(addr);
    [(bits >> 64) as u64, bits as u64]
}

impl SynGuard {
    fn cookie(&self, flow: &FlowInfo, slot: u32) -> u32 {
        let endpoints = (flow.src, flow.dst, flow.src_port, flow.dst_port, slot);
        self.secret.hash_one(endpoints) as u32
    }

    fn is_verified(&self, src: IpAddr, now: u32) -> bool {
        self.verified
            .get(source_key(src))
            .is_some_and(|e| now.wrapping_sub(e.stamp) <= VERIFIED_SECS)
    }

    /// Whether the guard challenges now.
    pub fn challenging(&self, now: u32) -> bool {
        now < self.challenge_until.load(Ordering::Relaxed)
    }

    /// Decides about a TCP packet (`flow` of `packet`, IP header first).
    pub fn check(&self, packet: &mut [u8], flow: &FlowInfo, now: u32, now_ms: u64) -> Guard {
        let challenging = self.challenging(now);
        if flow.tcp_flags & tcp_flags::RST != 0 && challenging {
            return self.answer_to_challenge(packet, flow, now);
        }
        if !is_syn(flow) {
            // Outside a flood, whoever talks TCP to us is a real host.
            if !challenging && flow.tcp_flags & tcp_flags::ACK != 0 {
                self.verified.learn(source_key(flow.src), 1, now);
            }
            return Guard::Pass;
        }
        if self.is_verified(flow.src, now) {
            return Guard::Pass;
        }
        if !challenging {
            if self.syns.take(now_ms) {
                return Guard::Pass;
            }
            self.challenge_until
                .store(now + CHALLENGE_HOLD_SECS, Ordering::Relaxed);
        } else {
            // Over the rate still: the flood goes on.
            if !self.syns.take(now_ms) {
                self.challenge_until
                    .store(now + CHALLENGE_HOLD_SECS, Ordering::Relaxed);
            }
        }
        if !self.challenges.take(now_ms) {
            return Guard::Drop;
        }
        let cookie = self.cookie(flow, now / COOKIE_SLOT_SECS);
        match write_challenge(packet, cookie) {
            true => {
                self.challenged.fetch_add(1, Ordering::Relaxed);
                Guard::Challenge
            }
            false => Guard::Drop,
        }
    }

    /// A RST during a flood: one that proves a cookie verifies its source
    /// (and is dropped, the stack never saw the SYN); others go on.
    fn answer_to_challenge(&self, packet: &[u8], flow: &FlowInfo, now: u32) -> Guard {
        let Some(seq) = tcp_seq(packet) else {
            return Guard::Pass;
        };
        let slot = now / COOKIE_SLOT_SECS;
        let proves = [slot, slot.wrapping_sub(1)]
            .iter()
            .any(|s| self.cookie(flow, *s) == seq);
        if !proves {
            return Guard::Pass;
        }
        self.verified.learn(source_key(flow.src), 1, now);
        self.verified_by_cookie.fetch_add(1, Ordering::Relaxed);
        Guard::Drop
    }
}

/// Where the TCP header starts in an IPv4 or IPv6 packet (IPv6 without
/// extension headers, as `FlowInfo` reads it).
fn tcp_offset(packet: &[u8]) -> Option<usize> {
    match packet.first()? >> 4 {
        4 => Some(ipv4_header_len(packet)),
        6 => Some(IPV6_HEADER),
        _ => None,
    }
}

fn tcp_seq(packet: &[u8]) -> Option<u32> {
    let at = tcp_offset(packet)?;
    (packet.len() >= at + 20).then(|| be32(packet, at + 4))
}

/// Turns a SYN (checked by `FlowInfo`) into the challenge SYN-ACK, in place
/// and at the same length: addresses and ports swapped, acknowledgement
/// number the cookie, options and payload blanked to NOPs, checksums new.
fn write_challenge(packet: &mut [u8], cookie: u32) -> bool {
    let Some(at) = tcp_offset(packet) else {
        return false;
    };
    let end = packet.len();
    let tcp_len = usize::from(packet.get(at + 12).copied().unwrap_or(0) >> 4) * 4;
    if end < at + 20 || tcp_len < 20 || at + tcp_len > end {
        return false;
    }
    let is_v4 = packet[0] >> 4 == 4;
    let (src, dst, pseudo_at) = match is_v4 {
        true => (
            IPV4_SRC..IPV4_DST,
            IPV4_DST..IPV4_HEADER,
            IPV4_SRC..IPV4_HEADER,
        ),
        false => (
            IPV6_SRC..IPV6_DST,
            IPV6_DST..IPV6_HEADER,
            IPV6_SRC..IPV6_HEADER,
        ),
    };
    let mut original_src = [0u8; 16];
    let width = src.len();
    original_src[..width].copy_from_slice(&packet[src.clone()]);
    packet.copy_within(dst.clone(), src.start);
    packet[dst].copy_from_slice(&original_src[..width]);
    if is_v4 {
        packet[IPV4_TTL] = DEFAULT_TTL;
        put_be16(packet, IPV4_CHECKSUM, 0);
        let sum = !fold(ones_sum(&packet[..at], 0));
        put_be16(packet, IPV4_CHECKSUM, sum);
    } else {
        packet[IPV6_HOP_LIMIT] = DEFAULT_TTL;
    }
    let tcp = &mut packet[at..];
    let (sport, dport) = ([tcp[0], tcp[1]], [tcp[2], tcp[3]]);
    tcp[..2].copy_from_slice(&dport);
    tcp[2..4].copy_from_slice(&sport);
    let seq = cookie.rotate_left(16) ^ 0x5eed_5eed;
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&cookie.to_be_bytes());
    tcp[13] = tcp_flags::SYN | tcp_flags::ACK;
    put_be16(tcp, 14, 1024);
    put_be16(tcp, 16, 0);
    put_be16(tcp, 18, 0);
    tcp[20..].fill(1); // NOP options; no payload is kept either
    let segment_len = (end - at) as u32;
    let pseudo = ones_sum(&packet[pseudo_at], 0) + segment_len + u32::from(crate::wire::PROTO_TCP);
    let sum = !fold(ones_sum(&packet[at..], pseudo));
    put_be16(packet, at + 16, sum);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn syn(src: [u8; 4], sport: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&[10, 0, 0, 1]);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&[
            0,
            22,
            0,
            0,
            0,
            7,
            0,
            0,
            0,
            0,
            0x60,
            tcp_flags::SYN,
            0xff,
            0xff,
            0,
            0,
            0,
            0,
        ]);
        p.extend_from_slice(&[2, 4, 5, 0xb4]); // MSS option
        let sum = !fold(ones_sum(&p[..20], 0));
        put_be16(&mut p, 10, sum);
        p
    }

    /// What a client stack answers to the challenge: RST with seq = its ack.
    fn rst_for(challenge: &[u8]) -> Vec<u8> {
        let mut rst = challenge.to_vec();
        write_challenge(&mut rst, 0); // swap back
        let ack = be32(challenge, 28);
        rst[24..28].copy_from_slice(&ack.to_be_bytes());
        rst[33] = tcp_flags::RST;
        rst
    }

    #[test]
    fn a_flood_is_challenged_and_a_real_client_gets_through_on_its_retry() {
        let guard = SynGuard::default();
        let mut passed = 0;
        for i in 0..1000u16 {
            let mut p = syn([192, 0, 2, (i % 250) as u8], 1000 + i);
            let flow = FlowInfo::parse(&p).unwrap();
            if guard.check(&mut p, &flow, 0, 0) == Guard::Pass {
                passed += 1;
            }
        }
        assert_eq!(passed, SYN_BURST as usize, "only a burst reaches the stack");
        assert!(guard.challenging(0));
        let mut first = syn([198, 51, 100, 7], 40000);
        let flow = FlowInfo::parse(&first).unwrap();
        assert_eq!(guard.check(&mut first, &flow, 1, 1000), Guard::Challenge);
        let answer = FlowInfo::parse(&first).unwrap();
        assert_eq!((answer.src_port, answer.dst_port), (22, 40000));
        assert_eq!(answer.tcp_flags, tcp_flags::SYN | tcp_flags::ACK);
        assert_eq!(!fold(ones_sum(&first[..20], 0)), 0, "IPv4 checksum");
        let mut rst = rst_for(&first);
        let flow = FlowInfo::parse(&rst).unwrap();
        assert_eq!(guard.check(&mut rst, &flow, 1, 1000), Guard::Drop);
        let mut retry = syn([198, 51, 100, 7], 40000);
        let flow = FlowInfo::parse(&retry).unwrap();
        assert_eq!(guard.check(&mut retry, &flow, 2, 2000), Guard::Pass);
        assert_eq!(guard.verified_by_cookie.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_forged_rst_verifies_nothing() {
        let guard = SynGuard::default();
        guard.challenge_until.store(100, Ordering::Relaxed);
        let mut rst = syn([198, 51, 100, 8], 40000);
        rst[33] = tcp_flags::RST;
        let flow = FlowInfo::parse(&rst).unwrap();
        assert_eq!(guard.check(&mut rst, &flow, 1, 1000), Guard::Pass);
        assert!(!guard.is_verified(flow.src, 1));
    }

    proptest! {
        #[test]
        fn no_segment_makes_the_guard_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
            flags in any::<u8>(),
        ) {
            let guard = SynGuard::default();
            guard.challenge_until.store(100, Ordering::Relaxed);
            let mut p = syn([192, 0, 2, 1], 1);
            p.truncate(40);
            p.extend_from_slice(&bytes);
            p[33] = flags;
            p[32] = bytes.first().copied().unwrap_or(0x50);
            let len = p.len() as u16;
            p[2..4].copy_from_slice(&len.to_be_bytes());
            if let Some(flow) = FlowInfo::parse(&p) {
                let _ = guard.check(&mut p, &flow, 1, 1000);
            }
        }
    }
}
