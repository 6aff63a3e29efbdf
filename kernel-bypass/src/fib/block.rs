//! Compressed encoding of the routes longer than /16 inside one /16 block.
//!
//! A block's 65,536 addresses are resolved in two 8-bit strides: a root node
//! over address bits 16..24 and, only for the /24s that hold /25-/32 routes, a
//! child node over bits 24..32. Each node stores its 256 entries Poptrie-style
//! as bitmaps plus the distinct runs of equal leaf values, so a block with a
//! dozen /24 routes costs about two hundred bytes where DIR-24-8 spends 1 KiB
//! of tbl24 per touched /16 (and 64 MiB once routes are spread everywhere).
//!
//! Everything lives in one `[u32]` buffer so a lookup touches one allocation:
//!
//! ```text
//! root:      leaf set (LEAF_SET_WORDS) | child bitmap (8) | child ranks (2) | first child
//! children:  one leaf set each, in the order of their /24
//! leaves:    the root's leaf runs, then each child's leaf runs
//! leaf set:  run-start bitmap (8) | run ranks (2) | offset of the first leaf
//! ```
//!
//! Ranks hold, for each 32-bit bitmap word, the number of bits set in the
//! words before it, packed as four bytes per `u32` (at most 224, so a byte
//! suffices); a rank query is then one byte extract and one popcount.

use std::sync::Arc;

/// Leaf value meaning "no route in this block covers the address".
pub(super) const NO_VALUE: u32 = u32::MAX;

const ENTRIES: usize = 256;
const BITMAP_WORDS: usize = ENTRIES / 32;
const RANK_WORDS: usize = BITMAP_WORDS / 4;
const LEAF_SET_WORDS: usize = BITMAP_WORDS + RANK_WORDS + 1;
const CHILD_BITMAP_AT: usize = LEAF_SET_WORDS;
const CHILD_RANKS_AT: usize = CHILD_BITMAP_AT + BITMAP_WORDS;
const FIRST_CHILD_AT: usize = CHILD_RANKS_AT + RANK_WORDS;
const ROOT_WORDS: usize = FIRST_CHILD_AT + 1;

/// A route longer than /16, relative to its block, ordered by (address, length)
/// which is also the order `show ip route` lists them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LongRoute {
    /// Low 16 address bits above the prefix length byte.
    key: u32,
    pub value: u32,
}

impl LongRoute {
    pub fn new(low_bits: u16, prefix_len: u8, value: u32) -> LongRoute {
        LongRoute {
            key: (u32::from(low_bits) << 8) | u32::from(prefix_len),
            value,
        }
    }

    pub fn key(&self) -> u32 {
        self.key
    }

    pub fn low_bits(&self) -> u16 {
        (self.key >> 8) as u16
    }

    pub fn prefix_len(&self) -> u8 {
        self.key as u8
    }
}

/// Encodes a block's routes (sorted by key, lengths 17..=32); `None` when empty.
pub(super) fn encode(routes: &[LongRoute]) -> Option<Arc<[u32]>> {
    if routes.is_empty() {
        return None;
    }
    let mut root_entries = [NO_VALUE; ENTRIES];
    paint(&mut root_entries, routes, 17..=24, |r| {
        (usize::from(r.low_bits() >> 8), 24 - r.prefix_len())
    });

    let children = child_ranges(routes);
    let mut child_bits = [0u32; BITMAP_WORDS];
    for &(slot, _) in &children {
        set_bit(&mut child_bits, slot);
    }

    let mut buf = vec![0u32; ROOT_WORDS + children.len() * LEAF_SET_WORDS];
    buf[CHILD_BITMAP_AT..CHILD_RANKS_AT].copy_from_slice(&child_bits);
    buf[CHILD_RANKS_AT..FIRST_CHILD_AT].copy_from_slice(&ranks(&child_bits));
    buf[FIRST_CHILD_AT] = ROOT_WORDS as u32;
    write_leaf_set(&mut buf, 0, &root_entries, &child_bits);

    for (index, &(slot, ref range)) in children.iter().enumerate() {
        // Addresses of the /24 not covered by a /25-/32 take its /17-/24 route.
        let mut entries = [root_entries[slot]; ENTRIES];
        paint(&mut entries, &routes[range.clone()], 25..=32, |r| {
            (usize::from(r.low_bits() & 0xff), 32 - r.prefix_len())
        });
        let at = ROOT_WORDS + index * LEAF_SET_WORDS;
        write_leaf_set(&mut buf, at, &entries, &[0; BITMAP_WORDS]);
    }
    Some(buf.into())
}

/// The value of the longest route in the block covering `low_bits`, or `NO_VALUE`.
#[inline(always)]
pub(super) fn lookup(block: &[u32], low_bits: u16) -> u32 {
    let slot = usize::from(low_bits >> 8);
    let (word, bit) = (slot / 32, slot % 32);
    let child_word = block[CHILD_BITMAP_AT + word];
    if (child_word >> bit) & 1 == 0 {
        return leaf(block, 0, slot);
    }
    let earlier = rank_before_word(block, CHILD_RANKS_AT, word)
        + (child_word & ((1u32 << bit) - 1)).count_ones();
    let child = block[FIRST_CHILD_AT] as usize + earlier as usize * LEAF_SET_WORDS;
    leaf(block, child, usize::from(low_bits & 0xff))
}

/// Address of the root node's first cache line, for prefetching.
#[inline(always)]
pub(super) fn root_ptr(block: &[u32]) -> *const u32 {
    block.as_ptr()
}

