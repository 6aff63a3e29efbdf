//! AF_PACKET port with memory-mapped rings: a TPACKET_V3 receive ring
//! (the kernel fills whole blocks, we hand them back when read) and a V3
//! transmit ring of fixed slots that bypasses the qdisc layer.
//!
//! The socket asks for a virtio-net header in front of every packet
//! (`PACKET_VNET_HDR`): a peer with TSO/GSO and checksum offload on (every
//! Linux host's default on a veth) sends super-packets of up to 64 KiB
//! with partial checksums, and the header is what says so; `offload` cuts
//! them into wire-sized frames with complete checksums. The V3 ring's
//! blocks (256 KiB) hold a whole super-packet; a V2 ring's 2 KiB slots
//! cannot, so with V2 such packets arrive truncated and are dropped
//! (counted): use V3 where peers may send them. The header is also
//! required in front of every transmitted frame: ours is all zeroes (a
//! complete, wire-sized frame).

use super::coalesce::{self, Egress, Run, Step};
use super::nic;
use super::offload::{self, Delivery, OffloadCounters, VnetHdr, VNET_HDR_LEN};
use super::sys::{self, Mmap};
use super::{PacketPort, MIN_TX_FRAME};
use crate::frame::Batch;
use crate::wire::ETHERTYPE_VLAN;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// The ring layout, a trade between throughput and latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpacketVersion {
    /// Received frames are handed over a block at a time: fewer wake-ups
    /// and the highest rates, but at light load a frame waits for its block
    /// to fill or time out.
    V3,
    /// Every received frame has its own slot, visible at once: the lowest
    /// latency, at more cost per frame.
    V2,
}

/// Ring geometry; the defaults hold a few milliseconds of line rate on a
/// 10G port while staying small enough for many ports in 256 MB of RAM.
#[derive(Clone, Copy, Debug)]
pub struct AfPacketConfig {
    pub version: TpacketVersion,
    /// Bytes per receive block (a power-of-two number of pages).
    pub rx_block_size: u32,
    pub rx_blocks: u32,
    /// Milliseconds after which a partly filled block is handed over anyway
    /// (V3 only).
    /// This is the added latency when traffic is light: the kernel rounds it
    /// up to a timer tick (4 ms at HZ=250); measured on veth, ping through
    /// the port averages 1.1-1.3 ms with V3 against 0.12 ms with V2.
    pub rx_block_timeout_ms: u32,
    /// Number of transmit slots (rounded to whole blocks).
    pub tx_slots: u32,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            version: TpacketVersion::V3,
            rx_block_size: 1 << 18,
            rx_blocks: 16,
            rx_block_timeout_ms: 1,
            tx_slots: 1024,
        }
    }
}

/// The socket option asking for a virtio-net header before every packet
/// (linux/if_packet.h; the libc crate lacks it).
const PACKET_VNET_HDR: libc::c_int = 15;

/// Bytes per transmit slot and the frame size the kernel accounts rx with.
const SLOT_SIZE: u32 = 2048;
/// Transmit ring block size: a page multiple holding whole slots.
const TX_BLOCK_SIZE: u32 = 1 << 16;

const fn align16(n: usize) -> usize {
    (n + 15) & !15
}

/// Where packet bytes start in a transmit slot: after the aligned header.
fn tx_data_offset(version: TpacketVersion) -> usize {
    match version {
        TpacketVersion::V3 => align16(size_of::<libc::tpacket3_hdr>()),
        TpacketVersion::V2 => align16(size_of::<libc::tpacket2_hdr>()),
    }
}

/// A packet in the receive ring and what the kernel says about it.
struct Received<'a> {
    bytes: &'a [u8],
    /// The packet was cut to fit its slot.
    truncated: bool,
    /// The 802.1Q tag the kernel took out of the data.
    vlan_tag: Option<[u8; 4]>,
    /// The offload metadata in front of the packet; None if the kernel's
    /// offsets leave no room for it.
    vnet: Option<VnetHdr>,
}

