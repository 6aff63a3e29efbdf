//! Picks the kernel modules the image carries: the requested drivers and
//! everything they depend on, plus the index /init uses to load them
//! (`modules.dep` with direct dependencies, `modules.alias` with the
//! device patterns each module serves). Debian ships neither file, so
//! both are generated here from each module's `.modinfo`.

use crate::modinfo;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Drivers for the NICs and disks of QEMU and common x86 hardware; the ones
/// a kernel package lacks (the cloud kernel has few) are skipped.
pub const DEFAULT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "e1000",
    "e1000e",
    "igb",
    "igc",
    "ixgbe",
    "i40e",
    "r8169",
    "nvme",
    "ahci",
    "sd_mod",
    // The config partition's filesystem, where it is a module (generic kernel).
    "crc32c_generic",
    "ext4",
    // The ESP, mounted to install a slot or mark one good (its FAT defaults: cp437, ascii).
    "vfat",
    "nls_cp437",
    "nls_ascii",
    // The software watchdog that reboots a hung appliance (src/watchdog.rs).
    "softdog",
];

#[derive(Debug, Default)]
pub struct ModuleSet {
    /// Module name -> the .ko bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// `name: dep dep` lines (direct dependencies).
    pub dep_index: String,
    /// `alias <pattern> <name>` lines.
    pub alias_index: String,
    /// Requested modules the kernel package does not have.
    pub missing: Vec<String>,
}

/// Module names use `_` where file names may use `-`.
fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

pub fn select(modules_dir: &Path, requested: &[String]) -> Result<ModuleSet> {
    let mut available = BTreeMap::new();
    index_dir(modules_dir, &mut available)?;
    let mut set = ModuleSet::default();
    let mut pending: Vec<String> = Vec::new();
    for name in requested {
        let name = canonical(name);
        if available.contains_key(&name) {
            pending.push(name);
        } else {
            set.missing.push(name);
        }
    }
    let mut dependencies = BTreeMap::new();
    let mut aliases = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if set.files.contains_key(&name) {
            continue;
        }
        let path = available
            .get(&name)
            .with_context(|| format!("module {name} is needed but not in the kernel package"))?;
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let info = modinfo::parse(&bytes).with_context(|| format!("{}", path.display()))?;
        let depends: Vec<String> = info.depends.iter().map(|d| canonical(d)).collect();
        pending.extend(depends.iter().cloned());
        for alias in info.aliases {
            aliases.insert(format!("alias {alias} {name}\n"));
        }
        dependencies.insert(name.clone(), depends);
        set.files.insert(name, bytes);
    }
    set.dep_index = dependencies
        .iter()
        .map(|(name, deps)| format!("{name}: {}\n", deps.join(" ")))
        .collect();
    set.alias_index = aliases.into_iter().collect();
    Ok(set)
}

fn index_dir(dir: &Path, found: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            index_dir(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "ko") {
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            found.insert(canonical(&stem), path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modinfo::tests::fake_module;

    #[test]
    fn selects_dependency_closure_and_indexes_aliases() {
        let dir = std::env::temp_dir().join(format!("gh-modules-{}", std::process::id()));
        let net = dir.join("kernel/drivers/net");
        fs::create_dir_all(&net).unwrap();
        let write = |path: PathBuf, info: &[u8]| fs::write(path, fake_module(info)).unwrap();
        write(
            net.join("virtio_net.ko"),
            b"alias=virtio:d00000001v*\0depends=net_failover,virtio_ring\0name=virtio_net\0",
        );
        write(
            net.join("net_failover.ko"),
            b"depends=failover\0name=net_failover\0",
        );
        write(net.join("failover.ko"), b"depends=\0name=failover\0");
        write(
            dir.join("kernel/virtio_ring.ko"),
            b"depends=\0name=virtio_ring\0",
        );
        write(
            dir.join("kernel/unused-driver.ko"),
            b"depends=\0name=unused_driver\0",
        );

        let set = select(&dir, &["virtio-net".into(), "no_such".into()]).unwrap();
        fs::remove_dir_all(&dir).unwrap();

        let names: Vec<&str> = set.files.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["failover", "net_failover", "virtio_net", "virtio_ring"]
        );
        assert_eq!(set.missing, ["no_such"]);
        assert!(set
            .dep_index
            .contains("virtio_net: net_failover virtio_ring\n"));
        assert!(set.dep_index.contains("failover: \n"));
        assert_eq!(set.alias_index, "alias virtio:d00000001v* virtio_net\n");
    }
}
