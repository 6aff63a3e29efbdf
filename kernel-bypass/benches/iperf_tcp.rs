//! TCP throughput benchmark, one run (about half a minute, root only):
//! iperf3 between two Linux hosts in namespaces with their default
//! offloads (TSO, GSO, transmit checksum offload on), routed by
//!
//! - the Linux kernel (a router namespace with ip_forward), and
//! - the dataplane on each backend (af-packet and af-xdp on veths, tap on
//!   taps), one busy-polling worker,
//!
//! printing each one's Mbit/s and its ratio to the kernel's. The kernel
//! forwards super-packets whole; the dataplane's ports cut them into
//! wire-sized frames for the pipeline (io/offload.rs) and put runs of
//! segments back together on the way out (io/coalesce.rs), so the ratio
//! says what the round trip through wire-sized frames costs.

#[path = "../tests/support/mod.rs"]
mod support;

use kernel_bypass::io::Backend;
use support::dataplane::{received_bytes, two_hosts};
use support::netns::{is_root, run, Child, Netns, Veth};

/// Seconds per iperf3 run.
const SECONDS: u32 = 5;

/// Addresses the two hosts on their interfaces `h1_if` and `h2_if` and
/// starts iperf3's server on h2 (killed when the returned child drops).
fn configure_hosts(h1: &Netns, h2: &Netns, h1_if: &str, h2_if: &str) -> Child {
    h1.configure(h1_if, "10.81.1.2/24", Some("10.81.1.1"));
    h2.configure(h2_if, "10.81.2.2/24", Some("10.81.2.1"));
    h2.spawn(&["iperf3", "-s", "-B", "10.81.2.2"])
}

/// Mbit/s h2 received from h1 in one iperf3 run (0 if it never ran).
fn iperf3(h1: &Netns) -> f64 {
    let seconds = SECONDS.to_string();
    let args = [
        "timeout",
        "30",
        "iperf3",
        "-c",
        "10.81.2.2",
        "-t",
        &seconds,
        "-J",
    ];
    let report = h1.stdout_until(&args, |t| received_bytes(t) > 0);
    received_bytes(&report) as f64 * 8.0 / f64::from(SECONDS) / 1e6
}

fn through_kernel() -> f64 {
    let (h1, h2, router) = (Netns::new(), Netns::new(), Netns::new());
    let (a, b) = (Veth::into_ns(&h1), Veth::into_ns(&h2));
    for (end, address) in [(&a.outer, "10.81.1.1/24"), (&b.outer, "10.81.2.1/24")] {
        run(&["ip", "link", "set", end, "netns", &router.name]);
        router.configure(end, address, None);
    }
    router.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    let _server = configure_hosts(&h1, &h2, &a.inner, &b.inner);
    h1.ping_ok("10.81.2.2");
    iperf3(&h1)
}

fn through_dataplane(backend: Backend) -> f64 {
    let hosts = two_hosts(backend, 1, 81, |_| {});
    let _server = hosts.h2.spawn(&["iperf3", "-s", "-B", "10.81.2.2"]);
    hosts.h1.ping_ok("10.81.2.2");
    iperf3(&hosts.h1)
}

fn main() {
    if !is_root() {
        return;
    }
    let kernel = through_kernel();
    println!("iperf3 TCP, hosts with default offloads, {SECONDS} s, one stream:");
    println!("  kernel forwarding: {kernel:.0} Mbit/s");
    for backend in Backend::ALL {
        let mbits = through_dataplane(backend);
        println!(
            "  dataplane {backend}: {mbits:.0} Mbit/s, ratio to kernel {:.2}",
            mbits / kernel.max(1.0)
        );
    }
}