impl<'a> Received<'a> {
    /// From a ring header's fields (V2 and V3 share their meaning).
    fn new(
        bytes: &'a [u8],
        vnet: Option<VnetHdr>,
        wire_len: u32,
        status: u32,
        tci: u16,
        tpid: u16,
    ) -> Received<'a> {
        let vlan_tag = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
            // The kernel reports no tag protocol id for plain 802.1Q.
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                tpid
            } else {
                ETHERTYPE_VLAN
            };
            let mut tag = [0; 4];
            tag[..2].copy_from_slice(&tpid.to_be_bytes());
            tag[2..].copy_from_slice(&tci.to_be_bytes());
            tag
        });
        Received {
            bytes,
            truncated: (bytes.len() as u64) < u64::from(wire_len),
            vlan_tag,
            vnet,
        }
    }

    /// Appends the packet to `batch` as it was (or, for a super-packet,
    /// would have been) on the wire; drops (and counts) it instead if it
    /// is truncated or its offload metadata cannot be honoured.
    fn deliver(&self, batch: &mut Batch, counters: &mut OffloadCounters) -> Delivery {
        if batch.is_full() {
            return Delivery::NoRoom;
        }
        let Some(vnet) = self.vnet.filter(|_| !self.truncated) else {
            counters.dropped += 1;
            return Delivery::Added(0);
        };
        offload::deliver(&vnet, self.bytes, self.vlan_tag, batch, counters)
    }
}

/// The packet bytes at `start..end` of a ring area of `len` bytes at
/// `base`, and the virtio-net header in the `VNET_HDR_LEN` bytes before
/// them, which must lie after `floor` (the end of the ring's own header).
/// None if the bytes do not lie inside the area; a header that does not
/// fit is None.
fn packet_at<'a>(
    base: *const u8,
    len: usize,
    floor: usize,
    start: usize,
    end: usize,
) -> Option<(&'a [u8], Option<VnetHdr>)> {
    if start > end || end > len {
        return None;
    }
    // SAFETY: start..end lies inside the area (checked above), which the
    // caller holds (the kernel handed it to us) for 'a.
    let bytes = unsafe { std::slice::from_raw_parts(base.add(start), end - start) };
    let vnet = start
        .checked_sub(VNET_HDR_LEN)
        .filter(|at| *at >= floor)
        .and_then(|at| {
            // SAFETY: at..start lies inside the area (at >= floor >= 0 and
            // start <= len).
            let raw = unsafe { std::slice::from_raw_parts(base.add(at), VNET_HDR_LEN) };
            VnetHdr::parse(raw)
        });
    Some((bytes, vnet))
}

pub struct AfPacketPort {
    name: String,
    version: TpacketVersion,
    // Declared before `fd` so the rings are unmapped before the socket closes.
    ring: Mmap,
    fd: OwnedFd,
    /// Sends super-packets: a socket with a transmit ring only ever
    /// flushes its ring, whatever a send hands it.
    gso_fd: OwnedFd,
    rx: RxCursor,
    tx: TxCursor,
    /// Ring-full drops read so far (reading the kernel's count resets it).
    rx_drops: u64,
    offload: OffloadCounters,
    /// Where a run of segments is put back together (allocated at open).
    gso_buf: Box<[u8]>,
}

/// Position in the receive ring. V3: the block being read and, while one is
/// held, the packets left in it and the offset of the next one. V2: the
/// next frame slot.
struct RxCursor {
    block_size: usize,
    blocks: usize,
    block: usize,
    remaining: u32,
    offset: usize,
    slots: usize,
    slot: usize,
}

/// Next transmit slot to fill; slots start after the receive blocks.
struct TxCursor {
    base: usize,
    slots: usize,
    next: usize,
    /// Slots were filled since the last kick.
    unkicked: bool,
}

