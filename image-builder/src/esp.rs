//! The EFI system partition: systemd-boot as the removable-media loader,
//! its loader.conf, and boot slots A and B (kernel + initramfs + entry).
//! Written as a FAT image in memory with `fatfs` (fixed timestamps, so the
//! same inputs give the same bytes).

use anyhow::{Context, Result};
use boot_image::slot::{self, EntryName};
use std::io::{Cursor, Write};

/// A fixed, valid timestamp (1980-01-01 00:00) for every file: keeps the
/// image reproducible, and UEFI's FAT driver refuses to rename (boot
/// counting) a file whose stored date is invalid, which fatfs's
/// time-less default (month 0, day 0) is.
#[derive(Debug)]
struct FixedTime;

const EPOCH: fatfs::Date = fatfs::Date {
    year: 1980,
    month: 1,
    day: 1,
};

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        EPOCH
    }

    fn get_current_date_time(&self) -> fatfs::DateTime {
        fatfs::DateTime {
            date: EPOCH,
            time: fatfs::Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static FIXED_TIME: FixedTime = FixedTime;

fn fs_options() -> fatfs::FsOptions {
    fatfs::FsOptions::new().time_provider(&FIXED_TIME)
}

/// Debian's systemd-boot-efi package installs the loader here.
pub const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
/// Room kept in each slot for larger future images (upgrades).
const SLOT_HEADROOM_PERCENT: u64 = 25;
const MIB: u64 = 1 << 20;

pub struct SlotContents<'a> {
    pub kernel: &'a [u8],
    pub initramfs: &'a [u8],
    /// Kernel command line, without the `gatehouse.slot=` the entry adds.
    pub cmdline: &'a str,
    /// The release name `show install` and the boot menu show.
    pub release: &'a str,
}

/// The loader picks the newest good entry matching the glob (see README.md).
const LOADER_CONF: &str = "default gatehouse-*\ntimeout 0\neditor no\n";

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
        let fs = fatfs::FileSystem::new(&mut image, fs_options())?;
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
    for dir in ["EFI", "EFI/BOOT", "loader", "loader/entries", "gatehouse"] {
        root.create_dir(dir)?;
    }
    write_file(root, "EFI/BOOT/BOOTX64.EFI", loader)?;
    write_file(root, "loader/loader.conf", LOADER_CONF.as_bytes())?;
    for (version, slot) in slot::SLOTS.iter().rev().enumerate() {
        write_slot(root, *slot, version as u32, false, contents)?;
    }
    Ok(())
}

fn write_file<T: fatfs::ReadWriteSeek>(
    root: &fatfs::Dir<T>,
    path: &str,
    bytes: &[u8],
) -> Result<()> {
    let mut file = root.create_file(path)?;
    file.truncate()?;
    file.write_all(bytes)
        .with_context(|| format!("writing {path} to the ESP (too small?)"))
}

/// Writes a slot's kernel, initramfs, release and entry, replacing the
/// slot's old entry. On `trial`, the entry has a boot counter, so
/// systemd-boot counts down failed boots and falls back when none are left.
fn write_slot<T: fatfs::ReadWriteSeek>(
    root: &fatfs::Dir<T>,
    slot: char,
    version: u32,
    trial: bool,
    contents: &SlotContents,
) -> Result<()> {
    root.create_dir(&slot::directory(slot))?;
    write_file(root, &slot::kernel_path(slot), contents.kernel)?;
    write_file(root, &slot::initramfs_path(slot), contents.initramfs)?;
    write_file(root, &slot::release_path(slot), contents.release.as_bytes())?;
    for old in entry_names(root)? {
        if EntryName::parse(&old).is_some_and(|name| name.slot == slot) {
            root.remove(&format!("{}/{old}", slot::ENTRIES_DIR))?;
        }
    }
    let entry = slot::Entry {
        slot,
        version,
        release: contents.release,
        cmdline: contents.cmdline,
        trial,
    };
    let path = format!("{}/{}", slot::ENTRIES_DIR, entry.file_name());
    write_file(root, &path, entry.text().as_bytes())
}

