//! Completing TCP/UDP checksums the kernel left partial.
//!
//! A packet a local stack sends through a virtual device (veth, virtio with
//! checksum offload) carries only the pseudo-header sum in its checksum
//! field: the "hardware" was meant to finish it. A packet socket receives it
//! that way, and a forwarder that passes it on would emit a corrupt packet,
//! so the port finishes the checksum before handing the frame up: where
//! the kernel says so (the virtio-net header, see `offload`), or, on
//! AF_XDP where nothing says so, where the field evidently holds only the
//! pseudo-header sum (`complete_if_partial`). Segments cut from a
//! super-packet get theirs from `write_l4_checksum`.

use crate::wire::{
    fold, ones_sum, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_QINQ, ETHERTYPE_VLAN, ETH_HEADER,
    IPV4_FLAGS, IPV4_HEADER, IPV4_PROTOCOL, IPV4_SRC, IPV6_HEADER, PROTO_TCP, PROTO_UDP,
};

/// Offset of the checksum field in the TCP and UDP headers.
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;

/// A big-endian u16 at `at`, if the frame holds it (frames here are
/// unvalidated, unlike the pipeline's).
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// `ones_sum` for whole packets: the same value modulo 0xffff (what `fold`
/// keeps), four bytes at a time into a 64-bit accumulator, half the
/// additions and no carry handling in the loop. Summing 16-bit words is what every checksum here
/// does per byte of payload, so this is the ports' hot loop: 64 KiB a
/// super-packet, twice (cut on the way in, verified on the way out).
/// Adding 32-bit big-endian words is adding their two 16-bit halves, as
/// 2^16 is 1 modulo 0xffff; so is folding the 64 bits back to 32.
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut words = data.chunks_exact(4);
    let mut acc = u64::from(initial);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    while acc > u64::from(u32::MAX) {
        acc = (acc & u64::from(u32::MAX)) + (acc >> 32);
    }
    // The tail starts at an even offset, so it pairs bytes as `ones_sum`
    // does; its sum of at most two words cannot overflow with the rest.
    let tail = ones_sum(words.remainder(), 0);
    let acc = acc + u64::from(tail);
    ((acc & u64::from(u32::MAX)) + (acc >> 32)) as u32
}

/// Where a frame's TCP or UDP segment lies, found by `locate_l4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L4 {
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the TCP/UDP header.
    pub l4: usize,
    /// End of the IP packet (trailing Ethernet padding excluded).
    pub end: usize,
    pub proto: u8,
    pub ipv6: bool,
    /// The address part of the pseudo-header sum.
    pseudo: u32,
}

impl L4 {
    /// Offset of the checksum field.
    pub fn checksum_field(&self) -> usize {
        self.l4
            + if self.proto == PROTO_TCP {
                TCP_CHECKSUM
            } else {
                UDP_CHECKSUM
            }
    }

    /// The same positions `by` bytes further into a frame (for a packet
    /// located inside another).
    pub fn shifted(&self, by: usize) -> L4 {
        L4 {
            l3: self.l3 + by,
            l4: self.l4 + by,
            end: self.end + by,
            ..*self
        }
    }

    /// The same segment ending at `end` instead (a segment cut from it).
    pub fn with_end(&self, end: usize) -> L4 {
        L4 { end, ..*self }
    }

    /// The pseudo-header sum for a segment of `len` bytes (not folded).
    fn pseudo_sum(&self, len: usize) -> u32 {
        self.pseudo + len as u32 + u32::from(self.proto)
    }
}

/// Finds the TCP or UDP segment of the Ethernet frame (802.1Q/802.1ad tags
/// allowed); None unless it is a complete, unfragmented IPv4/IPv6 packet
/// whose L4 header starts with its checksum field inside the packet.
pub fn locate_l4(frame: &[u8]) -> Option<L4> {
    locate_l4_in(frame, frame.len())
}

/// `locate_l4` for a frame of `frame_len` bytes of which `headers` holds
/// the first (at least the Ethernet, IP and L4 headers' fixed parts).
pub fn locate_l4_in(headers: &[u8], frame_len: usize) -> Option<L4> {
    let frame = headers;
    let mut at = ETH_HEADER - 2;
    let mut ethertype = be16(frame, at);
    while matches!(ethertype, Some(ETHERTYPE_VLAN | ETHERTYPE_QINQ)) {
        at += 4;
        ethertype = be16(frame, at);
    }
    let l3 = at + 2;
    let located = match ethertype {
        Some(ETHERTYPE_IPV4) => locate_ipv4(frame, l3, frame_len),
        Some(ETHERTYPE_IPV6) => locate_ipv6(frame, l3, frame_len),
        _ => None,
    }?;
    (located.checksum_field() + 2 <= located.end).then_some(located)
}

