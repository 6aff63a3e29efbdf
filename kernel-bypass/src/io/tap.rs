//! TAP port: the kernel's tun/tap driver, one read or write per packet.
//! Slower than the mapped rings but needs no NIC, for tests and laptop demos.
//!
//! The tap offers the kernel side the offloads a virtio NIC offers its
//! guest (`TUNSETOFFLOAD`: checksum, TSO4/6 with ECN, USO where the kernel
//! has it), so the host behind it sends TCP super-packets of up to 64 KiB
//! with partial checksums, each read with its virtio-net header in front
//! (`IFF_VNET_HDR`). That is one read per 64 KiB instead of one per 1.5
//! KiB; `offload` cuts them into wire-sized frames with complete checksums.
//! Frames we write carry an all-zero header (complete, wire-sized); runs
//! of consecutive TCP segments go back as one super-packet (`coalesce`).

use super::coalesce::{self, Egress, Run, Step};
use super::offload::{self, Delivery, OffloadCounters, VnetHdr, VNET_HDR_LEN};
use super::sys;
use super::PacketPort;
use crate::frame::Batch;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The largest packet a tap hands over with offloads on: a 64 KiB GSO
/// super-packet plus its Ethernet header and a tag or two.
const MAX_READ: usize = VNET_HDR_LEN + 65_535 + 14 + 8;

/// Offloads offered to the kernel side. USO (UDP segmentation) exists
/// since Linux 6.2; older kernels refuse the request and get the rest.
const OFFLOADS: libc::c_uint =
    libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
const OFFLOADS_USO: libc::c_uint = OFFLOADS | libc::TUN_F_USO4 | libc::TUN_F_USO6;

pub struct TapPort {
    name: String,
    fd: OwnedFd,
    /// Where a packet is read to (allocated once, at open).
    read_buf: Box<[u8]>,
    /// Length of a packet read but not yet delivered (it needed more room
    /// than the batch had left); 0 if none.
    pending: usize,
    offload: OffloadCounters,
    /// Where a run of segments is put back together (allocated at open).
    gso_buf: Box<[u8]>,
}

impl TapPort {
    /// Attaches to the named tap, creating it if it does not exist (a tap we
    /// create disappears when the port is dropped), and brings it up.
    pub fn open(ifname: &str) -> io::Result<TapPort> {
        let mut req = sys::ifreq_for(ifname)?;
        req.ifr_ifru.ifru_flags =
            (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
        // SAFETY: the path is a valid C string.
        let fd = sys::owned_fd(unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        })
        .map_err(|e| io::Error::new(e.kind(), format!("/dev/net/tun: {e}")))?;
        // SAFETY: req is a valid ifreq the ioctl reads and updates.
        sys::check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) })?;
        set_offloads(&fd)?;
        sys::set_link_up(ifname)?;
        Ok(TapPort {
            name: ifname.to_owned(),
            fd,
            read_buf: vec![0; MAX_READ].into_boxed_slice(),
            pending: 0,
            offload: OffloadCounters::default(),
            gso_buf: vec![0; coalesce::MAX_SUPER].into_boxed_slice(),
        })
    }

    /// Delivers the packet in `read_buf` (`len` bytes with its header);
    /// false if the batch had no room for it (it stays pending).
    fn deliver(&mut self, len: usize, batch: &mut Batch, added: &mut usize) -> bool {
        let packet = &self.read_buf[..len];
        let Some(hdr) = VnetHdr::parse(packet) else {
            self.offload.dropped += 1;
            return true;
        };
        match offload::deliver(
            &hdr,
            &packet[VNET_HDR_LEN..],
            None,
            batch,
            &mut self.offload,
        ) {
            Delivery::NoRoom => {
                self.pending = len;
                false
            }
            Delivery::Added(n) => {
                *added += n;
                self.pending = 0;
                true
            }
        }
    }
}

/// Offers the kernel side of the tap the offloads `offload` undoes.
fn set_offloads(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its argument by value and touches no memory.
    let with_uso = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, OFFLOADS_USO) };
    if sys::check(with_uso).is_ok() {
        return Ok(());
    }
    // SAFETY: as above.
    sys::check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, OFFLOADS) })
        .map(drop)
        .map_err(|e| io::Error::new(e.kind(), format!("offering offloads to the tap: {e}")))
}

/// True for the errors that only mean "try again later".
fn would_block(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR)
    )
}

impl Egress for TapPort {
    /// Writes the frame behind an all-zero virtio-net header.
    fn one(&mut self, frame: &[u8]) -> io::Result<Step> {
        let header = [0u8; VNET_HDR_LEN];
        let parts = [
            libc::iovec {
                iov_base: header.as_ptr() as *mut libc::c_void,
                iov_len: header.len(),
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: both iovecs describe readable buffers that outlive the
        // call; writev only reads them.
        let n = unsafe { libc::writev(self.fd.as_raw_fd(), parts.as_ptr(), 2) };
        if n >= 0 {
            return Ok(Step::Sent);
        }
        let err = io::Error::last_os_error();
        if would_block(&err) {
            Ok(Step::Full)
        } else {
            Err(err)
        }
    }

    /// Writes the run as one GSO super-packet (the kernel side took the
    /// offloads, so it takes those too).
    fn run(&mut self, run: &Run<'_>) -> bool {
        let Some(len) = run.build(&mut self.gso_buf) else {
            return false;
        };
        // SAFETY: gso_buf holds len readable bytes.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), self.gso_buf.as_ptr().cast(), len) };
        usize::try_from(n) == Ok(len)
    }
}

impl PacketPort for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut added = 0;
        if self.pending > 0 && !self.deliver(self.pending, batch, &mut added) {
            return Ok(added);
        }
        while !batch.is_full() {
            let buf = &mut self.read_buf;
            // SAFETY: buf is a writable buffer of buf.len() bytes.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if added == 0 && !would_block(&err) {
                    return Err(err);
                }
                break;
            }
            if n == 0 {
                break;
            }
            if !self.deliver(n as usize, batch, &mut added) {
                break;
            }
        }
        Ok(added)
    }

    fn send(&mut self, frames: &mut dyn Iterator<Item = &[u8]>) -> io::Result<usize> {
        coalesce::send_coalesced(self, frames).map(|(sent, _)| sent)
    }

    fn poll_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn offload_counters(&self) -> OffloadCounters {
        self.offload
    }
}
