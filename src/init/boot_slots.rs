//! Boot assessment for the A/B slots (image-builder/README.md): a slot
//! installed on trial boots from an entry with a systemd-boot try counter
//! (`gatehouse-b+3.conf`) and `gatehouse.trial` on its command line. Once
//! it has booted this far, /init marks it good: the entry is rewritten as
//! `gatehouse-b.conf` without the flag, so systemd-boot stops counting.

use super::modules::Loader;
use super::mounts;
use std::ffi::CString;
use std::fs;
use std::path::Path;

/// The GPT partition name of the EFI system partition.
const ESP_PARTITION_NAME: &str = "gatehouse-esp";
const ESP_MOUNT: &str = "/run/esp";
const TRIAL_FLAG: &str = "gatehouse.trial";
/// The ESP's filesystem and the code pages its defaults need, where modules.
const ESP_MODULES: [&str; 3] = ["vfat", "nls_cp437", "nls_ascii"];

/// The slot systemd-boot started (`gatehouse.slot=` on the command line).
pub fn booted_slot(cmdline: &str) -> Option<char> {
    cmdline
        .split_whitespace()
        .find_map(|word| word.strip_prefix("gatehouse.slot="))
        .and_then(|slot| slot.chars().next())
}

/// Marks the booted slot good if it is on trial; returns what happened.
pub fn confirm_trial_boot(cmdline: &str, loader: Option<&mut Loader>) -> Option<String> {
    let slot = booted_slot(cmdline)?;
    if !cmdline.split_whitespace().any(|word| word == TRIAL_FLAG) {
        return None;
    }
    if let Some(loader) = loader {
        for module in ESP_MODULES {
            loader.load(module);
        }
    }
    Some(match mark_good(slot) {
        Ok(name) => format!(
            "slot {} passed its trial boot: {name} marked good",
            upper(slot)
        ),
        Err(error) => format!(
            "slot {} booted on trial but could not be marked good ({error}); \
             the boot loader will fall back when its tries run out",
            upper(slot)
        ),
    })
}

fn upper(slot: char) -> char {
    slot.to_ascii_uppercase()
}

fn mark_good(slot: char) -> Result<String, String> {
    let device = mounts::find_partition(Path::new("/sys/class/block"), ESP_PARTITION_NAME)
        .ok_or("no EFI system partition found")?;
    mounts::mount(
        &device.to_string_lossy(),
        ESP_MOUNT,
        "vfat",
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    )
    .map_err(|error| format!("mounting {}: {error}", device.display()))?;
    let result = rewrite_entry(Path::new(ESP_MOUNT).join("loader/entries").as_path(), slot);
    unsafe { libc::sync() };
    let target = CString::new(ESP_MOUNT).unwrap_or_default();
    unsafe { libc::umount2(target.as_ptr(), 0) };
    result
}

/// Replaces `gatehouse-<slot>+…conf` by `gatehouse-<slot>.conf` without the
/// trial flag; returns the old name.
fn rewrite_entry(entries: &Path, slot: char) -> Result<String, String> {
    let prefix = format!("gatehouse-{slot}+");
    let old = fs::read_dir(entries)
        .map_err(|error| format!("reading {}: {error}", entries.display()))?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with(&prefix) && name.ends_with(".conf"))
        .ok_or_else(|| format!("no {prefix}*.conf entry"))?;
    let text = fs::read_to_string(entries.join(&old)).map_err(|e| e.to_string())?;
    let good: String = text
        .lines()
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
        .collect();
    let new = entries.join(format!("gatehouse-{slot}.conf"));
    fs::write(&new, good).map_err(|e| format!("writing {}: {e}", new.display()))?;
    fs::remove_file(entries.join(&old)).map_err(|e| e.to_string())?;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_slot_and_trial_from_the_command_line() {
        assert_eq!(
            booted_slot("console=ttyS0 gatehouse.slot=b gatehouse.trial"),
            Some('b')
        );
        assert_eq!(booted_slot("console=ttyS0"), None);
        assert_eq!(
            confirm_trial_boot("console=ttyS0 gatehouse.slot=a", None),
            None
        );
    }

    #[test]
    fn trial_entry_is_rewritten_as_good() {
        let dir = std::env::temp_dir().join(format!("gh-entries-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("gatehouse-a.conf"),
            "version 1\noptions x gatehouse.slot=a\n",
        )
        .unwrap();
        fs::write(
            dir.join("gatehouse-b+2-1.conf"),
            "version 2\noptions x gatehouse.slot=b gatehouse.trial\n",
        )
        .unwrap();
        let old = rewrite_entry(&dir, 'b');
        let good = fs::read_to_string(dir.join("gatehouse-b.conf"));
        let mut names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let missing = rewrite_entry(&dir, 'a');
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(old.unwrap(), "gatehouse-b+2-1.conf");
        assert_eq!(good.unwrap(), "version 2\noptions x gatehouse.slot=b\n");
        assert_eq!(names, ["gatehouse-a.conf", "gatehouse-b.conf"]);
        assert!(missing.is_err());
    }
}
