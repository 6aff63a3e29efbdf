//! Egress coalescing: a run of consecutive TCP segments of one flow leaves
//! as one GSO super-packet behind a virtio-net header, for the ports whose
//! kernel side takes them (AF_PACKET and TAP with a virtio-net header).
//!
//! The ports cut a Linux sender's 64 KiB super-packets into wire-sized
//! frames for the pipeline (`offload`); sending those frames one by one
//! costs the egress a socket write, an skb and a trip through the
//! receiving stack each, which is where the time goes against the kernel,
//! which forwards the super-packet whole. So a port that is handed, in one
//! `send`, segments that are exactly what cutting a super-packet yields
//! puts them back together and lets the kernel (or the NIC's TSO) cut them
//! again where it must. The pipeline still only ever sees wire-sized
//! frames, and what leaves is bit for bit what the segments would be.
//!
//! A run is merged only if every segment: is IPv4 or IPv6 TCP without a
//! VLAN tag, with ACK and without SYN, FIN, RST, URG or CWR (PSH is
//! allowed on the last), carries payload, has a checksum that verifies
//! (merging must not give a corrupted segment a valid checksum; the IPv4
//! header checksum too), has the
//! same headers as the first except the lengths, IPv4 identification
//! (consecutive) and checksums, TCP sequence number (contiguous) and PSH;
//! and all but the last carry the first's payload size, which becomes the
//! GSO size.

use super::checksum::{self, L4};
use super::offload::{VnetHdr, VNET_HDR_LEN};
use crate::wire::{
    checksum as inet_checksum, fold, ones_sum, ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_TCP,
};

/// Segments merged into one super-packet at most (64 KiB / 1448 is 45).
pub const MAX_RUN: usize = 64;
/// Bytes a built super-packet may take, virtio-net header included: the
/// IP length field's limit plus the Ethernet header.
pub const MAX_SUPER: usize = VNET_HDR_LEN + 14 + 65_535;

const F_NEEDS_CSUM: u8 = 1;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const TCP_URG: u8 = 0x20;
const TCP_CWR: u8 = 0x80;
const TCP_SEQ: usize = 4;
const TCP_FLAGS: usize = 13;
const TCP_CHECKSUM: usize = 16;

/// The shape every segment of the run shares.
#[derive(Clone, Copy)]
struct Shape {
    at: L4,
    /// Bytes of headers (Ethernet, IP, TCP) in front of the payload.
    headers: usize,
    /// Payload bytes of every segment but the last.
    mss: usize,
    flags: u8,
    next_seq: u32,
    next_id: u16,
    /// Payload bytes so far.
    payload: usize,
    /// A shorter or PSH segment ended the run.
    closed: bool,
}

/// A run of segments gathered during one `send`, borrowed from the batch.
pub struct Run<'a> {
    segments: [&'a [u8]; MAX_RUN],
    len: usize,
    shape: Option<Shape>,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Run {
            segments: [&[]; MAX_RUN],
            len: 0,
            shape: None,
        }
    }
}

