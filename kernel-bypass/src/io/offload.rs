//! The kernel's offload metadata on received packets, and segmentation in
//! software, so that the pipeline only ever sees wire-sized frames with
//! complete checksums.
//!
//! A Linux host with its default settings (TSO, GSO and transmit checksum
//! offload on) hands a virtual device TCP "super-packets" of up to 64 KiB
//! whose checksums hold only the pseudo-header sum: the "hardware" was to
//! cut them into MSS-sized segments and finish the checksums. A veth or tap
//! passes them on like that, so a forwarder behind one receives them.
//! Packet sockets with `PACKET_VNET_HDR` and taps with `IFF_VNET_HDR` put a
//! virtio-net header (`struct virtio_net_hdr`, include/uapi/linux/virtio_net.h)
//! in front of every packet saying so; `deliver` reads it and does what the
//! NIC would have done on the wire: one frame per segment, each with its
//! IPv4 length, identification and header checksum, TCP sequence number and
//! flags (FIN and PSH on the last segment only, CWR on the first only, as
//! Linux's own `tcp_gso_segment`) or UDP length, and a complete TCP/UDP
//! checksum. A TCP super-packet inside VXLAN (a Linux VTEP peer's: the
//! header then describes the inner TCP) is cut inside, and each segment's
//! outer IP and UDP headers follow (length, identification, checksums; a
//! zero outer UDP checksum stays zero, "none"). The segments are written straight into the caller's
//! preallocated batch; nothing is allocated.
//!
//! The header is as untrusted as the frame: a header that contradicts the
//! frame (GSO size 0, lengths or checksum offsets outside it, a checksum
//! position that is not the frame's TCP/UDP checksum field, a GSO type
//! that does not match the packet) drops the packet and counts it; nothing
//! panics. Packets whose segments would not fit a frame buffer, or that
//! would need more frames than a whole batch holds, are dropped too.
//!
//! A whole packet's partial checksum is completed as the hardware would,
//! from `csum_start` to the end, whatever it covers (a VXLAN peer's inner
//! TCP checksum too); a super-packet's segments get theirs computed afresh.
//!
//! The ports put runs of segments back together on the way out
//! (`coalesce`). Forwarding super-packets whole through the pipeline (VPP's
//! GSO model) would save cutting and merging; that needs frames larger
//! than a buffer, which the pipeline does not have.

use super::checksum::{self, L4};
use crate::frame::{Batch, Frame, MAX_FRAME};
use crate::wire::{checksum as inet_checksum, ETH_HEADER, IPV4_CHECKSUM, PROTO_TCP, PROTO_UDP};

/// Bytes of `struct virtio_net_hdr` (without `num_buffers`).
pub const VNET_HDR_LEN: usize = 10;

/// `flags`: the TCP/UDP checksum at `csum_start + csum_offset` holds only
/// the pseudo-header sum.
const F_NEEDS_CSUM: u8 = 1;
/// `gso_type` values (the low 7 bits) and the ECN bit.
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

/// The longest header run a super-packet may have: Ethernet with two tags,
/// IPv4 with options, TCP with options; for a tunnel's, outer Ethernet,
/// IPv6, UDP and VXLAN in front.
const MAX_HEADERS: usize = 14 + 8 + 40 + UDP_HEADER + VXLAN_HEADER + 14 + 8 + 60 + 60;
/// The tunnel header between the outer UDP header and the inner Ethernet
/// frame (VXLAN's; GENEVE's without options has the same size).
const VXLAN_HEADER: usize = 8;
/// Where an 802.1Q tag the kernel took out of the data goes back.
const MAC_ADDRS: usize = 12;
const VLAN_TAG_LEN: usize = 4;

/// Offsets and bits of the headers a segment rewrites.
const IPV4_TOTAL_LEN: usize = 2;
const IPV4_ID: usize = 4;
const IPV6_PAYLOAD_LEN: usize = 4;
const TCP_SEQ: usize = 4;
const TCP_DATA_OFFSET: usize = 12;
const TCP_FLAGS: usize = 13;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
const TCP_MIN_HEADER: usize = 20;
const UDP_LEN: usize = 4;
const UDP_HEADER: usize = 8;

/// A virtio-net header as the kernel wrote it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Length of the headers (a hint; not trusted).
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS for TCP).
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads a header; None if `bytes` is shorter than one. Neither packet
    /// sockets nor our taps ask for little-endian headers, so the kernel
    /// writes them in the legacy virtio byte order, the host's.
    pub fn parse(bytes: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = bytes.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u16_at = |at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// The header's wire form (what a sender writes; tests build input with it).
    pub fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    fn needs_checksum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }
}

