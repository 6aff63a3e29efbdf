//! QEMU command lines for the image: TCG (KVM cannot run these kernels on
//! this machine kind), virtio NICs and disk, serial console on stdio.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's ovmf package.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS.fd";

pub enum Boot {
    /// Direct kernel boot (fast under TCG).
    Kernel {
        kernel: PathBuf,
        initramfs: PathBuf,
        cmdline: String,
    },
    /// UEFI firmware boots the disk (systemd-boot, slot A/B); `vars` is a
    /// writable copy of OVMF_VARS.fd.
    Uefi { vars: PathBuf },
}

impl Boot {
    /// Boots `image` through the firmware when given a writable copy of
    /// OVMF_VARS.fd, else straight into its kernel.
    pub fn of(image: &crate::image::Image, uefi_vars: Option<PathBuf>) -> Boot {
        match uefi_vars {
            Some(vars) => Boot::Uefi { vars },
            None => Boot::Kernel {
                kernel: image.kernel.clone(),
                initramfs: image.initramfs.clone(),
                cmdline: image.cmdline.clone(),
            },
        }
    }
}

pub enum Nic {
    /// User-mode networking with host TCP port forwards (host, guest); no root needed.
    User { forwards: Vec<(u16, u16)> },
    /// A tap QEMU creates (root), named `ifname`.
    Tap { ifname: String },
}

pub enum Console {
    /// The serial console and QEMU's monitor multiplexed on this terminal (Ctrl-A X quits).
    Terminal,
    /// Only the serial console, on QEMU's stdin/stdout (for pipes).
    Stdio,
}

pub struct Machine {
    pub boot: Boot,
    pub disk: Option<PathBuf>,
    pub nics: Vec<Nic>,
    pub memory_mib: u32,
    /// false: a guest reboot ends QEMU (-no-reboot), e.g. after a kernel panic.
    pub allow_reboot: bool,
}

impl Machine {
    pub fn command(&self, console: Console) -> Command {
        let mut command = Command::new("qemu-system-x86_64");
        command.args(["-accel", "tcg", "-cpu", "max", "-smp", "1"]);
        command.args(["-m", &self.memory_mib.to_string()]);
        match console {
            Console::Terminal => command.arg("-nographic"),
            Console::Stdio => {
                command.args(["-display", "none", "-monitor", "none", "-serial", "stdio"])
            }
        };
        match &self.boot {
            Boot::Kernel {
                kernel,
                initramfs,
                cmdline,
            } => {
                command.arg("-kernel").arg(kernel);
                command.arg("-initrd").arg(initramfs);
                command.args(["-append", cmdline]);
            }
            Boot::Uefi { vars } => {
                command.args([
                    "-drive",
                    &format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
                ]);
                command
                    .arg("-drive")
                    .arg(drive_arg("if=pflash,format=raw", vars));
            }
        }
        if let Some(disk) = &self.disk {
            command
                .arg("-drive")
                .arg(drive_arg("if=virtio,format=raw", disk));
        }
        for (index, nic) in self.nics.iter().enumerate() {
            let netdev = match nic {
                Nic::User { forwards } => {
                    let mut netdev = format!("user,id=n{index}");
                    for (host, guest) in forwards {
                        netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
                    }
                    netdev
                }
                Nic::Tap { ifname } => {
                    format!("tap,id=n{index},ifname={ifname},script=no,downscript=no")
                }
            };
            command.args(["-netdev", &netdev]);
            command.args([
                "-device",
                // No option ROM: nothing boots from the network, and SeaBIOS/OVMF
                // would spend TCG time loading iPXE.
                &format!(
                    "virtio-net-pci,netdev=n{index},mac={},romfile=",
                    mac_address(index)
                ),
            ]);
        }
        if !self.allow_reboot {
            command.arg("-no-reboot");
        }
        command
    }
}

/// Locally administered, stable per NIC index: eth0 is ...:10, eth1 ...:11.
pub fn mac_address(index: usize) -> String {
    format!("52:54:00:12:34:{:02x}", 0x10 + index)
}

fn drive_arg(options: &str, file: &Path) -> String {
    // QEMU option values escape commas by doubling them.
    format!(
        "{options},file={}",
        file.display().to_string().replace(',', ",,")
    )
}

/// Makes sure qemu-system-x86_64 is installed: installs it with apt-get when
/// root, or says in one line what to install.
pub fn ensure_installed(uefi: bool) -> Result<()> {
    let mut missing = Vec::new();
    if which("qemu-system-x86_64").is_none() {
        missing.push("qemu-system-x86");
    }
    if uefi && !Path::new(OVMF_CODE).exists() {
        missing.push("ovmf");
    }
    if missing.is_empty() {
        return Ok(());
    }
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "missing {}: run `sudo apt-get install {}`",
            missing.join(", "),
            missing.join(" ")
        );
    }
    crate::command::run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("installing QEMU")
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_has_tcg_taps_forwards_and_disk() {
        let machine = Machine {
            boot: Boot::Kernel {
                kernel: "/k".into(),
                initramfs: "/i".into(),
                cmdline: "console=ttyS0".into(),
            },
            disk: Some("/d,1.img".into()),
            nics: vec![
                Nic::User {
                    forwards: vec![(2222, 22)],
                },
                Nic::Tap {
                    ifname: "ghtap1".into(),
                },
            ],
            memory_mib: 256,
            allow_reboot: false,
        };
        let command = machine.command(Console::Stdio);
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        assert!(line.contains("-accel tcg"));
        assert!(line.contains("-netdev user,id=n0,hostfwd=tcp:127.0.0.1:2222-:22"));
        assert!(line.contains("-netdev tap,id=n1,ifname=ghtap1,script=no,downscript=no"));
        assert!(line.contains("virtio-net-pci,netdev=n1,mac=52:54:00:12:34:11"));
        assert!(line.contains("if=virtio,format=raw,file=/d,,1.img"));
        assert!(line.ends_with("-no-reboot"));
    }
}
