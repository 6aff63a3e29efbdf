//! Forwarding benchmark, printing figures (about a minute):
//! 1. the pipeline alone, 64-byte UDP frames fed in memory, on one core:
//!    plain forwarding, routed into VXLAN, and with a 1M-route table (plus
//!    how long compiling that table into a snapshot takes); IPv6 with the
//!    smallest UDP frames (78 bytes); 1500-byte packets fragmented into a
//!    1280-byte MTU;
//! 2. through veth between two namespaces: the dataplane on each backend
//!    versus the Linux kernel forwarding the same traffic (forwarding in a
//!    router namespace), IPv4 and IPv6, load from an AF_PACKET generator in
//!    this process; and the ceiling on the same veths at the same offered
//!    load: dpdk-testpmd (Debian's dpdk-dev, no hugepages) forwarding IPv4
//!    between them without routing, `io` and `macswap`, on its af_xdp and
//!    af_packet drivers, with each backend's ratio to it;
//! 3. multi-queue: veths with two queues, 64 IPv4 flows leaving the
//!    sender by flow hash (so both queues carry traffic), one worker
//!    against a worker per queue, with each worker's share.

#[path = "../tests/support/mod.rs"]
mod support;

mod dpdk;

use grammar::config::{Config, NextHop, StaticRoute};
use ipnet::Ipv4Net;
use kernel_bypass::counters::WorkerCounters;
use kernel_bypass::frame::Batch;
use kernel_bypass::io::Backend;
use kernel_bypass::pipeline::{neighbor6_key, neighbor_key, Pipeline, Shared, Verdict};
use kernel_bypass::snapshot::{mac_for, InterfaceIds, Snapshot, GLOBAL_TABLE};
use kernel_bypass::wire::{mac_to_u64, Mac, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use kernel_bypass::{Dataplane, DataplaneOptions};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::dataplane::{config_of, drop_counters, interface, vxlan_interface};
use support::load::{
    offered_and_forwarded, offered_and_forwarded_on, sender_and_sink, sender_and_sink_with_queues,
    TxQueues,
};
use support::netns::{is_root, run, Netns, Veth};
use support::packets::{ethernet, udp6_packet, udp_packet};

const RUN: Duration = Duration::from_secs(3);
/// Set to N: the bench runs N thousand batches of the family in
/// `COUNTED_FAMILY` and exits (what `instructions_per_packet` counts).
const COUNTED_RUN: &str = "FORWARD_COUNTED_RUN";
const COUNTED_FAMILY: &str = "FORWARD_COUNTED_FAMILY";

/// Instructions the in-memory pipeline spends per packet of each family,
/// from callgrind (repeatable where timings are not): two counted runs of
/// this bench, 1,000 and 2,000 batches of 64, so set-up cancels out.
fn instructions_per_packet() -> Result<[f64; 2], String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let collected = |family: &str, thousands: u64| -> Result<f64, String> {
        let out = std::process::Command::new("valgrind")
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(&me)
            .env(COUNTED_RUN, thousands.to_string())
            .env(COUNTED_FAMILY, family)
            .output()
            .map_err(|e| format!("valgrind: {e}"))?;
        let text = String::from_utf8_lossy(&out.stderr);
        let line = (text.lines().find(|l| l.contains("Collected :")))
            .ok_or_else(|| format!("no count from callgrind: {}", text.trim()))?;
        let count = line.rsplit(':').next().unwrap_or_default().trim();
        count
            .parse()
            .map_err(|_| format!("unreadable count {count:?}"))
    };
    let mut per_packet = [0.0; 2];
    for (family, slot) in ["v4", "v6"].into_iter().zip(&mut per_packet) {
        let (one, two) = (collected(family, 1)?, collected(family, 2)?);
        *slot = (two - one) / (1000.0 * 64.0);
    }
    Ok(per_packet)
}
const SENDER: Ipv4Addr = Ipv4Addr::new(10, 80, 1, 2);
const SINK: Ipv4Addr = Ipv4Addr::new(10, 80, 2, 2);
const SENDER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x80, 1, 0, 0, 0, 2);
const SINK6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x80, 2, 0, 0, 0, 2);
const SENDER_MAC: Mac = [0x02, 0, 0, 0, 0, 1];

/// A 60-byte frame (64 on the wire with the FCS): UDP with 18 payload bytes.
fn frame(dst_mac: Mac, dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let packet = udp_packet(SENDER, dst, sport, 9, &[0; 18]);
    ethernet(dst_mac, SENDER_MAC, ETHERTYPE_IPV4, &packet)
}

