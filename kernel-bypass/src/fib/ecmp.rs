//! Equal-cost multipath: hashing a flow and choosing one of several next hops.

use std::fmt;

/// Hash of a flow's 5-tuple, stable for the flow and well mixed in all 32
/// bits. Not symmetric: the two directions of a connection may hash apart.
#[inline]
pub fn flow_hash(src: u32, dst: u32, proto: u8, sport: u16, dport: u16) -> u32 {
    let addresses = (u64::from(src) << 32) | u64::from(dst);
    let rest = (u64::from(proto) << 32) | (u64::from(sport) << 16) | u64::from(dport);
    let mixed = mix64(mix64(addresses) ^ rest);
    (mixed ^ (mixed >> 32)) as u32
}

/// The 64-bit finalizer of MurmurHash3: every input bit affects every output bit.
#[inline(always)]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcmpError {
    /// A group needs at least one next hop.
    Empty,
}

impl fmt::Display for EcmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EcmpError::Empty => write!(f, "an ECMP group needs at least one next hop"),
        }
    }
}

impl std::error::Error for EcmpError {}

/// A non-empty set of equal-cost next hops.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EcmpGroup<T> {
    members: Box<[T]>,
}

impl<T> EcmpGroup<T> {
    pub fn new(members: Vec<T>) -> Result<EcmpGroup<T>, EcmpError> {
        if members.is_empty() {
            return Err(EcmpError::Empty);
        }
        Ok(EcmpGroup {
            members: members.into_boxed_slice(),
        })
    }

    /// The next hop for a flow with hash `hash`: the hash range is cut into
    /// `len()` equal parts (multiply-shift, no division on the fast path).
    #[inline]
    pub fn select(&self, hash: u32) -> &T {
        let index = (u64::from(hash) * self.members.len() as u64) >> 32;
        &self.members[index as usize]
    }

    pub fn members(&self) -> &[T] {
        &self.members
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a group is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_even_spread(group: &EcmpGroup<usize>, hashes: impl Iterator<Item = u32>) {
        let mut counts = vec![0u32; group.len()];
        let mut total = 0u32;
        for hash in hashes {
            counts[*group.select(hash)] += 1;
            total += 1;
        }
        let expected = total / group.len() as u32;
        // Binomial standard deviation is about 1% of `expected` here; allow 10%.
        for (member, &count) in counts.iter().enumerate() {
            assert!(
                count.abs_diff(expected) < expected / 10,
                "member {member} got {count} flows, expected about {expected}: {counts:?}"
            );
        }
    }

    #[test]
    fn empty_group_is_an_error() {
        assert_eq!(EcmpGroup::<u32>::new(vec![]), Err(EcmpError::Empty));
    }

    #[test]
    fn same_flow_same_next_hop() {
        let group = EcmpGroup::new(vec!["a", "b", "c"]).unwrap();
        let hash = flow_hash(0x0a00_0001, 0xc0a8_0101, 6, 40000, 443);
        assert_eq!(hash, flow_hash(0x0a00_0001, 0xc0a8_0101, 6, 40000, 443));
        assert_eq!(group.select(hash), group.select(hash));
    }

    #[test]
    fn every_tuple_field_changes_the_hash() {
        let base = flow_hash(1, 2, 17, 3, 4);
        assert_ne!(base, flow_hash(9, 2, 17, 3, 4));
        assert_ne!(base, flow_hash(1, 9, 17, 3, 4));
        assert_ne!(base, flow_hash(1, 2, 6, 3, 4));
        assert_ne!(base, flow_hash(1, 2, 17, 9, 4));
        assert_ne!(base, flow_hash(1, 2, 17, 3, 9));
    }

    #[test]
    fn source_ports_of_one_client_spread_evenly() {
        let group = EcmpGroup::new((0..8).collect()).unwrap();
        let hashes =
            (1024..=u16::MAX).map(|sport| flow_hash(0x0a00_0002, 0x0808_0808, 6, sport, 443));
        assert_even_spread(&group, hashes);
    }

    #[test]
    fn sequential_clients_spread_evenly_over_odd_group_sizes() {
        for size in [2, 3, 5, 7, 16] {
            let group = EcmpGroup::new((0..size).collect()).unwrap();
            let hashes =
                (0..60_000u32).map(|i| flow_hash(0x0a00_0000 + i, 0xc633_6401, 17, 5000, 53));
            assert_even_spread(&group, hashes);
        }
    }

    #[test]
    fn single_next_hop_takes_everything() {
        let group = EcmpGroup::new(vec![7]).unwrap();
        for hash in [0, 1, u32::MAX / 2, u32::MAX] {
            assert_eq!(*group.select(hash), 7);
        }
    }
}
