//! Fixtures for dataplane tests against real Linux hosts: network namespaces
//! and links with unique names, removed on drop even when a test fails.

// Each test binary uses a different part of these fixtures.
#![allow(dead_code)]

pub mod packets;

use grammar::config::Interface;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest a test waits for something that should happen at once:
/// generous, so a loaded CI machine is slow rather than failing.
pub const SETTLE: Duration = Duration::from_secs(15);

/// An interface config with these IPv4 addresses (`10.0.0.1/24`).
pub fn interface(addresses: &[&str]) -> Interface {
    Interface {
        ipv4_addresses: addresses
            .iter()
            .map(|a| a.parse().expect("address"))
            .collect(),
        ..Interface::default()
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root for namespaces");
    }
    root
}

/// Runs a command and returns its output (never panics on failure).
pub fn output(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]))
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run(args: &[&str]) -> String {
    let out = output(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A short name unique to this process and call: `gh<pid><n><tag>` (<= 15 chars).
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "gh{}{}{tag}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    assert!(name.len() <= 15, "{name} too long for an interface name");
    name
}

/// A network namespace, deleted with everything in it on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = unique("n");
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn exec_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        all
    }

    pub fn run(&self, args: &[&str]) -> String {
        run(&self.exec_args(args))
    }

    pub fn output(&self, args: &[&str]) -> Output {
        output(&self.exec_args(args))
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        let all = self.exec_args(args);
        let child = Command::new(all[0])
            .args(&all[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        Child(child)
    }

    /// Addresses `iface` (already in this namespace), brings it up, turns
    /// off checksum offload (frames cross a userspace forwarder, which
    /// must see complete checksums) and optionally sets the default route.
    pub fn configure(&self, iface: &str, address: &str, gateway: Option<&str>) {
        self.run(&["ip", "addr", "add", address, "dev", iface]);
        self.run(&["ip", "link", "set", iface, "up"]);
        // ethtool must exist (spawning it panics otherwise); not every
        // device has every offload, so its result is not checked.
        let _ = self.output(&[
            "ethtool", "-K", iface, "tx", "off", "tso", "off", "gso", "off",
        ]);
        if let Some(gw) = gateway {
            self.run(&["ip", "route", "add", "default", "via", gw]);
        }
    }

    /// Polls `ping` until it succeeds or `SETTLE` passes (ARP and the
    /// dataplane's first snapshot may take a moment).
    pub fn ping_ok(&self, target: &str) -> bool {
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            let out = self.output(&["ping", "-c", "1", "-W", "1", target]);
            if out.status.success() {
                return true;
            }
        }
        false
    }

    /// Runs a command until its stdout satisfies `done` or `SETTLE` passes
    /// (servers start, paths come up); returns the last stdout.
    pub fn stdout_until(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SETTLE;
        loop {
            let text = String::from_utf8_lossy(&self.output(args).stdout).into_owned();
            if done(&text) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = output(&["ip", "netns", "del", &self.name]);
    }
}

/// A veth pair: `outer` stays in the root namespace (for the dataplane),
/// `inner` goes into `ns`. Deleted on drop.
pub struct Veth {
    pub outer: String,
    pub inner: String,
}

impl Veth {
    pub fn into_ns(ns: &Netns) -> Veth {
        let outer = unique("o");
        let inner = unique("i");
        run(&[
            "ip", "link", "add", &outer, "type", "veth", "peer", "name", &inner,
        ]);
        let veth = Veth { outer, inner };
        run(&["ip", "link", "set", &veth.inner, "netns", &ns.name]);
        run(&["ip", "link", "set", &veth.outer, "up"]);
        let _ = output(&[
            "ethtool",
            "-K",
            &veth.outer,
            "tx",
            "off",
            "tso",
            "off",
            "gso",
            "off",
        ]);
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = output(&["ip", "link", "del", &self.outer]);
    }
}

/// `end.sum_received.bytes` of an iperf3 JSON report (0 if absent).
pub fn received_bytes(report: &str) -> u64 {
    let Some(at) = report.find("\"sum_received\"") else {
        return 0;
    };
    let rest = &report[at..];
    let Some(b) = rest.find("\"bytes\":") else {
        return 0;
    };
    rest[b + 8..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// A background process killed on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
