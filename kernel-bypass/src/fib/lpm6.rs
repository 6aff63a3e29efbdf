//! The IPv6 longest-prefix-match table.
//!
//! Edge sites carry few IPv6 routes, so the table is one hash map per prefix
//! length in use (masked address -> value), searched from the longest length
//! down. A lookup is at most one probe per length in use and allocates
//! nothing. The table is built once per snapshot and never changed.

use ipnet::Ipv6Net;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes the u128 keys of one level: the halves folded and mixed with a
/// multiply (the keys are addresses, not attacker-chosen hash-flooding
/// input of unbounded size: the table holds only configured prefixes).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u128(&mut self, v: u128) {
        let folded = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        self.0 = folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (folded >> 32);
    }
}

type Level = HashMap<u128, u32, BuildHasherDefault<AddressHasher>>;

/// The mask keeping the first `len` bits of an address.
fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        len => u128::MAX << (128 - u32::from(len)),
    }
}

#[derive(Clone, Default)]
pub struct Lpm6 {
    /// (prefix length, prefixes of that length), longest first.
    levels: Vec<(u8, Level)>,
}

impl Lpm6 {
    pub fn new() -> Lpm6 {
        Lpm6::default()
    }

    /// A table of these routes; a prefix given twice keeps its first value.
    pub fn from_routes(routes: impl IntoIterator<Item = (Ipv6Net, u32)>) -> Lpm6 {
        let mut table = Lpm6::new();
        for (prefix, value) in routes {
            table.insert(prefix, value);
        }
        table
    }

    fn insert(&mut self, prefix: Ipv6Net, value: u32) {
        let len = prefix.prefix_len();
        let at = match self.levels.binary_search_by(|(l, _)| len.cmp(l)) {
            Ok(at) => at,
            Err(at) => {
                self.levels.insert(at, (len, Level::default()));
                at
            }
        };
        let key = u128::from(prefix.network());
        self.levels[at].1.entry(key).or_insert(value);
    }

    /// The value of the longest prefix containing `addr`.
    #[inline]
    pub fn lookup(&self, addr: u128) -> Option<u32> {
        self.levels
            .iter()
            .find_map(|(len, level)| level.get(&(addr & mask(*len))).copied())
    }

    /// Number of prefixes in the table.
    pub fn len(&self) -> usize {
        self.levels.iter().map(|(_, l)| l.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    fn addr(s: &str) -> u128 {
        s.parse::<std::net::Ipv6Addr>().unwrap().into()
    }

    #[test]
    fn longest_prefix_wins_at_every_length() {
        let t = Lpm6::from_routes([
            (net("::/0"), 0),
            (net("2001:db8::/32"), 1),
            (net("2001:db8:1::/48"), 2),
            (net("2001:db8:1:2::/64"), 3),
            (net("2001:db8:1:2::7/128"), 4),
        ]);
        assert_eq!(t.len(), 5);
        assert_eq!(t.lookup(addr("2001:db8:1:2::7")), Some(4));
        assert_eq!(t.lookup(addr("2001:db8:1:2::8")), Some(3));
        assert_eq!(t.lookup(addr("2001:db8:1:3::1")), Some(2));
        assert_eq!(t.lookup(addr("2001:db8:ffff::1")), Some(1));
        assert_eq!(t.lookup(addr("3fff::1")), Some(0));
    }

    #[test]
    fn misses_without_a_default_and_first_value_of_a_duplicate_stays() {
        let t = Lpm6::from_routes([
            (net("2001:db8::1/64"), 1),
            (net("2001:db8::/64"), 9),
            (net("fd00::/8"), 2),
        ]);
        assert_eq!(t.len(), 2, "host bits are masked: one /64");
        assert_eq!(t.lookup(addr("2001:db8::ffff")), Some(1));
        assert_eq!(t.lookup(addr("fdff::1")), Some(2));
        assert_eq!(t.lookup(addr("fe00::1")), None);
        assert_eq!(t.lookup(addr("2001:db8:0:1::1")), None);
        assert!(Lpm6::new().lookup(0).is_none());
    }

    /// Addresses under 2000::/8 with few varying bits, so prefixes nest.
    fn nested() -> impl Strategy<Value = u128> {
        any::<u16>().prop_map(|bits| 0x20 << 120 | u128::from(bits) << 100 | u128::from(bits & 7))
    }

    proptest! {
        #[test]
        fn agrees_with_a_linear_scan(
            routes in prop::collection::vec((nested(), 0u8..=128), 1..200),
            probes in prop::collection::vec(nested(), 1..200),
        ) {
            let routes: Vec<(Ipv6Net, u32)> = routes
                .into_iter()
                .enumerate()
                .map(|(i, (a, len))| (Ipv6Net::new(a.into(), len).unwrap().trunc(), i as u32))
                .collect();
            let t = Lpm6::from_routes(routes.iter().copied());
            for probe in probes {
                // The first value given for the longest matching prefix.
                let expected = routes
                    .iter()
                    .filter(|(p, _)| p.contains(&std::net::Ipv6Addr::from(probe)))
                    .max_by_key(|(p, v)| (p.prefix_len(), std::cmp::Reverse(*v)))
                    .map(|(_, v)| *v);
                prop_assert_eq!(t.lookup(probe), expected);
            }
        }
    }
}