/// The smallest IPv6 UDP frame worth sending: 78 bytes (Ethernet, IPv6,
/// UDP and 16 payload bytes), 82 on the wire.
fn frame6(dst_mac: Mac, dst: Ipv6Addr, sport: u16) -> Vec<u8> {
    let packet = udp6_packet(SENDER6, dst, sport, &[0; 16]);
    ethernet(dst_mac, SENDER_MAC, ETHERTYPE_IPV6, &packet)
}

/// Both links with an IPv4 and an IPv6 subnet.
fn router_config(a: &str, b: &str) -> Config {
    let mut c = config_of([
        (a, interface(&["10.80.1.1/24"])),
        (b, interface(&["10.80.2.1/24"])),
    ]);
    for (name, address) in [(a, "2001:db8:80:1::1/64"), (b, "2001:db8:80:2::1/64")] {
        if let Some(i) = c.interfaces_mut().get_mut(name) {
            i.ipv6_addresses.insert(address.parse().expect("address"));
        }
    }
    c
}

/// The id of interface `name` in `snap` (0 if it has none).
fn iface_id(snap: &Snapshot, name: &str) -> u16 {
    snap.interfaces
        .iter()
        .flatten()
        .find(|i| i.name == name)
        .map_or(0, |i| i.id)
}

/// The interface ids of eth0 (port 0) and eth1 (port 1) in `snap`.
fn eth_ids(snap: &Snapshot) -> (u16, u16) {
    (iface_id(snap, "eth0"), iface_id(snap, "eth1"))
}

/// Compiles `config` with eth0/eth1 on ports 0/1; returns the snapshot and
/// how long the commit took.
fn compile(config: &Config) -> (Snapshot, Duration) {
    let start = Instant::now();
    let snap = Snapshot::compile(config, &mut InterfaceIds::default(), &|n| {
        (n == "eth0").then_some(0).or((n == "eth1").then_some(1))
    })
    .expect("compile");
    (snap, start.elapsed())
}

/// Packets per second one pipeline forwards out of port 1, fed 64-frame
/// batches of `frames` received on port 0; `neighbors` are pre-resolved.
fn in_memory(snap: &Snapshot, neighbors: &[(u16, IpAddr)], frames: &[Vec<u8>]) -> f64 {
    let shared = Arc::new(Shared::default());
    let mac = mac_to_u64(&[2, 0, 0, 0, 0, 2]);
    for (iface, ip) in neighbors {
        match ip {
            IpAddr::V4(ip) => shared.neighbors.learn(neighbor_key(*iface, *ip), mac, 0),
            IpAddr::V6(ip) => shared.neighbors6.learn(neighbor6_key(*iface, *ip), mac, 0),
        }
    }
    let mut pipeline = Pipeline::new(shared, Arc::new(WorkerCounters::default()), None);
    let mut batch = Batch::new(frames.len());
    let start = Instant::now();
    let mut forwarded = 0u64;
    // Under callgrind: a fixed count, in thousands of batches.
    let counted: Option<u64> = std::env::var(COUNTED_RUN).ok().and_then(|n| n.parse().ok());
    let mut rounds = 0;
    while counted.map_or(start.elapsed() < RUN, |n| rounds < n) {
        rounds += 1;
        for _ in 0..1000 {
            batch.clear();
            for f in frames {
                batch.push_copy(f);
            }
            let verdicts = pipeline.process(snap, 0, &mut batch);
            forwarded += verdicts.iter().filter(|v| **v == Verdict::Tx(1)).count() as u64;
        }
    }
    forwarded as f64 / start.elapsed().as_secs_f64()
}

/// 64 frames to eth0 of distinct flows towards `dsts`.
fn frames_to(dsts: impl Iterator<Item = Ipv4Addr>) -> Vec<Vec<u8>> {
    dsts.take(64)
        .enumerate()
        .map(|(i, dst)| frame(mac_for("eth0"), dst, 1000 + i as u16))
        .collect()
}

fn in_memory_plain() -> f64 {
    let (snap, _) = compile(&router_config("eth0", "eth1"));
    let (_, eth1) = eth_ids(&snap);
    in_memory(
        &snap,
        &[(eth1, SINK.into())],
        &frames_to(std::iter::repeat(SINK)),
    )
}

