//! The EFI system partition: systemd-boot as the removable-media loader,
//! its loader.conf, and boot slots A and B (kernel + initramfs + entry).
//! Written as a FAT image in memory with `fatfs` (fixed timestamps, so the
//! same inputs give the same bytes).

use anyhow::{Context, Result};
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

pub const SLOTS: [char; 2] = ['a', 'b'];

pub struct SlotContents<'a> {
    pub kernel: &'a [u8],
    pub initramfs: &'a [u8],
    /// Kernel command line, without the `gatehouse.slot=` the entry adds.
    pub cmdline: &'a str,
}

/// The loader picks the newest good entry matching the glob (see README.md).
const LOADER_CONF: &str = "default gatehouse-*\ntimeout 0\neditor no\n";

/// On the command line of an entry with boot counting: /init marks the
/// entry good (drops the counter and this flag) once the slot has booted.
pub const TRIAL_FLAG: &str = "gatehouse.trial";

fn entry(slot: char, version: u32, trial: bool, cmdline: &str) -> String {
    let trial = if trial {
        format!(" {TRIAL_FLAG}")
    } else {
        String::new()
    };
    format!(
        "title Gatehouse (slot {upper})\nversion {version}\nsort-key gatehouse\n\
         linux /gatehouse/slot-{slot}/vmlinuz\ninitrd /gatehouse/slot-{slot}/initrd.img\n\
         options {cmdline} gatehouse.slot={slot}{trial}\n",
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
    for (version, slot) in SLOTS.iter().rev().enumerate() {
        write_slot(root, *slot, version as u32, None, contents)?;
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

/// Writes a slot's kernel, initramfs and entry, replacing the slot's old
/// entry. With `tries`, the entry is `gatehouse-<slot>+<tries>.conf`, so
/// systemd-boot counts down failed boots and falls back when none are left.
fn write_slot<T: fatfs::ReadWriteSeek>(
    root: &fatfs::Dir<T>,
    slot: char,
    version: u32,
    tries: Option<u32>,
    contents: &SlotContents,
) -> Result<()> {
    root.create_dir(&format!("gatehouse/slot-{slot}"))?;
    write_file(
        root,
        &format!("gatehouse/slot-{slot}/vmlinuz"),
        contents.kernel,
    )?;
    write_file(
        root,
        &format!("gatehouse/slot-{slot}/initrd.img"),
        contents.initramfs,
    )?;
    for old in entry_names(root)? {
        if entry_slot(&old) == Some(slot) {
            root.remove(&format!("loader/entries/{old}"))?;
        }
    }
    let name = match tries {
        Some(tries) => format!("gatehouse-{slot}+{tries}.conf"),
        None => format!("gatehouse-{slot}.conf"),
    };
    let text = entry(slot, version, tries.is_some(), contents.cmdline);
    write_file(root, &format!("loader/entries/{name}"), text.as_bytes())
}

fn entry_names<T: fatfs::ReadWriteSeek>(root: &fatfs::Dir<T>) -> Result<Vec<String>> {
    let entries = root.open_dir("loader/entries")?;
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

/// `gatehouse-b+2-1.conf` -> 'b'.
fn entry_slot(name: &str) -> Option<char> {
    let rest = name.strip_prefix("gatehouse-")?;
    let slot = rest.chars().next()?;
    matches!(rest[slot.len_utf8()..].chars().next(), Some('.' | '+')).then_some(slot)
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
/// `version`, with `tries` boot attempts before systemd-boot gives up on it.
pub fn install_slot(
    esp: &mut [u8],
    slot: char,
    version: u32,
    tries: Option<u32>,
    contents: &SlotContents,
) -> Result<()> {
    edit(esp, |root| write_slot(root, slot, version, tries, contents))
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
    fn installing_a_slot_with_tries_replaces_its_entry() {
        let contents = SlotContents {
            kernel: b"old",
            initramfs: b"old",
            cmdline: "console=ttyS0",
        };
        let mut image = build(size_for(6, 2), b"MZ", &contents).unwrap();
        let new = SlotContents {
            kernel: b"new-kernel",
            initramfs: b"new-initrd",
            cmdline: "console=ttyS0",
        };
        install_slot(&mut image, 'b', 2, Some(3), &new).unwrap();
        assert_eq!(
            boot_entries(&mut image).unwrap(),
            ["gatehouse-a.conf", "gatehouse-b+3.conf"]
        );
        assert!(entry('b', 2, true, "x").contains("options x gatehouse.slot=b gatehouse.trial\n"));
        install_slot(&mut image, 'b', 3, None, &new).unwrap();
        assert_eq!(
            boot_entries(&mut image).unwrap(),
            ["gatehouse-a.conf", "gatehouse-b.conf"]
        );
        assert_eq!(entry_slot("gatehouse-b+0-3.conf"), Some('b'));
        assert_eq!(entry_slot("gatehouse-bx.conf"), None);
        assert_eq!(entry_slot("gatehouse-é.conf"), Some('é'));
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
