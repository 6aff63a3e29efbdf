//! A GUID partition table writer: protective MBR, primary and backup
//! headers and entry arrays, with their CRC32s (UEFI spec, chapter 5).

use std::io::{self, Seek, SeekFrom, Write};

pub const SECTOR: u64 = 512;
const ENTRY_COUNT: u64 = 128;
const ENTRY_SIZE: u64 = 128;
const ENTRY_SECTORS: u64 = ENTRY_COUNT * ENTRY_SIZE / SECTOR;
const HEADER_SIZE: usize = 92;

/// The type of an EFI system partition.
pub const ESP_TYPE: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// The type of a generic Linux filesystem partition.
pub const LINUX_DATA_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

pub struct Partition<'a> {
    /// The GPT partition name (what Linux shows as PARTNAME).
    pub name: &'a str,
    pub type_guid: &'a str,
    pub unique_guid: &'a str,
    pub first_lba: u64,
    pub last_lba: u64,
}

/// The first sector a partition may use, and the last one, on a disk of `sectors`.
pub fn usable_range(sectors: u64) -> (u64, u64) {
    (2 + ENTRY_SECTORS, sectors - 2 - ENTRY_SECTORS)
}

/// Writes the partition table of a disk of `sectors` sectors.
pub fn write(
    disk: &mut (impl Write + Seek),
    sectors: u64,
    disk_guid: &str,
    partitions: &[Partition],
) -> io::Result<()> {
    let (first_usable, last_usable) = usable_range(sectors);
    let mut entries = vec![0u8; (ENTRY_COUNT * ENTRY_SIZE) as usize];
    for (index, partition) in partitions.iter().enumerate() {
        if partition.first_lba < first_usable
            || partition.last_lba > last_usable
            || partition.first_lba > partition.last_lba
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("partition {} is outside the usable sectors", partition.name),
            ));
        }
        let entry = &mut entries[index * ENTRY_SIZE as usize..][..ENTRY_SIZE as usize];
        entry[0..16].copy_from_slice(&guid_bytes(partition.type_guid)?);
        entry[16..32].copy_from_slice(&guid_bytes(partition.unique_guid)?);
        entry[32..40].copy_from_slice(&partition.first_lba.to_le_bytes());
        entry[40..48].copy_from_slice(&partition.last_lba.to_le_bytes());
        for (i, unit) in partition.name.encode_utf16().take(36).enumerate() {
            entry[56 + 2 * i..58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
    }
    let entries_crc = crc32fast::hash(&entries);
    let disk_guid = guid_bytes(disk_guid)?;
    let last_lba = sectors - 1;
    let header = |own: u64, other: u64, entries_lba: u64| {
        let mut header = [0u8; SECTOR as usize];
        header[0..8].copy_from_slice(b"EFI PART");
        header[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        header[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        header[24..32].copy_from_slice(&own.to_le_bytes());
        header[32..40].copy_from_slice(&other.to_le_bytes());
        header[40..48].copy_from_slice(&first_usable.to_le_bytes());
        header[48..56].copy_from_slice(&last_usable.to_le_bytes());
        header[56..72].copy_from_slice(&disk_guid);
        header[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        header[80..84].copy_from_slice(&(ENTRY_COUNT as u32).to_le_bytes());
        header[84..88].copy_from_slice(&(ENTRY_SIZE as u32).to_le_bytes());
        header[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&header[..HEADER_SIZE]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        header
    };
    let backup_entries_lba = last_lba - ENTRY_SECTORS;
    write_at(disk, 0, &protective_mbr(sectors))?;
    write_at(disk, 1, &header(1, last_lba, 2))?;
    write_at(disk, 2, &entries)?;
    write_at(disk, backup_entries_lba, &entries)?;
    write_at(disk, last_lba, &header(last_lba, 1, backup_entries_lba))?;
    Ok(())
}

/// One MBR partition of type 0xEE covering the disk, so MBR tools keep off.
fn protective_mbr(sectors: u64) -> [u8; SECTOR as usize] {
    let mut mbr = [0u8; SECTOR as usize];
    let entry = &mut mbr[446..462];
    entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
    entry[4] = 0xee;
    entry[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = u32::try_from(sectors - 1).unwrap_or(u32::MAX);
    entry[12..16].copy_from_slice(&size.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

pub fn write_at(disk: &mut (impl Write + Seek), lba: u64, bytes: &[u8]) -> io::Result<()> {
    disk.seek(SeekFrom::Start(lba * SECTOR))?;
    disk.write_all(bytes)
}

/// The on-disk form of a GUID: the first three groups little-endian.
fn guid_bytes(text: &str) -> io::Result<[u8; 16]> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, format!("bad GUID {text}"));
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return Err(invalid());
    }
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(invalid)?, 16)
            .map_err(|_| invalid())?;
    }
    bytes[0..4].reverse();
    bytes[4..6].reverse();
    bytes[6..8].reverse();
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const SECTORS: u64 = 2048;

    fn sample_disk() -> Vec<u8> {
        let mut disk = Cursor::new(vec![0u8; (SECTORS * SECTOR) as usize]);
        let partitions = [Partition {
            name: "gatehouse-config",
            type_guid: LINUX_DATA_TYPE,
            unique_guid: "11111111-2222-3333-4444-555555555555",
            first_lba: 34,
            last_lba: 1000,
        }];
        write(
            &mut disk,
            SECTORS,
            "AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE",
            &partitions,
        )
        .unwrap();
        disk.into_inner()
    }

    fn sector(disk: &[u8], lba: u64) -> &[u8] {
        &disk[(lba * SECTOR) as usize..][..SECTOR as usize]
    }

    fn check_header(disk: &[u8], lba: u64) -> (u64, u64) {
        let header = sector(disk, lba);
        assert_eq!(&header[..8], b"EFI PART");
        let mut zeroed = header[..HEADER_SIZE].to_vec();
        zeroed[16..20].fill(0);
        assert_eq!(
            u32::from_le_bytes(header[16..20].try_into().unwrap()),
            crc32fast::hash(&zeroed)
        );
        let own = u64::from_le_bytes(header[24..32].try_into().unwrap());
        let entries = u64::from_le_bytes(header[72..80].try_into().unwrap());
        assert_eq!(own, lba);
        let table = &disk[(entries * SECTOR) as usize..][..(ENTRY_COUNT * ENTRY_SIZE) as usize];
        assert_eq!(
            u32::from_le_bytes(header[88..92].try_into().unwrap()),
            crc32fast::hash(table)
        );
        (own, entries)
    }

    #[test]
    fn primary_and_backup_headers_are_consistent() {
        let disk = sample_disk();
        assert_eq!(&disk[510..512], &[0x55, 0xaa]);
        assert_eq!(check_header(&disk, 1), (1, 2));
        assert_eq!(
            check_header(&disk, SECTORS - 1),
            (SECTORS - 1, SECTORS - 1 - ENTRY_SECTORS)
        );
    }

    #[test]
    fn entry_holds_mixed_endian_guids_and_utf16_name() {
        let disk = sample_disk();
        let entry = &sector(&disk, 2)[..128];
        // 0FC63DAF-8483-4772-... is stored as AF 3D C6 0F 83 84 72 47.
        assert_eq!(
            &entry[..8],
            &[0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47]
        );
        assert_eq!(u64::from_le_bytes(entry[32..40].try_into().unwrap()), 34);
        let name: Vec<u16> = entry[56..]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        assert_eq!(String::from_utf16(&name).unwrap(), "gatehouse-config");
    }

    #[test]
    fn rejects_partitions_over_the_tables_and_bad_guids() {
        let mut disk = Cursor::new(vec![0u8; (SECTORS * SECTOR) as usize]);
        let overlapping = Partition {
            name: "x",
            type_guid: LINUX_DATA_TYPE,
            unique_guid: LINUX_DATA_TYPE,
            first_lba: 2,
            last_lba: 100,
        };
        assert!(write(&mut disk, SECTORS, LINUX_DATA_TYPE, &[overlapping]).is_err());
        assert!(guid_bytes("not-a-guid").is_err());
    }
}
