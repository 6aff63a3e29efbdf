//! NAT benchmark (issue 11), each figure beside a baseline measured in the
//! same run:
//! 1. in memory, one core, 64-byte UDP frames routed eth0 (inside) ->
//!    eth1 (outside): (a) routing only; (b) masquerade over a 16-address
//!    pool with 1,000,000 live translations (65,536 inside endpoints x 16
//!    remote endpoints), the traffic 65,536 established flows; (c) new
//!    translations per second (filling those 1M); (d) bytes per
//!    translation, beside Linux conntrack's object size;
//! 2. over veth (root only): the dataplane's masquerade (af-packet,
//!    af-xdp) against a Linux router namespace doing nftables masquerade
//!    on the same traffic.

#[path = "../tests/support/mod.rs"]
mod support;

use kernel_bypass::io::Backend;
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::{Mac, ETHERTYPE_IPV4};
use kernel_bypass::{Dataplane, DataplaneOptions};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::harness::Harness;
use support::load::{
    kernel_router, load_nft, offered_and_forwarded, sender_and_sink, veth_with_nftables,
};
use support::netns::Netns;
use support::packets::{ethernet, udp_packet};

const RUN: Duration = Duration::from_secs(3);
const INSIDE_ENDPOINTS: u32 = 65_536;
const REMOTES: u32 = 16;
const SENDER: Ipv4Addr = Ipv4Addr::new(10, 80, 1, 2);
const SINK: Ipv4Addr = Ipv4Addr::new(10, 80, 2, 2);
const SENDER_MAC: Mac = [0x02, 0, 0, 0, 0, 0x11];

/// Two routed interfaces; with `nat`, the first inside and the second
/// outside, its hosts masqueraded over `target` (`pool P` or `interface X`).
fn router_text(a: &str, b: &str, nat: Option<&str>) -> String {
    let mut text =
        String::from("ip nat translation max-entries 4000000\nip inspect udp idle-time 3600\n");
    let side = |s: &str| nat.map_or(String::new(), |_| format!(" ip nat {s}\n"));
    text += &format!(
        "interface {a}\n ip address 10.80.1.1/24\n{}",
        side("inside")
    );
    text += &format!(
        "interface {b}\n ip address 10.80.2.1/24\n{}",
        side("outside")
    );
    if let Some(target) = nat {
        text += "ip access-list extended INSIDE\n permit ip 10.80.1.0 0.0.0.255 any\n\
                 ip nat pool P 198.18.0.0 198.18.0.15 prefix-length 24\n";
        text += &format!("ip nat inside source list INSIDE {target} overload\n");
    }
    text
}

/// A 60-byte frame (64 on the wire): UDP SENDER:sport -> SINK:dport.
fn frame(dst_mac: Mac, sport: u16, dport: u16) -> Vec<u8> {
    let packet = udp_packet(SENDER, SINK, sport, dport, &[0; 18]);
    ethernet(dst_mac, SENDER_MAC, ETHERTYPE_IPV4, &packet)
}

/// Flows (sport, dport) in batches of 64.
fn batches(flows: impl Iterator<Item = (u16, u16)>) -> Vec<Vec<Vec<u8>>> {
    let frames: Vec<_> = flows.map(|(s, d)| frame(mac_for("eth0"), s, d)).collect();
    frames.chunks(64).map(<[Vec<u8>]>::to_vec).collect()
}

/// The number after `label` in `text`.
fn number_after(text: &str, label: &str) -> f64 {
    let rest = text.split(label).nth(1).unwrap_or("");
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or("")
        .parse()
        .unwrap_or(0.0)
}

