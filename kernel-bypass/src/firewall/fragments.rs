//! Later fragments of a packet carry no transport header, so neither the
//! session table nor a list's port rules can judge them. The firewall
//! remembers the first fragments it passed (by VRF, addresses, protocol
//! and IP identification) for a few seconds and passes the rest of those
//! packets; a later fragment whose first one it did not pass, or has
//! forgotten, is dropped and counted. Linux reassembles before conntrack;
//! we judge each fragment as it comes and hold none (no buffer to fill).
//!
//! The memory is a fixed array of atomic words, one per packet, placed by
//! hash: no lock, nothing allocated per packet, and a newer packet takes
//! the place of an older one that hashes to the same word.

use crate::headers::FlowInfo;
use crate::open_table::mix_words;
use crate::sessions::{addr_bits, words};
use crate::snapshot::VrfId;
use std::sync::atomic::{AtomicU64, Ordering};

/// Packets remembered at once (32 KiB).
const SLOTS: usize = 4096;
/// How long after its first fragment a packet's others may come.
const FRAGMENT_SECS: u32 = 5;
/// A word: the key's hash in the top 40 bits, the time in the low 24.
const TIME_BITS: u32 = 24;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

pub struct FragmentMemory {
    slots: Box<[AtomicU64]>,
}

impl Default for FragmentMemory {
    fn default() -> Self {
        FragmentMemory {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// The hash of the packet a fragment belongs to (never 0: 0 is empty).
fn packet_hash(vrf: VrfId, flow: &FlowInfo, id: u32) -> u64 {
    let ([src_hi, src_lo], [dst_hi, dst_lo]) =
        (words(addr_bits(flow.src)), words(addr_bits(flow.dst)));
    let rest = u64::from(id) | u64::from(flow.protocol) << 32 | u64::from(vrf) << 40;
    mix_words(&[src_hi, src_lo, dst_hi, dst_lo, rest]) | 1 << 63
}

impl FragmentMemory {
    /// Remembers that the first fragment of packet `id` of `flow` passed.
    pub fn remember(&self, vrf: VrfId, flow: &FlowInfo, id: u32, now: u32) {
        let hash = packet_hash(vrf, flow, id);
        let word = hash & !TIME_MASK | u64::from(now) & TIME_MASK;
        self.slots[hash as usize % SLOTS].store(word, Ordering::Relaxed);
    }

    /// Whether the first fragment of packet `id` of `flow` passed lately.
    pub fn recalls(&self, vrf: VrfId, flow: &FlowInfo, id: u32, now: u32) -> bool {
        let hash = packet_hash(vrf, flow, id);
        let word = self.slots[hash as usize % SLOTS].load(Ordering::Relaxed);
        let age = (u64::from(now).wrapping_sub(word) & TIME_MASK) as u32;
        word & !TIME_MASK == hash & !TIME_MASK && age <= FRAGMENT_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PROTO_UDP;

    fn flow(src: &str) -> FlowInfo {
        FlowInfo {
            src: src.parse().unwrap(),
            dst: "192.0.2.1".parse().unwrap(),
            protocol: PROTO_UDP,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            icmp: (0, 0),
            has_transport: false,
            fragment: None,
        }
    }

    #[test]
    fn a_packet_is_recalled_by_its_own_identity_for_a_few_seconds() {
        let memory = FragmentMemory::default();
        let (a, b) = (flow("10.0.0.2"), flow("2001:db8::2"));
        memory.remember(0, &a, 7, 100);
        assert!(memory.recalls(0, &a, 7, 100 + FRAGMENT_SECS));
        assert!(!memory.recalls(0, &a, 7, 101 + FRAGMENT_SECS), "forgotten");
        assert!(!memory.recalls(0, &a, 8, 100), "another packet");
        assert!(!memory.recalls(1, &a, 7, 100), "another VRF");
        assert!(!memory.recalls(0, &b, 7, 100), "another source");
    }
}