impl<'a> Run<'a> {
    pub fn segments(&self) -> &[&'a [u8]] {
        &self.segments[..self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
        self.shape = None;
    }

    /// Adds `frame` to the run if it starts one (the run is empty) or
    /// continues it; false, leaving the run as it was, if not.
    pub fn push(&mut self, frame: &'a [u8]) -> bool {
        let shape = match self.shape {
            None => match start(frame) {
                Some(shape) => shape,
                None => return false,
            },
            Some(shape) => match continues(&shape, self.segments[0], frame) {
                Some(shape) if self.len < MAX_RUN => shape,
                _ => return false,
            },
        };
        self.segments[self.len] = frame;
        self.len += 1;
        self.shape = Some(shape);
        true
    }

    /// Writes the run as one super-packet behind its virtio-net header
    /// into `out`; returns its length, or None for a run of fewer than two
    /// segments (nothing to gain) or one that does not fit `out`.
    pub fn build(&self, out: &mut [u8]) -> Option<usize> {
        let shape = self.shape?;
        let at = shape.at;
        let total = shape.headers + shape.payload;
        if self.len < 2 || VNET_HDR_LEN + total > out.len() || total - at.l3 > 0xffff {
            return None;
        }
        let first = self.segments[0];
        let packet = &mut out[VNET_HDR_LEN..VNET_HDR_LEN + total];
        packet[..shape.headers].copy_from_slice(&first[..shape.headers]);
        let mut to = shape.headers;
        for segment in self.segments() {
            let payload = &segment[shape.headers..];
            packet[to..to + payload.len()].copy_from_slice(payload);
            to += payload.len();
        }
        let l4_len = total - at.l4;
        if at.ipv6 {
            put16(packet, at.l3 + 4, l4_len as u16);
        } else {
            let ihl = usize::from(packet[at.l3] & 0x0f) * 4;
            put16(packet, at.l3 + 2, (total - at.l3) as u16);
            put16(packet, at.l3 + 10, 0);
            let sum = inet_checksum(&packet[at.l3..at.l3 + ihl]);
            put16(packet, at.l3 + 10, sum);
        }
        let last = self.segments[self.len - 1];
        packet[at.l4 + TCP_FLAGS] = shape.flags | (last[at.l4 + TCP_FLAGS] & TCP_PSH);
        // What a sender leaves for TSO: the pseudo-header sum, folded.
        let at_total = at.with_end(total);
        put16(packet, at.l4 + TCP_CHECKSUM, pseudo_sum(packet, &at_total));
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if at.ipv6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: shape.headers as u16,
            gso_size: shape.mss as u16,
            csum_start: at.l4 as u16,
            csum_offset: TCP_CHECKSUM as u16,
        };
        out[..VNET_HDR_LEN].copy_from_slice(&hdr.to_bytes());
        Some(VNET_HDR_LEN + total)
    }
}

/// What an egress did with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Sent,
    /// Not sendable (too short or too long): dropped, not counted as sent.
    Skipped,
    /// The egress queue is full: stop.
    Full,
}

/// A port's transmit side as `send_coalesced` drives it.
pub trait Egress {
    /// Queues one frame as it is.
    fn one(&mut self, frame: &[u8]) -> std::io::Result<Step>;
    /// Sends a run of two or more segments as one super-packet; false if
    /// it could not (then they go one by one).
    fn run(&mut self, run: &Run<'_>) -> bool;
}

/// Why sending stopped early: the queue filled up, or an error.
type Stop = Option<std::io::Error>;

/// Sends `frames` through `egress`, runs of consecutive segments as
/// super-packets. Returns how many frames were sent and whether the queue
/// filled up. An error is returned only if nothing was sent.
pub fn send_coalesced(
    egress: &mut impl Egress,
    frames: &mut dyn Iterator<Item = &[u8]>,
) -> std::io::Result<(usize, bool)> {
    let mut sent = 0;
    let mut run = Run::default();
    match send_runs(egress, frames, &mut run, &mut sent) {
        Ok(()) => Ok((sent, false)),
        Err(Some(err)) if sent == 0 => Err(err),
        Err(_) => Ok((sent, true)),
    }
}

fn send_runs<'a>(
    egress: &mut impl Egress,
    frames: &mut dyn Iterator<Item = &'a [u8]>,
    run: &mut Run<'a>,
    sent: &mut usize,
) -> Result<(), Stop> {
    for frame in frames {
        if run.push(frame) {
            continue;
        }
        // The run ends here and leaves before this frame.
        flush(egress, run, sent)?;
        run.clear();
        if !run.push(frame) {
            *sent += one(egress, frame)?;
        }
    }
    flush(egress, run, sent)
}