impl AfPacketPort {
    /// Opens the port on `ifname`, brings the interface up and turns its
    /// receive coalescing (GRO, LRO) off for good.
    pub fn open(ifname: &str, config: AfPacketConfig) -> io::Result<AfPacketPort> {
        let ifindex = sys::ifindex(ifname)?;
        let geometry = RingGeometry::of(&config)?;
        sys::set_link_up(ifname)?;
        nic::disable_receive_coalescing(ifname)?;
        let fd = configured_socket(config.version)?;
        let raw = fd.as_raw_fd();
        sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &geometry.rx)?;
        sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_TX_RING, &geometry.tx)?;
        let rx_len = geometry.rx.tp_block_size as usize * geometry.rx.tp_block_nr as usize;
        let tx_len = geometry.tx.tp_block_size as usize * geometry.tx.tp_block_nr as usize;
        let ring = Mmap::of_fd(raw, rx_len + tx_len, 0)?;
        bind_promiscuous(raw, ifindex)?;
        let gso_fd = super_packet_socket(ifindex)?;
        Ok(AfPacketPort {
            name: ifname.to_owned(),
            version: config.version,
            ring,
            fd,
            gso_fd,
            rx: RxCursor {
                block_size: config.rx_block_size as usize,
                blocks: config.rx_blocks as usize,
                block: 0,
                remaining: 0,
                offset: 0,
                slots: rx_len / SLOT_SIZE as usize,
                slot: 0,
            },
            tx: TxCursor {
                base: rx_len,
                slots: tx_len / SLOT_SIZE as usize,
                next: 0,
                unkicked: false,
            },
            gso_buf: vec![0; coalesce::MAX_SUPER].into_boxed_slice(),
            rx_drops: 0,
            offload: OffloadCounters::default(),
        })
    }

    fn block_ptr(&self) -> *mut libc::tpacket_block_desc {
        // SAFETY: block < blocks, so the block lies inside the mapping.
        unsafe { self.ring.as_ptr().add(self.rx.block * self.rx.block_size) }.cast()
    }

    /// The status word of the current block, shared with the kernel.
    fn block_status(&self) -> &AtomicU32 {
        // SAFETY: the block header is aligned, mapped, and the kernel updates
        // this u32 concurrently, which is what an atomic models.
        unsafe { AtomicU32::from_ptr(&raw mut (*self.block_ptr()).hdr.bh1.block_status) }
    }

    /// Takes the next block if the kernel has retired it to us.
    fn acquire_block(&mut self) -> bool {
        if self.block_status().load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return false;
        }
        // SAFETY: the block is ours until we hand it back; its header is mapped.
        let header = unsafe { &(*self.block_ptr()).hdr.bh1 };
        self.rx.remaining = header.num_pkts;
        self.rx.offset = header.offset_to_first_pkt as usize;
        true
    }

    /// Gives the current block back to the kernel and moves to the next.
    fn release_block(&mut self) {
        self.block_status()
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.rx.remaining = 0;
        self.rx.block = (self.rx.block + 1) % self.rx.blocks;
    }

    /// The next packet of the held block and the offset of the one after
    /// it, or None if the kernel's offsets point outside the block (then
    /// the rest of the block is skipped).
    fn peek_packet(&self) -> Option<(Received<'_>, usize)> {
        let block_size = self.rx.block_size;
        let offset = self.rx.offset;
        let header_end = offset.checked_add(size_of::<libc::tpacket3_hdr>())?;
        if header_end > block_size {
            return None;
        }
        // SAFETY: the header lies inside the held block (checked above).
        let hdr =
            unsafe { &*(self.block_ptr().cast::<u8>().add(offset) as *const libc::tpacket3_hdr) };
        let start = offset + hdr.tp_mac as usize;
        let end = start + hdr.tp_snaplen as usize;
        let base = self.block_ptr().cast::<u8>().cast_const();
        let (bytes, vnet) = packet_at(base, block_size, header_end, start, end)?;
        let next = offset + hdr.tp_next_offset as usize;
        let (tci, tpid) = (hdr.hv1.tp_vlan_tci as u16, hdr.hv1.tp_vlan_tpid);
        let received = Received::new(bytes, vnet, hdr.tp_len, hdr.tp_status, tci, tpid);
        Some((received, next))
    }

    /// The header of the current V2 receive slot.
    fn rx_slot(&self) -> *mut libc::tpacket2_hdr {
        // SAFETY: slot < slots, so the slot lies inside the receive area.
        unsafe { self.ring.as_ptr().add(self.rx.slot * SLOT_SIZE as usize) }.cast()
    }

    /// The status word of the current V2 receive slot, shared with the kernel.
    fn rx_slot_status(&self) -> &AtomicU32 {
        // SAFETY: the slot header is aligned and mapped; the kernel updates
        // this u32 concurrently.
        unsafe { AtomicU32::from_ptr(&raw mut (*self.rx_slot()).tp_status) }
    }

    /// The frame in the current V2 slot if the kernel has filled it; None
    /// if the slot is still the kernel's. A slot whose offsets point outside
    /// it yields an empty packet (dropped).
    fn slot_packet(&self) -> Option<Received<'_>> {
        let status = self.rx_slot_status().load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the slot is ours until handed back; its header is mapped.
        let hdr = unsafe { &*self.rx_slot() };
        let start = hdr.tp_mac as usize;
        let end = start + hdr.tp_snaplen as usize;
        let base = self.rx_slot().cast::<u8>().cast_const();
        let floor = size_of::<libc::tpacket2_hdr>();
        let (bytes, vnet) =
            packet_at(base, SLOT_SIZE as usize, floor, start, end).unwrap_or((&[], None));
        Some(Received::new(
            bytes,
            vnet,
            hdr.tp_len,
            status,
            hdr.tp_vlan_tci,
            hdr.tp_vlan_tpid,
        ))
    }

    /// Gives the current V2 slot back to the kernel and moves to the next.
    fn release_slot(&mut self) {
        self.rx_slot_status()
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.rx.slot = (self.rx.slot + 1) % self.rx.slots;
    }

    fn recv_blocks(&mut self, batch: &mut Batch) -> usize {
        // A copy, so the packets (borrowed from the ring) and the counters
        // are not both borrowed from `self`.
        let mut counters = self.offload;
        let mut added = 0;
        while !batch.is_full() {
            if self.rx.remaining == 0 && !self.acquire_block() {
                break;
            }
            if self.rx.remaining == 0 {
                self.release_block();
                continue;
            }
            let Some((packet, next)) = self.peek_packet() else {
                self.release_block();
                continue;
            };
            match packet.deliver(batch, &mut counters) {
                // The packet stays in the ring for the next batch.
                Delivery::NoRoom => break,
                Delivery::Added(n) => added += n,
            }
            self.rx.offset = next;
            self.rx.remaining -= 1;
            if self.rx.remaining == 0 {
                self.release_block();
            }
        }
        self.offload = counters;
        added
    }

    fn recv_frames(&mut self, batch: &mut Batch) -> usize {
        let mut counters = self.offload;
        let mut added = 0;
        while !batch.is_full() {
            let Some(packet) = self.slot_packet() else {
                break;
            };
            match packet.deliver(batch, &mut counters) {
                Delivery::NoRoom => break,
                Delivery::Added(n) => added += n,
            }
            self.release_slot();
        }
        self.offload = counters;
        added
    }

    fn tx_slot(&self, index: usize) -> *mut u8 {
        // SAFETY: index < slots, so the slot lies inside the mapping.
        unsafe {
            self.ring
                .as_ptr()
                .add(self.tx.base + index * SLOT_SIZE as usize)
        }
    }
}

