//! Header layouts and byte helpers for the protocols the pipeline parses and
//! builds. Every reader takes offsets the caller has bounds-checked; the
//! pipeline checks lengths once per header, then reads fields directly.

use std::net::Ipv4Addr;

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
pub const IPV4_FLAGS: usize = 6;
/// Don't Fragment, in the flags/fragment-offset word.
pub const IPV4_DF: u16 = 0x4000;
pub const IPV4_FRAGMENT_OFFSET: u16 = 0x1fff;
pub const IPV4_TTL: usize = 8;
pub const IPV4_PROTOCOL: usize = 9;
pub const IPV4_CHECKSUM: usize = 10;
pub const IPV4_SRC: usize = 12;
pub const IPV4_DST: usize = 16;
pub const DEFAULT_TTL: u8 = 64;

pub const IPV6_HEADER: usize = 40;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

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

/// ARP for IPv4 over Ethernet: the only kind the pipeline speaks.
pub const ARP_PACKET: usize = 28;
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;
pub const ARP_SENDER_MAC: usize = 8;
pub const ARP_SENDER_IP: usize = 14;
pub const ARP_TARGET_MAC: usize = 18;
pub const ARP_TARGET_IP: usize = 24;

pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

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

pub fn ipv4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::from(be32(b, at))
}

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
    fn mac_round_trips_through_u64() {
        let m = [0x02, 0x47, 0x48, 0xaa, 0xbb, 0xcc];
        assert_eq!(mac_from_u64(mac_to_u64(&m)), m);
        assert_eq!(format_mac(&m), "02:47:48:aa:bb:cc");
    }
}
