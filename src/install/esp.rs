//! The EFI system partition as the running appliance uses it: mounted on
//! demand to read the slots, install one or mark one good, and unmounted
//! (after a sync) when done, so the loader's files never sit half-written
//! in a cache when the box loses power.

use crate::init::mounts;
use boot_image::artifact::Artifact;
use boot_image::slot::{self, EntryName};
use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

const MOUNT_POINT: &str = "/run/esp";
/// One user of the mount point at a time (the CLI, SSH sessions, init).
static MOUNTED: Mutex<()> = Mutex::new(());

/// The ESP mounted; unmounted on drop.
pub struct Mounted {
    partition: Partition,
    _only_user: MutexGuard<'static, ()>,
}

impl std::ops::Deref for Mounted {
    type Target = Partition;
    fn deref(&self) -> &Partition {
        &self.partition
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let target = CString::new(MOUNT_POINT).unwrap_or_default();
        // SAFETY: sync takes no arguments; umount2 gets a valid C string.
        unsafe {
            libc::sync();
            libc::umount2(target.as_ptr(), 0);
        }
    }
}

/// Mounts the ESP (found by its GPT name) on /run/esp.
pub fn mount() -> Result<Mounted, String> {
    let only_user = MOUNTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let device = mounts::find_partition(Path::new("/sys/class/block"), slot::ESP_PARTITION_NAME)
        .ok_or("no EFI system partition (this machine did not boot a Gatehouse disk)")?;
    mounts::mount(
        &device.to_string_lossy(),
        MOUNT_POINT,
        "vfat",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    )
    .map_err(|error| format!("mounting {}: {error}", device.display()))?;
    Ok(Mounted {
        partition: Partition {
            root: PathBuf::from(MOUNT_POINT),
        },
        _only_user: only_user,
    })
}

/// What one slot holds, read from its entry and release file.
#[derive(Debug, PartialEq, Eq)]
pub struct SlotState {
    pub slot: char,
    /// None: the slot has no entry (never installed, or being written).
    pub entry: Option<EntryName>,
    pub version: u32,
    pub release: String,
}

/// The slots' files under a root (the mount point, or a folder in tests).
pub struct Partition {
    root: PathBuf,
}

impl Partition {
    #[cfg(test)]
    pub fn at(root: &Path) -> Partition {
        Partition {
            root: root.to_path_buf(),
        }
    }

    fn entries(&self) -> PathBuf {
        self.root.join(slot::ENTRIES_DIR)
    }

