//! Compressed encoding of the routes longer than /16 inside one /16 block.
//!
//! A block's 65,536 addresses are resolved in two 8-bit strides: a root node
//! over address bits 16..24 and, only for the /24s that hold /25-/32 routes, a
//! child node over bits 24..32. Each node stores its 256 entries Poptrie-style
//! as bitmaps plus the distinct runs of equal leaf values, so a block with a
//! dozen /24 routes costs about 250 bytes where DIR-24-8 spends 1 KiB of
//! tbl24 per touched /16 (and 64 MiB once routes are spread everywhere).
//!
//! Everything lives in one `[u32]` buffer so a lookup touches one allocation,
//! and the common case (no /25-/32 under the /24) reads one aligned 16-byte
//! group of the root plus one leaf:
//!
//! ```text
//! root:         8 groups of 4 words, group w covers /24 slots 32w..32w+32:
//!               run-start bits | child bits | runs before (low 16 bits) and
//!               children before (high 16 bits) | offset of the child table
//! root leaves:  one value per run of equal consecutive leaf slots
//! child table:  offset of each child, in the order of their /24
//! each child:   8 groups of 2 words (run-start bits | runs before), then its leaves
//! ```
//!
//! "Runs before" counts the run starts in earlier groups (at most 224), so the
//! leaf of slot s is the (runs before + set run-start bits up to s)-th leaf.

use std::sync::Arc;

/// Leaf value meaning "no route in this block covers the address".
pub(super) const NO_VALUE: u32 = u32::MAX;

const ENTRIES: usize = 256;
const GROUPS: usize = ENTRIES / 32;
const ROOT_GROUP_WORDS: usize = 4;
const ROOT_WORDS: usize = GROUPS * ROOT_GROUP_WORDS;
const CHILD_GROUP_WORDS: usize = 2;
const CHILD_HEADER_WORDS: usize = GROUPS * CHILD_GROUP_WORDS;

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
    let mut child_bits = [0u32; GROUPS];
    for &(slot, _) in &children {
        child_bits[slot / 32] |= 1 << (slot % 32);
    }

    let mut buf = vec![0u32; ROOT_WORDS];
    let run_starts = push_leaves(&mut buf, &root_entries, &child_bits);
    let child_table = buf.len();
    let (run_ranks, child_ranks) = (ranks(&run_starts), ranks(&child_bits));
    for group in 0..GROUPS {
        buf[group * ROOT_GROUP_WORDS..(group + 1) * ROOT_GROUP_WORDS].copy_from_slice(&[
            run_starts[group],
            child_bits[group],
            run_ranks[group] | (child_ranks[group] << 16),
            child_table as u32,
        ]);
    }

    buf.resize(child_table + children.len(), 0);
    for (index, (slot, range)) in children.into_iter().enumerate() {
        buf[child_table + index] = buf.len() as u32;
        push_child(&mut buf, &routes[range], root_entries[slot]);
    }
    Some(buf.into())
}

/// Re-encodes a block whose only change is to the /25-/32 routes of the /24
/// holding `low_bits`, reusing everything of `old` but that /24's child node.
/// `None` when the change adds or removes the child (the root changes too):
/// then the block needs `encode`.
pub(super) fn reencode_child(
    old: &[u32],
    routes: &[LongRoute],
    low_bits: u16,
) -> Option<Arc<[u32]>> {
    let slot = usize::from(low_bits >> 8);
    let (group, bit) = (slot / 32, slot % 32);
    let at = group * ROOT_GROUP_WORDS;
    let (child_bits, ranks, child_table) = (old[at + 1], old[at + 2], old[at + 3] as usize);
    let first = routes.partition_point(|r| usize::from(r.low_bits() >> 8) < slot);
    let end = routes.partition_point(|r| usize::from(r.low_bits() >> 8) <= slot);
    let in_slot = &routes[first..end];
    if (child_bits >> bit) & 1 == 0 || in_slot.iter().all(|r| r.prefix_len() <= 24) {
        return None;
    }
    // The child table ends where the first child begins.
    let table_end = old[child_table] as usize;
    let index = child_table + ((ranks >> 16) + (child_bits & below(bit)).count_ones()) as usize;
    let start = old[index] as usize;
    let old_end = if index + 1 < table_end {
        old[index + 1] as usize
    } else {
        old.len()
    };

    let mut buf = Vec::with_capacity(old.len() + CHILD_HEADER_WORDS + ENTRIES);
    buf.extend_from_slice(&old[..start]);
    push_child(&mut buf, in_slot, cover(routes, slot));
    let shift = (buf.len() as u32).wrapping_sub(old_end as u32);
    buf.extend_from_slice(&old[old_end..]);
    for later_child in &mut buf[index + 1..table_end] {
        *later_child = later_child.wrapping_add(shift);
    }
    Some(buf.into())
}

