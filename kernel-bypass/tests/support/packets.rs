//! Hand-built frames for feeding the pipeline in memory.

use kernel_bypass::wire::{
    checksum, write_ethernet, write_ipv4_header, Mac, PROTO_ICMP, PROTO_UDP,
};
use std::net::Ipv4Addr;

pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0; 14];
    write_ethernet(&mut f, &dst, &src, ethertype);
    f.extend_from_slice(payload);
    f
}

/// An 802.1Q-tagged frame.
pub fn tagged(dst: Mac, src: Mac, vlan: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = ethernet(dst, src, 0x8100, &[]);
    f.extend_from_slice(&vlan.to_be_bytes());
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0; 20];
    write_ipv4_header(&mut p, (20 + payload.len()) as u16, ttl, protocol, src, dst);
    p.extend_from_slice(payload);
    p
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

pub fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv4(src, dst, PROTO_UDP, 64, &udp(sport, dport, payload))
}

pub fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend_from_slice(b"gatehouse");
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    ipv4(src, dst, PROTO_ICMP, ttl, &icmp)
}

/// A VXLAN packet's UDP payload: flags, VNI, inner frame.
pub fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0];
    v.extend_from_slice(&(vni << 8).to_be_bytes());
    v.extend_from_slice(inner);
    v
}
