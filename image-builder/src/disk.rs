//! The disk image: GPT with the EFI system partition (boot slots A and B)
//! and the persistent config partition (ext4, built into the cloud kernel),
//! made from files without root or loop mounts (`mkfs.ext4 -d`).

use crate::command::run;
use crate::gpt;
use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

/// GPT partition names; /init finds the config partition by its name.
pub const ESP_NAME: &str = boot_image::slot::ESP_PARTITION_NAME;
pub const CONFIG_NAME: &str = "gatehouse-config";
pub const CONFIG_SIZE: u64 = 16 << 20;
const ALIGN: u64 = 1 << 20;
const DISK_GUID: &str = "6A7E4805-0000-4000-8000-000000000001";
const ESP_GUID: &str = "6A7E4805-0000-4000-8000-0000000000E5";
const CONFIG_GUID: &str = "6A7E4805-0000-4000-8000-00000000C0F6";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub esp: Extent,
    pub config: Extent,
    pub total: u64,
}

impl Layout {
    /// 1 MiB-aligned partitions, with 1 MiB at the end for the backup GPT.
    pub fn new(esp_size: u64) -> Self {
        let esp_size = esp_size.div_ceil(ALIGN) * ALIGN;
        let esp = Extent {
            offset: ALIGN,
            size: esp_size,
        };
        let config = Extent {
            offset: esp.offset + esp.size,
            size: CONFIG_SIZE,
        };
        Layout {
            esp,
            config,
            total: config.offset + config.size + ALIGN,
        }
    }
}

/// An ext4 filesystem image holding `files` (name, bytes) at its root.
pub fn config_filesystem(files: &[(&str, &[u8])], scratch: &Path) -> Result<Vec<u8>> {
    let root = scratch.join("config-root");
    let image = scratch.join("config.ext4");
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    fs::create_dir_all(&root)?;
    for (name, bytes) in files {
        fs::write(root.join(name), bytes)?;
    }
    File::create(&image)?.set_len(CONFIG_SIZE)?;
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", CONFIG_NAME, "-U", CONFIG_GUID])
        .args(["-E", &format!("root_owner=0:0,hash_seed={CONFIG_GUID}")])
        .arg("-d")
        .arg(&root)
        .arg(&image)
        .env("E2FSPROGS_FAKE_TIME", "1")
        .env("PATH", "/usr/sbin:/sbin:/usr/bin:/bin"))
    .context("mkfs.ext4 (apt-get install e2fsprogs)")?;
    let bytes = fs::read(&image)?;
    fs::remove_file(&image)?;
    fs::remove_dir_all(&root)?;
    Ok(bytes)
}

/// Writes a sparse disk image: partition table, ESP and config partition.
pub fn write(path: &Path, layout: &Layout, esp: &[u8], config: &[u8]) -> Result<()> {
    let sectors = layout.total / gpt::SECTOR;
    let lba = |offset: u64| offset / gpt::SECTOR;
    let partitions = [
        gpt::Partition {
            name: ESP_NAME,
            type_guid: gpt::ESP_TYPE,
            unique_guid: ESP_GUID,
            first_lba: lba(layout.esp.offset),
            last_lba: lba(layout.esp.offset + layout.esp.size) - 1,
        },
        gpt::Partition {
            name: CONFIG_NAME,
            type_guid: gpt::LINUX_DATA_TYPE,
            unique_guid: CONFIG_GUID,
            first_lba: lba(layout.config.offset),
            last_lba: lba(layout.config.offset + layout.config.size) - 1,
        },
    ];
    let temporary = path.with_extension("partial");
    let mut disk = File::create(&temporary)?;
    disk.set_len(layout.total)?;
    gpt::write(&mut disk, sectors, DISK_GUID, &partitions)?;
    write_sparse(&mut disk, layout.esp, esp)?;
    write_sparse(&mut disk, layout.config, config)?;
    disk.sync_all()?;
    fs::rename(&temporary, path)?;
    Ok(())
}

/// Writes `bytes` into the extent, skipping all-zero blocks so the file
/// stays sparse (the ESP's free space costs no disk).
pub fn write_sparse(disk: &mut File, extent: Extent, bytes: &[u8]) -> Result<()> {
    anyhow::ensure!(
        bytes.len() as u64 <= extent.size,
        "{} bytes do not fit a {}-byte partition",
        bytes.len(),
        extent.size
    );
    const BLOCK: usize = 64 << 10;
    for (index, block) in bytes.chunks(BLOCK).enumerate() {
        if block.iter().any(|&b| b != 0) {
            disk.seek(SeekFrom::Start(extent.offset + (index * BLOCK) as u64))?;
            disk.write_all(block)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_aligned_and_leaves_room_for_backup_gpt() {
        let layout = Layout::new(40 * ALIGN + 5);
        assert_eq!(layout.esp.offset, ALIGN);
        assert_eq!(layout.esp.size, 41 * ALIGN);
        assert_eq!(layout.config.offset, 42 * ALIGN);
        assert_eq!(layout.total, layout.config.offset + CONFIG_SIZE + ALIGN);
    }

    /// e2fsprogs is the real peer: the ext4 image holds the file and checks clean.
    #[test]
    fn config_filesystem_holds_files_and_is_clean() {
        let scratch = std::env::temp_dir().join(format!("gh-cfgfs-{}", std::process::id()));
        fs::create_dir_all(&scratch).unwrap();
        let image = config_filesystem(&[("startup-config", b"hostname edge1\n")], &scratch);
        let image = image.unwrap();
        let file = scratch.join("check.ext4");
        fs::write(&file, &image).unwrap();
        let fsck = Command::new("/usr/sbin/e2fsck")
            .args(["-n", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        let cat = Command::new("/usr/sbin/debugfs")
            .args(["-R", "cat /startup-config"])
            .arg(&file)
            .output()
            .unwrap();
        fs::remove_dir_all(&scratch).unwrap();
        assert!(fsck.status.success(), "{fsck:?}");
        assert_eq!(String::from_utf8_lossy(&cat.stdout), "hostname edge1\n");
    }
}
