//! `ip tcp adjust-mss` fed in memory: a SYN forwarded out of a clamped
//! interface leaves with the lower MSS and a TCP checksum that still adds
//! up; a SYN already below it, and other segments, are left alone.

mod support;

use kernel_bypass::pipeline::Verdict;
use kernel_bypass::wire::{checksum, PROTO_TCP};
use std::net::Ipv4Addr;
use support::harness::Harness;
use support::packets::ipv4;

const SITE: &str = "interface eth0\n ip address 10.1.0.1/24\n\
    interface eth1\n ip address 10.2.0.1/24\n ip tcp adjust-mss 1360\n";
const NEIGHBORS: &[(&str, &str)] = &[("eth0", "10.1.0.2"), ("eth1", "10.2.0.2")];

fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// The TCP checksum over the pseudo-header and segment of IPv4 packet `p`.
fn tcp_sum(p: &[u8]) -> u16 {
    let mut pseudo = p[12..20].to_vec();
    pseudo.extend_from_slice(&[0, PROTO_TCP]);
    pseudo.extend_from_slice(&((p.len() - 20) as u16).to_be_bytes());
    pseudo.extend_from_slice(&p[20..]);
    checksum(&pseudo)
}

/// A segment with `flags` and the MSS option `mss`, checksum complete.
fn segment(flags: u8, mss: u16) -> Vec<u8> {
    let mut t = vec![0u8; 24];
    t[..4].copy_from_slice(&[0x9c, 0x40, 0, 80]);
    t[12] = 6 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    t[20..24].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
    let mut p = ipv4(addr("10.1.0.2"), addr("10.2.0.2"), PROTO_TCP, 64, &t);
    let sum = tcp_sum(&p);
    p[36..38].copy_from_slice(&sum.to_be_bytes());
    p
}

fn mss_of(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[42], p[43]])
}

#[test]
fn syns_out_of_a_clamped_interface_get_the_lower_mss() {
    let mut h = Harness::new(SITE, NEIGHBORS);
    let packets = [
        segment(0x02, 1460),
        segment(0x02, 1200),
        segment(0x10, 1460),
    ];
    let verdicts = h.feed(0, &packets);
    assert_eq!(verdicts, [Verdict::Tx(1); 3]);
    let out = h.sent_on(&verdicts, 1);
    assert_eq!(mss_of(&out[0]), 1360, "clamped");
    assert_eq!(mss_of(&out[1]), 1200, "already lower");
    assert_eq!(mss_of(&out[2]), 1460, "not a SYN");
    for p in &out {
        assert_eq!(tcp_sum(p), 0, "the checksum adds up");
    }
}
