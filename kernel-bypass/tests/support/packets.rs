//! Hand-built frames for feeding the pipeline in memory.

use kernel_bypass::wire::{
    checksum, ipv6_payload_checksum, put_be16, solicited_node, write_ethernet, write_ipv4_header,
    write_ipv6_header, Mac, ICMPV6_ECHO_REQUEST, ICMPV6_NEIGHBOR_ADVERT, ICMPV6_NEIGHBOR_SOLICIT,
    IPV6_HEADER, ND_HOP_LIMIT, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};
use std::net::{Ipv4Addr, Ipv6Addr};

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

pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0; IPV6_HEADER];
    write_ipv6_header(&mut p, payload.len() as u16, next, hop_limit, src, dst);
    p.extend_from_slice(payload);
    p
}

/// An ICMPv6 message (type, code, body) in an IPv6 packet, checksummed.
pub fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, message: &[u8]) -> Vec<u8> {
    let mut p = ipv6(src, dst, PROTO_ICMPV6, hop_limit, message);
    let sum = ipv6_payload_checksum(&p);
    put_be16(&mut p, IPV6_HEADER + 2, sum);
    p
}

/// UDP over IPv6 (checksum left zero: the pipeline does not look).
pub fn udp6_packet(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, payload: &[u8]) -> Vec<u8> {
    ipv6(src, dst, PROTO_UDP, 64, &udp(sport, 9, payload))
}

pub fn echo6_request(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8) -> Vec<u8> {
    let mut message = vec![ICMPV6_ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 1];
    message.extend_from_slice(b"gatehouse");
    icmp6(src, dst, hop_limit, &message)
}

/// A neighbour solicitation for `target` from `src` (with its link-layer
/// address `mac`) to the target's solicited-node group.
pub fn neighbor_solicit(src: Ipv6Addr, mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    let mut message = vec![ICMPV6_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    message.extend_from_slice(&target.octets());
    message.extend_from_slice(&[1, 1]);
    message.extend_from_slice(&mac);
    icmp6(src, solicited_node(target), ND_HOP_LIMIT, &message)
}

/// A solicited advertisement: `target` is at `mac`, sent to `dst`.
pub fn neighbor_advert(target: Ipv6Addr, mac: Mac, dst: Ipv6Addr) -> Vec<u8> {
    let mut message = vec![ICMPV6_NEIGHBOR_ADVERT, 0, 0, 0, 0x60, 0, 0, 0];
    message.extend_from_slice(&target.octets());
    message.extend_from_slice(&[2, 1]);
    message.extend_from_slice(&mac);
    icmp6(target, dst, ND_HOP_LIMIT, &message)
}

/// A TCP header with `flags` (checksum left 0).
fn tcp_segment(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 0x50;
    t[13] = flags;
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    t
}

/// A TCP segment with `flags` and no payload (checksum left 0).
pub fn tcp_packet(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    ipv4(src, dst, PROTO_TCP, 64, &tcp_segment(sport, dport, flags))
}

/// TCP or UDP over IPv6 with its checksum right (a UDP sum of 0 sent as
/// 0xffff).
fn checksummed6(src: Ipv6Addr, dst: Ipv6Addr, protocol: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = ipv6(src, dst, protocol, 64, l4);
    let at = IPV6_HEADER + if protocol == PROTO_TCP { 16 } else { 6 };
    let sum = match ipv6_payload_checksum(&p) {
        0 if protocol == PROTO_UDP => 0xffff,
        sum => sum,
    };
    put_be16(&mut p, at, sum);
    p
}

/// A TCP segment with `flags` and no payload over IPv6, checksummed.
pub fn tcp6_packet(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    checksummed6(src, dst, PROTO_TCP, &tcp_segment(sport, dport, flags))
}

/// A UDP datagram over IPv6, checksummed.
pub fn udp6_checksummed(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    checksummed6(src, dst, PROTO_UDP, &udp(sport, dport, payload))
}
