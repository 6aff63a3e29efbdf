//! Header layouts and byte helpers for the protocols the pipeline parses and
//! builds. Every reader takes offsets the caller has bounds-checked; the
//! pipeline checks lengths once per header, then reads fields directly.

use std::net::{Ipv4Addr, Ipv6Addr};

pub type Mac = [u8; 6];
pub const BROADCAST_MAC: Mac = [0xff; 6];

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service tag (outer tag of Q-in-Q).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

pub const ETH_HEADER: usize = 14;
pub const VLAN_TAG: usize = 4;

pub const IPV4_HEADER: usize = 20;
/// The identification field, which names a packet's fragments.
pub const IPV4_ID: usize = 4;
pub const IPV4_FLAGS: usize = 6;
/// Don't Fragment, in the flags/fragment-offset word.
pub const IPV4_DF: u16 = 0x4000;
/// More Fragments, in the same word.
pub const IPV4_MF: u16 = 0x2000;
pub const IPV4_FRAGMENT_OFFSET: u16 = 0x1fff;
pub const IPV4_TTL: usize = 8;
pub const IPV4_PROTOCOL: usize = 9;
pub const IPV4_CHECKSUM: usize = 10;
pub const IPV4_SRC: usize = 12;
pub const IPV4_DST: usize = 16;
pub const DEFAULT_TTL: u8 = 64;

pub const IPV6_HEADER: usize = 40;
pub const IPV6_PAYLOAD_LEN: usize = 4;
pub const IPV6_NEXT_HEADER: usize = 6;
pub const IPV6_HOP_LIMIT: usize = 7;
pub const IPV6_SRC: usize = 8;
pub const IPV6_DST: usize = 24;
/// The minimum IPv6 MTU: ICMPv6 errors never exceed it (RFC 4443 2.4).
pub const IPV6_MIN_MTU: usize = 1280;
/// Neighbour Discovery packets must arrive with this hop limit (RFC 4861).
pub const ND_HOP_LIMIT: u8 = 255;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;

pub const UDP_HEADER: usize = 8;
pub const VXLAN_HEADER: usize = 8;
/// Outer IPv4 + UDP + VXLAN headers pushed in front of an inner Ethernet frame.
pub const VXLAN_OVERHEAD: usize = IPV4_HEADER + UDP_HEADER + VXLAN_HEADER;

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACHABLE: u8 = 3;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_CODE_NET_UNREACHABLE: u8 = 0;
pub const ICMP_CODE_HOST_UNREACHABLE: u8 = 1;
pub const ICMP_CODE_FRAGMENTATION_NEEDED: u8 = 4;

pub const ICMPV6_DEST_UNREACHABLE: u8 = 1;
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
pub const ICMPV6_TIME_EXCEEDED: u8 = 3;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;
pub const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
/// Error messages have types below 128 (RFC 4443 2.1).
pub const ICMPV6_INFORMATIONAL: u8 = 128;
pub const ICMPV6_CODE_NO_ROUTE: u8 = 0;
pub const ICMPV6_CODE_ADDRESS_UNREACHABLE: u8 = 3;

/// Neighbour solicitation/advertisement: ICMPv6 header, flags, target.
pub const ND_TARGET: usize = 8;
pub const ND_OPTIONS: usize = 24;
/// One link-layer address option for Ethernet (type, length 1, MAC).
pub const ND_LINK_OPTION: usize = 8;
pub const ND_OPTION_SOURCE_LINK: u8 = 1;
pub const ND_OPTION_TARGET_LINK: u8 = 2;
/// Advertisement flags.
pub const ND_FLAG_ROUTER: u8 = 0x80;
pub const ND_FLAG_SOLICITED: u8 = 0x40;
pub const ND_FLAG_OVERRIDE: u8 = 0x20;
pub const IPV6_ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// ARP for IPv4 over Ethernet: the only kind the pipeline speaks.
pub const ARP_PACKET: usize = 28;
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;
pub const ARP_SENDER_MAC: usize = 8;
pub const ARP_SENDER_IP: usize = 14;
pub const ARP_TARGET_MAC: usize = 18;
pub const ARP_TARGET_IP: usize = 24;