/// What a port's offload handling did, since the port opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffloadCounters {
    /// Super-packets cut into wire-sized frames.
    pub super_packets: u64,
    /// Frames those made.
    pub segments: u64,
    /// Partial TCP/UDP checksums completed (segments' checksums not included).
    pub checksums_completed: u64,
    /// Packets dropped: malformed or unsupported offload metadata, segments
    /// too large for a buffer, or more segments than a batch holds.
    pub dropped: u64,
}

impl std::ops::AddAssign for OffloadCounters {
    fn add_assign(&mut self, other: OffloadCounters) {
        self.super_packets += other.super_packets;
        self.segments += other.segments;
        self.checksums_completed += other.checksums_completed;
        self.dropped += other.dropped;
    }
}

/// The result of delivering one packet into a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// This many frames were appended; 0 when the packet was dropped (and
    /// counted).
    Added(usize),
    /// The packet needs more free frames than the batch has left (but no
    /// more than a whole batch): nothing was written; deliver it again into
    /// the next batch.
    NoRoom,
}

/// Appends `packet` (as the kernel handed it over, with `hdr` in front of
/// it and, if the kernel took it out, the 802.1Q `tag`) to `batch` as
/// wire-sized frames with complete checksums.
pub fn deliver(
    hdr: &VnetHdr,
    packet: &[u8],
    tag: Option<[u8; 4]>,
    batch: &mut Batch,
    counters: &mut OffloadCounters,
) -> Delivery {
    let gso = hdr.gso_type & !GSO_ECN;
    let result = if gso == GSO_NONE {
        deliver_whole(hdr, packet, tag, batch)
    } else {
        segment(hdr, gso, packet, tag, batch)
    };
    match result {
        Ok(Done::Whole { completed }) => {
            counters.checksums_completed += u64::from(completed);
            Delivery::Added(1)
        }
        Ok(Done::Segmented(n)) => {
            counters.super_packets += 1;
            counters.segments += n as u64;
            Delivery::Added(n)
        }
        Err(Refused::NoRoom) => Delivery::NoRoom,
        Err(Refused::Dropped) => {
            counters.dropped += 1;
            Delivery::Added(0)
        }
    }
}

enum Done {
    Whole { completed: bool },
    Segmented(usize),
}

enum Refused {
    NoRoom,
    Dropped,
}

/// Whether the header's own lengths and offsets lie inside the packet.
fn header_fits(hdr: &VnetHdr, packet: &[u8]) -> bool {
    let csum_end = usize::from(hdr.csum_start) + usize::from(hdr.csum_offset) + 2;
    usize::from(hdr.hdr_len) <= packet.len() && (!hdr.needs_checksum() || csum_end <= packet.len())
}

/// Whether the header's checksum position is the TCP/UDP checksum field
/// the frame's own headers put at `at` (`shift`: bytes of tag put back in
/// front of it).
fn checksum_position_agrees(hdr: &VnetHdr, at: &L4, shift: usize) -> bool {
    usize::from(hdr.csum_start) + shift == at.l4
        && at.l4 + usize::from(hdr.csum_offset) == at.checksum_field()
}

fn deliver_whole(
    hdr: &VnetHdr,
    packet: &[u8],
    tag: Option<[u8; 4]>,
    batch: &mut Batch,
) -> Result<Done, Refused> {
    if !header_fits(hdr, packet) {
        return Err(Refused::Dropped);
    }
    let frame = batch.next_free().ok_or(Refused::NoRoom)?;
    if packet.is_empty() || !fill_with_tag(frame, packet, tag) {
        return Err(Refused::Dropped);
    }
    let completed = hdr.needs_checksum();
    if completed {
        // Done as the hardware would: whatever the checksum covers (TCP or
        // UDP, or the inner TCP of a VXLAN packet a peer encapsulated),
        // from `csum_start` to the end. Never inside the MAC header.
        let start = usize::from(hdr.csum_start) + tag.map_or(0, |t| t.len());
        let field = start + usize::from(hdr.csum_offset);
        if start < ETH_HEADER || !checksum::complete_partial(frame.data_mut(), start, field) {
            return Err(Refused::Dropped);
        }
    }
    batch.push_filled();
    Ok(Done::Whole { completed })
}

