//! AF_XDP port: one XDP socket on one rx queue of an interface, with its
//! UMEM (packet memory shared with the kernel) and the four rings: fill
//! (buffers we lend for receiving), rx, tx and completion (sent buffers
//! coming back). The port receives and transmits on its own queue.
//!
//! An interface has one XDP program, so its ports share one redirect
//! program and socket map (`xdp_prog`): `open_queues` opens a port on
//! every queue, for the workers to share; the program is detached when
//! the last of them closes.
//!
//! Zero-copy (the driver receives into and sends from the UMEM itself) is
//! tried first and copy mode taken when the driver refuses; which one was
//! taken is `zero_copy()`. veth, the only NIC of the tests here, has no
//! zero-copy: that path is not tested on this machine kind.
//!
//! Offloads of a peer on a veth (a Linux host's defaults: TSO, GSO and
//! transmit checksum offload on), found out on kernel 6.18:
//! - Super-packets never reach the socket in native (driver) mode, which
//!   `XdpMode::Auto` picks on veth: while an XDP program is attached, veth
//!   takes the software segmentation features (`NETIF_F_GSO_SOFTWARE`: TSO,
//!   TSO6, GSO_UDP_L4 ...) away from its peer (`veth_fix_features` in
//!   drivers/net/veth.c), so the peer's stack segments before sending and
//!   every frame is wire-sized. In generic (SKB) mode the peer keeps TSO and
//!   its super-packets are dropped by the kernel (larger than a UMEM
//!   buffer): use driver mode on veth.
//! - Checksums do arrive partial: the peer keeps checksum offload, and XDP
//!   runs before the kernel's metadata (`CHECKSUM_PARTIAL`) could be handed
//!   over; there is no virtio-net header on this path. So the port finishes
//!   a TCP/UDP checksum whose field holds exactly the pseudo-header sum and
//!   that does not verify (`checksum::complete_if_partial`): that is what
//!   Linux leaves for the hardware, and it costs a 12- or 36-byte sum for
//!   the frames that are complete.
//!
//! On the way out, runs of consecutive TCP segments of one flow are put
//! back together (`coalesce`) and leave as one GSO super-packet through a
//! packet socket on the same interface, since AF_XDP cannot transmit
//! them; the receiver then handles one packet instead of forty.
//!
//! Frames from real wires are complete and wire-sized (the port turns LRO
//! and hardware GRO off).

use super::af_packet::super_packet_socket;
use super::checksum;
use super::coalesce::{self, Egress, Run, Step};
use super::nic;
use super::offload::OffloadCounters;
use super::sys::{self, Mmap};
use super::xdp_prog::{XdpMode, XdpRedirect, MAX_QUEUES};
use super::{PacketPort, MIN_TX_FRAME};
use crate::frame::Batch;
use std::io;
use std::marker::PhantomData;
use std::mem::size_of;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per UMEM buffer: one frame each.
const FRAME_SIZE: u32 = 2048;

/// How frames move between the driver and the UMEM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    /// Zero-copy where the driver offers it, else copy.
    Auto,
    /// Zero-copy or nothing: opening fails if the driver cannot.
    ZeroCopy,
    /// The kernel copies every frame; every driver can.
    Copy,
}

#[derive(Clone, Copy, Debug)]
pub struct AfXdpConfig {
    /// The rx queue `open` serves; frames of other queues go to the
    /// kernel. On queue 0 the port reduces the NIC to one receive queue.
    /// `open_queues` serves queues from 0 and ignores it.
    pub queue: u32,
    /// How the redirect program is attached.
    pub mode: XdpMode,
    /// Zero-copy or copy; with the program in generic mode, `Auto` copies.
    pub copy: CopyMode,
    /// Entries per ring, a power of two. The UMEM holds twice this many
    /// buffers: one half lent for receiving, the other for sending.
    pub ring_size: u32,
}

impl Default for AfXdpConfig {
    fn default() -> Self {
        AfXdpConfig {
            queue: 0,
            mode: XdpMode::Auto,
            copy: CopyMode::Auto,
            ring_size: 2048,
        }
    }
}

/// A single-producer single-consumer ring shared with the kernel; we own
/// one of its two counters depending on the direction.
struct Ring<T> {
    map: Mmap,
    producer: usize,
    consumer: usize,
    flags: usize,
    descs: usize,
    size: u32,
    entry: PhantomData<T>,
}