/// Appends the child node of a /24 from its routes; addresses no /25-/32
/// covers take `cover`, the /24's own /17-/24 route.
fn push_child(buf: &mut Vec<u32>, routes: &[LongRoute], cover: u32) {
    let mut entries = [cover; ENTRIES];
    paint(&mut entries, routes, 25..=32, |r| {
        (usize::from(r.low_bits() & 0xff), 32 - r.prefix_len())
    });
    let header = buf.len();
    buf.resize(header + CHILD_HEADER_WORDS, 0);
    let run_starts = push_leaves(buf, &entries, &[0; GROUPS]);
    for (group, (bits, rank)) in run_starts.iter().zip(ranks(&run_starts)).enumerate() {
        let at = header + group * CHILD_GROUP_WORDS;
        buf[at..at + CHILD_GROUP_WORDS].copy_from_slice(&[*bits, rank]);
    }
}

/// Value of the longest /17-/24 route covering /24 `slot`, or `NO_VALUE`.
fn cover(routes: &[LongRoute], slot: usize) -> u32 {
    (17..=24u8)
        .rev()
        .find_map(|len| {
            let low_bits = ((slot as u16) << 8) & (u16::MAX << (32 - len));
            let key = LongRoute::new(low_bits, len, 0).key();
            let position = routes.binary_search_by_key(&key, LongRoute::key).ok()?;
            Some(routes[position].value)
        })
        .unwrap_or(NO_VALUE)
}

/// The value of the longest route in the block covering `low_bits`, or `NO_VALUE`.
#[inline(always)]
pub(super) fn lookup(block: &[u32], low_bits: u16) -> u32 {
    block[leaf_index(block, low_bits)]
}

/// Address of the root group `lookup` reads first, for prefetching.
#[inline(always)]
pub(super) fn root_group_ptr(block: &[u32], low_bits: u16) -> *const u32 {
    block[usize::from(low_bits >> 13) * ROOT_GROUP_WORDS..].as_ptr()
}

/// Index in `block` of the leaf `lookup` returns.
#[inline(always)]
pub(super) fn leaf_index(block: &[u32], low_bits: u16) -> usize {
    let slot = usize::from(low_bits >> 8);
    let (group, bit) = (slot / 32, slot % 32);
    let at = group * ROOT_GROUP_WORDS;
    let (run_starts, child_bits, ranks) = (block[at], block[at + 1], block[at + 2]);
    if (child_bits >> bit) & 1 == 0 {
        let runs = (ranks & 0xffff) + (run_starts & up_to(bit)).count_ones();
        // Every leaf slot lies in a run whose start bit is set, so `runs >= 1`.
        return ROOT_WORDS + runs as usize - 1;
    }
    let earlier_children = (ranks >> 16) + (child_bits & below(bit)).count_ones();
    let child = block[block[at + 3] as usize + earlier_children as usize] as usize;
    let slot = usize::from(low_bits & 0xff);
    let (group, bit) = (slot / 32, slot % 32);
    let at = child + group * CHILD_GROUP_WORDS;
    let runs = block[at + 1] + (block[at] & up_to(bit)).count_ones();
    child + CHILD_HEADER_WORDS + runs as usize - 1
}

/// Mask of bits 0..=bit.
#[inline(always)]
fn up_to(bit: usize) -> u32 {
    u32::MAX >> (31 - bit)
}

/// Mask of bits 0..bit.
#[inline(always)]
fn below(bit: usize) -> u32 {
    (1u32 << bit) - 1
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

/// Appends one leaf per run of equal consecutive values of `entries`
/// (child slots break runs and have no leaf); returns the run-start bits.
fn push_leaves(
    buf: &mut Vec<u32>,
    entries: &[u32; ENTRIES],
    child_bits: &[u32; GROUPS],
) -> [u32; GROUPS] {
    let mut run_starts = [0u32; GROUPS];
    let mut previous = None;
    for (slot, &value) in entries.iter().enumerate() {
        if (child_bits[slot / 32] >> (slot % 32)) & 1 == 1 {
            previous = None;
        } else if previous != Some(value) {
            run_starts[slot / 32] |= 1 << (slot % 32);
            buf.push(value);
            previous = Some(value);
        }
    }
    run_starts
}

/// For each group, the number of bits set in the groups before it.
fn ranks(bits: &[u32; GROUPS]) -> [u32; GROUPS] {
    let mut before = 0;
    bits.map(|word| {
        let rank = before;
        before += word.count_ones();
        rank
    })
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
        assert_eq!(block[ROOT_WORDS..ROOT_WORDS + 2], [0, 1]);
        for slot in 0..=255u16 {
            assert_eq!(lookup(&block, (slot << 8) | 0x42), u32::from(slot % 2));
        }
    }
}
