//! The EFI system partition: systemd-boot as the removable-media loader,
//! its loader.conf, and boot slots A and B (kernel + initramfs + entry).
//! Written as a FAT image in memory with `fatfs` (DOS-epoch timestamps, so
//! the same inputs give the same bytes).

use anyhow::{Context, Result};
use std::io::{Cursor, Write};

/// Debian's systemd-boot-efi package installs the loader here.
pub const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
/// Room kept in each slot for larger future images (upgrades).
const SLOT_HEADROOM_PERCENT: u64 = 25;
const MIB: u64 = 1 << 20;

pub const SLOTS: [char; 2] = ['a', 'b'];

pub struct SlotContents<'a> {
    pub kernel: &'a [u8],
    pub initramfs: &'a [u8],
    /// Kernel command line, without the `gatehouse.slot=` the entry adds.
    pub cmdline: &'a str,
}

/// The loader picks the newest good entry matching the glob (see README.md).
const LOADER_CONF: &str = "default gatehouse-*\ntimeout 0\neditor no\n";

fn entry(slot: char, version: u32, cmdline: &str) -> String {
    format!(
        "title Gatehouse (slot {upper})\nversion {version}\nsort-key gatehouse\n\
         linux /gatehouse/slot-{slot}/vmlinuz\ninitrd /gatehouse/slot-{slot}/initrd.img\n\
         options {cmdline} gatehouse.slot={slot}\n",
        upper = slot.to_ascii_uppercase()
    )
}

/// Size of an ESP holding both slots of `slot_bytes` each with headroom.
pub fn size_for(slot_bytes: u64, loader_bytes: u64) -> u64 {
    let slot = slot_bytes * (100 + SLOT_HEADROOM_PERCENT) / 100;
    (2 * slot + loader_bytes + 2 * MIB).div_ceil(MIB) * MIB
}

/// Builds the ESP image of `size` bytes with both slots holding `contents`;
/// slot A is the one booted (version 1, B has version 0).
pub fn build(size: u64, loader: &[u8], contents: &SlotContents) -> Result<Vec<u8>> {
    let mut image = Cursor::new(vec![0u8; size as usize]);
    fatfs::format_volume(
        &mut image,
        fatfs::FormatVolumeOptions::new()
            .volume_id(0x6761_7465)
            .volume_label(*b"GATEHOUSE  "),
    )
    .context("formatting the ESP")?;
    image.set_position(0);
    {
        let fs = fatfs::FileSystem::new(&mut image, fatfs::FsOptions::new())?;
        fill(&fs.root_dir(), loader, contents)?;
        fs.unmount()?;
    }
    Ok(image.into_inner())
}

fn fill<T: fatfs::ReadWriteSeek>(
    root: &fatfs::Dir<T>,
    loader: &[u8],
    contents: &SlotContents,
) -> Result<()> {
    {
        let write = |path: &str, bytes: &[u8]| -> Result<()> {
            let mut file = root.create_file(path)?;
            file.truncate()?;
            file.write_all(bytes)
                .with_context(|| format!("writing {path} to the ESP (too small?)"))
        };
        for dir in ["EFI", "EFI/BOOT", "loader", "loader/entries", "gatehouse"] {
            root.create_dir(dir)?;
        }
        write("EFI/BOOT/BOOTX64.EFI", loader)?;
        write("loader/loader.conf", LOADER_CONF.as_bytes())?;
        for (version, slot) in SLOTS.iter().rev().enumerate() {
            root.create_dir(&format!("gatehouse/slot-{slot}"))?;
            write(&format!("gatehouse/slot-{slot}/vmlinuz"), contents.kernel)?;
            write(
                &format!("gatehouse/slot-{slot}/initrd.img"),
                contents.initramfs,
            )?;
            let text = entry(*slot, version as u32, contents.cmdline);
            write(
                &format!("loader/entries/gatehouse-{slot}.conf"),
                text.as_bytes(),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn slots_and_entries_are_readable_back() {
        let contents = SlotContents {
            kernel: b"kernel-bytes",
            initramfs: b"initrd-bytes",
            cmdline: "console=ttyS0",
        };
        let size = size_for(24, 4);
        let image = build(size, b"MZ-loader", &contents).unwrap();
        assert_eq!(image, build(size, b"MZ-loader", &contents).unwrap());

        let mut cursor = Cursor::new(image);
        let fs = fatfs::FileSystem::new(&mut cursor, fatfs::FsOptions::new()).unwrap();
        let read = |path: &str| {
            let mut text = String::new();
            fs.root_dir()
                .open_file(path)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        assert_eq!(read("EFI/BOOT/BOOTX64.EFI"), "MZ-loader");
        assert_eq!(read("gatehouse/slot-b/initrd.img"), "initrd-bytes");
        let entry_a = read("loader/entries/gatehouse-a.conf");
        assert!(entry_a.contains("version 1\n"));
        assert!(entry_a.contains("linux /gatehouse/slot-a/vmlinuz\n"));
        assert!(entry_a.contains("options console=ttyS0 gatehouse.slot=a\n"));
        assert!(read("loader/entries/gatehouse-b.conf").contains("version 0\n"));
    }

    #[test]
    fn too_small_an_esp_is_an_error() {
        let big = vec![0u8; 4 * MIB as usize];
        let contents = SlotContents {
            kernel: &big,
            initramfs: &big,
            cmdline: "",
        };
        assert!(build(4 * MIB, b"MZ", &contents).is_err());
    }
}