/// The kernel's description of the two rings.
struct RingGeometry {
    rx: libc::tpacket_req3,
    tx: libc::tpacket_req3,
}

impl RingGeometry {
    fn of(config: &AfPacketConfig) -> io::Result<RingGeometry> {
        let slots_per_block = TX_BLOCK_SIZE / SLOT_SIZE;
        let tx_blocks = config.tx_slots.div_ceil(slots_per_block).max(1);
        let rx_frames = (config.rx_block_size / SLOT_SIZE).checked_mul(config.rx_blocks);
        let tx_frames = tx_blocks.checked_mul(slots_per_block);
        // The kernel takes zero blocks as "no ring" rather than an error.
        let (Some(rx_frames @ 1..), Some(tx_frames)) = (rx_frames, tx_frames) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "AF_PACKET ring sizes out of range",
            ));
        };
        let ring = |block_size, blocks, frames, timeout| libc::tpacket_req3 {
            tp_block_size: block_size,
            tp_block_nr: blocks,
            tp_frame_size: SLOT_SIZE,
            tp_frame_nr: frames,
            tp_retire_blk_tov: timeout,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        Ok(RingGeometry {
            rx: ring(
                config.rx_block_size,
                config.rx_blocks,
                rx_frames,
                config.rx_block_timeout_ms,
            ),
            // A transmit ring takes no block timeout.
            tx: ring(TX_BLOCK_SIZE, tx_blocks, tx_frames, 0),
        })
    }
}

