//! Read coalescing: a device's tags grouped into as few Modbus reads as
//! the protocol allows. Tags of one table are sorted by address and a read
//! grows over the next tag while it stays within the request limit (125
//! registers, 2000 bits) and the hole it would read over is small (a few
//! registers cost less than another round trip), so 100 neighbouring tags
//! cost one request, not 100.

use grammar::config::{Table, MAX_READ_REGISTERS};

/// Unused registers (bits) a read may span to join the next tag.
pub const REGISTER_GAP: u16 = 8;
pub const BIT_GAP: u16 = 64;
/// The most bits one read may ask for (Modbus's limit for coils).
pub const MAX_READ_BITS: u16 = 2000;

/// One read request and the tags it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    pub table: Table,
    pub start: u16,
    pub count: u16,
    /// `(tag index, offset of its first register in the read, width)`.
    pub tags: Vec<(usize, u16, u16)>,
}

/// The reads for `tags`, each given as `(table, address, width)`; the
/// index of a tag in the slice names it in [`Read::tags`]. Tags wider
/// than a request (which commit checks prevent) are left out.
pub fn plan(tags: &[(Table, u16, u16)]) -> Vec<Read> {
    let mut order: Vec<usize> = (0..tags.len()).collect();
    order.sort_by_key(|&i| (tags[i].0, tags[i].1));
    let mut reads: Vec<Read> = Vec::new();
    for i in order {
        let (table, address, width) = tags[i];
        let (max, gap) = match table.is_bits() {
            true => (MAX_READ_BITS, BIT_GAP),
            false => (MAX_READ_REGISTERS, REGISTER_GAP),
        };
        if width == 0 || width > max || u32::from(address) + u32::from(width) > 65536 {
            continue;
        }
        let end = u32::from(address) + u32::from(width);
        if let Some(read) = reads.last_mut().filter(|r| r.table == table) {
            let read_end = u32::from(read.start) + u32::from(read.count);
            let hole = u32::from(address).saturating_sub(read_end);
            let new_count = end.max(read_end) - u32::from(read.start);
            if hole <= u32::from(gap) && new_count <= u32::from(max) {
                read.count = new_count as u16;
                read.tags.push((i, address - read.start, width));
                continue;
            }
        }
        reads.push(Read {
            table,
            start: address,
            count: width,
            tags: vec![(i, 0, width)],
        });
    }
    reads
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Table::*;

    #[test]
    fn a_hundred_neighbours_cost_one_read() {
        let tags: Vec<_> = (0..100).map(|i| (HoldingRegister, 1000 + i, 1)).collect();
        let reads = plan(&tags);
        assert_eq!(reads.len(), 1);
        assert_eq!(
            (reads[0].start, reads[0].count, reads[0].tags.len()),
            (1000, 100, 100)
        );
    }

    #[test]
    fn tables_limits_and_holes_split_reads() {
        let tags = [
            (HoldingRegister, 0, 2),
            (HoldingRegister, 6, 4),   // hole of 4: joins
            (HoldingRegister, 100, 1), // hole of 90: new read
            (InputRegister, 0, 1),     // other table
            (HoldingRegister, 200, 120),
            (HoldingRegister, 320, 10), // would make 130 registers
            (Coil, 5, 1),
            (Coil, 60, 1),
            (HoldingRegister, 2, 1), // inside the first read
        ];
        let reads = plan(&tags);
        let shape: Vec<_> = reads.iter().map(|r| (r.table, r.start, r.count)).collect();
        assert_eq!(
            shape,
            [
                (Coil, 5, 56),
                (InputRegister, 0, 1),
                (HoldingRegister, 0, 10),
                (HoldingRegister, 100, 1),
                (HoldingRegister, 200, 120),
                (HoldingRegister, 320, 10),
            ]
        );
        assert_eq!(reads[2].tags, [(0, 0, 2), (8, 2, 1), (1, 6, 4)]);
    }

    proptest! {
        /// Every tag is read once, wholly, by a read within the limits.
        #[test]
        fn every_tag_is_covered_within_the_limits(
            tags in proptest::collection::vec(
                (proptest::sample::select(Table::ALL.to_vec()), any::<u16>(), 1u16..=4), 0..200)
        ) {
            let reads = plan(&tags);
            let mut seen = vec![0; tags.len()];
            for read in &reads {
                let max = if read.table.is_bits() { MAX_READ_BITS } else { MAX_READ_REGISTERS };
                prop_assert!(read.count <= max);
                for &(i, offset, width) in &read.tags {
                    seen[i] += 1;
                    prop_assert_eq!(tags[i].0, read.table);
                    prop_assert_eq!(read.start + offset, tags[i].1);
                    prop_assert!(offset + width <= read.count);
                }
            }
            for (i, &(_, address, width)) in tags.iter().enumerate() {
                let fits = u32::from(address) + u32::from(width) <= 65536;
                prop_assert_eq!(seen[i], usize::from(fits));
            }
        }
    }
}