/// Sends the run: as one super-packet if the egress takes it, else
/// segment by segment.
fn flush(egress: &mut impl Egress, run: &Run<'_>, sent: &mut usize) -> Result<(), Stop> {
    let segments = run.segments();
    if segments.len() >= 2 && egress.run(run) {
        *sent += segments.len();
        return Ok(());
    }
    for segment in segments {
        *sent += one(egress, segment)?;
    }
    Ok(())
}

fn one(egress: &mut impl Egress, frame: &[u8]) -> Result<usize, Stop> {
    match egress.one(frame) {
        Ok(Step::Sent) => Ok(1),
        Ok(Step::Skipped) => Ok(0),
        Ok(Step::Full) => Err(None),
        Err(err) => Err(Some(err)),
    }
}

/// The folded pseudo-header sum of the TCP segment `at` in `packet`.
fn pseudo_sum(packet: &[u8], at: &L4) -> u16 {
    let addresses = if at.ipv6 {
        &packet[at.l3 + 8..at.l3 + 40]
    } else {
        &packet[at.l3 + 12..at.l3 + 20]
    };
    fold(ones_sum(addresses, (at.end - at.l4) as u32 + 6))
}

fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn seq_of(frame: &[u8], at: &L4) -> u32 {
    let s = at.l4 + TCP_SEQ;
    u32::from_be_bytes([frame[s], frame[s + 1], frame[s + 2], frame[s + 3]])
}

/// Whether the segment's TCP checksum verifies.
fn checksum_verifies(frame: &[u8], at: &L4) -> bool {
    let addresses = if at.ipv6 {
        &frame[at.l3 + 8..at.l3 + 40]
    } else {
        &frame[at.l3 + 12..at.l3 + 20]
    };
    let pseudo = ones_sum(addresses, (at.end - at.l4) as u32 + 6);
    fold(checksum::sum(&frame[at.l4..at.end], pseudo)) == 0xffff
}

/// A segment's place: where its headers are, and its payload size.
fn segment_of(frame: &[u8]) -> Option<(L4, usize, u8)> {
    let ethertype = get16(frame.get(..14)?, 12);
    if ethertype != ETHERTYPE_IPV4 && ethertype != ETHERTYPE_IPV6 {
        return None;
    }
    let at = checksum::locate_l4(frame)?;
    let data_offset = usize::from(frame.get(at.l4 + 12)? >> 4) * 4;
    let headers = at.l4 + data_offset;
    let flags = *frame.get(at.l4 + TCP_FLAGS)?;
    let plain = flags & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG | TCP_CWR) == 0;
    let usable = at.proto == PROTO_TCP
        && data_offset >= 20
        && headers < at.end
        && at.end == frame.len()
        && flags & TCP_ACK != 0
        && plain
        && checksum_verifies(frame, &at)
        && (at.ipv6 || fold(ones_sum(&frame[at.l3..at.l4], 0)) == 0xffff);
    usable.then_some((at, at.end - headers, flags))
}

/// The shape of a run `frame` starts, if it may start one.
fn start(frame: &[u8]) -> Option<Shape> {
    let (at, payload, flags) = segment_of(frame)?;
    let headers = frame.len() - payload;
    let id = if at.ipv6 { 0 } else { get16(frame, at.l3 + 4) };
    Some(Shape {
        at,
        headers,
        mss: payload,
        flags: flags & !TCP_PSH,
        next_seq: seq_of(frame, &at).wrapping_add(payload as u32),
        next_id: id.wrapping_add(1),
        payload,
        closed: flags & TCP_PSH != 0,
    })
}

