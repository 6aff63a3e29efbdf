//! Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4):
//! a lookup table of prime size M in which every backend owns a share of
//! the entries proportional to its weight. Each backend has its own
//! permutation of the entries, (offset + j * skip) mod M from two hashes
//! of its name; the table is filled in rounds, each backend taking its
//! next preferred free entry, as many per round as its weight. A flow goes
//! to the backend of entry hash(flow) mod M. When a backend leaves or
//! joins, most entries keep their backend: only about 1/N of flows move.

/// A backend as the table sees it: a stable identity and a weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Hash of what names it (address and port), stable across commits.
    pub id: u64,
    pub weight: u32,
}

/// The lookup table: entry -> index into the backends it was built from.
#[derive(Clone, Debug)]
pub struct Maglev {
    entries: Vec<u16>,
}

use crate::open_table::mix64 as mix;

impl Maglev {
    /// The table of `size` entries (a prime) over `backends` (at most
    /// 65,535; those of weight 0 get none); None when none has a weight.
    pub fn build(backends: &[Backend], size: u32) -> Option<Maglev> {
        let m = u64::from(size);
        let live: Vec<usize> = (0..backends.len().min(usize::from(u16::MAX)))
            .filter(|&i| backends[i].weight > 0)
            .collect();
        if live.is_empty() || m < 2 {
            return None;
        }
        let permutation: Vec<(u64, u64)> = live
            .iter()
            .map(|&i| {
                let id = backends[i].id;
                (mix(id) % m, mix(id ^ 0x5bd1_e995_0000_0001) % (m - 1) + 1)
            })
            .collect();
        let mut next = vec![0u64; live.len()];
        let mut entries = vec![u16::MAX; size as usize];
        let mut filled = 0;
        'rounds: loop {
            for (k, &i) in live.iter().enumerate() {
                for _ in 0..backends[i].weight {
                    let (offset, skip) = permutation[k];
                    let mut at = (offset + next[k] * skip) % m;
                    while entries[at as usize] != u16::MAX {
                        next[k] += 1;
                        at = (offset + next[k] * skip) % m;
                    }
                    entries[at as usize] = i as u16;
                    next[k] += 1;
                    filled += 1;
                    if filled == entries.len() {
                        break 'rounds;
                    }
                }
            }
        }
        Some(Maglev { entries })
    }

    /// The backend (index) of a flow with hash `hash`.
    #[inline]
    pub fn lookup(&self, hash: u64) -> usize {
        usize::from(self.entries[(hash % self.entries.len() as u64) as usize])
    }

    /// Entries per backend index, for tests and `show`.
    pub fn shares(&self, backends: usize) -> Vec<usize> {
        let mut shares = vec![0; backends];
        for &e in &self.entries {
            shares[usize::from(e)] += 1;
        }
        shares
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends(n: u64, weight: u32) -> Vec<Backend> {
        (0..n)
            .map(|i| Backend {
                id: mix(i + 1),
                weight,
            })
            .collect()
    }

    #[test]
    fn shares_follow_weights() {
        let mut b = backends(3, 1);
        b[0].weight = 2;
        let table = Maglev::build(&b, 65537).unwrap();
        let shares = table.shares(3);
        assert_eq!(shares.iter().sum::<usize>(), 65537);
        let quarter = 65537 / 4;
        assert!(shares[0].abs_diff(2 * quarter) < 200, "{shares:?}");
        assert!(shares[1].abs_diff(quarter) < 200, "{shares:?}");
        assert!(Maglev::build(&backends(2, 0), 13).is_none());
    }

    #[test]
    fn removing_one_of_sixteen_moves_about_a_sixteenth_of_flows() {
        let all = backends(16, 1);
        let before = Maglev::build(&all, 65537).unwrap();
        let mut without = all.clone();
        without.remove(5);
        let after = Maglev::build(&without, 65537).unwrap();
        let flows = 100_000u64;
        let moved = (0..flows)
            .filter(|f| {
                let h = mix(*f);
                let was = all[before.lookup(h)].id;
                let now = without[after.lookup(h)].id;
                was != now
            })
            .count();
        let fraction = moved as f64 / flows as f64;
        assert!(fraction < 1.0 / 16.0 + 0.01, "{fraction}");
        assert!(
            fraction > 1.0 / 16.0 - 0.01,
            "{fraction}: the removed one's flows move"
        );
    }
}