/// The same forwarding with both interfaces in a tenant's VRF.
fn in_memory_vrf() -> f64 {
    let mut config = router_config("eth0", "eth1");
    let errors = grammar::apply_text(
        &mut config,
        "vrf definition T\ninterface eth0\n vrf forwarding T\n ip address 10.80.1.1/24\n\
         interface eth1\n vrf forwarding T\n ip address 10.80.2.1/24\n",
    );
    assert_eq!(errors, []);
    let (snap, _) = compile(&config);
    let (_, eth1) = eth_ids(&snap);
    in_memory(
        &snap,
        &[(eth1, SINK.into())],
        &frames_to(std::iter::repeat(SINK)),
    )
}

fn in_memory_ipv6() -> f64 {
    let (snap, _) = compile(&router_config("eth0", "eth1"));
    let (_, eth1) = eth_ids(&snap);
    let frames: Vec<_> = (0..64)
        .map(|i| frame6(mac_for("eth0"), SINK6, 1000 + i))
        .collect();
    in_memory(&snap, &[(eth1, SINK6.into())], &frames)
}

/// `n` static /24 routes spread over the address space, ECMP over two next hops.
fn full_table(n: u32) -> Config {
    let mut c = router_config("eth0", "eth1");
    let hops = [SINK, Ipv4Addr::new(10, 80, 2, 3)];
    for i in 0..n {
        let network = i.wrapping_mul(2_654_435_761) & 0xffff_ff00;
        for hop in hops {
            c.routes_mut().add_ipv4(StaticRoute {
                prefix: Ipv4Net::new(Ipv4Addr::from(network), 24).expect("prefix"),
                next_hop: NextHop::Address(hop),
                distance: 1,
            });
        }
    }
    c
}

fn in_memory_full_table() -> (usize, Duration, f64) {
    let config = full_table(1_000_000);
    let (snap, took) = compile(&config);
    let (_, eth1) = eth_ids(&snap);
    let dsts = config
        .routes
        .global_ipv4()
        .step_by(30_011)
        .map(|r| Ipv4Addr::from(u32::from(r.prefix.network()) + 1))
        .collect::<Vec<_>>();
    let neighbors = [
        (eth1, SINK.into()),
        (eth1, Ipv4Addr::new(10, 80, 2, 3).into()),
    ];
    let rate = in_memory(&snap, &neighbors, &frames_to(dsts.into_iter().cycle()));
    (snap.table(GLOBAL_TABLE).len(), took, rate)
}

/// 1500-byte IPv4 packets (DF clear) out of eth1 with an MTU of 1280: each
/// leaves as two fragments. Packets (not fragments) per second.
fn in_memory_fragmenting() -> f64 {
    let mut c = router_config("eth0", "eth1");
    if let Some(eth1) = c.interfaces_mut().get_mut("eth1") {
        eth1.mtu = Some(1280);
    }
    let (snap, _) = compile(&c);
    let (_, eth1) = eth_ids(&snap);
    let frames: Vec<_> = (0..64)
        .map(|i| {
            let packet = udp_packet(SENDER, SINK, 1000 + i, 9, &[0; 1472]);
            ethernet(mac_for("eth0"), SENDER_MAC, ETHERTYPE_IPV4, &packet)
        })
        .collect();
    in_memory(&snap, &[(eth1, SINK.into())], &frames)
}

/// Routed into a VXLAN interface (VNI 7) whose remote VTEP is behind eth1.
fn in_memory_vxlan_encap() -> f64 {
    let mut c = router_config("eth0", "eth1");
    c.interfaces_mut().insert(
        "vxlan7".into(),
        vxlan_interface("10.7.0.1/24", 7, "eth1", &[&SINK.to_string()]),
    );
    let (snap, _) = compile(&c);
    let (_, eth1) = eth_ids(&snap);
    let vxlan = iface_id(&snap, "vxlan7");
    let inner_host = Ipv4Addr::new(10, 7, 0, 9);
    let neighbors = [(eth1, SINK.into()), (vxlan, inner_host.into())];
    in_memory(&snap, &neighbors, &frames_to(std::iter::repeat(inner_host)))
}

/// The traffic of a veth run.
#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    const ALL: [Family; 2] = [Family::V4, Family::V6];

    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// The router's address on the sink's link.
    fn router_on_sink_link(self) -> &'static str {
        match self {
            Family::V4 => "10.80.2.1",
            Family::V6 => "2001:db8:80:2::1",
        }
    }

    fn frame(self, router_mac: Mac) -> Vec<u8> {
        match self {
            Family::V4 => frame(router_mac, SINK, 1000),
            Family::V6 => frame6(router_mac, SINK6, 1000),
        }
    }
}