/// Cuts a GSO super-packet into segments of `hdr.gso_size` payload bytes.
fn segment(
    hdr: &VnetHdr,
    gso: u8,
    packet: &[u8],
    tag: Option<[u8; 4]>,
    batch: &mut Batch,
) -> Result<Done, Refused> {
    if !header_fits(hdr, packet) {
        return Err(Refused::Dropped);
    }
    // The headers as they will go out: the tag back after the MAC addresses.
    let shift = tag.map_or(0, |t| t.len());
    let frame_len = packet.len() + shift;
    let mut head = [0u8; MAX_HEADERS];
    let head_len = frame_len.min(MAX_HEADERS);
    match tag {
        Some(tag) if packet.len() >= MAC_ADDRS => {
            head[..MAC_ADDRS].copy_from_slice(&packet[..MAC_ADDRS]);
            head[MAC_ADDRS..MAC_ADDRS + VLAN_TAG_LEN].copy_from_slice(&tag);
            let rest = head_len - MAC_ADDRS - VLAN_TAG_LEN;
            head[MAC_ADDRS + VLAN_TAG_LEN..head_len]
                .copy_from_slice(&packet[MAC_ADDRS..MAC_ADDRS + rest]);
        }
        Some(_) => return Err(Refused::Dropped),
        None => head[..head_len].copy_from_slice(&packet[..head_len]),
    }
    let head = &head[..head_len];

    let first = checksum::locate_l4_in(head, frame_len).ok_or(Refused::Dropped)?;
    // A TCP super-packet inside UDP is a tunnel's (a Linux VXLAN peer's
    // with default offloads): segmented inside, the outer headers follow.
    let (at, outer) = if first.proto == PROTO_UDP && matches!(gso, GSO_TCPV4 | GSO_TCPV6) {
        let inner_eth = first.l4 + UDP_HEADER + VXLAN_HEADER;
        let inner = head
            .get(inner_eth..)
            .and_then(|inner| checksum::locate_l4_in(inner, frame_len - inner_eth))
            .ok_or(Refused::Dropped)?
            .shifted(inner_eth);
        if inner.end != first.end {
            return Err(Refused::Dropped);
        }
        (inner, Some(first))
    } else {
        (first, None)
    };
    let type_matches = match gso {
        GSO_TCPV4 => at.proto == PROTO_TCP && !at.ipv6,
        GSO_TCPV6 => at.proto == PROTO_TCP && at.ipv6,
        GSO_UDP_L4 => at.proto == PROTO_UDP,
        // UFO (IP fragmentation of UDP) and anything newer.
        _ => false,
    };
    if !type_matches || (hdr.needs_checksum() && !checksum_position_agrees(hdr, &at, shift)) {
        return Err(Refused::Dropped);
    }
    let l4_header = if at.proto == PROTO_TCP {
        let data_offset =
            usize::from(head.get(at.l4 + TCP_DATA_OFFSET).ok_or(Refused::Dropped)? >> 4) * 4;
        if data_offset < TCP_MIN_HEADER {
            return Err(Refused::Dropped);
        }
        data_offset
    } else {
        UDP_HEADER
    };
    // Every segment starts with these `headers` bytes of the super-packet.
    let headers = at.l4 + l4_header;
    if headers > head.len() || headers > at.end {
        return Err(Refused::Dropped);
    }
    let mss = usize::from(hdr.gso_size);
    let payload = at.end - headers;
    if mss == 0 || headers + mss.min(payload) > MAX_FRAME {
        return Err(Refused::Dropped);
    }
    let count = payload.div_ceil(mss).max(1);
    if count > batch.capacity() {
        return Err(Refused::Dropped);
    }
    if count > batch.capacity() - batch.len() {
        return Err(Refused::NoRoom);
    }

    for i in 0..count {
        let offset = i * mss;
        let chunk = mss.min(payload - offset);
        let Some(frame) = batch.next_free() else {
            // Unreachable: the room was checked above.
            return Err(Refused::NoRoom);
        };
        let buf = frame.reset(headers + chunk);
        buf[..headers].copy_from_slice(&head[..headers]);
        // Payload bytes sit `shift` earlier in the packet than in the frame.
        let from = headers + offset - shift;
        buf[headers..].copy_from_slice(&packet[from..from + chunk]);
        let segment = SegmentOf {
            at: at.with_end(headers + chunk),
            outer: outer.map(|outer| outer.with_end(headers + chunk)),
            index: i,
            offset,
            last: i + 1 == count,
        };
        segment.rewrite(buf);
        batch.push_filled();
    }
    Ok(Done::Segmented(count))
}

