//! A newly installed slot boots on trial and must prove itself: the
//! dataplane started and the startup configuration applied (the appliance
//! started), then the console is about to take input. Only then is its
//! entry marked good. If it cannot start, it records why on the config
//! partition and reboots at once, spending one of its tries; if it crashes
//! or hangs, the kernel's panic reboot or the watchdog spends it. With no
//! tries left the loader boots the previous slot, which tells the operator.

use super::esp;
use super::esp::SlotState;
use boot_image::slot;
use std::path::Path;

/// Why the last trial failed, as the failing slot saw it.
const FAILURE_RECORD: &str = "/config/install-failure";

/// This boot, when it is a slot's trial.
pub struct Trial {
    slot: char,
}

impl Trial {
    pub fn of_this_boot(cmdline: &str) -> Option<Trial> {
        let slot = slot::booted_slot(cmdline)?;
        slot::is_trial(cmdline).then_some(Trial { slot })
    }

    /// The appliance started: marks the slot good; returns what happened.
    pub fn passed(self) -> String {
        let slot = self.slot.to_ascii_uppercase();
        match esp::mount().and_then(|esp| esp.mark_good(self.slot)) {
            Ok(old) => format!("slot {slot} passed its trial boot: {old} marked good"),
            Err(error) => format!(
                "slot {slot} booted on trial but could not be marked good ({error}); \
                 the boot loader will fall back when its tries run out"
            ),
        }
    }

    /// The appliance could not start: keeps the reason for the slot that
    /// will boot instead, then spends this try.
    pub fn failed(self, why: &str, reboot: &dyn Fn()) {
        let release = release_of_this_image();
        let _ = std::fs::write(FAILURE_RECORD, format!("{release}: {why}\n"));
        println!(
            "gatehouse: slot {} failed its trial boot ({why}); rebooting",
            self.slot.to_ascii_uppercase()
        );
        reboot();
    }
}

/// A new install starts with no failure on record.
pub fn forget_failure() {
    let _ = std::fs::remove_file(FAILURE_RECORD);
}

/// The release this running image carries (`/etc/gatehouse-release` in the
/// image; the binary's version in hosted mode).
pub fn release_of_this_image() -> String {
    std::fs::read_to_string("/etc/gatehouse-release")
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| env!("CARGO_PKG_VERSION").to_string())
}

/// The last failed upgrade, if the other slot is out of tries and newer
/// than the running one: it was installed after this slot and gave up.
pub fn last_failure(slots: &[SlotState], booted: char) -> Option<String> {
    let running = slots.iter().find(|s| s.slot == booted)?;
    let failed = slots
        .iter()
        .find(|s| s.slot != booted && s.entry.is_some_and(|e| e.is_bad()))?;
    (failed.version > running.version).then(|| {
        let why = std::fs::read_to_string(Path::new(FAILURE_RECORD))
            .ok()
            .and_then(|text| {
                let (release, why) = text.trim().split_once(": ")?;
                (release == failed.release).then(|| why.to_string())
            })
            .unwrap_or_else(|| "it crashed or hung before the appliance started".to_string());
        format!(
            "the upgrade to {} in slot {} failed in {} boots ({why})",
            failed.release,
            failed.slot.to_ascii_uppercase(),
            failed.entry.and_then(|e| e.tries).map_or(0, |t| t.done),
        )
    })
}

/// The line for the console at boot when the last upgrade failed and the
/// loader came back to this slot.
pub fn fallback_notice(cmdline: &str) -> Option<String> {
    let booted = slot::booted_slot(cmdline)?;
    let slots = esp::mount().ok()?.slots();
    let failure = last_failure(&slots, booted)?;
    Some(format!(
        "% {failure}; running slot {} ({}) again",
        booted.to_ascii_uppercase(),
        release_of_this_image()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use boot_image::slot::EntryName;

    fn state(slot: char, entry: &str, version: u32, release: &str) -> SlotState {
        SlotState {
            slot,
            entry: EntryName::parse(entry),
            version,
            release: release.to_string(),
        }
    }

    #[test]
    fn a_newer_slot_out_of_tries_is_the_last_failure() {
        let failed = [
            state('a', "gatehouse-a.conf", 1, "0.1.0"),
            state('b', "gatehouse-b+0-3.conf", 2, "0.2.0"),
        ];
        let text = last_failure(&failed, 'a').unwrap();
        assert!(
            text.starts_with("the upgrade to 0.2.0 in slot B failed in 3 boots ("),
            "{text}"
        );
        let trying = [
            state('a', "gatehouse-a.conf", 1, "0.1.0"),
            state('b', "gatehouse-b+2-1.conf", 2, "0.2.0"),
        ];
        assert_eq!(last_failure(&trying, 'a'), None);
        let older = [
            state('a', "gatehouse-a.conf", 3, "0.3.0"),
            state('b', "gatehouse-b+0-3.conf", 2, "0.2.0"),
        ];
        assert_eq!(last_failure(&older, 'a'), None);
        assert!(Trial::of_this_boot("gatehouse.slot=b gatehouse.trial").is_some());
        assert!(Trial::of_this_boot("gatehouse.slot=b").is_none());
    }
}
