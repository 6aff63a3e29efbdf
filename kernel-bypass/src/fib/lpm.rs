//! The IPv4 longest-prefix-match table.
//!
//! Addresses are split at /16. A direct array of 65,536 blocks answers every
//! route of length /0-/16 with one load (each block carries the value of the
//! longest such route covering it); routes of length /17-/32 live in the
//! block's compressed two-level node (see `block`), rebuilt from the block's
//! own sorted route list whenever one of them changes. The route lists are
//! kept so removals restore exactly the covering route and `iter` can list
//! the table.
//!
//! There is no fixed pool of second-level nodes (unlike DIR-24-8's tbl8
//! groups), so nothing can run out but memory; `with_max_routes` bounds that
//! and reports `LpmError::Full`. Changing a /17-/24 route re-encodes its /16
//! from the /16's routes; changing a /25-/32 route re-encodes only its /24
//! and copies the rest of the /16's encoding. Load large tables with
//! `insert_many`, which encodes each touched /16 once.
//!
//! Cloning is cheap for the lookup part (block encodings are shared through
//! `Arc` and replaced, never mutated), so the control plane can clone, update
//! and publish a new snapshot behind an `Arc<Lpm>`.

use std::collections::BTreeMap;
use std::fmt;
use std::iter::Peekable;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::block::{self, LongRoute, NO_VALUE};

const BLOCKS: usize = 1 << 16;
/// `cover_len` of a block that no /0-/16 route covers.
const UNCOVERED: u8 = u8::MAX;
/// Addresses `lookup_batch` walks through a lookup step together: enough
/// misses in flight to hide memory latency, few enough to stay in L1.
const GROUP: usize = 16;

/// Largest value a route can map to; `u32::MAX` is reserved for "no route".
pub const MAX_ROUTE_VALUE: u32 = u32::MAX - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpmError {
    /// The value is `u32::MAX`, which the table reserves.
    ValueOutOfRange(u32),
    /// The table already holds its configured maximum number of routes.
    Full { max_routes: usize },
}

impl fmt::Display for LpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LpmError::ValueOutOfRange(value) => write!(
                f,
                "route value {value} out of range (0..={MAX_ROUTE_VALUE})"
            ),
            LpmError::Full { max_routes } => {
                write!(f, "route table full ({max_routes} routes)")
            }
        }
    }
}

impl std::error::Error for LpmError {}

/// One /16 of the address space, as the lookup path sees it.
#[derive(Clone)]
struct Block {
    /// Value of the longest /0-/16 route covering the block, or `NO_VALUE`.
    default: u32,
    /// Length of that route, or `UNCOVERED`.
    cover_len: u8,
    /// Encoded /17-/32 routes of the block.
    tree: Option<Arc<[u32]>>,
}

impl Block {
    /// The answer for an address of this block whose /17-/32 leaf (if the
    /// block has such routes) is `leaf`.
    #[inline(always)]
    fn resolve(&self, leaf: Option<u32>) -> Option<u32> {
        let value = match leaf {
            Some(NO_VALUE) | None => self.default,
            Some(value) => value,
        };
        (value != NO_VALUE).then_some(value)
    }
}

/// IPv4 longest-prefix-match table mapping prefixes to values in
/// `0..=MAX_ROUTE_VALUE` (the pipeline's route or next-hop-group index).
#[derive(Clone)]
pub struct Lpm {
    blocks: Box<[Block]>,
    /// Routes /0-/16 keyed by (network address, prefix length).
    short_routes: BTreeMap<(u32, u8), u32>,
    /// Routes /17-/32 of each block, sorted by `LongRoute::key`.
    long_routes: Box<[Vec<LongRoute>]>,
    len: usize,
    max_routes: usize,
}

impl Default for Lpm {
    fn default() -> Lpm {
        Lpm::new()
    }
}

