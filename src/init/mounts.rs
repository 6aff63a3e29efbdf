//! The filesystems PID 1 sets up: the kernel's virtual filesystems, and the
//! persistent config partition on /config (found by its GPT partition name),
//! with a tmpfs in its place when it is missing or will not mount.

use std::ffi::CString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const CONFIG_DIR: &str = "/config";
/// The GPT partition name the image builder gives the config partition.
pub const CONFIG_PARTITION_NAME: &str = "gatehouse-config";
/// Modules the config partition's filesystem needs where it is not built
/// in (the generic Debian kernel); the cloud kernel has ext4 built in.
pub const CONFIG_FILESYSTEM_MODULES: [&str; 2] = ["crc32c_generic", "ext4"];
/// How long to wait for the disk's partitions to show up after its driver loads.
const PARTITION_WAIT: Duration = Duration::from_secs(1);

pub fn mount(
    source: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: &str,
) -> io::Result<()> {
    let _ = fs::create_dir_all(target);
    let c = |s: &str| CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let (source, target_c, fstype, data) = (c(source)?, c(target)?, c(fstype)?, c(data)?);
    let result = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    match result {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// /proc, /sys, /dev (devtmpfs, not auto-mounted by this kernel), /dev/pts,
/// /run and /tmp. Returns a message for each that failed.
pub fn mount_kernel_filesystems() -> Vec<String> {
    let secure = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let table: [(&str, &str, &str, libc::c_ulong, &str); 6] = [
        ("proc", "/proc", "proc", secure, ""),
        ("sysfs", "/sys", "sysfs", secure, ""),
        ("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID, "mode=0755"),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            "mode=0620,ptmxmode=0666",
        ),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=0755",
        ),
        (
            "tmpfs",
            "/tmp",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV,
            "mode=1777",
        ),
    ];
    table
        .iter()
        .filter_map(|(source, target, fstype, flags, data)| {
            match mount(source, target, fstype, *flags, data) {
                Ok(()) => None,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => None,
                Err(e) => Some(format!("could not mount {target}: {e}")),
            }
        })
        .collect()
}

/// What happened to /config, for the boot messages.
pub enum ConfigMount {
    Persistent { device: PathBuf },
    Temporary { reason: String },
}

impl ConfigMount {
    pub fn message(&self) -> String {
        match self {
            ConfigMount::Persistent { device } => {
                format!(
                    "config partition {} mounted on {CONFIG_DIR}",
                    device.display()
                )
            }
            ConfigMount::Temporary { reason } => format!(
                "WARNING: {reason}; {CONFIG_DIR} is a temporary filesystem: \
                 `write memory` will not survive a reload"
            ),
        }
    }
}

/// Mounts the config partition on /config, or a tmpfs when that fails.
pub fn mount_config() -> ConfigMount {
    let deadline = Instant::now() + PARTITION_WAIT;
    let device = loop {
        match find_partition(Path::new("/sys/class/block"), CONFIG_PARTITION_NAME) {
            Some(device) => break Some(device),
            None if Instant::now() < deadline => sleep(Duration::from_millis(50)),
            None => break None,
        }
    };
    let reason = match device {
        Some(device) => {
            let flags = libc::MS_NOATIME | libc::MS_NODEV | libc::MS_NOSUID | libc::MS_NOEXEC;
            match mount(&device.to_string_lossy(), CONFIG_DIR, "ext4", flags, "") {
                Ok(()) => return ConfigMount::Persistent { device },
                Err(error) => format!(
                    "config partition {} could not be mounted ({error}); it may be corrupted",
                    device.display()
                ),
            }
        }
        None => format!("no config partition (GPT name {CONFIG_PARTITION_NAME}) was found"),
    };
    let _ = mount(
        "tmpfs",
        CONFIG_DIR,
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=0700",
    );
    ConfigMount::Temporary { reason }
}

/// The /dev node of the block device whose uevent says PARTNAME=`name`.
pub fn find_partition(class_block: &Path, name: &str) -> Option<PathBuf> {
    let mut entries: Vec<_> = fs::read_dir(class_block).ok()?.flatten().collect();
    entries.sort_by_key(|entry| entry.file_name());
    entries.iter().find_map(|entry| {
        let uevent = fs::read_to_string(entry.path().join("uevent")).ok()?;
        let field = |key: &str| {
            uevent
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        };
        if field("PARTNAME")? != name {
            return None;
        }
        Some(Path::new("/dev").join(field("DEVNAME")?))
    })
}

/// Flushes and unmounts /config before a reboot or power-off; a busy
/// filesystem is made read-only instead so it is still clean.
pub fn release_config() {
    unsafe { libc::sync() };
    let target = CString::new(CONFIG_DIR).unwrap_or_default();
    if unsafe { libc::umount2(target.as_ptr(), 0) } != 0 {
        let _ = mount("", CONFIG_DIR, "", libc::MS_REMOUNT | libc::MS_RDONLY, "");
    }
    unsafe { libc::sync() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_partition_by_gpt_name() {
        let root = std::env::temp_dir().join(format!("gh-block-{}", std::process::id()));
        for (dev, uevent) in [
            ("vda", "MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n"),
            ("vda1", "MAJOR=254\nMINOR=1\nDEVNAME=vda1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=gatehouse-esp\n"),
            ("vda2", "MAJOR=254\nMINOR=2\nDEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=gatehouse-config\n"),
        ] {
            fs::create_dir_all(root.join(dev)).unwrap();
            fs::write(root.join(dev).join("uevent"), uevent).unwrap();
        }
        let found = find_partition(&root, CONFIG_PARTITION_NAME);
        let missing = find_partition(&root, "gatehouse-other");
        fs::remove_dir_all(&root).unwrap();
        assert_eq!(found, Some(PathBuf::from("/dev/vda2")));
        assert_eq!(missing, None);
        assert_eq!(find_partition(Path::new("/nonexistent"), "x"), None);
    }
}
