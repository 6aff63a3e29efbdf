//! Linux hosts for the tests: a network namespace holding one of QEMU's
//! taps, with an address and a default route via the appliance. Deleted on
//! drop (the tap goes away with QEMU).

use anyhow::{bail, Context, Result};
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub struct Host {
    pub namespace: String,
    pub interface: String,
}

impl Host {
    /// Moves `tap` (already created by QEMU) into a new namespace `namespace`.
    pub fn with_tap(namespace: &str, tap: &str) -> Result<Self> {
        wait_for_link(tap, Duration::from_secs(20))?;
        ip(&["netns", "add", namespace])?;
        let host = Host {
            namespace: namespace.to_string(),
            interface: tap.to_string(),
        };
        ip(&["link", "set", tap, "netns", namespace])?;
        host.ip(&["link", "set", "lo", "up"])?;
        host.ip(&["link", "set", tap, "up"])?;
        Ok(host)
    }

    /// `address` (CIDR) on the tap and a default route via `gateway`.
    pub fn configure(&self, address: &str, gateway: &str) -> Result<()> {
        self.ip(&["addr", "add", address, "dev", &self.interface])?;
        self.ip(&["route", "add", "default", "via", gateway])?;
        Ok(())
    }

    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["-n", &self.namespace];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A program to run inside the namespace (add arguments, environment).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.namespace, program]);
        command
    }

    /// Runs a program inside the namespace.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        self.command(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program} in {}", self.namespace))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .output();
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !output.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn wait_for_link(name: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !std::path::Path::new("/sys/class/net").join(name).exists() {
        if Instant::now() > deadline {
            bail!("QEMU did not create tap {name}");
        }
        sleep(Duration::from_millis(50));
    }
    Ok(())
}