#[inline(always)]
pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

// Per packet, several times: always inlined (a call costs more than it).
#[inline(always)]
pub fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub fn put_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Length in bytes of the IPv4 header starting at `b[0]` (its IHL field).
pub fn ipv4_header_len(b: &[u8]) -> usize {
    usize::from(b[0] & 0x0f) * 4
}

/// True unless the IPv4 packet is a later fragment (non-zero offset), so
/// its transport header, if any, follows the IP header.
pub fn is_first_fragment(ipv4: &[u8]) -> bool {
    be16(ipv4, IPV4_FLAGS) & IPV4_FRAGMENT_OFFSET == 0
}

/// True for any piece of a fragmented packet, the first one included.
pub fn is_fragment(ipv4: &[u8]) -> bool {
    be16(ipv4, IPV4_FLAGS) & (IPV4_MF | IPV4_FRAGMENT_OFFSET) != 0
}

#[inline(always)]
pub fn ipv4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(be32(b, at))
}

#[inline]
pub fn ipv6_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

/// The EUI-64 link-local address of an interface with this MAC (RFC 4291
/// appendix A: universal/local bit flipped, ff:fe in the middle).
pub fn link_local_for(mac: &Mac) -> Ipv6Addr {
    let [a, b, c, d, e, f] = *mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ])
}

/// The solicited-node multicast group of `addr` (ff02::1:ffXX:XXXX).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet group address of an IPv6 multicast address (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