impl<T: Copy> Ring<T> {
    fn map(
        fd: RawFd,
        size: u32,
        offsets: &libc::xdp_ring_offset,
        pgoff: u64,
    ) -> io::Result<Ring<T>> {
        let len = offsets.desc as usize + size as usize * size_of::<T>();
        Ok(Ring {
            map: Mmap::of_fd(fd, len, pgoff as libc::off_t)?,
            producer: offsets.producer as usize,
            consumer: offsets.consumer as usize,
            flags: offsets.flags as usize,
            descs: offsets.desc as usize,
            size,
            entry: PhantomData,
        })
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: the kernel's offsets point at aligned u32s inside the
        // mapping, which both sides update concurrently.
        unsafe { AtomicU32::from_ptr(self.map.as_ptr().add(offset).cast()) }
    }

    fn slot(&self, index: u32) -> *mut T {
        let at = self.descs + (index & (self.size - 1)) as usize * size_of::<T>();
        // SAFETY: masked indices stay inside the descriptor array.
        unsafe { self.map.as_ptr().add(at).cast() }
    }

    fn needs_wakeup(&self) -> bool {
        self.word(self.flags).load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    // Producer side (fill, tx).

    fn free(&self) -> u32 {
        let prod = self.word(self.producer).load(Ordering::Relaxed);
        let cons = self.word(self.consumer).load(Ordering::Acquire);
        self.size - prod.wrapping_sub(cons)
    }

    /// Writes the `i`-th entry after the producer position (not yet visible).
    fn put(&self, i: u32, value: T) {
        let prod = self.word(self.producer).load(Ordering::Relaxed);
        // SAFETY: the caller checked `free`, so the slot is ours.
        unsafe { self.slot(prod.wrapping_add(i)).write(value) };
    }

    fn submit(&self, n: u32) {
        let prod = self.word(self.producer);
        prod.store(
            prod.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Release,
        );
    }

    // Consumer side (rx, completion).

    fn ready(&self) -> u32 {
        let prod = self.word(self.producer).load(Ordering::Acquire);
        prod.wrapping_sub(self.word(self.consumer).load(Ordering::Relaxed))
    }

    /// Reads the `i`-th entry after the consumer position.
    fn get(&self, i: u32) -> T {
        let cons = self.word(self.consumer).load(Ordering::Relaxed);
        // SAFETY: the caller checked `ready`, so the kernel wrote the slot.
        unsafe { self.slot(cons.wrapping_add(i)).read() }
    }

    fn release(&self, n: u32) {
        let cons = self.word(self.consumer);
        cons.store(
            cons.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Release,
        );
    }
}

pub struct AfXdpPort {
    name: String,
    // Field order is drop order: let go of the program (detached with the
    // interface's last port), unmap the rings, close the socket, then
    // free the packet memory.
    _xdp: Arc<XdpRedirect>,
    fill: Ring<u64>,
    rx: Ring<libc::xdp_desc>,
    tx: Ring<libc::xdp_desc>,
    completion: Ring<u64>,
    fd: OwnedFd,
    umem: Mmap,
    /// UMEM buffers available for sending (preallocated, never grows).
    tx_free: Vec<u64>,
    /// The driver moves frames in and out of the UMEM itself; in copy
    /// mode the kernel sends only when asked.
    zero_copy: bool,
    offload: OffloadCounters,
    /// Descriptors put on the tx ring but not yet submitted.
    tx_pending: u32,
    /// Sends super-packets (see `Egress::run`).
    gso_fd: OwnedFd,
    /// Where a run of segments is put back together (allocated at open).
    gso_buf: Box<[u8]>,
}

impl AfXdpPort {
    /// Opens the port on `ifname`'s queue `config.queue`, brings the
    /// interface up, turns its receive coalescing (GRO, LRO) off (and, on
    /// queue 0, its receive queues down to one) for good, and attaches the
    /// redirect program (detached again when the port is dropped).
    pub fn open(ifname: &str, config: AfXdpConfig) -> io::Result<AfXdpPort> {
        validate(&config)?;
        let ifindex = prepare(ifname)?;
        // On queue 0 (the default) the port wants all traffic; serving
        // another queue means the operator steers frames to it.
        if config.queue == 0 {
            nic::use_receive_queues(ifname, 1)?;
        }
        let xdp = XdpRedirect::attach(ifindex, program_mode(&config), config.queue + 1)?;
        AfXdpPort::on_queue(ifname, ifindex, &Arc::new(xdp), config.queue, &config)
    }

