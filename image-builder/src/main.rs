//! `gatehouse-image build` writes the appliance image; `gatehouse-image run`
//! builds what is missing and boots it in QEMU with the serial console on
//! this terminal (no root needed).

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use image_builder::image::{self, Image, Options};
use image_builder::initramfs::Compression;
use image_builder::{disk, qemu};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gatehouse-image",
    about = "Builds the Gatehouse image and boots it in QEMU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Builds kernel + initramfs + disk image under .cache/image/<kernel package>/.
    Build(BuildArgs),
    /// Builds, then boots the image in QEMU (TCG) with the console on this terminal.
    Run(RunArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// Debian kernel metapackage; linux-image-amd64 for hardware with other NICs.
    #[arg(long, default_value = image_builder::kernel::DEFAULT_METAPACKAGE)]
    kernel_package: String,
    /// Kernel module to include (with its dependencies); repeat; replaces the default list.
    #[arg(long = "module")]
    modules: Vec<String>,
    #[arg(long, value_enum, default_value = "gzip")]
    initramfs_compression: Compression,
    /// Kernel command line of the boot entries.
    #[arg(long, default_value = image::DEFAULT_CMDLINE)]
    cmdline: String,
    /// A factory startup config for the config partition.
    #[arg(long)]
    startup_config: Option<PathBuf>,
    /// The release name the image carries (default: the source's version);
    /// another release is built under .cache/image/<kernel package>-<release>/.
    #[arg(long)]
    release: Option<String>,
    /// The ed25519 key (PKCS#8 DER) that signs upgrade.img (default: the development key).
    #[arg(long)]
    signing_key: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    build: BuildArgs,
    /// Boot the disk through UEFI firmware and systemd-boot (slower) instead of -kernel.
    #[arg(long)]
    uefi: bool,
    /// Start from the factory disk again (forget the saved config).
    #[arg(long)]
    fresh: bool,
    /// Host port forwarded to the guest's SSH (22) on the management NIC.
    #[arg(long, default_value_t = 2222)]
    ssh_port: u16,
    /// Host port forwarded to the guest's port 80.
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
}

impl BuildArgs {
    fn options(&self) -> Options {
        let mut options = Options {
            kernel_package: self.kernel_package.clone(),
            compression: self.initramfs_compression,
            cmdline: self.cmdline.clone(),
            startup_config: self.startup_config.clone(),
            ..Options::default()
        };
        if let Some(release) = &self.release {
            options.release = release.clone();
        }
        if let Some(key) = &self.signing_key {
            options.signing_key = key.clone();
        }
        if !self.modules.is_empty() {
            options.modules = self.modules.clone();
        }
        options
    }
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Build(args) => build(&args),
        Command::Run(args) => run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("gatehouse-image: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn build(args: &BuildArgs) -> Result<ExitCode> {
    let image = image::build(&args.options())?;
    for path in [&image.kernel, &image.initramfs, &image.disk, &image.upgrade] {
        let size = fs::metadata(path)?.len();
        println!(
            "{} ({:.1} MiB)",
            path.display(),
            size as f64 / (1 << 20) as f64
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run(args: &RunArgs) -> Result<ExitCode> {
    qemu::ensure_installed(args.uefi)?;
    let image = image::build(&args.build.options())?;
    let state = image::repo_root()
        .join(".cache/run")
        .join(&args.build.kernel_package);
    fs::create_dir_all(&state)?;
    let disk = state_disk(&image, &state.join("disk.img"), args.fresh)?;
    let uefi_vars = if args.uefi {
        let vars = state.join("OVMF_VARS.fd");
        if !vars.exists() || args.fresh {
            fs::copy(qemu::OVMF_VARS, &vars).context("copying the OVMF variables")?;
        }
        Some(vars)
    } else {
        None
    };
    let boot = qemu::Boot::of(&image, uefi_vars);
    let machine = qemu::Machine {
        boot,
        disk: Some(disk),
        nics: vec![qemu::Nic::User {
            forwards: vec![(args.ssh_port, 22), (args.http_port, 80)],
        }],
        memory_mib: 512,
        allow_reboot: true,
    };
    eprintln!(
        "gatehouse-image: booting (TCG); eth0 is user-mode networking with 127.0.0.1:{} -> 22, 127.0.0.1:{} -> 80; Ctrl-A X quits QEMU",
        args.ssh_port, args.http_port
    );
    let status = machine
        .command(qemu::Console::Terminal)
        .status()
        .context("starting qemu-system-x86_64")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The disk `run` boots: it keeps its config partition across runs, and its
/// boot partition is refreshed from the freshly built image.
fn state_disk(image: &Image, path: &Path, fresh: bool) -> Result<PathBuf> {
    let same_layout = fs::metadata(path).is_ok_and(|m| m.len() == image.layout.total);
    if fresh || !same_layout {
        fs::copy(&image.disk, path).context("copying the factory disk")?;
        return Ok(path.to_path_buf());
    }
    let esp = image.layout.esp;
    let factory = fs::read(&image.disk)?;
    let mut state = fs::OpenOptions::new().write(true).open(path)?;
    let bytes = &factory[esp.offset as usize..(esp.offset + esp.size) as usize];
    disk::write_sparse(&mut state, esp, bytes)?;
    Ok(path.to_path_buf())
}
