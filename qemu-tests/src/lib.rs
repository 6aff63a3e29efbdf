//! Harness for booting the Gatehouse image in QEMU (TCG) with namespace
//! hosts on its NICs, driving its serial console, and cleaning up all of
//! it (QEMU, namespaces, taps, temp files) even when a test fails.

pub mod config_partition;
pub mod console;
pub mod netns;
pub mod upgrade;

use anyhow::{Context, Result};
use console::{Console, PROMPT};
use image_builder::disk::{write_sparse, Extent};
use image_builder::image::{self, Image};
use image_builder::{esp, qemu};
use netns::Host;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Generous: TCG on two busy cores; timing never decides pass/fail.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The image, built once per test process (release build, shared with CI's).
pub fn image() -> &'static Image {
    static IMAGE: OnceLock<Result<Image, String>> = OnceLock::new();
    let built = IMAGE.get_or_init(|| {
        qemu::ensure_installed(false).map_err(|e| format!("{e:#}"))?;
        image::build(&image::Options::default()).map_err(|e| format!("{e:#}"))
    });
    match built {
        Ok(image) => image,
        Err(error) => panic!("building the image failed: {error}"),
    }
}

/// What the disk's config partition holds at boot.
pub enum ConfigDisk {
    Factory,
    /// A startup-config file put on the partition before boot.
    WithStartupConfig(String),
    /// The ext4 superblock wiped.
    Corrupted,
}

pub struct BootOptions {
    /// Tap NICs, each in its own namespace host (eth0, eth1, … in the guest).
    pub hosts: usize,
    pub config: ConfigDisk,
    /// Let a guest reboot restart the machine (for `reload`).
    pub allow_reboot: bool,
    /// Boot the disk through OVMF and systemd-boot instead of -kernel.
    pub uefi: bool,
    /// Install a newer slot B on trial before boot (an upgrade).
    pub new_slot_b: Option<NewSlot>,
    /// A first NIC (eth0, before the hosts' taps) on QEMU's user network,
    /// as the README's run command has it, with this host port of
    /// 127.0.0.1 forwarded to its port 80.
    pub user_net_http: Option<u16>,
}

pub enum NewSlot {
    /// The same image on trial (three tries): it should boot and mark itself good.
    Working,
    /// A junk initramfs on trial with one try left: the kernel panics, and
    /// systemd-boot must fall back to slot A.
    Failing,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            hosts: 0,
            config: ConfigDisk::Factory,
            allow_reboot: false,
            uefi: false,
            new_slot_b: None,
            user_net_http: None,
        }
    }
}

/// One booted appliance; everything it made is removed on drop.
pub struct Appliance {
    pub console: Console,
    pub hosts: Vec<Host>,
    /// This machine's copy of the disk image.
    pub disk: PathBuf,
    qemu: Child,
    dir: PathBuf,
    started: Instant,
    /// Transcript offset from which crashes fail the test.
    crash_check_from: usize,
}

impl Appliance {
    pub fn boot(options: BootOptions) -> Result<Self> {
        static INSTANCES: AtomicUsize = AtomicUsize::new(0);
        let image = image();
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let tag = format!("gh{:04}i{instance}", std::process::id() % 10_000);
        let dir = std::env::temp_dir().join(format!("{tag}-qemu"));
        std::fs::create_dir_all(&dir)?;
        let disk = dir.join("disk.img");
        std::fs::copy(&image.disk, &disk).context("copying the disk image")?;
        let partition = config_partition::ConfigPartition::new(&disk, image.layout.config);
        match &options.config {
            ConfigDisk::Factory => {}
            ConfigDisk::WithStartupConfig(text) => partition.put_file("startup-config", text)?,
            ConfigDisk::Corrupted => partition.corrupt()?,
        }
        if let Some(slot) = &options.new_slot_b {
            install_slot_b(&disk, image, slot)?;
        }
        let taps: Vec<String> = (0..options.hosts).map(|n| format!("{tag}t{n}")).collect();
        let uefi_vars = if options.uefi {
            let vars = dir.join("OVMF_VARS.fd");
            std::fs::copy(qemu::OVMF_VARS, &vars)
                .context("copying OVMF_VARS (apt-get install ovmf)")?;
            Some(vars)
        } else {
            None
        };
        let boot = qemu::Boot::of(image, uefi_vars);
        let machine = qemu::Machine {
            boot,
            disk: Some(disk.clone()),
            nics: (options.user_net_http.iter())
                .map(|port| qemu::Nic::User {
                    forwards: vec![(*port, 80)],
                })
                .chain(taps.iter().map(|tap| qemu::Nic::Tap {
                    ifname: tap.clone(),
                }))
                .collect(),
            memory_mib: 512,
            allow_reboot: options.allow_reboot,
        };
        let mut qemu = machine
            .command(qemu::Console::Stdio)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting qemu-system-x86_64")?;
        let console = match (qemu.stdout.take(), qemu.stdin.take()) {
            (Some(output), Some(input)) => Console::new(output, input),
            _ => anyhow::bail!("QEMU's stdio is not piped"),
        };
        let mut appliance = Appliance {
            console,
            hosts: Vec::new(),
            disk,
            qemu,
            dir,
            started: Instant::now(),
            crash_check_from: 0,
        };
        for (n, tap) in taps.iter().enumerate() {
            appliance
                .hosts
                .push(Host::with_tap(&format!("{tag}h{n}"), tap)?);
        }
        Ok(appliance)
    }

