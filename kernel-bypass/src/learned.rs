//! A fixed-size table of learned entries (ARP and IPv6 neighbours, VXLAN
//! MAC -> VTEP) shared by all workers. Keys are `W` 64-bit words (one for
//! IPv4 neighbours and VTEPs, three for interface + IPv6 address). Readers never lock: each slot is a seqlock, and a
//! read that races a write retries a few times, then reports a miss. Writers
//! (rare: only when an entry is new, changed or due for refresh) take a mutex.
//! A table whose entries are counted (the bridge's per-domain MAC limit)
//! learns through `learn_admitted`, which says what was added and evicted,
//! and removes aged entries with `remove_where`.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// Slots probed from a key's home slot before an old entry is evicted.
const PROBE: usize = 8;
/// An unchanged entry is re-stamped at most this often (seconds).
const REFRESH_SECS: u32 = 1;
/// Marks a slot key as used (in its first word), so the all-zero key
/// means "empty".
const USED: u64 = 1 << 63;

struct Slot<const W: usize> {
    seq: AtomicU32,
    key: [AtomicU64; W],
    value: AtomicU64,
    stamp: AtomicU32,
}

/// A learned value and when it was last confirmed (seconds on the dataplane clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    pub value: u64,
    pub stamp: u32,
}

/// What `learn_admitted` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learnt<const W: usize> {
    /// The key was there: refreshed or changed.
    Known,
    /// A new entry, in place of this one when the probe window was full.
    Added { evicted: Option<[u64; W]> },
    /// A new key that `admit` refused.
    Refused,
}

pub struct LearnedTable<const W: usize = 1> {
    slots: Box<[Slot<W>]>,
    writer: Mutex<()>,
}

/// The key as stored: the first word marked used.
fn used<const W: usize>(mut key: [u64; W]) -> [u64; W] {
    key[0] |= USED;
    key
}

fn load_key<const W: usize>(slot: &Slot<W>) -> [u64; W] {
    std::array::from_fn(|i| slot.key[i].load(Ordering::Relaxed))
}

impl<const W: usize> LearnedTable<W> {
    /// A table of `capacity` slots (rounded up to a power of two).
    pub fn new(capacity: usize) -> LearnedTable<W> {
        let n = capacity.next_power_of_two().max(PROBE);
        LearnedTable {
            slots: (0..n)
                .map(|_| Slot {
                    seq: AtomicU32::new(0),
                    key: std::array::from_fn(|_| AtomicU64::new(0)),
                    value: AtomicU64::new(0),
                    stamp: AtomicU32::new(0),
                })
                .collect(),
            writer: Mutex::new(()),
        }
    }

    fn home(&self, key: &[u64; W]) -> usize {
        let h = key.iter().fold(0u64, |h, w| {
            (h.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        });
        (h >> 32) as usize & (self.slots.len() - 1)
    }

    fn probe(&self, key: &[u64; W]) -> impl Iterator<Item = &Slot<W>> {
        let home = self.home(key);
        (0..PROBE).map(move |i| &self.slots[(home + i) & (self.slots.len() - 1)])
    }

    /// Reads a slot consistently: (key, value, stamp), or None after repeated races.
    fn read(slot: &Slot<W>) -> Option<([u64; W], u64, u32)> {
        for _ in 0..4 {
            let before = slot.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let k = load_key(slot);
            let v = slot.value.load(Ordering::Relaxed);
            let s = slot.stamp.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) == before {
                return Some((k, v, s));
            }
        }
        None
    }

    pub fn get(&self, key: [u64; W]) -> Option<Learned> {
        let key = used(key);
        self.probe(&key).find_map(|slot| match Self::read(slot) {
            Some((k, value, stamp)) if k == key => Some(Learned { value, stamp }),
            _ => None,
        })
    }

    /// Records `key -> value` as confirmed at `now`. Cheap when nothing changed.
    pub fn learn(&self, key: [u64; W], value: u64, now: u32) {
        self.learn_admitted(key, value, now, || true);
    }

    /// As `learn`; a key not in the table is added only when `admit`
    /// (called under the writers' lock, so counts it keeps are exact)
    /// says so.
    pub fn learn_admitted(
        &self,
        key: [u64; W],
        value: u64,
        now: u32,
        admit: impl FnOnce() -> bool,
    ) -> Learnt<W> {
        if let Some(e) = self.get(key) {
            if e.value == value && now.wrapping_sub(e.stamp) < REFRESH_SECS {
                return Learnt::Known;
            }
        }
        let key = used(key);
        let Ok(_guard) = self.writer.lock() else {
            return Learnt::Refused;
        };
        let mut target: Option<&Slot<W>> = None;
        let mut oldest: Option<(&Slot<W>, u32)> = None;
        for slot in self.probe(&key) {
            let k = load_key(slot);
            if k == key {
                target = Some(slot);
                break;
            }
            if k[0] == 0 && target.is_none() {
                target = Some(slot);
            }
            let age = now.wrapping_sub(slot.stamp.load(Ordering::Relaxed));
            if oldest.is_none_or(|(_, a)| age > a) {
                oldest = Some((slot, age));
            }
        }
        let Some(slot) = target.or(oldest.map(|(s, _)| s)) else {
            return Learnt::Refused;
        };
        let before = load_key(slot);
        let outcome = match before {
            k if k == key => Learnt::Known,
            _ if !admit() => return Learnt::Refused,
            k if k[0] == 0 => Learnt::Added { evicted: None },
            mut k => {
                k[0] &= !USED;
                Learnt::Added { evicted: Some(k) }
            }
        };
        Self::write(slot, key, value, now);
        outcome
    }