    fn entry_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.entries())
            .map(|dir| {
                dir.flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn slots(&self) -> Vec<SlotState> {
        let names = self.entry_names();
        slot::SLOTS
            .iter()
            .map(|&slot| {
                let found = names.iter().find_map(|name| {
                    EntryName::parse(name)
                        .filter(|entry| entry.slot == slot)
                        .map(|entry| (name, entry))
                });
                let version = found
                    .and_then(|(name, _)| fs::read_to_string(self.entries().join(name)).ok())
                    .and_then(|text| slot::entry_version(&text))
                    .unwrap_or(0);
                let release = fs::read_to_string(self.root.join(slot::release_path(slot)))
                    .map(|text| text.trim().to_string())
                    .unwrap_or_else(|_| "unknown".to_string());
                SlotState {
                    slot,
                    entry: found.map(|(_, entry)| entry),
                    version,
                    release,
                }
            })
            .collect()
    }

    /// Writes `image` into `slot` on trial, newer than every other slot.
    /// The slot's entry goes first, so the loader never boots a slot whose
    /// files are half-written, then its old files (the partition holds two
    /// slots, not three); the new entry comes last.
    pub fn install(&self, slot: char, image: &Artifact) -> Result<(), String> {
        let newest = self.slots().iter().map(|s| s.version).max().unwrap_or(0);
        self.remove_entries_of(slot)?;
        let dir = self.root.join(slot::directory(slot));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let files: [(String, &[u8]); 3] = [
            (slot::kernel_path(slot), image.kernel),
            (slot::initramfs_path(slot), image.initramfs),
            (slot::release_path(slot), image.release.as_bytes()),
        ];
        for (path, bytes) in files {
            fs::write(self.root.join(&path), bytes)
                .map_err(|e| format!("writing {path} on the EFI partition: {e}"))?;
        }
        let entry = slot::Entry {
            slot,
            version: newest + 1,
            release: image.release,
            cmdline: image.cmdline,
            trial: true,
        };
        let path = format!("{}/{}", slot::ENTRIES_DIR, entry.file_name());
        self.replace(&path, entry.text().as_bytes())
    }

    /// Rewrites the slot's trial entry as a good one (no counter, no trial
    /// flag), as systemd-bless-boot does; returns the old entry's name.
    pub fn mark_good(&self, slot: char) -> Result<String, String> {
        let old = self
            .entry_names()
            .into_iter()
            .find(|name| {
                EntryName::parse(name).is_some_and(|e| e.slot == slot && e.tries.is_some())
            })
            .ok_or_else(|| format!("no trial entry for slot {}", slot.to_ascii_uppercase()))?;
        let text = fs::read_to_string(self.entries().join(&old)).map_err(|e| e.to_string())?;
        let good = EntryName { slot, tries: None }.to_string();
        self.replace(
            &format!("{}/{good}", slot::ENTRIES_DIR),
            slot::without_trial_flag(&text).as_bytes(),
        )?;
        fs::remove_file(self.entries().join(&old)).map_err(|e| e.to_string())?;
        Ok(old)
    }

    fn remove_entries_of(&self, slot: char) -> Result<(), String> {
        for name in self.entry_names() {
            if EntryName::parse(&name).is_some_and(|entry| entry.slot == slot) {
                fs::remove_file(self.entries().join(&name))
                    .map_err(|e| format!("removing {name}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Writes a file through a temporary name and a rename.
    fn replace(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        let target = self.root.join(path);
        let temporary = target.with_extension("new");
        fs::write(&temporary, bytes)
            .and_then(|()| fs::rename(&temporary, &target))
            .map_err(|e| format!("writing {path} on the EFI partition: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(release: &str) -> Artifact<'_> {
        Artifact {
            release,
            cmdline: "console=ttyS0",
            kernel: b"kernel",
            initramfs: b"initrd",
        }
    }

    #[test]
    fn installing_puts_a_newer_trial_entry_and_marking_good_drops_the_counter() {
        let dir = std::env::temp_dir().join(format!("gh-esp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let esp = Partition::at(&dir);
        fs::create_dir_all(dir.join(slot::ENTRIES_DIR)).unwrap();
        esp.install('a', &image("0.1.0")).unwrap();
        esp.mark_good('a').unwrap();
        esp.install('b', &image("0.2.0")).unwrap();
        let slots = esp.slots();
        let entries = esp.entry_names();
        let trial_text = fs::read_to_string(dir.join(slot::ENTRIES_DIR).join(&entries[1]));
        let marked = esp.mark_good('b');
        let marked_again = esp.mark_good('b');
        let after = esp.entry_names();
        let good_text = fs::read_to_string(dir.join(slot::ENTRIES_DIR).join(&after[1]));
        let kernel = fs::read(dir.join("gatehouse/slot-b/vmlinuz"));
        fs::remove_dir_all(&dir).unwrap();

        assert_eq!(entries, ["gatehouse-a.conf", "gatehouse-b+3.conf"]);
        assert_eq!(slots[0].version, 1);
        assert_eq!(slots[1].version, 2);
        assert_eq!(slots[1].release, "0.2.0");
        assert!(slots[1].entry.unwrap().on_trial());
        assert!(trial_text
            .unwrap()
            .contains("gatehouse.slot=b gatehouse.trial"));
        assert_eq!(marked.unwrap(), "gatehouse-b+3.conf");
        assert!(marked_again.is_err());
        assert_eq!(after, ["gatehouse-a.conf", "gatehouse-b.conf"]);
        assert!(!good_text.unwrap().contains("trial"));
        assert_eq!(kernel.unwrap(), b"kernel");
    }
}
