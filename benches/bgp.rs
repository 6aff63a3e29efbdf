//! BGP convergence (`cargo bench -p gatehouse --bench bgp`, root): FRR
//! announces PREFIXES routes; how long the appliance takes from its start
//! to having them all installed in its global table, and its resident
//! memory then; the baseline is a second FRR (bgpd and zebra, in a
//! namespace of its own) receiving the same feed from the same FRR, from
//! its start to all of them received by bgpd and installed by zebra in its
//! kernel. One run; prints its figures.

#[path = "../tests/support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "../tests/support/bgp.rs"]
#[allow(dead_code)]
mod site;

use netns::{is_root, run, Netns, Veth};
use site::{Frr, Site};
use std::time::{Duration, Instant};

const PREFIXES: usize = 100_000;
/// Hang guard only.
const PATIENCE: Duration = Duration::from_secs(600);

/// /24s from 20.0.0.0 on.
fn feed() -> Vec<String> {
    (0..PREFIXES as u32)
        .map(|i| {
            let [a, b, c, _] = (0x1400_0000u32 + (i << 8)).to_be_bytes();
            format!("{a}.{b}.{c}.0/24")
        })
        .collect()
}

/// Waits until `count` (polled every 50 ms) reaches `wanted`; returns when.
fn until_count(what: &str, wanted: usize, count: impl FnMut() -> usize) -> Instant {
    until(what, count, |seen| seen >= wanted)
}

/// Waits until `done` holds of what `count` says; returns when.
fn until(what: &str, mut count: impl FnMut() -> usize, done: impl Fn(usize) -> bool) -> Instant {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = count();
        if done(seen) {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{what}: {seen}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The number after `key` in `text` (`"ribCount":1234`, `routes global 12 IPv4`).
fn number_after(text: &str, key: &str) -> usize {
    text.split(key)
        .nth(1)
        .and_then(|rest| {
            let digits: String = (rest.trim_start().chars())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .unwrap_or(0)
}

fn resident_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    number_after(&status, "VmRSS:") as f64 / 1024.0
}

fn main() {
    if !is_root() {
        return;
    }
    let feed = feed();
    // FRR's own table: the feed and its two networks.
    let wanted = PREFIXES + 2;
    let mut site = Site::start_with(65000, 65001, &feed, |frr| {
        until_count("FRR loading the feed", wanted, || {
            number_after(&frr.vtysh(&["show bgp summary json"]), "\"ribCount\":")
        });
    });
    let start = Instant::now();
    // Its table: two local and two connected routes besides.
    let installed = until_count("the appliance's table", wanted + 4, || {
        let memory = site
            .cli
            .until("show memory", |t| t.contains("routes global"));
        number_after(&memory, "routes global")
    });
    let memory = site.cli.until("show memory", |t| t.contains("resident"));
    let appliance_mib = number_after(&memory, "resident ") as f64;
    println!(
        "appliance: {PREFIXES} prefixes from FRR received and installed in {:.2} s from its start; {appliance_mib} MiB resident (show memory)",
        (installed - start).as_secs_f64()
    );
    // One withdrawal with the table loaded.
    site.frr.vtysh(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
        &format!("no network {}", feed[0]),
    ]);
    let start = Instant::now();
    let withdrawn = until(
        "the withdrawal",
        || {
            let memory = site
                .cli
                .until("show memory", |t| t.contains("routes global"));
            number_after(&memory, "routes global")
        },
        |routes| routes < wanted + 4,
    );
    println!(
        "appliance: one withdrawal out of its forwarding table {:.0} ms after FRR's vtysh returned (polled by show memory every 50 ms)",
        (withdrawn - start).as_secs_f64() * 1000.0
    );

    // The baseline: FRR receiving the same feed from the same FRR.
    let rx = Netns::new();
    let link = Veth::into_ns(&rx);
    run(&["ip", "link", "set", &link.outer, "netns", &site.router.name]);
    rx.configure(&link.inner, "10.64.4.2/24", None);
    site.router.configure(&link.outer, "10.64.4.1/24", None);
    site.frr.vtysh(&[
        "configure terminal",
        "router bgp 65001",
        "neighbor 10.64.4.2 remote-as 65002",
    ]);
    let start = Instant::now();
    let receiver = Frr::start(
        &rx,
        "router bgp 65002\n bgp router-id 10.64.4.2\n no bgp ebgp-requires-policy\n neighbor 10.64.4.1 remote-as 65001\n",
    );
    let received = until_count("FRR receiving", wanted, || {
        number_after(&receiver.vtysh(&["show bgp summary json"]), "\"pfxRcd\":")
    });
    let in_kernel = until_count("FRR's zebra installing", PREFIXES, || {
        let routes = rx.output(&["ip", "-4", "route", "show", "proto", "bgp"]);
        routes.stdout.iter().filter(|b| **b == b'\n').count()
    });
    let (bgpd, zebra) = receiver.pids();
    println!(
        "FRR (baseline): received in {:.2} s, in the kernel in {:.2} s from bgpd's start; bgpd {:.0} MiB + zebra {:.0} MiB resident",
        (received - start).as_secs_f64(),
        (in_kernel - start).as_secs_f64(),
        resident_mib(bgpd),
        resident_mib(zebra)
    );
    drop(receiver);
    let _ = link;
}