/// Recomputes the TCP or UDP checksum of the Ethernet frame (802.1Q/802.1ad
/// tags allowed) from scratch. Returns false, leaving the frame untouched,
/// when it is not a complete, unfragmented IPv4/IPv6 TCP or UDP packet.
/// (The ports complete partial checksums where the kernel says they are,
/// `complete_partial`; this is the tests' reference.)
#[cfg(test)]
pub fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    match locate_l4(frame) {
        Some(at) => write_l4_checksum(frame, &at),
        None => false,
    }
}

/// Writes the checksum of the segment `at` describes (which `locate_l4`
/// found in this frame, or in headers copied into it with `end` moved);
/// false, writing nothing, if the segment does not lie inside the frame.
pub fn write_l4_checksum(frame: &mut [u8], at: &L4) -> bool {
    let field = at.checksum_field();
    if at.end > frame.len() || field + 2 > at.end {
        return false;
    }
    frame[field..field + 2].fill(0);
    let sum = sum(&frame[at.l4..at.end], at.pseudo_sum(at.end - at.l4));
    let mut checksum = !fold(sum);
    // In UDP an all-zero checksum means "none"; the same value is all ones.
    if checksum == 0 && at.proto == PROTO_UDP {
        checksum = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    true
}

/// Completes a checksum the kernel left partial, as checksum offload
/// hardware does (`CHECKSUM_PARTIAL`): the field at `field` already holds
/// the pseudo-header sum; the ones' complement sum from `start` to the end
/// of the frame goes there, all ones for zero (zero would mean "no
/// checksum" in UDP). False, writing nothing, if the field is not inside
/// the frame after `start`.
pub fn complete_partial(frame: &mut [u8], start: usize, field: usize) -> bool {
    if field < start || field + 2 > frame.len() {
        return false;
    }
    let checksum = match !fold(sum(&frame[start..], 0)) {
        0 => 0xffff,
        sum => sum,
    };
    frame[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    true
}

/// Completes the TCP/UDP checksum of a frame that arrived without the
/// kernel's word on it (AF_XDP) if it is evidently partial: the field holds
/// exactly the folded pseudo-header sum, which is what Linux leaves for the
/// "hardware" (`th->check = ~tcp_v4_check(len, saddr, daddr, 0)`), and the
/// checksum does not verify. Returns true if it completed one.
///
/// The test on the field costs a 12- or 36-byte sum per frame; only frames
/// that pass it are summed whole. A frame corrupted on the way whose broken
/// checksum happens to equal its pseudo-header sum (one corrupted frame in
/// 65,536) would be "repaired"; frames from real wires are rarely corrupted
/// and Ethernet's CRC has already caught nearly all of those.
pub fn complete_if_partial(frame: &mut [u8]) -> bool {
    let Some(at) = locate_l4(frame) else {
        return false;
    };
    let field = at.checksum_field();
    let pseudo = at.pseudo_sum(at.end - at.l4);
    let Some(value) = be16(frame, field) else {
        return false;
    };
    if value != fold(pseudo) {
        return false;
    }
    if fold(sum(&frame[at.l4..at.end], pseudo)) == 0xffff {
        return false;
    }
    write_l4_checksum(frame, &at)
}

fn locate_ipv4(frame: &[u8], l3: usize, frame_len: usize) -> Option<L4> {
    let header_len = usize::from(frame.get(l3)? & 0x0f) * 4;
    let total = usize::from(be16(frame, l3 + 2)?);
    // More-fragments flag and fragment offset.
    let fragment = be16(frame, l3 + IPV4_FLAGS)? & 0x3fff;
    let proto = *frame.get(l3 + IPV4_PROTOCOL)?;
    let end = l3 + total;
    if header_len < IPV4_HEADER || total < header_len || end > frame_len || fragment != 0 {
        return None;
    }
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return None;
    }
    let addresses = ones_sum(frame.get(l3 + IPV4_SRC..l3 + IPV4_HEADER)?, 0);
    Some(L4 {
        l3,
        l4: l3 + header_len,
        end,
        proto,
        ipv6: false,
        pseudo: addresses,
    })
}

fn locate_ipv6(frame: &[u8], l3: usize, frame_len: usize) -> Option<L4> {
    let payload = usize::from(be16(frame, l3 + 4)?);
    let proto = *frame.get(l3 + 6)?;
    let l4 = l3 + IPV6_HEADER;
    let end = l4 + payload;
    // Extension headers are not walked: offloaded checksums follow the
    // fixed header in practice.
    if end > frame_len || (proto != PROTO_TCP && proto != PROTO_UDP) {
        return None;
    }
    let addresses = ones_sum(frame.get(l3 + 8..l4)?, 0);
    Some(L4 {
        l3,
        l4,
        end,
        proto,
        ipv6: true,
        pseudo: addresses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP/IPv4 frame: 10.0.0.1:1000 -> 10.0.0.2:2000 carrying "hello".
    fn udp4() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let ip = [
            0x45, 0, 0, 33, 0, 0, 0x40, 0, 64, PROTO_UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x03, 0xe8, 0x07, 0xd0, 0, 13, 0, 0]);
        f.extend_from_slice(b"hello");
        f
    }

    /// Verifies a UDP/TCP checksum the way a receiver does: the sum over
    /// pseudo-header and segment including the checksum is all ones.
    fn verifies(frame: &[u8], l4: usize, proto: u8, addrs: std::ops::Range<usize>) -> bool {
        let len = (frame.len() - l4) as u32;
        let sum = ones_sum(
            &frame[l4..],
            ones_sum(&frame[addrs], 0) + len + u32::from(proto),
        );
        fold(sum) == 0xffff
    }

    #[test]
    fn completes_a_partial_udp4_checksum() {
        let mut f = udp4();
        // What offload leaves behind: some non-final value.
        f[40..42].copy_from_slice(&[0x12, 0x34]);
        assert!(complete_l4_checksum(&mut f));
        assert!(verifies(&f, 34, PROTO_UDP, 26..34));
        assert_ne!(&f[40..42], &[0, 0]);
    }

    #[test]
    fn sees_through_vlan_tags_and_handles_ipv6_tcp() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let l3 = f.len();
        let mut ip = vec![0x60, 0, 0, 0, 0, 21, PROTO_TCP, 64];
        ip.extend((0..32).map(|i| i as u8));
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[12] = 5 << 4;
        f.extend_from_slice(&tcp);
        f.push(b'x');
        assert!(complete_l4_checksum(&mut f));
        assert!(verifies(&f, l3 + 40, PROTO_TCP, l3 + 8..l3 + 40));
    }

    #[test]
    fn leaves_other_and_broken_frames_alone() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!complete_l4_checksum(&mut arp));

        let mut short = udp4();
        short.truncate(30);
        assert!(!complete_l4_checksum(&mut short));

        let mut fragment = udp4();
        fragment[20] = 0x20; // more fragments
        let before = fragment.clone();
        assert!(!complete_l4_checksum(&mut fragment));
        assert_eq!(fragment, before);

        let mut lying_length = udp4();
        lying_length[16..18].copy_from_slice(&1500u16.to_be_bytes());
        assert!(!complete_l4_checksum(&mut lying_length));
        assert!(!complete_l4_checksum(&mut []));
    }

    #[test]
    fn completes_only_what_is_evidently_partial() {
        // What a Linux sender leaves: the folded pseudo-header sum.
        let mut partial = udp4();
        let pseudo = ones_sum(&partial[26..34], 0) + 13 + u32::from(PROTO_UDP);
        partial[40..42].copy_from_slice(&fold(pseudo).to_be_bytes());
        assert!(complete_if_partial(&mut partial));
        assert!(verifies(&partial, 34, PROTO_UDP, 26..34));

        // Complete checksums and plain corruption are left as they are.
        assert!(!complete_if_partial(&mut partial));
        let mut corrupt = partial.clone();
        corrupt[42] ^= 0xff;
        let before = corrupt.clone();
        assert!(!complete_if_partial(&mut corrupt));
        assert_eq!(corrupt, before);
        assert!(!complete_if_partial(&mut [0u8; 20]));
    }

    #[test]
    fn the_wide_sum_folds_to_what_the_word_sum_folds_to() {
        // Lengths around the 4-byte stride, odd tails, all-ones data
        // (the most carries) and zeros.
        for len in [0, 1, 2, 3, 4, 5, 7, 8, 9, 1500, 1501, 65_535] {
            for data in [
                (0..len).map(|i| (i * 31 % 256) as u8).collect::<Vec<_>>(),
                vec![0xff; len],
                vec![0; len],
            ] {
                for initial in [0, 1, 0xffff, 0x1_2345, u32::MAX >> 1] {
                    let (wide, narrow) = (sum(&data, initial), ones_sum(&data, initial));
                    assert_eq!(fold(wide), fold(narrow), "len {len}, initial {initial:#x}");
                }
            }
        }
    }
}
