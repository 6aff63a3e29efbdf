//! The MAC address table of every bridge domain: one `LearnedTable`
//! (lock-free reads, seqlock slots) keyed with the domain's number and the
//! MAC, whose value is where the MAC was last seen: a local member
//! (a port or VLAN) or a remote VTEP behind a VXLAN member. Entries are
//! counted per domain under the table's writer lock, so the per-domain
//! limit is exact; entries older than their domain's ageing time are
//! misses at once and removed by a sweep of a few slots at a time.

use crate::learned::{LearnedTable, Learnt};
use crate::snapshot::IfaceId;
use crate::wire::{mac_from_u64, mac_to_u64, Mac};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

/// The highest bridge-domain number (the grammar's range).
pub const MAX_DOMAIN: u32 = 16000;
/// Slots of the table, shared by every domain (32 bytes each).
const CAPACITY: usize = 1 << 18;
/// Marks a remote VTEP location in an entry's value.
const REMOTE: u64 = 1 << 48;

/// Where a MAC lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Behind a local member (a port or sub-interface).
    Member(IfaceId),
    /// Behind a remote VTEP, through this VXLAN member.
    Remote(IfaceId, Ipv4Addr),
}

impl Location {
    fn encode(self) -> u64 {
        match self {
            Location::Member(id) => u64::from(id) << 32,
            Location::Remote(id, vtep) => REMOTE | u64::from(id) << 32 | u64::from(u32::from(vtep)),
        }
    }

    fn decode(v: u64) -> Location {
        let id = (v >> 32) as IfaceId;
        match v & REMOTE {
            0 => Location::Member(id),
            _ => Location::Remote(id, Ipv4Addr::from(v as u32)),
        }
    }

    /// The member interface the MAC is reached through.
    pub fn member(self) -> IfaceId {
        match self {
            Location::Member(id) | Location::Remote(id, _) => id,
        }
    }
}

/// What learning a source MAC did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacLearnt {
    Known,
    New,
    /// Not learned: the domain holds its limit.
    Full,
}

/// One learned MAC, for `show mac address-table`.
pub struct Entry {
    pub domain: u32,
    pub mac: Mac,
    pub at: Location,
    pub age_secs: u32,
}

pub struct MacTable {
    entries: LearnedTable,
    /// Entries per domain number.
    counts: Box<[AtomicU32]>,
}

fn key(domain: u32, mac: &Mac) -> [u64; 1] {
    [u64::from(domain) << 48 | mac_to_u64(mac)]
}

fn domain_of([key]: [u64; 1]) -> u32 {
    (key >> 48) as u32 & 0x7fff
}

impl Default for MacTable {
    fn default() -> Self {
        MacTable {
            entries: LearnedTable::new(CAPACITY),
            counts: (0..=MAX_DOMAIN).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl MacTable {
    fn counter(&self, domain: u32) -> Option<&AtomicU32> {
        self.counts.get(domain as usize)
    }

    /// Entries of `domain`.
    pub fn count(&self, domain: u32) -> u32 {
        self.counter(domain)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Records that `mac` of `domain` was seen at `at`, unless new and the
    /// domain holds `limit` entries.
    pub fn learn(&self, domain: u32, mac: &Mac, at: Location, now: u32, limit: u32) -> MacLearnt {
        let Some(count) = self.counter(domain) else {
            return MacLearnt::Full;
        };
        let admit = || {
            let room = count.load(Ordering::Relaxed) < limit;
            if room {
                count.fetch_add(1, Ordering::Relaxed);
            }
            room
        };
        match self
            .entries
            .learn_admitted(key(domain, mac), at.encode(), now, admit)
        {
            Learnt::Known => MacLearnt::Known,
            Learnt::Refused => MacLearnt::Full,
            Learnt::Added { evicted } => {
                let other = evicted.and_then(|k| self.counter(domain_of(k)));
                other.map(|c| c.fetch_sub(1, Ordering::Relaxed));
                MacLearnt::New
            }
        }
    }

    /// Where `mac` of `domain` is, unless unknown or older than `aging`.
    #[inline]
    pub fn lookup(&self, domain: u32, mac: &Mac, now: u32, aging: u32) -> Option<Location> {
        let e = self.entries.get(key(domain, mac))?;
        (now.wrapping_sub(e.stamp) <= aging).then(|| Location::decode(e.value))
    }

    /// Removes the entries of slots `from..from + n` that `gone` picks
    /// (domain, age in seconds); returns where the next sweep starts.
    pub fn sweep(
        &self,
        from: usize,
        n: usize,
        now: u32,
        mut gone: impl FnMut(u32, u32) -> bool,
    ) -> usize {
        self.entries.remove_where(from..from + n, |k, e| {
            let domain = domain_of(k);
            let remove = gone(domain, now.wrapping_sub(e.stamp));
            if remove {
                self.counter(domain)
                    .map(|c| c.fetch_sub(1, Ordering::Relaxed));
            }
            remove
        });
        match from + n {
            next if next >= self.entries.capacity() => 0,
            next => next,
        }
    }

    /// Removes every entry (of one domain, or all).
    pub fn clear(&self, domain: Option<u32>) {
        let all = self.entries.capacity();
        self.sweep(0, all, 0, |d, _| domain.is_none_or(|n| n == d));
    }

    /// Every entry, for show commands.
    pub fn entries(&self, now: u32) -> Vec<Entry> {
        (self.entries.entries().into_iter())
            .map(|(k, e)| Entry {
                domain: domain_of(k),
                mac: mac_from_u64(k[0] & 0xffff_ffff_ffff),
                at: Location::decode(e.value),
                age_secs: now.wrapping_sub(e.stamp),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_keep_their_own_macs_counts_and_limits() {
        let t = MacTable::default();
        let mac = [2, 0, 0, 0, 0, 1];
        let vtep = Location::Remote(7, Ipv4Addr::new(192, 0, 2, 9));
        assert_eq!(t.learn(10, &mac, Location::Member(3), 0, 1), MacLearnt::New);
        assert_eq!(t.learn(20, &mac, vtep, 0, 1), MacLearnt::New);
        assert_eq!(
            t.learn(10, &[2, 0, 0, 0, 0, 2], Location::Member(3), 0, 1),
            MacLearnt::Full
        );
        assert_eq!(t.lookup(10, &mac, 5, 300), Some(Location::Member(3)));
        assert_eq!(t.lookup(20, &mac, 5, 300), Some(vtep));
        assert_eq!(t.lookup(20, &mac, 400, 300), None, "aged out");
        assert_eq!((t.count(10), t.count(20)), (1, 1));
        t.sweep(0, CAPACITY, 400, |d, age| d == 20 && age > 300);
        assert_eq!((t.count(10), t.count(20)), (1, 0));
        t.clear(None);
        assert_eq!(t.count(10), 0);
        assert!(t.entries(0).is_empty());
    }
}
