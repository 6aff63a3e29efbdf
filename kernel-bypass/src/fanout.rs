//! Sharing one interface between workers: each worker opens its own
//! AF_PACKET port on it, and the sockets join one fanout group so the
//! kernel spreads received frames over them by flow hash.

use crate::io::sys;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};

/// The kernel reassembles IP fragments before hashing, so a datagram's
/// fragments reach the same worker.
const FLAG_DEFRAG: u32 = 0x8000;

/// A fanout group id not used before by this process. Ids are shared by
/// the whole network namespace, so the process id is mixed in too.
pub fn new_group() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let pid = std::process::id() as u16;
    pid.wrapping_mul(1021)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Joins the AF_PACKET socket `fd` (an AF_PACKET port's poll descriptor is
/// its socket) to fanout group `group`; every socket of the group must be
/// bound to the same interface.
pub fn join(fd: RawFd, group: u16) -> io::Result<()> {
    let arg: u32 = u32::from(group) | ((libc::PACKET_FANOUT_HASH | FLAG_DEFRAG) << 16);
    sys::setsockopt(fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
}
