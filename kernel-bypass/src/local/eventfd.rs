//! A non-blocking Linux eventfd: lets the local stack wake a worker that
//! sleeps in poll() when it has packets for the dataplane.

use crate::io::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers.
        let fd =
            sys::owned_fd(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        Ok(EventFd { fd })
    }

    /// Makes the fd readable.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64. The only possible failure is
        // EAGAIN when the counter is saturated, which still leaves it readable.
        unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Makes the fd unreadable again (until the next `signal`).
    pub fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64. EAGAIN (already clear) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
impl EventFd {
    /// Whether the fd is readable right now.
    pub fn is_readable(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_then_clear() {
        let fd = EventFd::new().unwrap();
        assert!(!fd.is_readable());
        fd.signal();
        fd.signal();
        assert!(fd.is_readable());
        fd.clear();
        assert!(!fd.is_readable());
    }
}
