//! What the session table and the NAT translation table are built of:
//! [`Sharded`], a table cut into locked shards that share a maximum, and
//! [`OpenTable`], the open-addressing hash table inside a shard: linear
//! probing in an array of plain entries (no pointers, so a lookup is one
//! or two cache lines), Robin Hood placement, growth by half at three
//! quarters full, and backward-shift deletion (no tombstones: a removal
//! leaves the table as if the entry had never been inserted). Workers
//! warm the slot a packet will look up a few packets ahead
//! ([`Sharded::prefetch`]).

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

/// Asks the CPU to bring the cache line at `address` closer: a hint that
/// nothing waits for, harmless at any address.
#[inline]
fn prefetch(address: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never faults,
    // whatever the address (a stale one only wastes the hint).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(address as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// The slot of `hash` in a table of `slots`: the low 32 bits of the hash
/// scaled to the size (Lemire's multiply-shift, no division).
#[inline]
fn home(hash: u64, slots: usize) -> usize {
    (((hash & 0xffff_ffff) * slots as u64) >> 32) as usize
}

/// Where a shard's index lies, readable without its lock (by prefetches:
/// a stale value costs nothing but a wasted hint).
#[derive(Default)]
struct IndexHint {
    base: AtomicUsize,
    slots: AtomicUsize,
}

/// The hash of a key given as words: each folded in through a full-width
/// mix, so keys that differ in one field spread as well as random ones.
pub fn mix_words(words: &[u64]) -> u64 {
    words
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, w| mix64(h ^ w))
}

/// Shards of a table; a power of two.
pub const SHARDS: usize = 64;

/// A table of `SHARDS` shards, each under its own lock, holding at most
/// its share of a maximum between them.
pub struct Sharded<S> {
    shards: Box<[Mutex<S>]>,
    hints: Box<[IndexHint]>,
    per_shard: AtomicUsize,
}

impl<S: Default> Sharded<S> {
    pub fn new(max: usize) -> Sharded<S> {
        let table = Sharded {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hints: (0..SHARDS).map(|_| IndexHint::default()).collect(),
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

    /// Records where shard `at`'s index lies now (after an insertion,
    /// which may have grown it), for [`Sharded::prefetch`].
    pub fn publish_index<E>(&self, at: usize, index: &OpenTable<E>) {
        let hint = &self.hints[at % SHARDS];
        hint.base
            .store(index.slots.as_ptr() as usize, Ordering::Relaxed);
        hint.slots.store(index.slots.len(), Ordering::Relaxed);
    }

    /// Warms the slot of shard `at`'s index where a lookup of `hash`
    /// starts, without its lock (a lock's atomic would wait for the
    /// prefetch and undo its point).
    #[inline]
    pub fn prefetch<E>(&self, at: usize, hash: u64) {
        let hint = &self.hints[at % SHARDS];
        let base = hint.base.load(Ordering::Relaxed);
        let slot = home(hash, hint.slots.load(Ordering::Relaxed));
        if base != 0 {
            // The run a lookup walks often reaches the next line too.
            let at = base.wrapping_add(slot * std::mem::size_of::<E>());
            prefetch(at);
            prefetch(at.wrapping_add(64));
        }
    }

    /// The sum of `f` over the shards, one locked at a time.
    pub fn sum(&self, f: impl Fn(&S) -> usize) -> usize {
        (0..SHARDS).map(|at| f(&self.lock(at))).sum()
    }
}

/// An entry: a fixed-size value whose default is the empty slot.
pub trait Entry: Copy + Default {
    fn is_used(&self) -> bool;
    /// The hash of its key (stable while it is in the table; only its low
    /// 32 bits place it).
    fn hash(&self) -> u64;
    /// What a full table's size is multiplied by, as (numerator,
    /// denominator): by half by default, which keeps a table between half
    /// and three quarters full; doubling (less rehashing, a quarter more
    /// memory on average) suits small entries.
    const GROWTH: (usize, usize) = (3, 2);
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

    /// The slot a lookup of `hash` starts at: the low 32 bits of the hash
    /// scaled to the table (sizes need not be powers of two; 0 when empty).
    #[inline]
    pub fn home(&self, hash: u64) -> usize {
        home(hash, self.slots.len())
    }

    /// The slot after `at`, around the end.
    #[inline]
    fn next(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() {
            0
        } else {
            at + 1
        }
    }

    /// How far past `from` slot `to` is, around the end.
    fn distance(&self, from: usize, to: usize) -> usize {
        if to >= from {
            to - from
        } else {
            to + self.slots.len() - from
        }
    }

    /// The slot of the entry with `hash` that `is_it` accepts.
    #[inline]
    pub fn find(&self, hash: u64, is_it: impl Fn(&E) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut at = self.home(hash);
        let mut distance = 0;
        loop {
            let slot = &self.slots[at];
            if !slot.is_used() {
                return None;
            }
            if is_it(slot) {
                return Some(at);
            }
            // Robin Hood order: past an entry nearer its home than this
            // one would be, the entry cannot be (a miss ends early).
            if self.displacement(slot, at) < distance {
                return None;
            }
            at = self.next(at);
            distance += 1;
        }
    }

    /// How far the entry in slot `at` is from its home.
    #[inline]
    fn displacement(&self, entry: &E, at: usize) -> usize {
        self.distance(self.home(entry.hash()), at)
    }

    /// Inserts an entry known to be absent, growing first to stay at most
    /// three quarters full (linear probing's runs stay short there).
    pub fn insert(&mut self, entry: E) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        // Robin Hood: an entry farther from its home than the resident
        // takes the slot and the resident moves on, which keeps every
        // entry near its home whenever it came (plain first-come placement
        // left the newest, busiest flows three times farther, a cache line
        // each).
        let mut entry = entry;
        let mut at = self.home(entry.hash());
        let mut distance = 0;
        while self.slots[at].is_used() {
            let theirs = self.displacement(&self.slots[at], at);
            if theirs < distance {
                std::mem::swap(&mut self.slots[at], &mut entry);
                distance = theirs;
            }
            at = self.next(at);
            distance += 1;
        }
        self.slots[at] = entry;
        self.len += 1;
    }

    /// Grows by half (from three quarters full to half full): memory stays
    /// within twice the entries' own, where doubling took up to 2.7 times.
    fn grow(&mut self) {
        let (times, by) = E::GROWTH;
        let size = (self.slots.len() * times / by).max(INITIAL_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![E::default(); size]);
        self.len = 0;
        for entry in old.into_iter().filter(E::is_used) {
            self.insert(entry);
        }
    }

    /// Empties slot `at` and moves the displaced entries after it one
    /// slot back (Robin Hood's backward shift), which keeps the order
    /// `find` relies on and leaves no tombstones.
    pub fn remove(&mut self, mut at: usize) {
        loop {
            let next = self.next(at);
            let entry = self.slots[next];
            if !entry.is_used() || self.displacement(&entry, next) == 0 {
                break;
            }
            self.slots[at] = entry;
            at = next;
        }
        self.slots[at] = E::default();
        self.len -= 1;
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
            // Seven homes spread over the table, one near its end (runs
            // wrap around).
            u64::from(self.0 % 7) << 29
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
