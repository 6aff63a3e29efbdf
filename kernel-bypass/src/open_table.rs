//! What the session table and the NAT translation table are built of:
//! [`Sharded`], a table cut into locked shards that share a maximum, and
//! [`OpenTable`], the open-addressing hash table inside a shard: linear
//! probing in a power-of-two array of plain entries (no pointers, so a
//! lookup is one or two cache lines), growth by doubling at three quarters
//! full, and backward-shift deletion (no tombstones: a removal leaves the
//! table as if the entry had never been inserted).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// MurmurHash3's 64-bit finaliser: every input bit reaches every output
/// bit (the tables choose shards by the top bits, slots by the bottom).
#[inline]
pub fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ h >> 33
}

/// Shards of a table; a power of two.
pub const SHARDS: usize = 64;

/// A table of `SHARDS` shards, each under its own lock, holding at most
/// its share of a maximum between them.
pub struct Sharded<S> {
    shards: Box<[Mutex<S>]>,
    per_shard: AtomicUsize,
}

impl<S: Default> Sharded<S> {
    pub fn new(max: usize) -> Sharded<S> {
        let table = Sharded {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: AtomicUsize::new(0),
        };
        table.set_max(max);
        table
    }
}

impl<S> Sharded<S> {
    /// Changes the maximum; entries above a lowered one stay until they go.
    pub fn set_max(&self, max: usize) {
        self.per_shard
            .store(max.div_ceil(SHARDS), Ordering::Relaxed);
    }

    /// The maximum (rounded up to the shards).
    pub fn max(&self) -> usize {
        self.per_shard() * SHARDS
    }

    /// What one shard may hold.
    pub fn per_shard(&self) -> usize {
        self.per_shard.load(Ordering::Relaxed)
    }

    /// Shard `at` (modulo the shards), locked.
    pub fn lock(&self, at: usize) -> MutexGuard<'_, S> {
        // A worker that panicked holding a shard left it consistent
        // (every write is a whole entry): keep using it.
        self.shards[at % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The sum of `f` over the shards, one locked at a time.
    pub fn sum(&self, f: impl Fn(&S) -> usize) -> usize {
        (0..SHARDS).map(|at| f(&self.lock(at))).sum()
    }
}

/// An entry: a fixed-size value whose default is the empty slot.
pub trait Entry: Copy + Default {
    fn is_used(&self) -> bool;
    /// The hash of its key (stable while it is in the table).
    fn hash(&self) -> u64;
}

/// Slots the first allocation has.
const INITIAL_SLOTS: usize = 64;

pub struct OpenTable<E> {
    slots: Vec<E>,
    len: usize,
}

impl<E> Default for OpenTable<E> {
    fn default() -> Self {
        OpenTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<E: Entry> OpenTable<E> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn slots(&self) -> &[E] {
        &self.slots
    }

    pub fn slot_mut(&mut self, at: usize) -> &mut E {
        &mut self.slots[at]
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot of the entry with `hash` that `is_it` accepts.
    #[inline]
    pub fn find(&self, hash: u64, is_it: impl Fn(&E) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut at = hash as usize & self.mask();
        loop {
            let slot = &self.slots[at];
            if !slot.is_used() {
                return None;
            }
            if is_it(slot) {
                return Some(at);
            }
            at = (at + 1) & self.mask();
        }
    }

    /// Inserts an entry known to be absent, growing first to stay at most
    /// three quarters full (linear probing's runs stay short there).
    pub fn insert(&mut self, entry: E) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mut at = entry.hash() as usize & self.mask();
        while self.slots[at].is_used() {
            at = (at + 1) & self.mask();
        }
        self.slots[at] = entry;
        self.len += 1;
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(INITIAL_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![E::default(); size]);
        self.len = 0;
        for entry in old.into_iter().filter(E::is_used) {
            self.insert(entry);
        }
    }

    /// Empties slot `at` and moves later entries of its probe run back,
    /// so no lookup stops early at the hole.
    pub fn remove(&mut self, mut at: usize) {
        let mask = self.mask();
        self.slots[at] = E::default();
        self.len -= 1;
        let mut next = (at + 1) & mask;
        while self.slots[next].is_used() {
            let home = self.slots[next].hash() as usize & mask;
            // The entry may fill the hole if its home is not in (at, next].
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(at) & mask {
                self.slots[at] = self.slots[next];
                self.slots[next] = E::default();
                at = next;
            }
            next = (next + 1) & mask;
        }
    }

    /// Empties every slot, keeping the memory.
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = E::default());
        self.len = 0;
    }

    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<E>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// A key with a deliberately poor hash: long probe runs.
    #[derive(Clone, Copy, Default, PartialEq, Eq)]
    struct Key(u32);

    impl Entry for Key {
        fn is_used(&self) -> bool {
            self.0 != 0
        }

        fn hash(&self) -> u64 {
            u64::from(self.0 % 7)
        }
    }

    proptest! {
        /// Inserts and removals in any order agree with a set.
        #[test]
        fn the_table_agrees_with_a_set(ops in proptest::collection::vec((1u32..200, any::<bool>()), 1..500)) {
            let mut table = OpenTable::<Key>::default();
            let mut model = HashSet::new();
            for (k, add) in ops {
                let found = table.find(Key(k).hash(), |e| e.0 == k);
                prop_assert_eq!(found.is_some(), model.contains(&k));
                match (add, found) {
                    (true, None) => {
                        table.insert(Key(k));
                        model.insert(k);
                    }
                    (false, Some(at)) => {
                        table.remove(at);
                        model.remove(&k);
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(table.len(), model.len());
            for k in model {
                prop_assert!(table.find(Key(k).hash(), |e| e.0 == k).is_some());
            }
        }
    }
}
