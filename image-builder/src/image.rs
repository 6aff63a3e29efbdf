//! Assembles the image from its parts: the appliance binary, the kernel
//! package and its modules, the initramfs, the ESP and the disk.

use crate::initramfs::Compression;
use crate::{appliance_binary, disk, esp, initramfs, kernel, modules};
use anyhow::{Context, Result};
use boot_image::artifact;
use std::fs::{self, File};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// What the kernel is told at boot: serial console, little printk noise
/// (serial output is slow under TCG), and reboot on a kernel panic.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 quiet panic=-1";

pub struct Options {
    /// Debian kernel metapackage (linux-image-cloud-amd64, linux-image-amd64).
    pub kernel_package: String,
    pub modules: Vec<String>,
    pub compression: Compression,
    pub cmdline: String,
    /// A factory startup config to put on the config partition.
    pub startup_config: Option<PathBuf>,
    /// The release name the image carries (`show version`, `show install`).
    pub release: String,
    /// The ed25519 key (PKCS#8) that signs the upgrade artifact.
    pub signing_key: PathBuf,
}

/// The key development builds are signed with; the running image trusts
/// its public half (keys/README.md).
pub fn development_signing_key() -> PathBuf {
    repo_root().join("keys/development-signing-key.pk8")
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kernel_package: kernel::DEFAULT_METAPACKAGE.to_string(),
            modules: modules::DEFAULT_MODULES
                .iter()
                .map(|m| m.to_string())
                .collect(),
            compression: Compression::Gzip,
            cmdline: DEFAULT_CMDLINE.to_string(),
            startup_config: None,
            release: env!("CARGO_PKG_VERSION").to_string(),
            signing_key: development_signing_key(),
        }
    }
}

pub struct Image {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub disk: PathBuf,
    /// The signed upgrade artifact (`install image` reads it).
    pub upgrade: PathBuf,
    pub layout: disk::Layout,
    pub cmdline: String,
}

/// The repository: the parent of the crate cargo is running (`cargo run`,
/// `cargo test` set CARGO_MANIFEST_DIR), else of this crate's source.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

/// Builds (or refreshes) the image under `.cache/image/<kernel package>/`.
/// Holds a lock on that folder, so concurrent builds (parallel tests) wait.
pub fn build(options: &Options) -> Result<Image> {
    let cache = repo_root().join(".cache");
    let out = cache.join("image").join(output_folder(options));
    fs::create_dir_all(&out)?;
    let _lock = lock(&out.join(".lock"))?;

    let binary = appliance_binary::build(&repo_root())?;
    let kernel = kernel::fetch(&options.kernel_package, &cache.join("kernel"))?;
    let modules = modules::select(&kernel.modules_dir, &options.modules)?;
    if !modules.missing.is_empty() {
        eprintln!(
            "gatehouse-image: {} has no {}",
            kernel.package,
            modules.missing.join(", ")
        );
    }
    let init = without_debug_info(&binary, &out)?;
    let initramfs = initramfs::build(init, &options.release, &modules, options.compression)?;
    let vmlinuz = fs::read(&kernel.vmlinuz)?;

    let loader = fs::read(esp::SYSTEMD_BOOT).with_context(|| {
        format!(
            "reading {} (apt-get install systemd-boot-efi)",
            esp::SYSTEMD_BOOT
        )
    })?;
    let esp_size = esp::size_for(
        (vmlinuz.len() + initramfs.len()) as u64,
        loader.len() as u64,
    );
    let esp_image = esp::build(
        esp_size,
        &loader,
        &esp::SlotContents {
            kernel: &vmlinuz,
            initramfs: &initramfs,
            cmdline: &options.cmdline,
            release: &options.release,
        },
    )?;
    let signing_key = fs::read(&options.signing_key)
        .with_context(|| format!("reading the signing key {}", options.signing_key.display()))?;
    let upgrade = artifact::seal(
        &artifact::Artifact {
            release: &options.release,
            cmdline: &options.cmdline,
            kernel: &vmlinuz,
            initramfs: &initramfs,
        },
        &signing_key,
    )
    .map_err(anyhow::Error::msg)?;
    let startup = match &options.startup_config {
        Some(path) => Some(fs::read(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let files: Vec<(&str, &[u8])> = startup
        .as_deref()
        .map(|bytes| ("startup-config", bytes))
        .into_iter()
        .collect();
    let config = disk::config_filesystem(&files, &out)?;
    let layout = disk::Layout::new(esp_size);

    let image = Image {
        kernel: out.join("vmlinuz"),
        initramfs: out.join("initrd.img"),
        disk: out.join("disk.img"),
        upgrade: out.join("upgrade.img"),
        layout,
        cmdline: options.cmdline.clone(),
    };
    replace_if_changed(&image.kernel, &vmlinuz)?;
    replace_if_changed(&image.initramfs, &initramfs)?;
    replace_if_changed(&image.upgrade, &upgrade)?;
    disk::write(&image.disk, &layout, &esp_image, &config)?;
    Ok(image)
}

/// `<kernel package>`, or `<kernel package>-<release>` for a release other
/// than the source's, so building an upgrade keeps the default image.
fn output_folder(options: &Options) -> String {
    if options.release == env!("CARGO_PKG_VERSION") {
        options.kernel_package.clone()
    } else {
        format!("{}-{}", options.kernel_package, options.release)
    }
}

/// The binary without its debug sections (a quarter of the size; panic
/// messages keep their file:line, which is not debug info).
fn without_debug_info(binary: &Path, scratch: &Path) -> Result<Vec<u8>> {
    let stripped = scratch.join("init.stripped");
    crate::command::run(
        std::process::Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&stripped)
            .arg(binary),
    )
    .context("stripping the appliance binary (apt-get install binutils)")?;
    let bytes = fs::read(&stripped)?;
    fs::remove_file(&stripped)?;
    Ok(bytes)
}

/// Writes via a temporary file and rename, so readers never see half a file.
fn replace_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let temporary = path.with_extension("partial");
    fs::write(&temporary, bytes)?;
    fs::rename(&temporary, path)?;
    Ok(())
}

/// An exclusive flock, released when the file is dropped.
fn lock(path: &Path) -> Result<File> {
    let file = File::create(path)?;
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).context("locking the image folder");
    }
    Ok(file)
}
