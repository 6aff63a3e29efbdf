//! The initramfs: the appliance binary as /init, the mount points it uses,
//! the console device, the release name (`/etc/gatehouse-release`, what
//! `show version` says), and the kernel modules with their index under
//! /lib/modules (`modules.dep`, `modules.alias`, `<name>.ko`).

use crate::cpio::Archive;
use crate::modules::ModuleSet;
use anyhow::{bail, Result};
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// Uncompressed: larger file, nothing for the kernel to inflate.
    None,
    Gzip,
}

/// Where the image names its release (read by the appliance).
pub const RELEASE_FILE: &str = "etc/gatehouse-release";

pub fn build(
    init_binary: Vec<u8>,
    release: &str,
    modules: &ModuleSet,
    compression: Compression,
) -> Result<Vec<u8>> {
    if !init_binary.starts_with(b"\x7fELF") {
        bail!("the appliance binary is not an ELF executable");
    }
    let mut archive = Archive::new();
    archive.add_file("init", 0o755, init_binary);
    for dir in ["dev", "proc", "sys", "run", "tmp", "config", "etc"] {
        archive.add_dir(dir, 0o755);
    }
    archive.add_file(RELEASE_FILE, 0o644, format!("{release}\n").into_bytes());
    // The kernel opens /dev/console for init before devtmpfs is mounted.
    archive.add_char_device("dev/console", 0o600, 5, 1);
    for (name, bytes) in &modules.files {
        archive.add_file(&format!("lib/modules/{name}.ko"), 0o644, bytes.clone());
    }
    let index = [
        ("modules.dep", &modules.dep_index),
        ("modules.alias", &modules.alias_index),
    ];
    for (file, text) in index {
        archive.add_file(
            &format!("lib/modules/{file}"),
            0o644,
            text.clone().into_bytes(),
        );
    }
    let cpio = archive.to_bytes();
    Ok(match compression {
        Compression::None => cpio,
        Compression::Gzip => {
            // flate2 writes mtime 0 and no file name: the output stays reproducible.
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(&cpio)?;
            encoder.finish()?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules() -> ModuleSet {
        let mut set = ModuleSet::default();
        set.files
            .insert("virtio_net".into(), b"\x7fELF-ko".to_vec());
        set.dep_index = "virtio_net: \n".into();
        set.alias_index = "alias virtio:d00000001v* virtio_net\n".into();
        set
    }

    #[test]
    fn two_builds_are_byte_identical() {
        for compression in [Compression::None, Compression::Gzip] {
            let first = build(b"\x7fELF-init".to_vec(), "0.1.0", &modules(), compression).unwrap();
            let second = build(b"\x7fELF-init".to_vec(), "0.1.0", &modules(), compression).unwrap();
            assert_eq!(first, second);
        }
    }

    #[test]
    fn holds_init_console_and_module_index() {
        let cpio = build(
            b"\x7fELF-init".to_vec(),
            "0.1.0",
            &modules(),
            Compression::None,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&cpio);
        for name in [
            "init\0",
            "dev/console\0",
            "etc/gatehouse-release\0",
            "lib/modules/virtio_net.ko\0",
            "lib/modules/modules.alias\0",
            "alias virtio:d00000001v* virtio_net",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(build(
            b"#!/bin/sh".to_vec(),
            "0.1.0",
            &modules(),
            Compression::None
        )
        .is_err());
    }
}
