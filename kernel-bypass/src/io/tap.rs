//! TAP port: the kernel's tun/tap driver, one read or write per frame.
//! Slower than the mapped rings but needs no NIC, for tests and laptop demos.

use super::sys;
use super::PacketPort;
use crate::frame::{Batch, MAX_FRAME};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub struct TapPort {
    name: String,
    fd: OwnedFd,
}

impl TapPort {
    /// Attaches to the named tap, creating it if it does not exist (a tap we
    /// create disappears when the port is dropped), and brings it up.
    pub fn open(ifname: &str) -> io::Result<TapPort> {
        let mut req = sys::ifreq_for(ifname)?;
        req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
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
        sys::set_link_up(ifname)?;
        Ok(TapPort {
            name: ifname.to_owned(),
            fd,
        })
    }
}

/// True for the errors that only mean "try again later".
fn would_block(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOBUFS | libc::EINTR)
    )
}

impl PacketPort for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let mut added = 0;
        while let Some(frame) = batch.next_free() {
            let buf = frame.reset(MAX_FRAME);
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
            // A frame longer than the buffer was truncated: drop it.
            if n as usize <= MAX_FRAME {
                frame.truncate(n as usize);
                batch.push_filled();
                added += 1;
            }
        }
        Ok(added)
    }

    fn send(&mut self, frames: &mut dyn Iterator<Item = &[u8]>) -> io::Result<usize> {
        let mut sent = 0;
        for frame in frames {
            // SAFETY: frame is a readable buffer of frame.len() bytes.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if sent == 0 && !would_block(&err) {
                    return Err(err);
                }
                break;
            }
            sent += 1;
        }
        Ok(sent)
    }

    fn poll_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
