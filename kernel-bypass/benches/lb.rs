//! Load balancer benchmark (issue 12), each figure beside a baseline
//! measured in the same run:
//! 1. in memory, one core, 64-byte UDP frames from clients behind eth0 to
//!    100 virtual servers of 16 reals each behind eth1: (a) routing only,
//!    to the reals' addresses; (b) established flows (65,536 sessions
//!    hit); (c) a new flow every packet (Maglev choice, session created);
//! 2. Maglev's disruption: the share of 100,000 flows whose real changes
//!    when one of 16 leaves, beside hash-modulo-N's;
//! 3. over veth (root only): the dataplane balancing one virtual server
//!    over 16 reals against a Linux router namespace doing the same with
//!    nftables (`dnat to jhash ... mod 16 map`).

#[path = "../tests/support/mod.rs"]
mod support;

use kernel_bypass::io::Backend;
use kernel_bypass::lb::maglev::{Backend as MaglevBackend, Maglev};
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::{Mac, ETHERTYPE_IPV4};
use kernel_bypass::{Dataplane, DataplaneOptions};
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::harness::Harness;
use support::load::{
    kernel_router, load_nft, offered_and_forwarded, sender_and_sink, veth_with_nftables,
};
use support::netns::Netns;
use support::packets::{ethernet, udp_packet};

const RUN: Duration = Duration::from_secs(3);
const VSERVERS: u16 = 100;
const REALS: u8 = 16;
const FLOWS: u32 = 65_536;
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 80, 1, 2);
const CLIENT_MAC: Mac = [0x02, 0, 0, 0, 0, 0x11];

/// Real `i` (0-based): 10.80.2.(10 + i).
fn real(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 80, 2, 10 + i)
}

/// Virtual server `v`: 198.51.100.1 udp (1000 + v), its farm's reals on
/// the same port.
fn lb_text(a: &str, b: &str, vservers: u16) -> String {
    let mut text = format!(
        "ip inspect max-sessions 4000000\nip inspect udp idle-time 3600\n\
         interface {a}\n ip address 10.80.1.1/24\ninterface {b}\n ip address 10.80.2.1/24\n"
    );
    for v in 0..vservers {
        let _ = writeln!(text, "ip slb serverfarm F{v}");
        for i in 0..REALS {
            let _ = writeln!(text, " real {} port {}\n  inservice", real(i), 1000 + v);
        }
        let _ = writeln!(
            text,
            "ip slb vserver V{v}\n virtual 198.51.100.1 udp {}\n serverfarm F{v}\n inservice",
            1000 + v
        );
    }
    text
}

/// A 64-byte frame from the client's port `sport` to `dst`:`dport`.
fn frame(dst_mac: Mac, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let packet = udp_packet(CLIENT, dst, sport, dport, &[0; 18]);
    ethernet(dst_mac, CLIENT_MAC, ETHERTYPE_IPV4, &packet)
}

fn batches(frames: Vec<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    frames.chunks(64).map(<[Vec<u8>]>::to_vec).collect()
}

/// Flow `f`'s frame: its client port and its virtual server.
fn vip_frame(f: u32) -> Vec<u8> {
    let vip = Ipv4Addr::new(198, 51, 100, 1);
    frame(
        mac_for("eth0"),
        vip,
        f as u16,
        1000 + (f % u32::from(VSERVERS)) as u16,
    )
}

