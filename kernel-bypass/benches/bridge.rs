//! Bridge-domain benchmark (issue 15), in memory, one core, beside the
//! plain routing rate of the same harness measured in the same run:
//! (a) routing only, 64-byte frames eth0 -> eth1;
//! (b) 64-byte tagged frames from VLAN 100 bridged into VNI 5010
//!     (VXLAN encapsulation towards one of four remote VTEPs);
//! (c) the reverse: VXLAN from the VTEPs decapsulated and bridged out
//!     tagged on VLAN 100 (the inner frame the same 60 bytes untagged);
//! with 100,000 learned MACs in the domain (50,000 behind the VTEPs,
//! 50,000 on the VLAN), every frame to a known MAC.

#[path = "../tests/support/mod.rs"]
mod support;

use kernel_bypass::pipeline::Verdict;
use kernel_bypass::snapshot::mac_for;
use kernel_bypass::wire::{Mac, ETHERTYPE_IPV4};
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use support::harness::{Harness, HOST_MACS};
use support::packets::{ethernet, tagged, udp_packet, vxlan};

const RUN: Duration = Duration::from_secs(3);
/// MACs on each side.
const HOSTS: u32 = 50_000;
const VTEPS: u8 = 4;
const TEST_TYPE: u16 = 0x88b5;

fn vtep(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 7 + (i % u32::from(VTEPS)) as u8)
}

/// Host `i` behind the VTEPs (`side` 1) or on the VLAN (`side` 0).
fn host(side: u8, i: u32) -> Mac {
    let b = i.to_be_bytes();
    [0x02, side, b[0], b[1], b[2], b[3]]
}

fn bridge_text() -> String {
    let mut text = String::from(
        "interface eth0\ninterface eth0.100\ninterface eth1\n ip address 192.0.2.1/24\n\
         interface vxlan1\n vni 5010\n source-interface eth1\n",
    );
    for v in 0..u32::from(VTEPS) {
        let _ = writeln!(text, " remote {}", vtep(v));
    }
    text + "bridge-domain 10\n member eth0.100\n member vni 5010\n mac limit 200000\n"
}

/// From the VLAN side: host `i` to the overlay's host `i`, 64 bytes tagged.
fn vlan_frame(i: u32) -> Vec<u8> {
    tagged(host(1, i), host(0, i), 100, TEST_TYPE, &[0; 46])
}

/// From the overlay: its host `i` to the VLAN's host `i` (inner 60 bytes).
fn vxlan_frame(i: u32) -> Vec<u8> {
    let inner = ethernet(host(0, i), host(1, i), TEST_TYPE, &[0; 46]);
    let datagram = udp_packet(
        vtep(i),
        "192.0.2.1".parse().unwrap(),
        49152,
        4789,
        &vxlan(5010, &inner),
    );
    ethernet(mac_for("eth1"), HOST_MACS[1], ETHERTYPE_IPV4, &datagram)
}

fn batches(frames: impl Iterator<Item = Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    let frames: Vec<_> = frames.collect();
    frames.chunks(64).map(<[Vec<u8>]>::to_vec).collect()
}

/// Frames per second received on port `input` and sent on `output`,
/// cycling through `batches` for `RUN`.
fn rate(h: &mut Harness, input: u16, output: u16, batches: &[Vec<Vec<u8>>]) -> f64 {
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < RUN {
        sent += pass(h, input, output, batches);
    }
    sent as f64 / start.elapsed().as_secs_f64()
}

/// One pass over `batches`: frames sent on `output`.
fn pass(h: &mut Harness, input: u16, output: u16, batches: &[Vec<Vec<u8>>]) -> u64 {
    let mut sent = 0;
    for batch in batches {
        h.batch.clear();
        for f in batch {
            h.batch.push_copy(f);
        }
        let verdicts = h.pipeline.process(&h.snap, input, &mut h.batch);
        sent += verdicts
            .iter()
            .filter(|v| **v == Verdict::Tx(output))
            .count() as u64;
    }
    sent
}

fn main() {
    let routed_text =
        "interface eth0\n ip address 10.80.1.1/24\ninterface eth1\n ip address 10.80.2.1/24\n";
    let mut plain = Harness::new(routed_text, &[("eth1", "10.80.2.9")]);
    let routed = batches((0..HOSTS).map(|i| {
        let packet = udp_packet(
            "10.80.1.2".parse().unwrap(),
            "10.80.2.9".parse().unwrap(),
            i as u16,
            9,
            &[0; 18],
        );
        ethernet(mac_for("eth0"), HOST_MACS[0], ETHERTYPE_IPV4, &packet)
    }));
    let base = rate(&mut plain, 0, 1, &routed);
    println!(
        "(a) in memory, routing only: {:.2} Mpps/core (64-byte frames, batch 64)",
        base / 1e6
    );

    let neighbors: Vec<String> = (0..u32::from(VTEPS)).map(|v| vtep(v).to_string()).collect();
    let neighbors: Vec<(&str, &str)> = neighbors.iter().map(|a| ("eth1", a.as_str())).collect();
    let mut h = Harness::new(&bridge_text(), &neighbors);
    let encap = batches((0..HOSTS).map(vlan_frame));
    let decap = batches((0..HOSTS).map(vxlan_frame));
    // Learning both sides: the first pass each way floods or finds a
    // host the other way learned.
    pass(&mut h, 1, 0, &decap);
    pass(&mut h, 0, 1, &encap);
    let summary = h.show("bridge-domain 10");
    let learned = summary
        .lines()
        .find(|l| l.starts_with("MAC addresses learned"));
    println!("    {}", learned.unwrap_or("MAC addresses learned: ?"));
    assert_eq!(
        pass(&mut h, 0, 1, &encap),
        u64::from(HOSTS),
        "one frame each, known MACs"
    );
    assert_eq!(pass(&mut h, 1, 0, &decap), u64::from(HOSTS));

    let to_vni = rate(&mut h, 0, 1, &encap);
    println!(
        "(b) in memory, VLAN -> VNI (encapsulated), 100,000 learned MACs: {:.2} Mpps/core, {:.2}x (a)",
        to_vni / 1e6,
        to_vni / base
    );
    let to_vlan = rate(&mut h, 1, 0, &decap);
    println!(
        "(c) in memory, VNI -> VLAN (decapsulated), 100,000 learned MACs: {:.2} Mpps/core, {:.2}x (a)",
        to_vlan / 1e6,
        to_vlan / base
    );
}