/// Linux conntrack's object size from /proc/slabinfo, if readable.
fn conntrack_object_size() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("nf_conntrack "))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn in_memory() {
    let neighbors = [("eth1", "10.80.2.2")];
    let traffic = batches((0..INSIDE_ENDPOINTS).map(|s| (s as u16, 9)));
    let mut plain = Harness::new(&router_text("eth0", "eth1", None), &neighbors);
    let base = plain.forward_rate(&traffic, RUN);
    println!(
        "(a) in memory, routing only: {:.2} Mpps/core (64-byte frames, batch 64)",
        base / 1e6
    );

    let mut nat = Harness::new(&router_text("eth0", "eth1", Some("pool P")), &neighbors);
    let fill = batches((0..INSIDE_ENDPOINTS * REMOTES).map(|f| (f as u16, 9 + (f >> 16) as u16)));
    let start = Instant::now();
    let created = nat.forward_batches(&fill);
    let fill_rate = created as f64 / start.elapsed().as_secs_f64();
    assert_eq!(
        created,
        u64::from(INSIDE_ENDPOINTS * REMOTES),
        "every flow translated"
    );
    let established = nat.forward_rate(&traffic, RUN);
    println!(
        "(b) in memory, masquerade, {created} live translations, established flows: {:.2} Mpps/core, {:.2}x (a)",
        established / 1e6,
        established / base
    );
    println!(
        "(c) new translations: {:.2} M/s per core, the packet forwarded too ({INSIDE_ENDPOINTS} endpoint-independent mappings among them)",
        fill_rate / 1e6
    );
    let statistics = nat.show("ip nat statistics");
    // "Total active translations: T (S static, D dynamic; maximum M, K KiB)"
    let translations = number_after(&statistics, "static, ");
    let before_kib = statistics.split(" KiB").next().unwrap_or("");
    let kib: f64 = before_kib
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .parse()
        .unwrap_or(0.0);
    let conntrack = match conntrack_object_size() {
        Some(size) => {
            format!("{size} bytes (nf_conntrack slab object here, NAT extension not counted)")
        }
        None => "about 300 bytes (published; /proc/slabinfo not readable)".to_string(),
    };
    println!(
        "(d) memory per translation: {:.1} bytes (table {} MB for {translations} translations: a 32-byte record and two 20-byte index entries, index at most three quarters full, doubling); Linux conntrack {conntrack}",
        kib * 1024.0 / translations.max(1.0),
        kib as u64 / 1024
    );
}

/// Frames of 64 flows from the sender to the sink through `router_mac`.
fn veth_frames(router_mac: Mac) -> Vec<Vec<u8>> {
    (0..64).map(|i| frame(router_mac, 1000 + i, 9)).collect()
}

fn measure(sender: (&Netns, &str), sink: (&Netns, &str), router_mac: Mac) -> (f64, f64) {
    sink.0.ping_ok("10.80.2.1");
    offered_and_forwarded(sender, sink, veth_frames(router_mac), RUN)
}

/// (offered, forwarded) through a Linux router namespace masquerading.
fn through_kernel() -> Result<(f64, f64), String> {
    let (sender, a, sink, b) = sender_and_sink();
    let (router, mac) = kernel_router(&a, &b);
    let ruleset = format!(
        "table ip gatehouse_nat {{\n chain postrouting {{\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"{}\" masquerade\n }}\n}}\n",
        b.outer
    );
    load_nft(&router, &[ruleset])?;
    Ok(measure((&sender, &a.inner), (&sink, &b.inner), mac))
}

/// (offered, forwarded) through the dataplane masquerading behind its
/// outside address, and its NAT counters.
fn through_dataplane(backend: Backend) -> Result<((f64, f64), String), String> {
    let (sender, a, sink, b) = sender_and_sink();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let text = router_text(&a.outer, &b.outer, Some(&format!("interface {}", b.outer)));
    let (config, errors) = grammar::parse_config(&text);
    assert_eq!(errors, []);
    let options = DataplaneOptions {
        backend,
        workers: 1,
    };
    let dataplane = Dataplane::start(&config, options, runtime.handle().clone())?;
    let rates = measure((&sender, &a.inner), (&sink, &b.inner), mac_for(&a.outer));
    let statistics = support::dataplane::show(&dataplane, "ip nat statistics");
    let counters: Vec<&str> = statistics
        .lines()
        .filter(|l| l.contains(": ") && !l.ends_with(": 0"))
        .collect();
    dataplane.stop();
    Ok((rates, counters.join("; ")))
}

fn over_veth() {
    if !veth_with_nftables() {
        return;
    }
    println!(
        "veth, 64 UDP flows of 64-byte frames from an AF_PACKET generator (sendmmsg), masqueraded:"
    );
    let kernel = match through_kernel() {
        Ok((offered, forwarded)) => {
            println!(
                "  kernel nftables masquerade: {:.3} Mpps forwarded ({:.3} Mpps offered)",
                forwarded / 1e6,
                offered / 1e6
            );
            Some(forwarded)
        }
        Err(e) => {
            println!("  kernel nftables masquerade: not measured: {e}");
            None
        }
    };
    for backend in [Backend::AfPacket, Backend::AfXdp] {
        match through_dataplane(backend) {
            Ok(((offered, forwarded), counters)) => {
                let ratio = kernel.map_or(String::new(), |k| {
                    format!(", {:.2}x the kernel", forwarded / k.max(1.0))
                });
                println!(
                    "  dataplane {backend} masquerade: {:.3} Mpps forwarded ({:.3} Mpps offered){ratio}",
                    forwarded / 1e6,
                    offered / 1e6
                );
                println!("    {counters}");
            }
            Err(e) => println!("  dataplane {backend}: not measured: {e}"),
        }
    }
}

fn main() {
    in_memory();
    over_veth();
}
