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
//! checksum. The segments are written straight into the caller's
//! preallocated batch; nothing is allocated.
//!
//! The header is as untrusted as the frame: a header that contradicts the
//! frame (GSO size 0, lengths or checksum offsets outside it, a checksum
//! position that is not the frame's TCP/UDP checksum field, a GSO type
//! that does not match the packet) drops the packet and counts it; nothing
//! panics. Packets whose segments would not fit a frame buffer, or that
//! would need more frames than a whole batch holds, are dropped too.
//!
//! Forwarding super-packets whole where the egress accepts them (VPP's GSO
//! model) would save the segmentation; this module is the fallback every
//! egress needs.

use super::checksum::{self, L4};
use crate::frame::{Batch, Frame, MAX_FRAME};
use crate::wire::{checksum as inet_checksum, IPV4_CHECKSUM, PROTO_TCP, PROTO_UDP};

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
/// IPv4 with options, TCP with options.
const MAX_HEADERS: usize = 14 + 8 + 60 + 60;
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
        let shift = tag.map_or(0, |t| t.len());
        let located = checksum::locate_l4(frame.data())
            .filter(|at| checksum_position_agrees(hdr, at, shift));
        // Only TCP and UDP checksums are completed here; a partial one
        // elsewhere would leave as a corrupt packet.
        match located {
            Some(at) if checksum::write_l4_checksum(frame.data_mut(), &at) => {}
            _ => return Err(Refused::Dropped),
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

    let at = checksum::locate_l4_in(head, frame_len).ok_or(Refused::Dropped)?;
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
        let data_offset = usize::from(head.get(at.l4 + TCP_DATA_OFFSET).ok_or(Refused::Dropped)? >> 4) * 4;
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
            headers,
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
    headers: usize,
    index: usize,
    /// Payload offset in the super-packet.
    offset: usize,
    last: bool,
}

impl SegmentOf {
    /// Rewrites the copied headers for this segment and its checksums.
    fn rewrite(&self, buf: &mut [u8]) {
        let at = &self.at;
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
        debug_assert!(self.headers <= at.end);
        checksum::write_l4_checksum(buf, at);
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