impl fmt::Debug for Lpm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lpm")
            .field("routes", &self.len)
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl Lpm {
    /// An empty table without a route limit.
    pub fn new() -> Lpm {
        Lpm::with_max_routes(usize::MAX)
    }

    /// An empty table that refuses to grow beyond `max_routes` routes.
    pub fn with_max_routes(max_routes: usize) -> Lpm {
        let empty = Block {
            default: NO_VALUE,
            cover_len: UNCOVERED,
            tree: None,
        };
        Lpm {
            blocks: per_block(|| empty.clone()),
            short_routes: BTreeMap::new(),
            long_routes: per_block(Vec::new),
            len: 0,
            max_routes,
        }
    }

    /// Adds `prefix` (host bits ignored) or replaces its value.
    pub fn insert(&mut self, prefix: Ipv4Net, value: u32) -> Result<(), LpmError> {
        if let Some(block) = self.stage(prefix, value)? {
            self.refresh(block, prefix);
        }
        Ok(())
    }

    /// Adds or replaces many routes, rebuilding each touched block once:
    /// the way to load a large table. On error the routes before the failing
    /// one are in the table and it stays consistent.
    pub fn insert_many(
        &mut self,
        routes: impl IntoIterator<Item = (Ipv4Net, u32)>,
    ) -> Result<(), LpmError> {
        let mut dirty = vec![false; BLOCKS];
        let mut outcome = Ok(());
        for (prefix, value) in routes {
            match self.stage(prefix, value) {
                Ok(Some(block)) => dirty[block] = true,
                Ok(None) => {}
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        for (block, _) in dirty.iter().enumerate().filter(|(_, &d)| d) {
            // Bulk loads leave doubling slack in the lists; give it back.
            self.long_routes[block].shrink_to_fit();
            self.rebuild(block);
        }
        outcome
    }

    /// Removes `prefix` (host bits ignored); the addresses it covered fall back
    /// to the next longest route. Returns whether it was present.
    pub fn remove(&mut self, prefix: Ipv4Net) -> bool {
        let (addr, len) = split(prefix);
        if len <= 16 {
            if self.short_routes.remove(&(addr, len)).is_none() {
                return false;
            }
            let (fallback, fallback_len) = self.longest_short_route_above(addr, len);
            for block in self.blocks_of(addr, len) {
                if block.cover_len == len {
                    block.default = fallback;
                    block.cover_len = fallback_len;
                }
            }
        } else {
            let index = block_index(addr);
            let key = LongRoute::new(addr as u16, len, 0).key();
            let routes = &mut self.long_routes[index];
            match routes.binary_search_by_key(&key, LongRoute::key) {
                Ok(position) => routes.remove(position),
                Err(_) => return false,
            };
            self.refresh(index, prefix);
        }
        self.len -= 1;
        true
    }

    /// Value of the longest prefix containing `addr` (host byte order).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let block = &self.blocks[block_index(addr)];
        block.resolve(
            block
                .tree
                .as_ref()
                .map(|tree| block::lookup(tree, addr as u16)),
        )
    }

    /// Looks up `addrs[i]` into `out[i]` for the common length of both.
    /// Works on groups of addresses one step at a time (block entry, node
    /// group, leaf), prefetching each step for the whole group before using
    /// it, so the cache misses of a group overlap instead of following one
    /// another.
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Option<u32>]) {
        let len = addrs.len().min(out.len());
        for (addrs, out) in addrs[..len].chunks(GROUP).zip(out.chunks_mut(GROUP)) {
            self.lookup_group(addrs, out);
        }
    }

    fn lookup_group(&self, addrs: &[u32], out: &mut [Option<u32>]) {
        for &addr in addrs {
            prefetch(&self.blocks[block_index(addr)]);
        }
        for &addr in addrs {
            if let Some(tree) = &self.blocks[block_index(addr)].tree {
                prefetch(block::root_group_ptr(tree, addr as u16));
            }
        }
        let mut leaves = [0usize; GROUP];
        for (&addr, leaf) in addrs.iter().zip(&mut leaves) {
            if let Some(tree) = &self.blocks[block_index(addr)].tree {
                *leaf = block::leaf_index(tree, addr as u16);
                prefetch(&tree[*leaf]);
            }
        }
        for ((&addr, &leaf), result) in addrs.iter().zip(&leaves).zip(out) {
            let block = &self.blocks[block_index(addr)];
            *result = block.resolve(block.tree.as_ref().map(|tree| tree[leaf]));
        }
    }

    /// The value stored for exactly `prefix` (host bits ignored).
    pub fn get(&self, prefix: Ipv4Net) -> Option<u32> {
        let (addr, len) = split(prefix);
        if len <= 16 {
            return self.short_routes.get(&(addr, len)).copied();
        }
        let key = LongRoute::new(addr as u16, len, 0).key();
        let routes = &self.long_routes[block_index(addr)];
        let position = routes.binary_search_by_key(&key, LongRoute::key).ok()?;
        Some(routes[position].value)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes owned by the table (route lists, direct blocks and block
    /// encodings; B-tree node overhead estimated).
    pub fn memory_bytes(&self) -> usize {
        const ARC_HEADER: usize = 2 * std::mem::size_of::<usize>();
        const BTREE_BYTES_PER_ROUTE: usize = 32;
        let encodings: usize = self
            .blocks
            .iter()
            .filter_map(|b| b.tree.as_ref())
            .map(|tree| ARC_HEADER + std::mem::size_of_val::<[u32]>(tree))
            .sum();
        let route_lists: usize = self
            .long_routes
            .iter()
            .map(|routes| routes.capacity() * std::mem::size_of::<LongRoute>())
            .sum();
        BLOCKS * (std::mem::size_of::<Block>() + std::mem::size_of::<Vec<LongRoute>>())
            + encodings
            + route_lists
            + self.short_routes.len() * BTREE_BYTES_PER_ROUTE
    }

    /// All routes in prefix order (by network address, then prefix length).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Net, u32)> + '_ {
        let short = self
            .short_routes
            .iter()
            .map(|(&(addr, len), &value)| ((addr, len), value));
        let long = self
            .long_routes
            .iter()
            .enumerate()
            .flat_map(|(index, routes)| {
                let base = (index as u32) << 16;
                routes
                    .iter()
                    .map(move |r| ((base | u32::from(r.low_bits()), r.prefix_len()), r.value))
            });
        MergeByKey {
            left: short.peekable(),
            right: long.peekable(),
        }
        .filter_map(|((addr, len), value)| {
            Some((Ipv4Net::new(Ipv4Addr::from(addr), len).ok()?, value))
        })
    }

    /// Records the route; returns the block whose encoding must be rebuilt.
    fn stage(&mut self, prefix: Ipv4Net, value: u32) -> Result<Option<usize>, LpmError> {
        if value > MAX_ROUTE_VALUE {
            return Err(LpmError::ValueOutOfRange(value));
        }
        let (addr, len) = split(prefix);
        if len <= 16 {
            let is_new = !self.short_routes.contains_key(&(addr, len));
            self.admit(is_new)?;
            self.short_routes.insert((addr, len), value);
            for block in self.blocks_of(addr, len) {
                if block.cover_len == UNCOVERED || block.cover_len <= len {
                    block.default = value;
                    block.cover_len = len;
                }
            }
            return Ok(None);
        }
        let index = block_index(addr);
        let route = LongRoute::new(addr as u16, len, value);
        match self.long_routes[index].binary_search_by_key(&route.key(), LongRoute::key) {
            Ok(position) => {
                let existing = &mut self.long_routes[index][position];
                if existing.value == value {
                    return Ok(None);
                }
                existing.value = value;
            }
            Err(position) => {
                self.admit(true)?;
                self.long_routes[index].insert(position, route);
            }
        }
        Ok(Some(index))
    }

    /// Counts a route about to be added, refusing it when the table is full.
    fn admit(&mut self, is_new: bool) -> Result<(), LpmError> {
        if !is_new {
            return Ok(());
        }
        if self.len >= self.max_routes {
            return Err(LpmError::Full {
                max_routes: self.max_routes,
            });
        }
        self.len += 1;
        Ok(())
    }

    fn rebuild(&mut self, index: usize) {
        self.blocks[index].tree = block::encode(&self.long_routes[index]);
    }

    /// Re-encodes block `index` after a change of `changed`'s route: only
    /// the affected /24's node when the route is a /25-/32, so that blocks
    /// dense with host routes stay cheap to update one route at a time.
    fn refresh(&mut self, index: usize, changed: Ipv4Net) {
        let routes = &self.long_routes[index];
        let tree = &mut self.blocks[index].tree;
        let patched = match tree {
            Some(old) if changed.prefix_len() > 24 => {
                block::reencode_child(old, routes, u32::from(changed.network()) as u16)
            }
            _ => None,
        };
        *tree = patched.or_else(|| block::encode(routes));
    }

    /// The blocks covered by a /0-/16 prefix.
    fn blocks_of(&mut self, addr: u32, len: u8) -> impl Iterator<Item = &mut Block> {
        let first = block_index(addr);
        self.blocks[first..first + (1 << (16 - len))].iter_mut()
    }

    /// Value and length of the longest /0-/16 route strictly shorter than
    /// `len` that covers `addr`, or `NO_VALUE` and `UNCOVERED`.
    fn longest_short_route_above(&self, addr: u32, len: u8) -> (u32, u8) {
        (0..len)
            .rev()
            .find_map(|shorter| {
                let value = self.short_routes.get(&(addr & netmask(shorter), shorter))?;
                Some((*value, shorter))
            })
            .unwrap_or((NO_VALUE, UNCOVERED))
    }
}

/// Merges two iterators each sorted by key into one sorted by key.
struct MergeByKey<K, V, L: Iterator<Item = (K, V)>, R: Iterator<Item = (K, V)>> {
    left: Peekable<L>,
    right: Peekable<R>,
}

impl<K: Ord, V, L, R> Iterator for MergeByKey<K, V, L, R>
where
    L: Iterator<Item = (K, V)>,
    R: Iterator<Item = (K, V)>,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        match (self.left.peek(), self.right.peek()) {
            (Some(left), Some(right)) if right.0 < left.0 => self.right.next(),
            (Some(_), _) => self.left.next(),
            (None, _) => self.right.next(),
        }
    }
}

fn split(prefix: Ipv4Net) -> (u32, u8) {
    let prefix = prefix.trunc();
    (u32::from(prefix.network()), prefix.prefix_len())
}

#[inline(always)]
fn block_index(addr: u32) -> usize {
    (addr >> 16) as usize
}

fn netmask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

/// One element per block; boxed slices rather than arrays because cloning a
/// `Box<[T; N]>` goes through the stack.
fn per_block<T>(make: impl FnMut() -> T) -> Box<[T]> {
    std::iter::repeat_with(make).take(BLOCKS).collect()
}

#[inline(always)]
fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
}