    /// Waits for the first prompt; returns the boot messages and the time
    /// from QEMU's start to the prompt.
    pub fn wait_for_prompt(&mut self) -> Result<(String, Duration)> {
        let messages = self.console.expect(PROMPT, BOOT_TIMEOUT)?;
        Ok((messages, self.started.elapsed()))
    }

    pub fn command(&mut self, line: &str) -> Result<String> {
        self.console.command(line, COMMAND_TIMEOUT)
    }

    /// Waits for QEMU to exit (after `poweroff`); true if it exited cleanly.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<bool> {
        self.console.wait_closed(timeout)?;
        Ok(self.qemu.wait()?.success())
    }

    /// The console output so far showed an expected crash (a failing slot).
    pub fn accept_crashes_so_far(&mut self) {
        self.crash_check_from = self.console.transcript().len();
    }

    /// The ESP's boot entry names (read after QEMU exits).
    pub fn boot_entries(&self) -> Result<Vec<String>> {
        let mut esp = read_extent(&self.disk, image().layout.esp)?;
        esp::boot_entries(&mut esp)
    }

    /// The config partition of this machine's disk (read it after QEMU exits).
    pub fn config_partition(&self) -> config_partition::ConfigPartition {
        config_partition::ConfigPartition::new(&self.disk, image().layout.config)
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
        self.hosts.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
        let transcript = self.console.transcript();
        if std::thread::panicking() {
            eprintln!("---- console log ----\n{transcript}\n---- end of console log ----");
        } else {
            let crashes = console::crash_lines(&transcript[self.crash_check_from..]);
            assert!(
                crashes.is_empty(),
                "the console shows a crash: {crashes:?}\n---- console log ----\n{transcript}"
            );
        }
    }
}

fn read_extent(disk: &std::path::Path, extent: Extent) -> Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(disk)?;
    file.seek(SeekFrom::Start(extent.offset))?;
    let mut bytes = vec![0u8; extent.size as usize];
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn install_slot_b(disk: &std::path::Path, image: &Image, slot: &NewSlot) -> Result<()> {
    let extent = image.layout.esp;
    let mut partition = read_extent(disk, extent)?;
    let kernel = std::fs::read(&image.kernel)?;
    let initramfs = match slot {
        NewSlot::Working => std::fs::read(&image.initramfs)?,
        NewSlot::Failing => vec![0x5a; 4096],
    };
    let contents = esp::SlotContents {
        kernel: &kernel,
        initramfs: &initramfs,
        cmdline: &image.cmdline,
        release: env!("CARGO_PKG_VERSION"),
    };
    esp::install_slot(&mut partition, 'b', 2, true, &contents)?;
    if let NewSlot::Failing = slot {
        // As if two tries were spent already: one boot decides.
        esp::rename_entry(&mut partition, "gatehouse-b+3.conf", "gatehouse-b+1-2.conf")?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).open(disk)?;
    write_sparse(&mut file, extent, &partition)
}
