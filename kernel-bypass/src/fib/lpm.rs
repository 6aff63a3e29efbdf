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
//! `insert_many`, and change many routes with `update_many`, which encode
//! each touched /16 once.
//!
//! Cloning is cheap, so the control plane can clone the published table,
//! change a few routes in the clone and publish it while the workers keep
//! reading the old one: the blocks are held in 256 groups of 256 (one group
//! per /8), each behind an `Arc` with its blocks' route lists, so a clone
//! copies 256 pointers and a change copies only the group it touches (copy on
//! write, as a persistent tree does at its top level); block encodings and
//! route lists are shared through `Arc` too, replaced or copied on write.
//! The lookup path reads a group pointer from the table itself where it
//! used to read the block array's pointer, so a lookup makes as many loads
//! as before. A /0-/7 route spans several groups and copies each of them
//! when it changes.

use std::collections::BTreeMap;
use std::fmt;
use std::iter::Peekable;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::block::{self, LongRoute, NO_VALUE};

const BLOCKS: usize = 1 << 16;
/// Blocks in a group: the /16s of one /8.
const GROUP_BLOCKS: usize = 256;
const GROUPS: usize = BLOCKS / GROUP_BLOCKS;
/// `cover_len` of a block that no /0-/16 route covers.
const UNCOVERED: u8 = u8::MAX;
/// Addresses `lookup_batch` walks through a lookup step together: enough
/// misses in flight to hide memory latency, few enough to stay in L1.
const GROUP: usize = 16;

/// A block no route covers.
static EMPTY_BLOCK: Block = Block {
    default: NO_VALUE,
    cover_len: UNCOVERED,
    tree: None,
};

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

/// The blocks of one /8 and the routes they are encoded from.
#[derive(Clone)]
struct Group {
    blocks: [Block; GROUP_BLOCKS],
    /// Routes /0-/16 whose network address lies in this /8, keyed by
    /// (network address, prefix length).
    short_routes: BTreeMap<(u32, u8), u32>,
    /// Routes /17-/32 of each block, sorted by `LongRoute::key`; shared
    /// too, so copying a group allocates nothing but the group.
    long_routes: [Arc<Vec<LongRoute>>; GROUP_BLOCKS],
}

impl Group {
    fn empty() -> Group {
        Group {
            blocks: std::array::from_fn(|_| EMPTY_BLOCK.clone()),
            short_routes: BTreeMap::new(),
            long_routes: std::array::from_fn(|_| Arc::default()),
        }
    }
}