/// One segment's place in its super-packet.
struct SegmentOf {
    /// The segment's IP and L4 positions (its `end` is the segment's).
    at: L4,
    /// A tunnel's outer IP and UDP positions, likewise.
    outer: Option<L4>,
    index: usize,
    /// Payload offset in the super-packet.
    offset: usize,
    last: bool,
}

impl SegmentOf {
    /// Rewrites the copied headers for this segment and its checksums.
    fn rewrite(&self, buf: &mut [u8]) {
        let at = &self.at;
        self.rewrite_ip(buf, at);
        if at.proto == PROTO_TCP {
            let seq = u32::from_be_bytes([
                buf[at.l4 + TCP_SEQ],
                buf[at.l4 + TCP_SEQ + 1],
                buf[at.l4 + TCP_SEQ + 2],
                buf[at.l4 + TCP_SEQ + 3],
            ])
            .wrapping_add(self.offset as u32);
            buf[at.l4 + TCP_SEQ..at.l4 + TCP_SEQ + 4].copy_from_slice(&seq.to_be_bytes());
            let flags = &mut buf[at.l4 + TCP_FLAGS];
            if !self.last {
                *flags &= !(TCP_FIN | TCP_PSH);
            }
            if self.index > 0 {
                *flags &= !TCP_CWR;
            }
        } else {
            put16(buf, at.l4 + UDP_LEN, (at.end - at.l4) as u16);
        }
        checksum::write_l4_checksum(buf, at);
        // The tunnel's headers after the inner ones: the outer UDP
        // checksum covers the inner packet. A zero one means "none".
        if let Some(outer) = &self.outer {
            self.rewrite_ip(buf, outer);
            put16(buf, outer.l4 + UDP_LEN, (outer.end - outer.l4) as u16);
            if get16(buf, outer.checksum_field()) != 0 {
                checksum::write_l4_checksum(buf, outer);
            }
        }
    }

    /// The IP length (and for IPv4 the identification and checksum) of
    /// this segment's IP header at `at`.
    fn rewrite_ip(&self, buf: &mut [u8], at: &L4) {
        let ip_len = at.end - at.l3;
        if at.ipv6 {
            put16(buf, at.l3 + IPV6_PAYLOAD_LEN, (ip_len - 40) as u16);
        } else {
            let ihl = usize::from(buf[at.l3] & 0x0f) * 4;
            put16(buf, at.l3 + IPV4_TOTAL_LEN, ip_len as u16);
            let id = get16(buf, at.l3 + IPV4_ID).wrapping_add(self.index as u16);
            put16(buf, at.l3 + IPV4_ID, id);
            put16(buf, at.l3 + IPV4_CHECKSUM, 0);
            let sum = inet_checksum(&buf[at.l3..at.l3 + ihl]);
            put16(buf, at.l3 + IPV4_CHECKSUM, sum);
        }
    }
}

fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Copies a received packet into `frame`, putting back the 802.1Q tag the
/// kernel moved out of the data (it always does, before packet sockets see
/// a frame); false if the result does not fit.
pub fn fill_with_tag(frame: &mut Frame, packet: &[u8], tag: Option<[u8; 4]>) -> bool {
    let Some(tag) = tag else {
        return frame.fill_from(packet);
    };
    if packet.len() < MAC_ADDRS || packet.len() + tag.len() > MAX_FRAME {
        frame.reset(0);
        return false;
    }
    let buf = frame.reset(packet.len() + tag.len());
    buf[..MAC_ADDRS].copy_from_slice(&packet[..MAC_ADDRS]);
    buf[MAC_ADDRS..MAC_ADDRS + tag.len()].copy_from_slice(&tag);
    buf[MAC_ADDRS + tag.len()..].copy_from_slice(&packet[MAC_ADDRS..]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{fold, ones_sum, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
    use proptest::prelude::*;

    const TCP_ACK: u8 = 0x10;
    /// TCP header with 12 bytes of options (timestamps), as Linux sends.
    const TCP_HEADER: usize = 32;

    /// The folded pseudo-header sum a Linux sender leaves in the field.
    fn partial(addresses: &[u8], len: usize, proto: u8) -> u16 {
        fold(ones_sum(addresses, len as u32 + u32::from(proto)))
    }

    /// An Ethernet frame carrying an IPv4 or IPv6 TCP super-packet with
    /// `payload` bytes, its checksum partial, and its virtio-net header.
    fn tcp_super(ipv6: bool, payload: usize, mss: u16) -> (VnetHdr, Vec<u8>) {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        let l4_len = TCP_HEADER + payload;
        let (ethertype, gso) = if ipv6 {
            (ETHERTYPE_IPV6, GSO_TCPV6)
        } else {
            (ETHERTYPE_IPV4, GSO_TCPV4)
        };
        f.extend_from_slice(&ethertype.to_be_bytes());
        let addresses: Vec<u8> = if ipv6 {
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&(l4_len as u16).to_be_bytes());
            ip.extend_from_slice(&[PROTO_TCP, 64]);
            ip.extend((0..32).map(|i| i as u8 + 1));
            f.extend_from_slice(&ip);
            ip[8..].to_vec()
        } else {
            let total = (20 + l4_len) as u16;
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, PROTO_TCP, 0, 0]);
            ip.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            let sum = inet_checksum(&ip);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&ip);
            ip[12..].to_vec()
        };
        let l4 = f.len();
        let mut tcp = vec![0u8; TCP_HEADER];
        tcp[..4].copy_from_slice(&[0x13, 0x88, 0xc0, 0x01]);
        tcp[4..8].copy_from_slice(&0xffff_f000u32.to_be_bytes()); // wraps
        tcp[12] = ((TCP_HEADER / 4) as u8) << 4;
        tcp[13] = TCP_CWR | TCP_ACK | TCP_PSH | TCP_FIN;
        let check = partial(&addresses, l4_len, PROTO_TCP);
        tcp[16..18].copy_from_slice(&check.to_be_bytes());
        f.extend_from_slice(&tcp);
        f.extend((0..payload).map(|i| (i * 7 % 251) as u8));
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: gso,
            hdr_len: (l4 + TCP_HEADER) as u16,
            gso_size: mss,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        (hdr, f)
    }

    /// An IPv4 UDP super-packet (GSO_UDP_L4) with `payload` bytes.
    fn udp_super(payload: usize, size: u16) -> (VnetHdr, Vec<u8>) {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0];
        let l4_len = 8 + payload;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0, 0, 64, PROTO_UDP, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let sum = inet_checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x10, 0x00, 0x20, 0x00]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        let check = partial(&ip[12..], l4_len, PROTO_UDP);
        f.extend_from_slice(&check.to_be_bytes());
        f.extend((0..payload).map(|i| (i % 13) as u8));
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            hdr_len: 42,
            gso_size: size,
            csum_start: 34,
            csum_offset: 6,
        };
        (hdr, f)
    }

    /// Whether the frame's IPv4 header checksum (if IPv4) and TCP/UDP
    /// checksum verify, as a receiver checks them.
    fn checksums_verify(frame: &[u8]) -> bool {
        let Some(at) = checksum::locate_l4(frame) else {
            return false;
        };
        let addresses = if at.ipv6 {
            &frame[at.l3 + 8..at.l3 + 40]
        } else {
            let ihl = usize::from(frame[at.l3] & 0x0f) * 4;
            if fold(ones_sum(&frame[at.l3..at.l3 + ihl], 0)) != 0xffff {
                return false;
            }
            &frame[at.l3 + 12..at.l3 + 20]
        };
        let len = at.end - at.l4;
        let pseudo = ones_sum(addresses, len as u32 + u32::from(at.proto));
        fold(ones_sum(&frame[at.l4..at.end], pseudo)) == 0xffff
    }

    fn run(
        hdr: &VnetHdr,
        packet: &[u8],
        tag: Option<[u8; 4]>,
        batch: &mut Batch,
    ) -> (Delivery, OffloadCounters) {
        let mut counters = OffloadCounters::default();
        let delivery = deliver(hdr, packet, tag, batch, &mut counters);
        (delivery, counters)
    }

    fn be32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn a_tcp4_super_packet_becomes_wire_sized_segments() {
        let (hdr, packet) = tcp_super(false, 10_000, 1448);
        let mut batch = Batch::new(16);
        let (delivery, counters) = run(&hdr, &packet, None, &mut batch);
        assert_eq!(delivery, Delivery::Added(7));
        assert_eq!((counters.super_packets, counters.segments), (1, 7));
        let headers = 14 + 20 + TCP_HEADER;
        let mut payload = Vec::new();
        for (i, frame) in batch.frames().iter().enumerate() {
            let f = frame.data();
            assert!(checksums_verify(f), "segment {i}");
            let chunk = if i < 6 { 1448 } else { 10_000 - 6 * 1448 };
            assert_eq!(f.len(), headers + chunk);
            assert_eq!(get16(f, 14 + 2) as usize, 20 + TCP_HEADER + chunk);
            assert_eq!(get16(f, 14 + 4), 0x1234 + i as u16, "IP id");
            let seq = be32_at(f, 34 + 4);
            assert_eq!(seq, 0xffff_f000u32.wrapping_add(i as u32 * 1448));
            let flags = f[34 + 13];
            assert_eq!(flags & TCP_CWR != 0, i == 0, "CWR on the first only");
            assert_eq!(
                flags & (TCP_FIN | TCP_PSH) != 0,
                i == 6,
                "FIN/PSH on the last"
            );
            assert_ne!(flags & TCP_ACK, 0);
            payload.extend_from_slice(&f[headers..]);
        }
        assert_eq!(payload, packet[headers..]);
    }

    #[test]
    fn a_tagged_tcp6_super_packet_keeps_its_tag_in_every_segment() {
        let (hdr, packet) = tcp_super(true, 3000, 1400);
        let tag = [0x81, 0x00, 0x00, 0x07];
        let mut batch = Batch::new(4);
        let (delivery, _) = run(&hdr, &packet, Some(tag), &mut batch);
        assert_eq!(delivery, Delivery::Added(3));
        let mut payload = Vec::new();
        for frame in batch.frames() {
            let f = frame.data();
            assert_eq!(&f[12..16], &tag);
            assert!(checksums_verify(f));
            assert_eq!(get16(f, 18 + 4) as usize, f.len() - 18 - 40);
            payload.extend_from_slice(&f[18 + 40 + TCP_HEADER..]);
        }
        assert_eq!(payload, packet[14 + 40 + TCP_HEADER..]);
    }

    #[test]
    fn a_udp_super_packet_becomes_datagrams() {
        let (hdr, packet) = udp_super(3000, 1200);
        let mut batch = Batch::new(4);
        let (delivery, _) = run(&hdr, &packet, None, &mut batch);
        assert_eq!(delivery, Delivery::Added(3));
        for (i, frame) in batch.frames().iter().enumerate() {
            let f = frame.data();
            assert!(checksums_verify(f), "datagram {i}");
            let chunk = if i < 2 { 1200 } else { 600 };
            assert_eq!(get16(f, 34 + 4) as usize, 8 + chunk);
        }
    }

    /// `inner` (an Ethernet frame) inside VXLAN over IPv4/UDP, the outer
    /// UDP checksum on or off, as a Linux VXLAN device sends it.
    fn in_vxlan(inner: &[u8], udp_checksum: bool) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 9, 0x02, 0, 0, 0, 0, 8, 0x08, 0];
        let udp_len = 8 + 8 + inner.len();
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        ip.extend_from_slice(&[
            0x77, 0, 0, 0, 64, PROTO_UDP, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ]);
        let sum = inet_checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0xc3, 0x50, 0x12, 0xb5]);
        f.extend_from_slice(&(udp_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, u8::from(udp_checksum)]);
        f.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 42, 0]);
        f.extend_from_slice(inner);
        f
    }

    #[test]
    fn a_tcp_super_packet_inside_vxlan_is_cut_inside_and_out() {
        for udp_checksum in [false, true] {
            let (inner_hdr, inner) = tcp_super(false, 4000, 1400);
            let packet = in_vxlan(&inner, udp_checksum);
            let outer_len = 14 + 20 + 8 + 8;
            let hdr = VnetHdr {
                csum_start: inner_hdr.csum_start + outer_len as u16,
                hdr_len: inner_hdr.hdr_len + outer_len as u16,
                ..inner_hdr
            };
            let mut batch = Batch::new(8);
            let (delivery, counters) = run(&hdr, &packet, None, &mut batch);
            assert_eq!(delivery, Delivery::Added(3), "{counters:?}");
            let mut payload = Vec::new();
            for (i, frame) in batch.frames().iter().enumerate() {
                let f = frame.data();
                // The outer IPv4 header and UDP datagram, then the inner.
                assert_eq!(fold(ones_sum(&f[14..34], 0)), 0xffff, "outer IPv4 {i}");
                assert_eq!(get16(f, 16) as usize, f.len() - 14);
                assert_eq!(get16(f, 18), 0x7700 + i as u16);
                assert_eq!(get16(f, 38) as usize, f.len() - 34);
                if udp_checksum {
                    assert!(checksums_verify(f), "outer UDP {i}");
                } else {
                    assert_eq!(get16(f, 40), 0);
                }
                assert!(checksums_verify(&f[outer_len..]), "inner {i}");
                payload.extend_from_slice(&f[outer_len + 14 + 20 + TCP_HEADER..]);
            }
            assert_eq!(payload, inner[14 + 20 + TCP_HEADER..]);
        }
    }

    #[test]
    fn a_partial_checksum_is_completed_and_a_plain_frame_passes() {
        let (mut hdr, packet) = tcp_super(false, 100, 1448);
        hdr.gso_type = GSO_NONE;
        let mut batch = Batch::new(2);
        let (delivery, counters) = run(&hdr, &packet, None, &mut batch);
        assert_eq!(delivery, Delivery::Added(1));
        assert_eq!(counters.checksums_completed, 1);
        assert!(checksums_verify(batch.frames()[0].data()));

        let plain = VnetHdr::default();
        let (delivery, counters) = run(&plain, &[0xab; 60], None, &mut batch);
        assert_eq!(delivery, Delivery::Added(1));
        assert_eq!(counters, OffloadCounters::default());
        assert_eq!(batch.frames()[1].data(), &[0xab; 60]);
    }

    #[test]
    fn a_super_packet_waits_for_a_batch_with_room() {
        let (hdr, packet) = tcp_super(false, 10_000, 1448);
        let mut batch = Batch::new(8);
        for _ in 0..3 {
            assert!(batch.push_copy(&[0; 60]));
        }
        let (delivery, counters) = run(&hdr, &packet, None, &mut batch);
        assert_eq!(delivery, Delivery::NoRoom);
        assert_eq!((batch.len(), counters), (3, OffloadCounters::default()));
        batch.clear();
        assert_eq!(run(&hdr, &packet, None, &mut batch).0, Delivery::Added(7));

        // More segments than a whole batch holds can never be delivered.
        let mut small = Batch::new(4);
        let (delivery, counters) = run(&hdr, &packet, None, &mut small);
        assert_eq!((delivery, counters.dropped), (Delivery::Added(0), 1));
    }

    #[test]
    fn headers_that_contradict_the_frame_are_dropped_and_counted() {
        let (good, packet) = tcp_super(false, 5000, 1448);
        let len = packet.len() as u16;
        let lies: [(&str, VnetHdr); 9] = [
            (
                "gso size 0",
                VnetHdr {
                    gso_size: 0,
                    ..good
                },
            ),
            (
                "hdr_len past the frame",
                VnetHdr {
                    hdr_len: len + 1,
                    ..good
                },
            ),
            (
                "csum_start past the frame",
                VnetHdr {
                    csum_start: len,
                    ..good
                },
            ),
            (
                "csum_offset past the frame",
                VnetHdr {
                    csum_offset: len - 20,
                    ..good
                },
            ),
            (
                "csum_start at the IP header",
                VnetHdr {
                    csum_start: 14,
                    ..good
                },
            ),
            (
                "csum_offset not TCP's",
                VnetHdr {
                    csum_offset: 6,
                    ..good
                },
            ),
            (
                "TCPv6 on IPv4",
                VnetHdr {
                    gso_type: GSO_TCPV6,
                    ..good
                },
            ),
            (
                "UFO",
                VnetHdr {
                    gso_type: 3,
                    ..good
                },
            ),
            (
                "segments larger than a buffer",
                VnetHdr {
                    gso_size: 4000,
                    ..good
                },
            ),
        ];
        for (what, hdr) in lies {
            let mut batch = Batch::new(8);
            let (delivery, counters) = run(&hdr, &packet, None, &mut batch);
            assert_eq!(delivery, Delivery::Added(0), "{what}");
            assert_eq!(counters.dropped, 1, "{what}");
            assert!(batch.is_empty(), "{what}");
        }
        // The same header on a frame cut short, or on no frame at all.
        let mut batch = Batch::new(8);
        assert_eq!(run(&good, &packet[..60], None, &mut batch).1.dropped, 1);
        assert_eq!(run(&good, &[], None, &mut batch).1.dropped, 1);
        let whole = VnetHdr {
            gso_type: GSO_NONE,
            ..good
        };
        assert_eq!(run(&whole, &packet[..60], None, &mut batch).1.dropped, 1);
        let in_the_mac_header = VnetHdr {
            csum_start: 4,
            csum_offset: 0,
            ..whole
        };
        assert_eq!(
            run(&in_the_mac_header, &packet, None, &mut batch).1.dropped,
            1
        );
        assert!(batch.is_empty());
    }

    #[test]
    fn the_header_round_trips_through_its_wire_form() {
        let (hdr, _) = tcp_super(true, 10, 1000);
        assert_eq!(VnetHdr::parse(&hdr.to_bytes()), Some(hdr));
        assert_eq!(VnetHdr::parse(&[0; VNET_HDR_LEN - 1]), None);
    }

    #[test]
    fn vlan_tag_goes_back_after_the_mac_addresses() {
        let mut batch = Batch::new(1);
        let frame = batch.next_free().unwrap();
        let packet: Vec<u8> = (0..20).collect();
        assert!(fill_with_tag(
            frame,
            &packet,
            Some([0x81, 0x00, 0x00, 0x07])
        ));
        assert_eq!(&frame.data()[..12], &packet[..12]);
        assert_eq!(&frame.data()[12..16], &[0x81, 0x00, 0x00, 0x07]);
        assert_eq!(&frame.data()[16..], &packet[12..]);
        assert!(fill_with_tag(frame, &packet, None));
        assert_eq!(frame.data(), &packet[..]);
    }

    #[test]
    fn tagged_packets_that_cannot_hold_the_tag_are_refused() {
        let mut batch = Batch::new(1);
        let frame = batch.next_free().unwrap();
        assert!(!fill_with_tag(frame, &[0; 11], Some([0x81, 0, 0, 1])));
        assert!(!fill_with_tag(
            frame,
            &vec![0; MAX_FRAME - 3],
            Some([0x81, 0, 0, 1])
        ));
        assert!(frame.is_empty());
    }

    /// The outcome's invariants: frames fit buffers, the count matches the
    /// batch, and a drop leaves the batch as it was.
    fn check_outcome(delivery: Delivery, counters: &OffloadCounters, before: usize, batch: &Batch) {
        match delivery {
            Delivery::NoRoom => assert_eq!(batch.len(), before),
            Delivery::Added(0) => {
                assert_eq!(batch.len(), before);
                assert_eq!(counters.dropped, 1);
            }
            Delivery::Added(n) => {
                assert_eq!(batch.len(), before + n);
                assert_eq!(counters.dropped, 0);
            }
        }
        assert!(batch.frames().iter().all(|f| f.len() <= MAX_FRAME));
    }

    proptest! {
        /// Any header on any bytes: no panic, and the invariants hold.
        #[test]
        fn random_headers_on_random_bytes_never_panic(
            raw in proptest::array::uniform10(any::<u8>()),
            bytes in proptest::collection::vec(any::<u8>(), 0..3000),
            tag in proptest::option::of(proptest::array::uniform4(any::<u8>())),
            prefill in 0usize..8,
        ) {
            let hdr = VnetHdr::parse(&raw).unwrap();
            let mut batch = Batch::new(8);
            for _ in 0..prefill {
                batch.push_copy(&[0; 60]);
            }
            let (delivery, counters) = run(&hdr, &bytes, tag, &mut batch);
            check_outcome(delivery, &counters, prefill, &batch);
        }

        /// Real super-packets with one or more header fields made up: no
        /// panic; whatever is delivered has checksums that verify.
        #[test]
        fn mutated_headers_on_real_super_packets_never_panic(
            ipv6 in any::<bool>(),
            payload in 0usize..20_000,
            mss in 1u16..3000,
            gso_type in proptest::option::of(any::<u8>()),
            hdr_len in proptest::option::of(any::<u16>()),
            csum_start in proptest::option::of(any::<u16>()),
            csum_offset in proptest::option::of(any::<u16>()),
            flags in proptest::option::of(any::<u8>()),
            cut in proptest::option::of(0usize..20_100),
        ) {
            let (good, mut packet) = tcp_super(ipv6, payload, mss);
            let hdr = VnetHdr {
                gso_type: gso_type.unwrap_or(good.gso_type),
                hdr_len: hdr_len.unwrap_or(good.hdr_len),
                csum_start: csum_start.unwrap_or(good.csum_start),
                csum_offset: csum_offset.unwrap_or(good.csum_offset),
                flags: flags.unwrap_or(good.flags),
                ..good
            };
            if let Some(cut) = cut {
                packet.truncate(cut);
            }
            let mut batch = Batch::new(32);
            let (delivery, counters) = run(&hdr, &packet, None, &mut batch);
            check_outcome(delivery, &counters, 0, &batch);
            if let Delivery::Added(n) = delivery {
                if n > 1 {
                    prop_assert!(batch.frames().iter().all(|f| checksums_verify(f.data())));
                }
            }
        }
    }
}