/// Forwarded packets per second from `sender` to `sink` through a router
/// whose MAC on the sender's link is `router_mac`: (offered, forwarded).
fn measure(
    (sender, sender_if): (&Netns, &str),
    (sink, sink_if): (&Netns, &str),
    router_mac: Mac,
    family: Family,
) -> (f64, f64) {
    // Let the router resolve the sink before counting.
    sink.ping_ok(family.router_on_sink_link());
    let frames = vec![family.frame(router_mac)];
    offered_and_forwarded((sender, sender_if), (sink, sink_if), frames, RUN)
}

/// A dataplane on `backend` routing between the veths' outer ends, with
/// the runtime it needs for as long as it runs.
fn start_router(
    backend: Backend,
    workers: usize,
    a: &Veth,
    b: &Veth,
) -> Result<(tokio::runtime::Runtime, Dataplane), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let options = DataplaneOptions { backend, workers };
    let dataplane = Dataplane::start(
        &router_config(&a.outer, &b.outer),
        options,
        runtime.handle().clone(),
    )?;
    Ok((runtime, dataplane))
}

/// (offered, forwarded) per family, plus where the dataplane dropped packets.
fn through_dataplane(backend: Backend) -> Result<(Vec<(f64, f64)>, String), String> {
    let (sender, a, sink, b) = sender_and_sink();
    let (_runtime, dataplane) = start_router(backend, 1, &a, &b)?;
    let ends = ((&sender, a.inner.as_str()), (&sink, b.inner.as_str()));
    let rates = Family::ALL
        .iter()
        .map(|f| measure(ends.0, ends.1, mac_for(&a.outer), *f))
        .collect();
    let drops = drop_counters(&dataplane);
    dataplane.stop();
    Ok((rates, drops))
}

/// Queues of each veth in the multi-queue runs.
const QUEUES: u32 = 2;
/// IPv4 flows of the multi-queue runs, enough for the hash to fill both queues.
const FLOWS: u16 = 64;

/// (offered, forwarded) IPv4 through `backend` with `workers` workers on
/// two-queue veths, `FLOWS` flows leaving the sender by flow hash; and
/// each worker's packets in from the sender's link.
fn through_dataplane_on_queues(
    backend: Backend,
    workers: usize,
) -> Result<((f64, f64), String), String> {
    let (sender, a, sink, b) = sender_and_sink_with_queues(QUEUES);
    let (_runtime, dataplane) = start_router(backend, workers, &a, &b)?;
    sink.ping_ok(Family::V4.router_on_sink_link());
    let router_mac = mac_for(&a.outer);
    let frames = (0..FLOWS)
        .map(|i| frame(router_mac, SINK, 1000 + i))
        .collect();
    let rates = offered_and_forwarded_on(
        (&sender, &a.inner),
        (&sink, &b.inner),
        frames,
        RUN,
        TxQueues::ByFlowHash,
    );
    let shares: Vec<String> = dataplane
        .show_workers()
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{}: ", a.outer)))
        .map(|l| format!("{} in", l.split(" packets input").next().unwrap_or(l)))
        .collect();
    dataplane.stop();
    Ok((rates, shares.join("; ")))
}

