//! The A/B slots on the EFI system partition (image-builder/README.md).
//! A slot is a folder holding a kernel, an initramfs and the release name,
//! plus a systemd-boot entry whose `version` orders the slots. A slot on
//! trial has a boot counter in its entry's file name (`gatehouse-b+3.conf`,
//! renamed by systemd-boot to `+2-1`, `+1-2`, `+0-3`) and the trial flag on
//! its command line; an entry with no tries left sorts last, so the loader
//! returns to the other slot by itself.

use std::fmt;

pub const SLOTS: [char; 2] = ['a', 'b'];
/// The GPT partition name of the EFI system partition.
pub const ESP_PARTITION_NAME: &str = "gatehouse-esp";
/// Where the entries live on the ESP.
pub const ENTRIES_DIR: &str = "loader/entries";
/// On the command line of a slot on trial: the appliance marks the slot
/// good (drops the counter and this flag) once it has proved itself.
pub const TRIAL_FLAG: &str = "gatehouse.trial";
const SLOT_ARGUMENT: &str = "gatehouse.slot=";
/// Boots a newly installed slot gets before the loader gives up on it.
pub const TRIAL_TRIES: u32 = 3;

/// The slot that is not `slot`.
pub fn other(slot: char) -> char {
    if slot == 'a' {
        'b'
    } else {
        'a'
    }
}

pub fn directory(slot: char) -> String {
    format!("gatehouse/slot-{slot}")
}

pub fn kernel_path(slot: char) -> String {
    format!("{}/vmlinuz", directory(slot))
}

pub fn initramfs_path(slot: char) -> String {
    format!("{}/initrd.img", directory(slot))
}

/// A one-line text file naming the slot's release (`show install`).
pub fn release_path(slot: char) -> String {
    format!("{}/release", directory(slot))
}

/// A slot's boot entry as systemd-boot reads it.
pub struct Entry<'a> {
    pub slot: char,
    /// Orders the slots: the loader boots the highest good one.
    pub version: u32,
    pub release: &'a str,
    /// Kernel command line, without the slot and trial arguments this adds.
    pub cmdline: &'a str,
    pub trial: bool,
}

impl Entry<'_> {
    pub fn text(&self) -> String {
        let slot = self.slot;
        let trial = if self.trial {
            format!(" {TRIAL_FLAG}")
        } else {
            String::new()
        };
        format!(
            "title Gatehouse {release} (slot {upper})\nversion {version}\nsort-key gatehouse\n\
             linux /{kernel}\ninitrd /{initramfs}\noptions {cmdline} {SLOT_ARGUMENT}{slot}{trial}\n",
            release = self.release,
            upper = slot.to_ascii_uppercase(),
            version = self.version,
            kernel = kernel_path(slot),
            initramfs = initramfs_path(slot),
            cmdline = self.cmdline,
        )
    }

    /// The entry's file name: with a boot counter when on trial.
    pub fn file_name(&self) -> String {
        EntryName {
            slot: self.slot,
            tries: self.trial.then_some(Tries {
                left: TRIAL_TRIES,
                done: 0,
            }),
        }
        .to_string()
    }
}

/// A boot counter: tries left and tries used (systemd-boot's `+L-D`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tries {
    pub left: u32,
    pub done: u32,
}

/// An entry file's name, read back: `gatehouse-b+1-2.conf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryName {
    pub slot: char,
    pub tries: Option<Tries>,
}

impl EntryName {
    pub fn parse(name: &str) -> Option<EntryName> {
        let rest = name.strip_prefix("gatehouse-")?.strip_suffix(".conf")?;
        let mut chars = rest.chars();
        let slot = chars.next()?;
        let counter = chars.as_str();
        let tries = if counter.is_empty() {
            None
        } else {
            let counter = counter.strip_prefix('+')?;
            let (left, done) = counter.split_once('-').unwrap_or((counter, "0"));
            Some(Tries {
                left: left.parse().ok()?,
                done: done.parse().ok()?,
            })
        };
        Some(EntryName { slot, tries })
    }

    /// Still counting boots (on trial).
    pub fn on_trial(&self) -> bool {
        self.tries.is_some_and(|tries| tries.left > 0)
    }

    /// Out of tries: the loader passes it over.
    pub fn is_bad(&self) -> bool {
        self.tries.is_some_and(|tries| tries.left == 0)
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gatehouse-{}", self.slot)?;
        match self.tries {
            Some(Tries { left, done: 0 }) => write!(f, "+{left}")?,
            Some(Tries { left, done }) => write!(f, "+{left}-{done}")?,
            None => {}
        }
        f.write_str(".conf")
    }
}

/// The slot the loader started (`gatehouse.slot=` on the command line).
pub fn booted_slot(cmdline: &str) -> Option<char> {
    cmdline
        .split_whitespace()
        .find_map(|word| word.strip_prefix(SLOT_ARGUMENT))
        .and_then(|slot| slot.chars().next())
}

/// Whether the running slot booted on trial.
pub fn is_trial(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|word| word == TRIAL_FLAG)
}

/// The `version` line of an entry's text.
pub fn entry_version(text: &str) -> Option<u32> {
    text.lines()
        .find_map(|line| line.strip_prefix("version "))
        .and_then(|version| version.trim().parse().ok())
}

/// An entry's text with the trial flag dropped from its options: what a
/// slot that proved itself keeps.
pub fn without_trial_flag(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix("options ") {
            Some(options) => {
                let kept: Vec<&str> = options
                    .split_whitespace()
                    .filter(|word| *word != TRIAL_FLAG)
                    .collect();
                format!("options {}\n", kept.join(" "))
            }
            None => format!("{line}\n"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_round_trip_with_and_without_counters() {
        for name in [
            "gatehouse-a.conf",
            "gatehouse-b+3.conf",
            "gatehouse-b+2-1.conf",
            "gatehouse-b+0-3.conf",
        ] {
            assert_eq!(EntryName::parse(name).unwrap().to_string(), name);
        }
        let bad = EntryName::parse("gatehouse-b+0-3.conf").unwrap();
        assert!(bad.is_bad() && !bad.on_trial());
        assert!(EntryName::parse("gatehouse-b+1-2.conf").unwrap().on_trial());
        assert!(!EntryName::parse("gatehouse-a.conf").unwrap().on_trial());
        for junk in [
            "gatehouse-bx.conf",
            "gatehouse-.conf",
            "other-a.conf",
            "gatehouse-a",
            "gatehouse-b+x.conf",
        ] {
            assert_eq!(EntryName::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn a_trial_entry_names_its_slot_files_and_flag() {
        let entry = Entry {
            slot: 'b',
            version: 2,
            release: "0.2.0",
            cmdline: "console=ttyS0",
            trial: true,
        };
        let text = entry.text();
        assert_eq!(entry.file_name(), "gatehouse-b+3.conf");
        assert!(text.starts_with("title Gatehouse 0.2.0 (slot B)\nversion 2\n"));
        assert!(text.contains("linux /gatehouse/slot-b/vmlinuz\n"));
        assert!(text.contains("options console=ttyS0 gatehouse.slot=b gatehouse.trial\n"));
        assert_eq!(entry_version(&text), Some(2));
        let good = without_trial_flag(&text);
        assert!(good.contains("options console=ttyS0 gatehouse.slot=b\n"));
        assert!(!is_trial(&good) && is_trial("x gatehouse.trial"));
        assert_eq!(booted_slot("console=ttyS0 gatehouse.slot=b"), Some('b'));
        assert_eq!(booted_slot("console=ttyS0"), None);
    }
}
