//! The config partition inside a disk image file, reached with e2fsprogs
//! (debugfs, e2fsck) on a copy of its bytes: no loop mounts, no root.

use anyhow::{bail, Context, Result};
use image_builder::disk::Extent;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct ConfigPartition {
    disk: PathBuf,
    extent: Extent,
}

/// ext4's primary superblock sits 1024 bytes into the partition.
const SUPERBLOCK: (u64, usize) = (1024, 1024);

impl ConfigPartition {
    pub fn new(disk: &Path, extent: Extent) -> Self {
        ConfigPartition {
            disk: disk.to_path_buf(),
            extent,
        }
    }

    fn read(&self) -> Result<Vec<u8>> {
        let mut file = fs::File::open(&self.disk)?;
        file.seek(SeekFrom::Start(self.extent.offset))?;
        let mut bytes = vec![0u8; self.extent.size as usize];
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    }

    fn write(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        let mut file = OpenOptions::new().write(true).open(&self.disk)?;
        file.seek(SeekFrom::Start(self.extent.offset + offset))?;
        file.write_all(bytes)?;
        Ok(())
    }

    /// Runs an e2fsprogs tool on a scratch copy of the partition; the copy
    /// is written back when `write_back`.
    fn with_image<T>(&self, write_back: bool, work: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let scratch = self.disk.with_extension("config.ext4");
        fs::write(&scratch, self.read()?)?;
        let result = work(&scratch);
        if result.is_ok() && write_back {
            self.write(0, &fs::read(&scratch)?)?;
        }
        let _ = fs::remove_file(&scratch);
        result
    }

    pub fn put_file(&self, name: &str, contents: &str) -> Result<()> {
        let source = self.disk.with_extension("upload");
        fs::write(&source, contents)?;
        let request = format!("write {} {name}", source.display());
        let result = self.with_image(true, |image| debugfs(image, &request, true).map(|_| ()));
        let _ = fs::remove_file(&source);
        result
    }

    /// The file's contents, or None when it does not exist.
    pub fn file(&self, name: &str) -> Result<Option<String>> {
        self.with_image(false, |image| {
            let listing = debugfs(image, "ls -l /", false)?;
            if !listing.split_whitespace().any(|word| word == name) {
                return Ok(None);
            }
            debugfs(image, &format!("cat /{name}"), false).map(Some)
        })
    }

    /// True when `e2fsck -n -f` finds nothing to fix (cleanly unmounted).
    pub fn is_clean(&self) -> Result<bool> {
        self.with_image(false, |image| {
            let status = Command::new("/usr/sbin/e2fsck")
                .args(["-n", "-f"])
                .arg(image)
                .output()
                .context("running e2fsck (apt-get install e2fsprogs)")?
                .status;
            Ok(status.success())
        })
    }

    /// Wipes the superblock: the kernel will refuse to mount it.
    pub fn corrupt(&self) -> Result<()> {
        self.write(SUPERBLOCK.0, &[0xa5; SUPERBLOCK.1])
    }
}

fn debugfs(image: &Path, request: &str, writable: bool) -> Result<String> {
    let mut command = Command::new("/usr/sbin/debugfs");
    if writable {
        command.arg("-w");
    }
    let output = command
        .args(["-R", request])
        .arg(image)
        .output()
        .context("running debugfs (apt-get install e2fsprogs)")?;
    if !output.status.success() {
        bail!(
            "debugfs {request}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