fn entry_names<T: fatfs::ReadWriteSeek>(root: &fatfs::Dir<T>) -> Result<Vec<String>> {
    let entries = root.open_dir(slot::ENTRIES_DIR)?;
    let mut names = Vec::new();
    for entry in entries.iter() {
        let name = entry?.file_name();
        if name.ends_with(".conf") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Opens an ESP image for `work` and writes it back.
fn edit<R>(
    esp: &mut [u8],
    work: impl FnOnce(&fatfs::Dir<&mut Cursor<&mut [u8]>>) -> Result<R>,
) -> Result<R> {
    let mut cursor = Cursor::new(esp);
    let fs = fatfs::FileSystem::new(&mut cursor, fs_options())?;
    let result = work(&fs.root_dir())?;
    fs.unmount()?;
    Ok(result)
}

/// Installs `contents` into `slot` of an existing ESP image as version
/// `version`, on trial (three boots) or already good.
pub fn install_slot(
    esp: &mut [u8],
    slot: char,
    version: u32,
    trial: bool,
    contents: &SlotContents,
) -> Result<()> {
    edit(esp, |root| write_slot(root, slot, version, trial, contents))
}

/// Renames an entry, as systemd-boot does when it counts a try (tests use
/// it to spend a trial's tries without booting).
pub fn rename_entry(esp: &mut [u8], from: &str, to: &str) -> Result<()> {
    edit(esp, |root| {
        let entries = root.open_dir(slot::ENTRIES_DIR)?;
        entries.rename(from, &entries, to)?;
        Ok(())
    })
}

/// The boot entry file names (systemd-boot renames them as it counts tries).
pub fn boot_entries(esp: &mut [u8]) -> Result<Vec<String>> {
    // A closure, not the fn item: `edit` needs it generic over the borrow's lifetime.
    #[allow(clippy::redundant_closure)]
    edit(esp, |root| entry_names(root))
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
            release: "0.1.0",
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
        assert_eq!(read("gatehouse/slot-a/release"), "0.1.0");
        let entry_a = read("loader/entries/gatehouse-a.conf");
        assert!(entry_a.contains("version 1\n"));
        assert!(entry_a.contains("linux /gatehouse/slot-a/vmlinuz\n"));
        assert!(entry_a.contains("options console=ttyS0 gatehouse.slot=a\n"));
        assert!(read("loader/entries/gatehouse-b.conf").contains("version 0\n"));
    }

    #[test]
    fn installing_a_slot_with_tries_replaces_its_entry() {
        let contents = SlotContents {
            kernel: b"old",
            initramfs: b"old",
            cmdline: "console=ttyS0",
            release: "0.1.0",
        };
        let mut image = build(size_for(6, 2), b"MZ", &contents).unwrap();
        let new = SlotContents {
            kernel: b"new-kernel",
            initramfs: b"new-initrd",
            cmdline: "console=ttyS0",
            release: "0.2.0",
        };
        install_slot(&mut image, 'b', 2, true, &new).unwrap();
        assert_eq!(
            boot_entries(&mut image).unwrap(),
            ["gatehouse-a.conf", "gatehouse-b+3.conf"]
        );
        rename_entry(&mut image, "gatehouse-b+3.conf", "gatehouse-b+0-3.conf").unwrap();
        install_slot(&mut image, 'b', 3, false, &new).unwrap();
        assert_eq!(
            boot_entries(&mut image).unwrap(),
            ["gatehouse-a.conf", "gatehouse-b.conf"]
        );
    }

    #[test]
    fn too_small_an_esp_is_an_error() {
        let big = vec![0u8; 4 * MIB as usize];
        let contents = SlotContents {
            kernel: &big,
            initramfs: &big,
            cmdline: "",
            release: "0.1.0",
        };
        assert!(build(4 * MIB, b"MZ", &contents).is_err());
    }
}