    /// Writes a slot under the seqlock (the writers' lock held).
    fn write(slot: &Slot<W>, key: [u64; W], value: u64, now: u32) {
        slot.seq.fetch_add(1, Ordering::Acquire);
        fence(Ordering::Release);
        for (word, k) in slot.key.iter().zip(key) {
            word.store(k, Ordering::Relaxed);
        }
        slot.value.store(value, Ordering::Relaxed);
        slot.stamp.store(now, Ordering::Relaxed);
        slot.seq.fetch_add(1, Ordering::Release);
    }

    /// The number of slots (entries it can hold).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Removes the entries of slots `range` (clamped to the table) that
    /// `remove` picks; returns how many went.
    pub fn remove_where(
        &self,
        range: std::ops::Range<usize>,
        mut remove: impl FnMut([u64; W], Learned) -> bool,
    ) -> usize {
        let Ok(_guard) = self.writer.lock() else {
            return 0;
        };
        let end = range.end.min(self.slots.len());
        let mut removed = 0;
        for slot in self.slots.get(range.start..end).into_iter().flatten() {
            let mut k = load_key(slot);
            if k[0] == 0 {
                continue;
            }
            k[0] &= !USED;
            let learned = Learned {
                value: slot.value.load(Ordering::Relaxed),
                stamp: slot.stamp.load(Ordering::Relaxed),
            };
            if remove(k, learned) {
                Self::write(slot, [0; W], 0, 0);
                removed += 1;
            }
        }
        removed
    }

    /// All entries as (key, learned), for show commands.
    pub fn entries(&self) -> Vec<([u64; W], Learned)> {
        self.slots
            .iter()
            .filter_map(Self::read)
            .filter(|(k, _, _)| k[0] != 0)
            .map(|(mut k, value, stamp)| {
                k[0] &= !USED;
                (k, Learned { value, stamp })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn learns_updates_and_evicts_the_oldest_when_full() {
        let t: LearnedTable = LearnedTable::new(8);
        t.learn([1], 10, 0);
        assert_eq!(
            t.get([1]),
            Some(Learned {
                value: 10,
                stamp: 0
            })
        );
        t.learn([1], 11, 0);
        assert_eq!(t.get([1]).map(|e| e.value), Some(11));
        for k in 2..=20u64 {
            t.learn([k], k * 10, k as u32);
        }
        assert_eq!(t.get([20]).map(|e| e.value), Some(200));
        assert!(t.get([1]).is_none(), "oldest entry evicted");
        assert_eq!(t.entries().len(), 8);
    }

    #[test]
    fn admitted_learning_reports_additions_and_evictions_and_entries_can_be_removed() {
        let t: LearnedTable = LearnedTable::new(8);
        assert_eq!(t.learn_admitted([1], 10, 0, || false), Learnt::Refused);
        assert_eq!(
            t.learn_admitted([1], 10, 0, || true),
            Learnt::Added { evicted: None }
        );
        assert_eq!(t.learn_admitted([1], 11, 0, || false), Learnt::Known);
        for k in 2..=8u64 {
            t.learn([k], k, k as u32);
        }
        assert_eq!(
            t.learn_admitted([9], 9, 9, || true),
            Learnt::Added { evicted: Some([1]) }
        );
        assert_eq!(t.remove_where(0..usize::MAX, |k, _| k[0] % 2 == 0), 4);
        assert_eq!(t.entries().len(), 4);
        assert!(t.get([2]).is_none() && t.get([3]).is_some());
    }

    #[test]
    fn wide_keys_differ_in_any_word() {
        let t = LearnedTable::<3>::new(64);
        t.learn([1, 2, 3], 10, 0);
        t.learn([1, 2, 4], 11, 0);
        assert_eq!(t.get([1, 2, 3]).map(|e| e.value), Some(10));
        assert_eq!(t.get([1, 2, 4]).map(|e| e.value), Some(11));
        assert!(t.get([0, 2, 3]).is_none());
        let mut keys: Vec<_> = t.entries().into_iter().map(|(k, _)| k).collect();
        keys.sort();
        assert_eq!(keys, [[1, 2, 3], [1, 2, 4]]);
    }

    #[test]
    fn concurrent_readers_see_whole_entries() {
        let t = Arc::new(LearnedTable::<1>::new(64));
        let writer = {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    t.learn([7], i << 32 | i, i as u32);
                }
            })
        };
        for _ in 0..20_000 {
            if let Some(e) = t.get([7]) {
                assert_eq!(e.value >> 32, e.value & 0xffff_ffff, "torn read");
            }
        }
        writer.join().unwrap();
    }
}