/// (offered, forwarded) per family with a Linux router namespace.
fn through_kernel() -> Vec<(f64, f64)> {
    let (sender, a, sink, b) = sender_and_sink();
    let router = Netns::new();
    let addresses = [
        (&a.outer, "10.80.1.1/24", "2001:db8:80:1::1/64"),
        (&b.outer, "10.80.2.1/24", "2001:db8:80:2::1/64"),
    ];
    for (end, v4, v6) in addresses {
        run(&["ip", "link", "set", end, "netns", &router.name]);
        router.configure(end, v4, None);
        router.configure(end, v6, None);
    }
    router.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    router.run(&["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
    let text = router.run(&["cat", &format!("/sys/class/net/{}/address", a.outer)]);
    let mut mac = [0u8; 6];
    for (m, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *m = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    let ends = ((&sender, a.inner.as_str()), (&sink, b.inner.as_str()));
    Family::ALL
        .iter()
        .map(|f| measure(ends.0, ends.1, mac, *f))
        .collect()
}

/// One dpdk-testpmd run on the veths: its driver and forwarding mode,
/// and what it forwarded, or why it did not run.
struct Ceiling {
    pmd: &'static str,
    mode: &'static str,
    measured: Result<TestpmdRates, String>,
}

struct TestpmdRates {
    offered: f64,
    /// Counted at the sink, as for the other forwarders.
    forwarded: f64,
    /// testpmd's own count of frames sent out of port 1, per second.
    sent: f64,
    /// Frames per second the driver missed on port 0 (its socket's ring
    /// was full) and testpmd failed to send on port 1.
    missed: f64,
    dropped: f64,
}

/// The CPU testpmd's lcores share (the generator is left the other one).
const TESTPMD_CPU: usize = 1;

/// dpdk-testpmd forwarding IPv4 frames from the sender's veth to the
/// sink's with `pmd` (af_xdp, af_packet) in `mode` (io, macswap): no
/// routing, the most any forwarder can do on these links.
fn through_testpmd(tool: &Path, pmd: &str, mode: &str) -> Result<TestpmdRates, String> {
    let (sender, a, sink, b) = sender_and_sink();
    let vdevs = [
        format!("net_{pmd}0,iface={}", a.outer),
        format!("net_{pmd}1,iface={}", b.outer),
    ];
    // Declared after the veths: it quits (or is killed) before they go.
    let mut testpmd = dpdk::Testpmd::start(tool, TESTPMD_CPU, [&vdevs[0], &vdevs[1]], mode)?;
    testpmd.forward()?;
    let frames = vec![Family::V4.frame(mac_for(&a.outer))];
    let ends = ((&sender, a.inner.as_str()), (&sink, b.inner.as_str()));
    let (offered, forwarded) = offered_and_forwarded(ends.0, ends.1, frames, RUN);
    let (missed, _) = testpmd.port_stats(0)?;
    let (_, sent) = testpmd.port_stats(1)?;
    let dropped = testpmd.stop(1)?;
    let secs = RUN.as_secs_f64();
    Ok(TestpmdRates {
        offered,
        forwarded,
        sent: sent as f64 / secs,
        missed: missed as f64 / secs,
        dropped: dropped as f64 / secs,
    })
}

/// Every testpmd row; "not run" ones say why (no binary, no AF_XDP, a
/// failure), and never stop the bench.
fn ceilings() -> Vec<Ceiling> {
    let tool = dpdk::tool("dpdk-testpmd");
    let af_xdp = dpdk::af_xdp_available();
    let mut rows = Vec::new();
    for pmd in ["af_xdp", "af_packet"] {
        for mode in ["io", "macswap"] {
            let measured = tool.clone().and_then(|tool| {
                if pmd == "af_xdp" {
                    af_xdp.clone()?;
                }
                std::panic::catch_unwind(|| through_testpmd(&tool, pmd, mode))
                    .unwrap_or_else(|_| Err("panicked (see above)".into()))
            });
            rows.push(Ceiling {
                pmd,
                mode,
                measured,
            });
        }
    }
    rows
}

/// ", ratio to dpdk-testpmd <pmd> io X, macswap Y": `forwarded` over what
/// testpmd forwarded with the driver `backend`'s I/O matches ("" if none
/// ran).
fn to_testpmd(ceilings: &[Ceiling], backend: Backend, forwarded: f64) -> String {
    let pmd = match backend {
        Backend::AfXdp => "af_xdp",
        Backend::AfPacket => "af_packet",
        _ => return String::new(),
    };
    let ratios: Vec<String> = ceilings
        .iter()
        .filter(|c| c.pmd == pmd)
        .filter_map(|c| {
            let r = c.measured.as_ref().ok()?;
            Some(format!(
                "{} {:.2}",
                c.mode,
                forwarded / r.forwarded.max(1.0)
            ))
        })
        .collect();
    if ratios.is_empty() {
        return String::new();
    }
    format!(", ratio to dpdk-testpmd {pmd} {}", ratios.join(", "))
}

fn main() {
    if std::env::var(COUNTED_RUN).is_ok() {
        match std::env::var(COUNTED_FAMILY).as_deref() {
            Ok("v6") => in_memory_ipv6(),
            _ => in_memory_plain(),
        };
        return;
    }
    match instructions_per_packet() {
        Ok([v4, v6]) => println!(
            "pipeline in-memory, callgrind: {v4:.0} instructions per IPv4 packet, {v6:.0} per IPv6 packet"
        ),
        Err(why) => println!("pipeline in-memory, callgrind: not run: {why}"),
    }
    let pps = in_memory_plain();
    println!(
        "pipeline in-memory: {:.2} Mpps/core (64-byte frames, batch 64)",
        pps / 1e6
    );
    let pps = in_memory_vrf();
    println!(
        "pipeline in-memory, inside a VRF: {:.2} Mpps/core (64-byte frames, batch 64)",
        pps / 1e6
    );
    let pps = in_memory_ipv6();
    println!(
        "pipeline in-memory, IPv6: {:.2} Mpps/core (78-byte frames, batch 64)",
        pps / 1e6
    );
    let pps = in_memory_vxlan_encap();
    println!(
        "pipeline in-memory, routed into VXLAN (encap): {:.2} Mpps/core",
        pps / 1e6
    );
    let pps = in_memory_fragmenting();
    println!(
        "pipeline in-memory, 1500-byte packets fragmented for MTU 1280: {:.2} Mpps/core",
        pps / 1e6
    );
    let (routes, commit, pps) = in_memory_full_table();
    println!(
        "pipeline in-memory, {routes} routes (ECMP x2): {:.2} Mpps/core; commit (snapshot build) {:.2} s",
        pps / 1e6,
        commit.as_secs_f64()
    );
    if !is_root() {
        return;
    }
    let kernel = through_kernel();
    for (family, (offered, forwarded)) in Family::ALL.iter().zip(&kernel) {
        println!(
            "veth kernel forwarding, {}: {:.3} Mpps forwarded ({:.3} Mpps offered)",
            family.name(),
            forwarded / 1e6,
            offered / 1e6
        );
    }
    println!(
        "  (kernel: forwards in the generator's softirq, no extra core; dataplane: one busy-polling worker \
         on the other core; offered load is what the generator reached while competing)"
    );
    let ceilings = ceilings();
    for c in &ceilings {
        match &c.measured {
            Ok(r) => println!(
                "veth dpdk-testpmd {} {}, IPv4 (no routing): {:.3} Mpps forwarded ({:.3} Mpps offered; \
                 testpmd: sent {:.3} Mpps, rx missed {:.3} Mpps, tx dropped {:.3} Mpps)",
                c.pmd,
                c.mode,
                r.forwarded / 1e6,
                r.offered / 1e6,
                r.sent / 1e6,
                r.missed / 1e6,
                r.dropped / 1e6,
            ),
            Err(why) => println!("dpdk-testpmd: not run ({} {}): {why}", c.pmd, c.mode),
        }
    }
    println!("  (testpmd: main and forwarding lcores on CPU {TESTPMD_CPU}, busy-polling)");
    for backend in [Backend::AfPacket, Backend::AfXdp] {
        let (rates, drops) = match through_dataplane(backend) {
            Ok(measured) => measured,
            Err(e) => {
                println!("veth {backend}: not measured: {e}");
                continue;
            }
        };
        for ((family, (offered, forwarded)), (_, kernel)) in
            Family::ALL.iter().zip(rates).zip(&kernel)
        {
            // testpmd forwards IPv4 only: the ceiling for that row.
            let ceiling = match family {
                Family::V4 => to_testpmd(&ceilings, backend, forwarded),
                Family::V6 => String::new(),
            };
            println!(
                "veth {backend}, {}: {:.3} Mpps forwarded ({:.3} Mpps offered), ratio to kernel {:.2}{ceiling}",
                family.name(),
                forwarded / 1e6,
                offered / 1e6,
                forwarded / kernel.max(1.0),
            );
        }
        println!("  pipeline drops: {drops}");
    }
    for backend in [Backend::AfPacket, Backend::AfXdp] {
        let mut one_worker = None;
        for workers in [1, QUEUES as usize] {
            match through_dataplane_on_queues(backend, workers) {
                Ok(((offered, forwarded), shares)) => {
                    let ratio = one_worker.map_or(String::new(), |one: f64| {
                        format!(", {:.2}x one worker", forwarded / one.max(1.0))
                    });
                    one_worker.get_or_insert(forwarded);
                    println!(
                        "veth {backend}, IPv4, {FLOWS} flows over {QUEUES}-queue veths, {workers} worker(s): \
                         {:.3} Mpps forwarded ({:.3} Mpps offered){ratio}; in from the sender: {shares}",
                        forwarded / 1e6,
                        offered / 1e6,
                    );
                }
                Err(e) => {
                    println!("veth {backend}, {workers} worker(s) on queues: not measured: {e}")
                }
            }
        }
    }
    println!(
        "  (multi-queue: the generator, the workers and the veths' softirqs share the 2 cores)"
    );
}