    /// Opens a port on each of `ifname`'s rx queues (up to `MAX_QUEUES`),
    /// for `workers` workers to share. A NIC with fewer queues than workers
    /// is asked for more, and refused if it cannot have them; one with
    /// more keeps them all (fewer could leave a veth peer's frames
    /// unserved, see `nic::use_receive_queues`), so there may be more
    /// ports than workers.
    pub fn open_queues(ifname: &str, workers: u32, config: AfXdpConfig) -> io::Result<QueuePorts> {
        validate(&config)?;
        if !(1..=MAX_QUEUES).contains(&workers) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("AF_XDP serves 1 to {MAX_QUEUES} workers"),
            ));
        }
        let ifindex = prepare(ifname)?;
        let nic_queues = nic::use_at_least_receive_queues(ifname, workers)?;
        if nic_queues < workers {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{nic_queues} rx queue(s), and AF_XDP needs one per worker ({workers})"),
            ));
        }
        let queues = nic_queues.min(MAX_QUEUES);
        let xdp = Arc::new(XdpRedirect::attach(ifindex, program_mode(&config), queues)?);
        let ports = (0..queues)
            .map(|queue| AfXdpPort::on_queue(ifname, ifindex, &xdp, queue, &config))
            .collect::<io::Result<_>>()?;
        Ok(QueuePorts { ports, nic_queues })
    }

    /// A port on `queue`, steered to by the interface's program `xdp`.
    fn on_queue(
        ifname: &str,
        ifindex: u32,
        xdp: &Arc<XdpRedirect>,
        queue: u32,
        config: &AfXdpConfig,
    ) -> io::Result<AfXdpPort> {
        let size = config.ring_size;
        let (fd, umem) = socket_with_umem(size)?;
        let raw = fd.as_raw_fd();
        // SAFETY: plain old data; the kernel fills it.
        let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
        sys::getsockopt(raw, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS, &mut off)?;
        let fill: Ring<u64> = Ring::map(raw, size, &off.fr, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let rx = Ring::map(raw, size, &off.rx, libc::XDP_PGOFF_RX_RING as u64)?;
        let tx = Ring::map(raw, size, &off.tx, libc::XDP_PGOFF_TX_RING as u64)?;
        let completion = Ring::map(raw, size, &off.cr, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;

        // The first half of the UMEM is lent to the kernel for receiving;
        // it returns through rx and goes straight back to fill.
        for i in 0..size {
            fill.put(i, u64::from(i * FRAME_SIZE));
        }
        fill.submit(size);
        let zero_copy = bind_queue(raw, ifindex, queue, copy_mode(config))?;
        xdp.register(queue, raw)?;
        // The second half of the UMEM is ours for sending.
        let mut tx_free = Vec::with_capacity(size as usize);
        tx_free.extend((size..2 * size).map(|i| u64::from(i * FRAME_SIZE)));
        Ok(AfXdpPort {
            name: ifname.to_owned(),
            _xdp: xdp.clone(),
            fill,
            rx,
            tx,
            completion,
            fd,
            umem,
            tx_free,
            zero_copy,
            offload: OffloadCounters::default(),
            tx_pending: 0,
            gso_fd: super_packet_socket(ifindex)?,
            gso_buf: vec![0; coalesce::MAX_SUPER].into_boxed_slice(),
        })
    }

    /// Whether the driver took the socket in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// The UMEM bytes a descriptor points at, or None if it points outside.
    fn umem_bytes(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len as usize)?;
        if end > self.umem.len() {
            return None;
        }
        // SAFETY: start..end lies inside the UMEM (checked above).
        Some(unsafe { std::slice::from_raw_parts(self.umem.as_ptr().add(start), end - start) })
    }

    /// Moves the buffers the kernel finished sending back to the free list.
    fn reclaim_sent(&mut self) {
        let done = self.completion.ready();
        for i in 0..done {
            let addr = self.completion.get(i);
            // The list has room for every tx buffer, so this never reallocates.
            if self.tx_free.len() < self.tx_free.capacity() {
                self.tx_free.push(frame_base(addr));
            }
        }
        self.completion.release(done);
    }

    /// Asks the kernel to send what the tx ring holds. In copy mode each
    /// call sends only a small budget of frames, so it repeats while the
    /// kernel makes progress and frames are left.
    fn kick_tx(&self) -> io::Result<()> {
        if self.zero_copy && !self.tx.needs_wakeup() {
            return Ok(());
        }
        let mut left = self.tx.size - self.tx.free();
        while left > 0 {
            sys::kick_tx(self.fd.as_raw_fd())?;
            let now = self.tx.size - self.tx.free();
            if now >= left {
                break;
            }
            left = now;
        }
        Ok(())
    }

    /// A zero-length receive that makes the kernel refill from the fill ring.
    fn wake_rx(&self) {
        // SAFETY: a zero-length receive into no buffer.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }
}

/// An interface's ports, one per rx queue from 0 (see `open_queues`).
pub struct QueuePorts {
    pub ports: Vec<AfXdpPort>,
    /// The rx queues the NIC has: more than the ports beyond `MAX_QUEUES`.
    pub nic_queues: u32,
}

/// The interface's index, once it is up with receive coalescing off.
fn prepare(ifname: &str) -> io::Result<u32> {
    let ifindex = sys::ifindex(ifname)?;
    sys::set_link_up(ifname)?;
    nic::disable_receive_coalescing(ifname)?;
    Ok(ifindex)
}

/// Zero-copy needs the program in the driver.
fn program_mode(config: &AfXdpConfig) -> XdpMode {
    match config.copy {
        CopyMode::ZeroCopy => XdpMode::Driver,
        CopyMode::Auto | CopyMode::Copy => config.mode,
    }
}

/// A program asked to run generic (before the driver's buffers become
/// the kernel's) has no use for zero-copy.
fn copy_mode(config: &AfXdpConfig) -> CopyMode {
    match (config.copy, config.mode) {
        (CopyMode::Auto, XdpMode::Generic) => CopyMode::Copy,
        (copy, _) => copy,
    }
}

fn validate(config: &AfXdpConfig) -> io::Result<()> {
    let size = config.ring_size;
    if !size.is_power_of_two() || !(64..=1 << 16).contains(&size) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "AF_XDP ring size must be a power of two between 64 and 65536",
        ));
    }
    if config.queue >= MAX_QUEUES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("AF_XDP serves rx queues 0 to {}", MAX_QUEUES - 1),
        ));
    }
    Ok(())
}