/// A non-blocking packet socket with rings of `version`, bound to nothing
/// yet: with protocol 0 nothing is queued to it before it is bound to its
/// interface.
fn configured_socket(version: TpacketVersion) -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = sys::owned_fd(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    let raw = fd.as_raw_fd();
    let sol = libc::SOL_PACKET;
    let version = match version {
        TpacketVersion::V3 => libc::tpacket_versions::TPACKET_V3,
        TpacketVersion::V2 => libc::tpacket_versions::TPACKET_V2,
    } as libc::c_int;
    sys::setsockopt(raw, sol, libc::PACKET_VERSION, &version)?;
    // Before the rings exist (the kernel refuses it after).
    sys::setsockopt(raw, sol, PACKET_VNET_HDR, &1 as &libc::c_int)?;
    sys::setsockopt(raw, sol, libc::PACKET_QDISC_BYPASS, &1 as &libc::c_int)?;
    // Malformed transmit slots are skipped instead of stalling the ring.
    sys::setsockopt(raw, sol, libc::PACKET_LOSS, &1 as &libc::c_int)?;
    // Frames other senders put on the wire are not input to the pipeline.
    sys::setsockopt(raw, sol, libc::PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)?;
    Ok(fd)
}

/// A socket that sends frames behind a virtio-net header on `ifindex`,
/// bypassing the qdisc like the ring, and receives nothing (it is bound to
/// no protocol).
pub(super) fn super_packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = sys::owned_fd(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    })?;
    let raw = fd.as_raw_fd();
    sys::setsockopt(raw, libc::SOL_PACKET, PACKET_VNET_HDR, &1 as &libc::c_int)?;
    sys::setsockopt(
        raw,
        libc::SOL_PACKET,
        libc::PACKET_QDISC_BYPASS,
        &1 as &libc::c_int,
    )?;
    // SAFETY: sockaddr_ll is plain old data.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: addr is a valid sockaddr_ll of the stated length.
    sys::check(unsafe {
        libc::bind(
            raw,
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(fd)
}

/// Binds the socket to every protocol on `ifindex` and makes the
/// interface promiscuous for as long as the socket lives.
fn bind_promiscuous(fd: RawFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: addr is a valid sockaddr_ll of the stated length.
    sys::check(unsafe {
        libc::bind(
            fd,
            (&addr as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    let promisc = libc::packet_mreq {
        mr_ifindex: ifindex as i32,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    sys::setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &promisc)
}

impl Egress for AfPacketPort {
    /// Puts the frame in the next transmit slot (sent at the next kick).
    fn one(&mut self, frame: &[u8]) -> io::Result<Step> {
        // Every frame goes out behind an all-zero virtio-net header.
        let data_offset = tx_data_offset(self.version) + VNET_HDR_LEN;
        let capacity = SLOT_SIZE as usize - data_offset;
        let slot = self.tx_slot(self.tx.next);
        let (v3, v2) = (
            slot.cast::<libc::tpacket3_hdr>(),
            slot.cast::<libc::tpacket2_hdr>(),
        );
        // SAFETY: the slot header is aligned and mapped; the kernel writes
        // the status concurrently.
        let status = unsafe {
            AtomicU32::from_ptr(match self.version {
                TpacketVersion::V3 => &raw mut (*v3).tp_status,
                TpacketVersion::V2 => &raw mut (*v2).tp_status,
            })
        };
        if status.load(Ordering::Acquire) != libc::TP_STATUS_AVAILABLE {
            return Ok(Step::Full);
        }
        if frame.len() < MIN_TX_FRAME || frame.len() > capacity {
            return Ok(Step::Skipped);
        }
        let len = (VNET_HDR_LEN + frame.len()) as u32;
        // SAFETY: the slot is ours while AVAILABLE; the writes stay inside it.
        unsafe {
            slot.add(data_offset - VNET_HDR_LEN)
                .write_bytes(0, VNET_HDR_LEN);
            std::ptr::copy_nonoverlapping(frame.as_ptr(), slot.add(data_offset), frame.len());
            match self.version {
                TpacketVersion::V3 => {
                    (*v3).tp_len = len;
                    (*v3).tp_snaplen = len;
                    (*v3).tp_next_offset = 0;
                }
                TpacketVersion::V2 => {
                    (*v2).tp_len = len;
                    (*v2).tp_snaplen = len;
                }
            }
        }
        status.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.tx.next = (self.tx.next + 1) % self.tx.slots;
        self.tx.unkicked = true;
        Ok(Step::Sent)
    }

    /// Sends the run as one GSO super-packet straight to the device (too
    /// large for a ring slot), after the frames queued before it.
    fn run(&mut self, run: &Run<'_>) -> bool {
        let Some(len) = run.build(&mut self.gso_buf) else {
            return false;
        };
        if self.tx.unkicked {
            self.tx.unkicked = false;
            if sys::kick_tx(self.fd.as_raw_fd()).is_err() {
                return false;
            }
        }
        // A full socket buffer (or any failure) sends the segments through
        // the ring instead, which reports what is wrong.
        sys::send_whole(self.gso_fd.as_raw_fd(), &self.gso_buf[..len])
    }
}

impl PacketPort for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        Ok(match self.version {
            TpacketVersion::V3 => self.recv_blocks(batch),
            TpacketVersion::V2 => self.recv_frames(batch),
        })
    }

    fn send(&mut self, frames: &mut dyn Iterator<Item = &[u8]>) -> io::Result<usize> {
        let (sent, ring_full) = coalesce::send_coalesced(self, frames)?;
        // A full ring may hold frames an earlier kick left behind (the
        // device queue was full then): kick for those too.
        if self.tx.unkicked || ring_full {
            self.tx.unkicked = false;
            sys::kick_tx(self.fd.as_raw_fd())?;
        }
        Ok(sent)
    }

    fn poll_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn offload_counters(&self) -> OffloadCounters {
        self.offload
    }

    fn rx_ring_drops(&mut self) -> u64 {
        let mut stats = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let sol = libc::SOL_PACKET;
        // A socket that cannot report (it always can) just adds nothing.
        if sys::getsockopt(
            self.fd.as_raw_fd(),
            sol,
            libc::PACKET_STATISTICS,
            &mut stats,
        )
        .is_ok()
        {
            self.rx_drops += u64::from(stats.tp_drops);
        }
        self.rx_drops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_oversized_rings_are_refused() {
        for config in [
            AfPacketConfig {
                rx_blocks: 0,
                ..AfPacketConfig::default()
            },
            AfPacketConfig {
                rx_block_size: 1 << 30,
                rx_blocks: 1 << 20,
                ..AfPacketConfig::default()
            },
        ] {
            let err = AfPacketPort::open("lo", config).err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }
}