/// The run's shape with `frame` added, if `frame` continues the run that
/// `first` started.
fn continues(shape: &Shape, first: &[u8], frame: &[u8]) -> Option<Shape> {
    if shape.closed || frame.len() < shape.headers {
        return None;
    }
    let payload = frame.len() - shape.headers;
    if payload == 0 || payload > shape.mss {
        return None;
    }
    let (at, seg_payload, flags) = segment_of(frame)?;
    if seg_payload != payload || at.l3 != shape.at.l3 || at.l4 != shape.at.l4 {
        return None;
    }
    if flags & !TCP_PSH != shape.flags || seq_of(frame, &at) != shape.next_seq {
        return None;
    }
    let id = if at.ipv6 { 0 } else { get16(frame, at.l3 + 4) };
    if !at.ipv6 && id != shape.next_id {
        return None;
    }
    if !same_headers(shape, first, frame) {
        return None;
    }
    Some(Shape {
        next_seq: shape.next_seq.wrapping_add(payload as u32),
        next_id: id.wrapping_add(1),
        payload: shape.payload + payload,
        closed: payload < shape.mss || flags & TCP_PSH != 0,
        ..*shape
    })
}

/// Whether the headers are equal but for the fields that differ between
/// the segments of one super-packet.
fn same_headers(shape: &Shape, first: &[u8], frame: &[u8]) -> bool {
    let (l3, l4) = (shape.at.l3, shape.at.l4);
    let varying: [(usize, usize); 4] = if shape.at.ipv6 {
        // Payload length; sequence number; flags; checksum.
        [
            (l3 + 4, l3 + 6),
            (l4 + TCP_SEQ, l4 + TCP_SEQ + 4),
            (l4 + TCP_FLAGS, l4 + TCP_FLAGS + 1),
            (l4 + TCP_CHECKSUM, l4 + TCP_CHECKSUM + 2),
        ]
    } else {
        // Total length and identification; header checksum; sequence
        // number; flags and the TCP checksum are compared below.
        [
            (l3 + 2, l3 + 6),
            (l3 + 10, l3 + 12),
            (l4 + TCP_SEQ, l4 + TCP_SEQ + 4),
            (l4 + TCP_FLAGS, l4 + TCP_FLAGS + 1),
        ]
    };
    let mut from = 0;
    for (start, end) in varying {
        if first[from..start] != frame[from..start] {
            return false;
        }
        from = end;
    }
    if shape.at.ipv6 {
        first[from..shape.headers] == frame[from..shape.headers]
    } else {
        let check = l4 + TCP_CHECKSUM;
        first[from..check] == frame[from..check]
            && first[check + 2..shape.headers] == frame[check + 2..shape.headers]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Batch;
    use crate::io::offload::{deliver, Delivery, OffloadCounters};
    use proptest::prelude::*;

    /// A TCP/IPv4 super-packet of `payload` bytes with header, as a Linux
    /// sender hands it over, flags ACK (and PSH if `push`).
    fn super_packet(payload: usize, mss: u16, push: bool) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0];
        let l4_len = 32 + payload;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        ip.extend_from_slice(&[0x40, 0x00, 0x40, 0, 63, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let sum = inet_checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 32];
        tcp[..4].copy_from_slice(&[0x13, 0x88, 0xc0, 0x01]);
        tcp[4..8].copy_from_slice(&0xffff_ff00u32.to_be_bytes());
        tcp[8..12].copy_from_slice(&77u32.to_be_bytes());
        tcp[12] = 8 << 4;
        tcp[13] = TCP_ACK | if push { TCP_PSH } else { 0 };
        tcp[14] = 0x20;
        tcp[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7]);
        f.extend_from_slice(&tcp);
        f.extend((0..payload).map(|i| (i * 13 % 256) as u8));
        let at = checksum::locate_l4(&f).unwrap();
        let partial = pseudo_sum(&f, &at);
        put16(&mut f, 34 + TCP_CHECKSUM, partial);
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: mss,
            csum_start: 34,
            csum_offset: 16,
        };
        [&hdr.to_bytes()[..], &f].concat()
    }

    /// The segments the receive side cuts from `packet`.
    fn cut(packet: &[u8], batch: &mut Batch) {
        let hdr = VnetHdr::parse(packet).unwrap();
        let mut counters = OffloadCounters::default();
        let delivery = deliver(&hdr, &packet[VNET_HDR_LEN..], None, batch, &mut counters);
        assert!(matches!(delivery, Delivery::Added(n) if n > 0));
    }

    #[test]
    fn segments_cut_from_a_super_packet_merge_back_into_it() {
        let original = super_packet(10_000, 1448, true);
        let mut batch = Batch::new(16);
        cut(&original, &mut batch);
        let mut run = Run::default();
        for frame in batch.frames() {
            assert!(run.push(frame.data()));
        }
        let mut out = vec![0u8; MAX_SUPER];
        let len = run.build(&mut out).expect("built");
        // Bit for bit the super-packet the sender handed over.
        assert_eq!(&out[..len], &original[..]);

        // And cutting the merged packet gives the same segments again.
        let mut again = Batch::new(16);
        cut(&out[..len], &mut again);
        let a: Vec<&[u8]> = batch.frames().iter().map(|f| f.data()).collect();
        let b: Vec<&[u8]> = again.frames().iter().map(|f| f.data()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn runs_stop_where_segments_stop_being_consecutive() {
        let mut batch = Batch::new(16);
        cut(&super_packet(4000, 1000, false), &mut batch);
        let frames: Vec<Vec<u8>> = batch.frames().iter().map(|f| f.data().to_vec()).collect();

        // A gap in the sequence.
        let mut run = Run::default();
        assert!(run.push(&frames[0]));
        assert!(!run.push(&frames[2]));
        assert!(run.push(&frames[1]));

        // A changed header byte (the TTL), and a corrupted payload.
        let mut ttl = frames[2].clone();
        ttl[22] -= 1;
        assert!(!run.push(&ttl));
        let mut corrupt = frames[2].clone();
        corrupt[100] ^= 1;
        assert!(!run.push(&corrupt));
        assert!(run.push(&frames[2]));
        assert!(run.push(&frames[3]));
        assert_eq!(run.segments().len(), 4);

        // A single segment is not worth a super-packet.
        let mut one = Run::default();
        assert!(one.push(&frames[0]));
        assert_eq!(one.build(&mut vec![0u8; MAX_SUPER]), None);
        // Nor is anything but plain TCP data.
        assert!(!Run::default().push(&[0u8; 60]));
    }

    #[test]
    fn a_short_segment_ends_the_run() {
        let mut batch = Batch::new(16);
        cut(&super_packet(2500, 1000, false), &mut batch);
        let mut run = Run::default();
        for frame in batch.frames() {
            assert!(run.push(frame.data()));
        }
        let mut next = Batch::new(16);
        cut(&super_packet(1000, 1000, false), &mut next);
        assert!(!run.push(next.frames()[0].data()));
    }

    proptest! {
        /// Whatever the frames, merging never panics, and what it builds
        /// cuts back into exactly the frames it merged.
        #[test]
        fn merged_runs_cut_back_into_their_segments(
            payload in 1usize..30_000,
            mss in 500u16..1800,
            push in any::<bool>(),
            flip in proptest::option::of((0usize..2000, any::<u8>())),
        ) {
            let mut batch = Batch::new(64);
            cut(&super_packet(payload, mss, push), &mut batch);
            let mut frames: Vec<Vec<u8>> =
                batch.frames().iter().map(|f| f.data().to_vec()).collect();
            if let Some((at, byte)) = flip {
                let last = frames.len() - 1;
                let f = &mut frames[last];
                let at = at % f.len();
                f[at] ^= byte;
            }
            let mut run = Run::default();
            let merged = frames.iter().take_while(|f| run.push(f)).count();
            let mut out = vec![0u8; MAX_SUPER];
            if let Some(len) = run.build(&mut out) {
                let mut again = Batch::new(64);
                cut(&out[..len], &mut again);
                prop_assert_eq!(again.len(), merged);
                for (a, b) in again.frames().iter().zip(&frames) {
                    prop_assert_eq!(a.data(), &b[..]);
                }
            }
        }
    }
}