/// An XDP socket with its UMEM of `2 * ring_size` buffers registered and
/// its four rings sized.
fn socket_with_umem(ring_size: u32) -> io::Result<(OwnedFd, Mmap)> {
    // SAFETY: plain socket creation.
    let fd = sys::owned_fd(unsafe {
        libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)
    })?;
    let raw = fd.as_raw_fd();
    let umem = Mmap::anonymous(2 * ring_size as usize * FRAME_SIZE as usize)?;
    let reg = libc::xdp_umem_reg {
        addr: umem.as_ptr() as u64,
        len: umem.len() as u64,
        chunk_size: FRAME_SIZE,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    sys::setsockopt(raw, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)?;
    for ring in [
        libc::XDP_UMEM_FILL_RING,
        libc::XDP_UMEM_COMPLETION_RING,
        libc::XDP_RX_RING,
        libc::XDP_TX_RING,
    ] {
        sys::setsockopt(raw, libc::SOL_XDP, ring, &ring_size)?;
    }
    Ok((fd, umem))
}

/// Binds the socket to its interface queue in the copy mode asked (Auto:
/// zero-copy unless the driver refuses it); returns whether zero-copy was
/// taken.
fn bind_queue(fd: RawFd, ifindex: u32, queue: u32, copy: CopyMode) -> io::Result<bool> {
    let bound = match copy {
        CopyMode::Copy => bind_patiently(fd, ifindex, queue, libc::XDP_COPY).map(|()| false),
        CopyMode::ZeroCopy => bind_patiently(fd, ifindex, queue, libc::XDP_ZEROCOPY).map(|()| true),
        CopyMode::Auto => match bind_patiently(fd, ifindex, queue, libc::XDP_ZEROCOPY) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                bind_patiently(fd, ifindex, queue, libc::XDP_COPY).map(|()| false)
            }
            other => other.map(|()| true),
        },
    };
    bound.map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::EBUSY) => "in use by another AF_XDP socket".to_owned(),
            Some(libc::EOPNOTSUPP) => "the driver does not support zero-copy".to_owned(),
            _ => e.to_string(),
        };
        io::Error::new(
            e.kind(),
            format!("binding an XDP socket to queue {queue}: {why}"),
        )
    })
}

/// How long `bind_patiently` keeps retrying a busy queue.
const BIND_PATIENCE: Duration = Duration::from_secs(1);