#[inline]
pub fn mac_at(b: &[u8], at: usize) -> Mac {
    let mut m = [0; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

pub fn is_multicast(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

pub fn mac_to_u64(mac: &Mac) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(mac);
    u64::from_be_bytes(b)
}

pub fn mac_from_u64(v: u64) -> Mac {
    mac_at(&v.to_be_bytes(), 2)
}

pub fn format_mac(mac: &Mac) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// Writes destination, source and EtherType into the first 14 bytes.
pub fn write_ethernet(b: &mut [u8], dst: &Mac, src: &Mac, ethertype: u16) {
    b[0..6].copy_from_slice(dst);
    b[6..12].copy_from_slice(src);
    put_be16(b, 12, ethertype);
}

/// One's-complement sum of 16-bit words (odd length padded with zero) onto
/// `sum`, not yet folded: a u32 holds the sum of any 64 KiB packet.
pub fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds the carries of a `ones_sum` into 16 bits.
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(ones_sum(data, 0))
}

/// Updates a checksum for one 16-bit word changing from `old` to `new`
/// (RFC 1624, eqn. 3), so forwarding never re-sums the header.
pub fn checksum_adjust(check: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold(sum)
}

/// Fills a 20-byte IPv4 header (no options, DF clear) with its checksum.
pub fn write_ipv4_header(
    b: &mut [u8],
    total_len: u16,
    ttl: u8,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    b[0] = 0x45;
    b[1] = 0;
    put_be16(b, 2, total_len);
    put_be16(b, 4, 0);
    put_be16(b, 6, 0);
    b[IPV4_TTL] = ttl;
    b[IPV4_PROTOCOL] = protocol;
    put_be16(b, IPV4_CHECKSUM, 0);
    b[IPV4_SRC..IPV4_SRC + 4].copy_from_slice(&src.octets());
    b[IPV4_DST..IPV4_DST + 4].copy_from_slice(&dst.octets());
    let c = checksum(&b[..IPV4_HEADER]);
    put_be16(b, IPV4_CHECKSUM, c);
}

/// Fills a 40-byte IPv6 header (traffic class and flow label zero).
pub fn write_ipv6_header(
    b: &mut [u8],
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    b[..4].copy_from_slice(&[0x60, 0, 0, 0]);
    put_be16(b, IPV6_PAYLOAD_LEN, payload_len);
    b[IPV6_NEXT_HEADER] = next_header;
    b[IPV6_HOP_LIMIT] = hop_limit;
    b[IPV6_SRC..IPV6_SRC + 16].copy_from_slice(&src.octets());
    b[IPV6_DST..IPV6_DST + 16].copy_from_slice(&dst.octets());
}

/// The upper-layer checksum of an IPv6 packet whose payload directly
/// follows its header: the payload plus the pseudo-header (RFC 8200 8.1).
/// Over a payload with a correct checksum in place it is zero.
pub fn ipv6_payload_checksum(packet: &[u8]) -> u16 {
    let payload = &packet[IPV6_HEADER..];
    let pseudo = ones_sum(&packet[IPV6_SRC..IPV6_HEADER], 0)
        + payload.len() as u32
        + u32::from(packet[IPV6_NEXT_HEADER]);
    !fold(ones_sum(payload, pseudo))
}

/// Writes an ARP packet (28 bytes) for IPv4 over Ethernet.
pub fn write_arp(b: &mut [u8], op: u16, sender: (&Mac, Ipv4Addr), target: (&Mac, Ipv4Addr)) {
    put_be16(b, 0, 1);
    put_be16(b, 2, ETHERTYPE_IPV4);
    b[4] = 6;
    b[5] = 4;
    put_be16(b, 6, op);
    b[ARP_SENDER_MAC..ARP_SENDER_MAC + 6].copy_from_slice(sender.0);
    b[ARP_SENDER_IP..ARP_SENDER_IP + 4].copy_from_slice(&sender.1.octets());
    b[ARP_TARGET_MAC..ARP_TARGET_MAC + 6].copy_from_slice(target.0);
    b[ARP_TARGET_IP..ARP_TARGET_IP + 4].copy_from_slice(&target.1.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_checksum_matches_full_recompute() {
        let mut h = [0u8; 20];
        write_ipv4_header(
            &mut h,
            84,
            64,
            PROTO_ICMP,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 1, 2),
        );
        assert_eq!(checksum(&h), 0, "a valid header sums to zero");
        let old = be16(&h, IPV4_TTL);
        h[IPV4_TTL] -= 1;
        let new = be16(&h, IPV4_TTL);
        let adjusted = checksum_adjust(be16(&h, IPV4_CHECKSUM), old, new);
        put_be16(&mut h, IPV4_CHECKSUM, adjusted);
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn ipv6_checksum_matches_a_known_echo_request() {
        // Echo request fe80::2 -> fe80::1, id 0x1234 seq 1, no data; 0x7083
        // was summed by hand over the RFC 8200 pseudo-header layout.
        let mut p = [0u8; 48];
        let (src, dst) = ("fe80::2".parse().unwrap(), "fe80::1".parse().unwrap());
        write_ipv6_header(&mut p, 8, PROTO_ICMPV6, 64, src, dst);
        p[40..48].copy_from_slice(&[ICMPV6_ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let sum = ipv6_payload_checksum(&p);
        assert_eq!(sum, 0x7083);
        put_be16(&mut p, 42, sum);
        assert_eq!(ipv6_payload_checksum(&p), 0);
    }

    #[test]
    fn link_local_and_solicited_node_addresses() {
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        let ll = link_local_for(&mac);
        assert_eq!(ll, "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap());
        let group = solicited_node("2001:db8::aa:bbcc:ddee".parse().unwrap());
        assert_eq!(group, "ff02::1:ffcc:ddee".parse::<Ipv6Addr>().unwrap());
        assert_eq!(multicast_mac(group), [0x33, 0x33, 0xff, 0xcc, 0xdd, 0xee]);
    }

    #[test]
    fn mac_round_trips_through_u64() {
        let m = [0x02, 0x47, 0x48, 0xaa, 0xbb, 0xcc];
        assert_eq!(mac_from_u64(mac_to_u64(&m)), m);
        assert_eq!(format_mac(&m), "02:47:48:aa:bb:cc");
    }
}