/// Leaf value of entry `slot` in the leaf set at `at`: the run it belongs to
/// is the last run start at or before `slot`.
#[inline(always)]
fn leaf(block: &[u32], at: usize, slot: usize) -> u32 {
    let (word, bit) = (slot / 32, slot % 32);
    let runs = rank_before_word(block, at + BITMAP_WORDS, word)
        + (block[at + word] & (u32::MAX >> (31 - bit))).count_ones();
    // Every leaf entry is in a run whose start bit is set, so `runs >= 1`.
    block[block[at + BITMAP_WORDS + RANK_WORDS] as usize + runs as usize - 1]
}

#[inline(always)]
fn rank_before_word(block: &[u32], ranks_at: usize, word: usize) -> u32 {
    (block[ranks_at + word / 4] >> ((word % 4) * 8)) & 0xff
}

/// Paints routes with lengths in `lengths`, shortest first so that longer
/// routes overwrite the ones they refine; `span` maps a route to its first
/// entry and the log2 of the number of entries it covers.
fn paint(
    entries: &mut [u32; ENTRIES],
    routes: &[LongRoute],
    lengths: std::ops::RangeInclusive<u8>,
    span: impl Fn(&LongRoute) -> (usize, u8),
) {
    for len in lengths {
        for route in routes.iter().filter(|r| r.prefix_len() == len) {
            let (first, log2) = span(route);
            entries[first..first + (1usize << log2)].fill(route.value);
        }
    }
}

/// The /24 slots holding /25-/32 routes, each with the index range of `routes`
/// (sorted by address) that falls inside that /24.
fn child_ranges(routes: &[LongRoute]) -> Vec<(usize, std::ops::Range<usize>)> {
    let mut children = Vec::new();
    let mut start = 0;
    while let Some(offset) = routes[start..].iter().position(|r| r.prefix_len() > 24) {
        let slot = usize::from(routes[start + offset].low_bits() >> 8);
        let end = routes.partition_point(|r| usize::from(r.low_bits() >> 8) <= slot);
        children.push((slot, start + offset..end));
        start = end;
    }
    children
}

/// Writes the leaf set of `entries` (skipping child slots) at `at`, appending
/// one leaf per run of equal consecutive values.
fn write_leaf_set(
    buf: &mut Vec<u32>,
    at: usize,
    entries: &[u32; ENTRIES],
    child_bits: &[u32; BITMAP_WORDS],
) {
    let first_leaf = buf.len() as u32;
    let mut run_starts = [0u32; BITMAP_WORDS];
    let mut previous = None;
    for (slot, &value) in entries.iter().enumerate() {
        if (child_bits[slot / 32] >> (slot % 32)) & 1 == 1 {
            previous = None;
            continue;
        }
        if previous != Some(value) {
            set_bit(&mut run_starts, slot);
            buf.push(value);
            previous = Some(value);
        }
    }
    buf[at..at + BITMAP_WORDS].copy_from_slice(&run_starts);
    buf[at + BITMAP_WORDS..at + BITMAP_WORDS + RANK_WORDS].copy_from_slice(&ranks(&run_starts));
    buf[at + BITMAP_WORDS + RANK_WORDS] = first_leaf;
}

fn set_bit(bits: &mut [u32; BITMAP_WORDS], slot: usize) {
    bits[slot / 32] |= 1 << (slot % 32);
}

fn ranks(bits: &[u32; BITMAP_WORDS]) -> [u32; RANK_WORDS] {
    let mut packed = [0u32; RANK_WORDS];
    let mut before = 0u32;
    for (word, bitmap) in bits.iter().enumerate() {
        packed[word / 4] |= before << ((word % 4) * 8);
        before += bitmap.count_ones();
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(low: u16, len: u8, value: u32) -> LongRoute {
        LongRoute::new(low, len, value)
    }

    #[test]
    fn empty_block_has_no_encoding() {
        assert!(encode(&[]).is_none());
    }

    #[test]
    fn slash24_and_more_specifics_resolve() {
        // x.x.1.0/24 -> 1, x.x.1.128/25 -> 2, x.x.1.200/32 -> 3, x.x.4.0/22 -> 4
        let routes = [
            route(0x0100, 24, 1),
            route(0x0180, 25, 2),
            route(0x01c8, 32, 3),
            route(0x0400, 22, 4),
        ];
        let block = encode(&routes).unwrap();
        assert_eq!(lookup(&block, 0x0000), NO_VALUE);
        assert_eq!(lookup(&block, 0x0105), 1);
        assert_eq!(lookup(&block, 0x0181), 2);
        assert_eq!(lookup(&block, 0x01c8), 3);
        assert_eq!(lookup(&block, 0x01c9), 2);
        assert_eq!(lookup(&block, 0x0400), 4);
        assert_eq!(lookup(&block, 0x07ff), 4);
        assert_eq!(lookup(&block, 0x0800), NO_VALUE);
    }

    #[test]
    fn every_slot_a_child_uses_all_rank_bytes() {
        let routes: Vec<_> = (0..=255u16)
            .map(|slot| route((slot << 8) | 7, 32, u32::from(slot)))
            .collect();
        let block = encode(&routes).unwrap();
        for slot in 0..=255u16 {
            assert_eq!(lookup(&block, (slot << 8) | 7), u32::from(slot));
            assert_eq!(lookup(&block, (slot << 8) | 8), NO_VALUE);
        }
    }

    #[test]
    fn alternating_values_make_one_run_per_entry() {
        let routes: Vec<_> = (0..=255u16)
            .map(|slot| route(slot << 8, 24, u32::from(slot % 2)))
            .collect();
        let block = encode(&routes).unwrap();
        assert_eq!(block.len(), ROOT_WORDS + 256);
        for slot in 0..=255u16 {
            assert_eq!(lookup(&block, (slot << 8) | 0x42), u32::from(slot % 2));
        }
    }
}