/// Binds with `copy_flag` (XDP_COPY or XDP_ZEROCOPY). The kernel frees a
/// closed socket's hold on a queue in deferred work, so a port reopened
/// right after being dropped can find the queue busy for a moment: retry
/// briefly. A failed bind leaves the socket as it was, ready for another.
fn bind_patiently(fd: RawFd, ifindex: u32, queue: u32, copy_flag: u16) -> io::Result<()> {
    let addr = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: copy_flag | libc::XDP_USE_NEED_WAKEUP,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    let deadline = Instant::now() + BIND_PATIENCE;
    loop {
        // SAFETY: addr is a valid sockaddr_xdp of the stated length.
        let bound = sys::check(unsafe {
            libc::bind(
                fd,
                (&addr as *const libc::sockaddr_xdp).cast(),
                size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        });
        match bound {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other.map(drop),
        }
    }
}

/// The start of the UMEM buffer holding `addr` (descriptors may carry an
/// offset into their buffer).
fn frame_base(addr: u64) -> u64 {
    addr & !u64::from(FRAME_SIZE - 1)
}

impl Egress for AfXdpPort {
    /// Puts the frame in a free UMEM buffer and on the tx ring (submitted
    /// at the end of `send`, or before a super-packet leaves).
    fn one(&mut self, frame: &[u8]) -> io::Result<Step> {
        if self.tx_pending >= self.tx.free() {
            return Ok(Step::Full);
        }
        let Some(&addr) = self.tx_free.last() else {
            return Ok(Step::Full);
        };
        if frame.len() < MIN_TX_FRAME || frame.len() > FRAME_SIZE as usize {
            return Ok(Step::Skipped);
        }
        self.tx_free.pop();
        // SAFETY: addr is the start of a free FRAME_SIZE buffer inside the
        // UMEM and the frame fits in it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                frame.as_ptr(),
                self.umem.as_ptr().add(addr as usize),
                frame.len(),
            );
        }
        let desc = libc::xdp_desc {
            addr,
            len: frame.len() as u32,
            options: 0,
        };
        self.tx.put(self.tx_pending, desc);
        self.tx_pending += 1;
        Ok(Step::Sent)
    }

    /// AF_XDP has no transmit segmentation: the super-packet goes to the
    /// device through a packet socket instead (the kernel, or the NIC's
    /// TSO, cuts it), after the frames put on the ring before it.
    fn run(&mut self, run: &Run<'_>) -> bool {
        let Some(len) = run.build(&mut self.gso_buf) else {
            return false;
        };
        self.tx.submit(self.tx_pending);
        self.tx_pending = 0;
        if self.kick_tx().is_err() {
            return false;
        }
        sys::send_whole(self.gso_fd.as_raw_fd(), &self.gso_buf[..len])
    }
}

impl PacketPort for AfXdpPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let room = (batch.capacity() - batch.len()) as u32;
        let n = self.rx.ready().min(room).min(self.fill.free());
        let mut added = 0;
        for i in 0..n {
            let desc = self.rx.get(i);
            if let (Some(bytes), Some(frame)) =
                (self.umem_bytes(desc.addr, desc.len), batch.next_free())
            {
                if frame.fill_from(bytes) {
                    if checksum::complete_if_partial(frame.data_mut()) {
                        self.offload.checksums_completed += 1;
                    }
                    batch.push_filled();
                    added += 1;
                }
            }
            self.fill.put(i, frame_base(desc.addr));
        }
        self.rx.release(n);
        self.fill.submit(n);
        if self.fill.needs_wakeup() {
            self.wake_rx();
        }
        Ok(added)
    }

    fn send(&mut self, frames: &mut dyn Iterator<Item = &[u8]>) -> io::Result<usize> {
        self.reclaim_sent();
        let result = coalesce::send_coalesced(self, frames);
        self.tx.submit(self.tx_pending);
        self.tx_pending = 0;
        // Also kicks for frames an earlier, busy kick left in the ring.
        self.kick_tx()?;
        result.map(|(sent, _)| sent)
    }

    fn poll_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn offload_counters(&self) -> OffloadCounters {
        self.offload
    }

    fn rx_ring_drops(&mut self) -> u64 {
        // SAFETY: plain old data; the kernel fills it.
        let mut stats: libc::xdp_statistics = unsafe { std::mem::zeroed() };
        match sys::getsockopt(
            self.fd.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            &mut stats,
        ) {
            // rx_dropped also counts frames that found the fill ring empty.
            Ok(()) => stats.rx_dropped + stats.rx_ring_full,
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ring_sizes_and_queues_are_refused() {
        for config in [
            AfXdpConfig {
                ring_size: 1000,
                ..AfXdpConfig::default()
            },
            AfXdpConfig {
                ring_size: 32,
                ..AfXdpConfig::default()
            },
            AfXdpConfig {
                queue: MAX_QUEUES,
                ..AfXdpConfig::default()
            },
        ] {
            let err = AfXdpPort::open("lo", config).err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
        for workers in [0, MAX_QUEUES + 1] {
            let err = AfXdpPort::open_queues("lo", workers, AfXdpConfig::default())
                .err()
                .expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
    }
}