/// IPv4 longest-prefix-match table mapping prefixes to values in
/// `0..=MAX_ROUTE_VALUE` (the pipeline's route or next-hop-group index).
#[derive(Clone)]
pub struct Lpm {
    /// Indexed by the address's first octet. Held here rather than behind
    /// a pointer: the lookup reads one entry as its first step.
    groups: [Arc<Group>; GROUPS],
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
        // Every group starts as the same empty one, copied on first change.
        let empty = Arc::new(Group::empty());
        Lpm {
            groups: std::array::from_fn(|_| empty.clone()),
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

    /// Adds or replaces many routes, encoding each touched block once: the
    /// way to load a large table. On error the routes before the failing
    /// one are in the table and it stays consistent.
    pub fn insert_many(
        &mut self,
        routes: impl IntoIterator<Item = (Ipv4Net, u32)>,
    ) -> Result<(), LpmError> {
        self.update_many(
            routes
                .into_iter()
                .map(|(prefix, value)| (prefix, Some(value))),
        )
    }

    /// Adds or replaces (`Some` value) and removes (`None`) routes in
    /// order, encoding each touched block once (a block touched by one
    /// change only is patched as `insert` does). On error the changes
    /// before the failing one are made and the table stays consistent.
    pub fn update_many(
        &mut self,
        changes: impl IntoIterator<Item = (Ipv4Net, Option<u32>)>,
    ) -> Result<(), LpmError> {
        let mut touched: Vec<(usize, Ipv4Net)> = Vec::new();
        let mut outcome = Ok(());
        for (prefix, value) in changes {
            let staged = match value {
                Some(value) => self.stage(prefix, value),
                None => Ok(self.unstage(prefix)),
            };
            match staged {
                Ok(Some(block)) => touched.push((block, prefix)),
                Ok(None) => {}
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        touched.sort_unstable_by_key(|&(block, _)| block);
        for run in touched.chunk_by(|a, b| a.0 == b.0) {
            match run {
                [(index, prefix)] => self.refresh(*index, *prefix),
                _ => {
                    let (group, block) = self.group_mut(run[0].0);
                    // Bulk loads leave doubling slack in the lists; give it back.
                    Arc::make_mut(&mut group.long_routes[block]).shrink_to_fit();
                    group.blocks[block].tree = block::encode(&group.long_routes[block]);
                }
            }
        }
        outcome
    }

    /// Removes `prefix` (host bits ignored); the addresses it covered fall back
    /// to the next longest route. Returns whether it was present.
    pub fn remove(&mut self, prefix: Ipv4Net) -> bool {
        if self.get(prefix).is_none() {
            return false;
        }
        if let Some(block) = self.unstage(prefix) {
            self.refresh(block, prefix);
        }
        true
    }

    /// Value of the longest prefix containing `addr` (host byte order).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<u32> {
        let block = self.block(addr);
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
        // Each address's block, found once (the group pointer is a load).
        let mut blocks = [&EMPTY_BLOCK; GROUP];
        for (&addr, block) in addrs.iter().zip(&mut blocks) {
            *block = self.block(addr);
            prefetch(*block);
        }
        for (&addr, block) in addrs.iter().zip(&blocks) {
            if let Some(tree) = &block.tree {
                prefetch(block::root_group_ptr(tree, addr as u16));
            }
        }
        let mut leaves = [0usize; GROUP];
        for ((&addr, block), leaf) in addrs.iter().zip(&blocks).zip(&mut leaves) {
            if let Some(tree) = &block.tree {
                *leaf = block::leaf_index(tree, addr as u16);
                prefetch(&tree[*leaf]);
            }
        }
        for ((block, &leaf), result) in blocks.iter().zip(&leaves).zip(out) {
            *result = block.resolve(block.tree.as_ref().map(|tree| tree[leaf]));
        }
    }

    /// The value stored for exactly `prefix` (host bits ignored).
    pub fn get(&self, prefix: Ipv4Net) -> Option<u32> {
        let (addr, len) = split(prefix);
        if len <= 16 {
            return self.group(addr).short_routes.get(&(addr, len)).copied();
        }
        let key = LongRoute::new(addr as u16, len, 0).key();
        let routes = self.long_routes(block_index(addr));
        let position = routes.binary_search_by_key(&key, LongRoute::key).ok()?;
        Some(routes[position].value)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes owned by the table (groups, block encodings and route
    /// lists; B-tree node overhead estimated). Groups shared with other
    /// tables are counted in full.
    pub fn memory_bytes(&self) -> usize {
        const ARC_HEADER: usize = 2 * std::mem::size_of::<usize>();
        const BTREE_BYTES_PER_ROUTE: usize = 32;
        let mut groups: Vec<&Arc<Group>> = self.groups.iter().collect();
        groups.sort_by_key(|group| Arc::as_ptr(group));
        groups.dedup_by(|a, b| Arc::ptr_eq(a, b));
        groups
            .iter()
            .map(|group| {
                let encodings: usize = (group.blocks.iter())
                    .filter_map(|b| b.tree.as_ref())
                    .map(|tree| ARC_HEADER + std::mem::size_of_val::<[u32]>(tree))
                    .sum();
                // Lists never filled are the empty group's, shared.
                let route_lists: usize = (group.long_routes.iter())
                    .filter(|routes| routes.capacity() > 0)
                    .map(|routes| {
                        ARC_HEADER
                            + std::mem::size_of::<Vec<LongRoute>>()
                            + routes.capacity() * std::mem::size_of::<LongRoute>()
                    })
                    .sum();
                ARC_HEADER
                    + std::mem::size_of::<Group>()
                    + encodings
                    + route_lists
                    + group.short_routes.len() * BTREE_BYTES_PER_ROUTE
            })
            .sum()
    }

    /// All routes in prefix order (by network address, then prefix length).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Net, u32)> + '_ {
        self.groups
            .iter()
            .enumerate()
            .flat_map(|(index, group)| {
                let short =
                    (group.short_routes.iter()).map(|(&(addr, len), &value)| ((addr, len), value));
                let long = group
                    .long_routes
                    .iter()
                    .enumerate()
                    .flat_map(move |(block, routes)| {
                        let base = ((index * GROUP_BLOCKS + block) as u32) << 16;
                        routes.iter().map(move |r| {
                            ((base | u32::from(r.low_bits()), r.prefix_len()), r.value)
                        })
                    });
                MergeByKey {
                    left: short.peekable(),
                    right: long.peekable(),
                }
            })
            .filter_map(|((addr, len), value)| {
                Some((Ipv4Net::new(Ipv4Addr::from(addr), len).ok()?, value))
            })
    }

    /// Records the route; returns the block whose encoding must be rebuilt.
    /// A route already there with this value changes nothing (and copies
    /// no group).
    fn stage(&mut self, prefix: Ipv4Net, value: u32) -> Result<Option<usize>, LpmError> {
        if value > MAX_ROUTE_VALUE {
            return Err(LpmError::ValueOutOfRange(value));
        }
        let (addr, len) = split(prefix);
        if len <= 16 {
            let before = self.get(prefix);
            if before == Some(value) {
                return Ok(None);
            }
            self.admit(before.is_none())?;
            let (group, _) = self.group_mut(block_index(addr));
            group.short_routes.insert((addr, len), value);
            self.for_blocks_of(addr, len, |block| {
                if block.cover_len == UNCOVERED || block.cover_len <= len {
                    block.default = value;
                    block.cover_len = len;
                }
            });
            return Ok(None);
        }
        let index = block_index(addr);
        let route = LongRoute::new(addr as u16, len, value);
        let found = self
            .long_routes(index)
            .binary_search_by_key(&route.key(), LongRoute::key);
        if let Ok(position) = found {
            if self.long_routes(index)[position].value == value {
                return Ok(None);
            }
        }
        if found.is_err() {
            self.admit(true)?;
        }
        let (group, block) = self.group_mut(index);
        let routes = Arc::make_mut(&mut group.long_routes[block]);
        match found {
            Ok(position) => routes[position].value = value,
            Err(position) => routes.insert(position, route),
        }
        Ok(Some(index))
    }

    /// Forgets the route if present; returns the block whose encoding
    /// must be rebuilt (None for /0-/16 routes: their blocks are changed
    /// here).
    fn unstage(&mut self, prefix: Ipv4Net) -> Option<usize> {
        let (addr, len) = split(prefix);
        if len <= 16 {
            self.get(prefix)?;
            let (group, _) = self.group_mut(block_index(addr));
            group.short_routes.remove(&(addr, len));
            self.len -= 1;
            let (fallback, fallback_len) = self.longest_short_route_above(addr, len);
            self.for_blocks_of(addr, len, |block| {
                if block.cover_len == len {
                    block.default = fallback;
                    block.cover_len = fallback_len;
                }
            });
            return None;
        }
        let index = block_index(addr);
        let key = LongRoute::new(addr as u16, len, 0).key();
        let found = self
            .long_routes(index)
            .binary_search_by_key(&key, LongRoute::key);
        let position = found.ok()?;
        let (group, block) = self.group_mut(index);
        Arc::make_mut(&mut group.long_routes[block]).remove(position);
        self.len -= 1;
        Some(index)
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

    /// The block holding `addr`.
    #[inline(always)]
    fn block(&self, addr: u32) -> &Block {
        let group = &self.groups[(addr >> 24) as usize];
        &group.blocks[block_index(addr) % GROUP_BLOCKS]
    }

    /// The group holding `addr`.
    fn group(&self, addr: u32) -> &Group {
        &self.groups[(addr >> 24) as usize]
    }

    /// The /17-/32 routes of block `index`.
    fn long_routes(&self, index: usize) -> &[LongRoute] {
        &self.groups[index / GROUP_BLOCKS].long_routes[index % GROUP_BLOCKS]
    }

    /// The group of block `index`, copied first if another table shares
    /// it, and the block's index in it.
    fn group_mut(&mut self, index: usize) -> (&mut Group, usize) {
        let group = Arc::make_mut(&mut self.groups[index / GROUP_BLOCKS]);
        (group, index % GROUP_BLOCKS)
    }

    /// Re-encodes block `index` after a change of `changed`'s route: only
    /// the affected /24's node when the route is a /25-/32, so that blocks
    /// dense with host routes stay cheap to update one route at a time.
    fn refresh(&mut self, index: usize, changed: Ipv4Net) {
        let (group, block) = self.group_mut(index);
        let routes = &group.long_routes[block];
        let tree = &mut group.blocks[block].tree;
        let patched = match tree {
            Some(old) if changed.prefix_len() > 24 => {
                block::reencode_child(old, routes, u32::from(changed.network()) as u16)
            }
            _ => None,
        };
        *tree = patched.or_else(|| block::encode(routes));
    }

    /// Calls `change` on each block covered by a /0-/16 prefix.
    fn for_blocks_of(&mut self, addr: u32, len: u8, mut change: impl FnMut(&mut Block)) {
        let first = block_index(addr);
        let blocks = first..first + (1 << (16 - len));
        for group in blocks.start / GROUP_BLOCKS..=(blocks.end - 1) / GROUP_BLOCKS {
            let base = group * GROUP_BLOCKS;
            let start = blocks.start.max(base) - base;
            let end = blocks.end.min(base + GROUP_BLOCKS) - base;
            let group = Arc::make_mut(&mut self.groups[group]);
            group.blocks[start..end].iter_mut().for_each(&mut change);
        }
    }

    /// Value and length of the longest /0-/16 route strictly shorter than
    /// `len` that covers `addr`, or `NO_VALUE` and `UNCOVERED`.
    fn longest_short_route_above(&self, addr: u32, len: u8) -> (u32, u8) {
        (0..len)
            .rev()
            .find_map(|shorter| {
                let key = (addr & netmask(shorter), shorter);
                let value = self.group(key.0).short_routes.get(&key)?;
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

#[inline(always)]
fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
}
