//! The Debian kernel package: resolved from its metapackage, fetched with
//! `apt-get download` into the cache and unpacked with `dpkg-deb -x`
//! (no installation, no root needed once apt's lists are present).

use crate::command::run;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kernel the image boots in QEMU: small, LZ4, fast under TCG.
pub const DEFAULT_METAPACKAGE: &str = "linux-image-cloud-amd64";

pub struct Kernel {
    /// The package the metapackage resolved to, e.g. linux-image-6.1.0-56-cloud-amd64.
    pub package: String,
    pub vmlinuz: PathBuf,
    /// The folder holding `kernel/…/*.ko`.
    pub modules_dir: PathBuf,
}

/// Makes sure the kernel of `metapackage` is unpacked under `cache`, fetching it if missing.
pub fn fetch(metapackage: &str, cache: &Path) -> Result<Kernel> {
    fs::create_dir_all(cache)?;
    let resolution = cache.join(format!("{metapackage}.resolved"));
    let package = match resolve(metapackage) {
        Ok(package) => {
            fs::write(&resolution, &package)?;
            package
        }
        // Offline: reuse what was resolved and unpacked before.
        Err(error) => fs::read_to_string(&resolution)
            .map(|p| p.trim().to_string())
            .map_err(|_| error)?,
    };
    let unpacked = cache.join(&package);
    let done = unpacked.join(".unpacked");
    if !done.exists() {
        download_and_unpack(&package, cache, &unpacked)?;
        fs::write(&done, "")?;
    }
    locate(&package, &unpacked)
}

/// The real kernel package the metapackage depends on; runs `apt-get update`
/// once (as root) when apt knows no such metapackage yet.
fn resolve(metapackage: &str) -> Result<String> {
    if let Some(package) = depends_on(metapackage)? {
        return Ok(package);
    }
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("gatehouse-image: apt-get update (apt does not know {metapackage} yet)");
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        if let Some(package) = depends_on(metapackage)? {
            return Ok(package);
        }
    }
    bail!("apt-cache knows no {metapackage}: run `apt-get update` as root first")
}

fn depends_on(metapackage: &str) -> Result<Option<String>> {
    let output = Command::new("apt-cache")
        .args(["depends", metapackage])
        .output()
        .context("running apt-cache (is this Debian with apt?)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends: "))
        .find(|dep| dep.starts_with("linux-image-"))
        .map(str::to_string))
}

fn download_and_unpack(package: &str, cache: &Path, unpacked: &Path) -> Result<()> {
    eprintln!("gatehouse-image: fetching {package}");
    let downloads = cache.join("downloads");
    fs::create_dir_all(&downloads)?;
    let mut download = Command::new("apt-get");
    download
        .args(["download", "-qq", package])
        .current_dir(&downloads);
    if unsafe { libc::geteuid() } == 0 {
        // Root's cache folder is not writable by apt's sandbox user `_apt`.
        download.args(["-o", "APT::Sandbox::User=root"]);
    }
    run(&mut download)?;
    let deb = fs::read_dir(&downloads)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&format!("{package}_")) && name.ends_with(".deb")
        })
        .with_context(|| format!("apt-get download left no {package}_*.deb"))?;
    if unpacked.exists() {
        fs::remove_dir_all(unpacked)?;
    }
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(unpacked))?;
    fs::remove_file(&deb)?;
    Ok(())
}

fn locate(package: &str, unpacked: &Path) -> Result<Kernel> {
    let release = package.trim_start_matches("linux-image-");
    let vmlinuz = unpacked.join(format!("boot/vmlinuz-{release}"));
    let modules_dir = unpacked.join(format!("lib/modules/{release}"));
    if !vmlinuz.exists() || !modules_dir.exists() {
        bail!(
            "{} does not hold {package}'s kernel and modules",
            unpacked.display()
        );
    }
    Ok(Kernel {
        package: package.to_string(),
        vmlinuz,
        modules_dir,
    })
}