fn in_memory() {
    let neighbors: Vec<(String, String)> = (0..REALS)
        .map(|i| ("eth1".to_string(), real(i).to_string()))
        .collect();
    let neighbors: Vec<(&str, &str)> = neighbors
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let routed = batches(
        (0..FLOWS)
            .map(|f| frame(mac_for("eth0"), real((f % 16) as u8), f as u16, 9))
            .collect(),
    );
    let mut plain = Harness::new(&lb_text("eth0", "eth1", 0), &neighbors);
    let base = plain.forward_rate(&routed, RUN);
    println!(
        "(a) in memory, routing only: {:.2} Mpps/core (64-byte frames, batch 64)",
        base / 1e6
    );

    let mut lb = Harness::new(&lb_text("eth0", "eth1", VSERVERS), &neighbors);
    let traffic = batches((0..FLOWS).map(vip_frame).collect());
    assert_eq!(
        lb.forward_batches(&traffic),
        u64::from(FLOWS),
        "every flow balanced"
    );
    let established = lb.forward_rate(&traffic, RUN);
    println!(
        "(b) in memory, {VSERVERS} virtual servers x {REALS} reals, {FLOWS} established flows: {:.2} Mpps/core, {:.2}x (a)",
        established / 1e6,
        established / base
    );
    // New flows: the client address changes every round of 65,536 ports,
    // so no session repeats; rewriting it is not timed.
    let mut round = batches((0..FLOWS).map(vip_frame).collect());
    let mut busy = Duration::ZERO;
    let mut forwarded = 0;
    for client in 0..30u8 {
        for frame in round.iter_mut().flatten() {
            frame[14 + 15] = 100 + client; // the source's last byte
            frame[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
            let sum = kernel_bypass::wire::checksum(&frame[14..34]);
            frame[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
        }
        let start = Instant::now();
        forwarded += lb.forward_batches(&round);
        busy += start.elapsed();
    }
    let secs = busy.as_secs_f64();
    println!(
        "(c) in memory, a new flow every packet: {:.2} Mpps/core, {:.2}x (a)",
        forwarded as f64 / secs / 1e6,
        forwarded as f64 / secs / base
    );
}

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ h >> 33
}

fn disruption() {
    let all: Vec<_> = (0..16u64)
        .map(|i| MaglevBackend {
            id: mix(i + 7),
            weight: 1,
        })
        .collect();
    let mut fewer = all.clone();
    fewer.remove(7);
    let (before, after) = (
        Maglev::build(&all, 65537).unwrap(),
        Maglev::build(&fewer, 65537).unwrap(),
    );
    let flows = 100_000u64;
    let maglev_moved = (0..flows)
        .filter(|f| all[before.lookup(mix(*f))].id != fewer[after.lookup(mix(*f))].id)
        .count();
    let modulo_moved = (0..flows)
        .filter(|f| all[(mix(*f) % 16) as usize].id != fewer[(mix(*f) % 15) as usize].id)
        .count();
    println!(
        "Maglev (65,537 entries), one of 16 reals removed: {:.2}% of {flows} flows move (1/16 = 6.25%); hash modulo N: {:.2}%",
        maglev_moved as f64 / flows as f64 * 100.0,
        modulo_moved as f64 / flows as f64 * 100.0
    );
}

// ---- over veth -------------------------------------------------------

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// 64 flows from the sender to the virtual server through `router_mac`.
fn veth_frames(router_mac: Mac) -> Vec<Vec<u8>> {
    (0..64)
        .map(|i| frame(router_mac, VIP, 1000 + i, 1000))
        .collect()
}

/// The sink gets the 16 reals' addresses.
fn reals_on(sink: &Netns, ifname: &str) {
    for i in 0..REALS {
        sink.run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", real(i)),
            "dev",
            ifname,
        ]);
    }
}

fn through_kernel() -> Result<(f64, f64), String> {
    let (sender, a, sink, b) = sender_and_sink();
    reals_on(&sink, &b.inner);
    let (router, mac) = kernel_router(&a, &b);
    let map: Vec<String> = (0..REALS).map(|i| format!("{i} : {}", real(i))).collect();
    let ruleset = format!(
        "table ip gatehouse_lb {{\n chain prerouting {{\n  type nat hook prerouting priority dstnat; policy accept;\n  \
         ip daddr {VIP} udp dport 1000 dnat to jhash ip saddr . udp sport mod 16 map {{ {} }}\n }}\n}}\n",
        map.join(", ")
    );
    load_nft(&router, &[ruleset])?;
    sink.ping_ok("10.80.2.1");
    Ok(offered_and_forwarded(
        (&sender, &a.inner),
        (&sink, &b.inner),
        veth_frames(mac),
        RUN,
    ))
}

fn through_dataplane(backend: Backend) -> Result<(f64, f64), String> {
    let (sender, a, sink, b) = sender_and_sink();
    reals_on(&sink, &b.inner);
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let (config, errors) = grammar::parse_config(&lb_text(&a.outer, &b.outer, 1));
    assert_eq!(errors, []);
    let options = DataplaneOptions {
        backend,
        workers: 1,
    };
    let dataplane = Dataplane::start(&config, options, runtime.handle().clone())?;
    sink.ping_ok("10.80.2.1");
    let rates = offered_and_forwarded(
        (&sender, &a.inner),
        (&sink, &b.inner),
        veth_frames(mac_for(&a.outer)),
        RUN,
    );
    dataplane.stop();
    Ok(rates)
}

fn over_veth() {
    if !veth_with_nftables() {
        return;
    }
    println!("veth, 64 UDP flows of 64-byte frames to one virtual server of 16 reals:");
    let kernel = match through_kernel() {
        Ok((offered, forwarded)) => {
            println!(
                "  kernel nftables dnat jhash mod 16: {:.3} Mpps forwarded ({:.3} Mpps offered)",
                forwarded / 1e6,
                offered / 1e6
            );
            Some(forwarded)
        }
        Err(e) => {
            println!("  kernel nftables: not measured: {e}");
            None
        }
    };
    for backend in [Backend::AfPacket, Backend::AfXdp] {
        match through_dataplane(backend) {
            Ok((offered, forwarded)) => {
                let ratio = kernel.map_or(String::new(), |k| {
                    format!(", {:.2}x the kernel", forwarded / k.max(1.0))
                });
                println!(
                    "  dataplane {backend} Maglev + sessions: {:.3} Mpps forwarded ({:.3} Mpps offered){ratio}",
                    forwarded / 1e6,
                    offered / 1e6
                );
            }
            Err(e) => println!("  dataplane {backend}: not measured: {e}"),
        }
    }
}

fn main() {
    in_memory();
    disruption();
    over_veth();
}
