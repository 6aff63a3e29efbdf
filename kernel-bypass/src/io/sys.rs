//! Thin, checked wrappers over the Linux calls the backends share:
//! interface lookup, socket options, shared memory mappings.

use std::ffi::CString;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;

/// Turns a `-1` return into the thread's errno.
pub fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a descriptor a syscall returned.
pub fn owned_fd(ret: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: a non-negative return of a descriptor-creating call is a fresh fd we own.
    check(ret).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Validates an interface name the way the kernel would, as a C string.
pub fn ifname_cstring(name: &str) -> io::Result<CString> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "invalid interface name");
    let forbidden = |c: char| c == '/' || c == ':' || c.is_whitespace();
    if name.is_empty()
        || name.len() >= libc::IFNAMSIZ
        || name.contains(forbidden)
        || name == "."
        || name == ".."
    {
        return Err(invalid());
    }
    // Also refuses an embedded NUL.
    CString::new(name).map_err(|_| invalid())
}

/// The kernel's index of the named interface.
pub fn ifindex(name: &str) -> io::Result<u32> {
    let cname = ifname_cstring(name)?;
    // SAFETY: cname is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(cname.as_ptr()) } {
        0 => Err(io::Error::new(io::ErrorKind::NotFound, "no such interface")),
        index => Ok(index),
    }
}

/// An `ifreq` carrying `name`, for the interface ioctls.
pub fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let cname = ifname_cstring(name)?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(cname.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

/// Brings the interface administratively up if it is not: the port owns the
/// NIC, and at boot nothing else configures it.
pub fn set_link_up(name: &str) -> io::Result<()> {
    // SAFETY: plain socket creation.
    let sock = owned_fd(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) })?;
    let mut req = ifreq_for(name)?;
    // SAFETY: req is a valid ifreq; the ioctls read and write only it.
    unsafe {
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
        if req.ifr_ifru.ifru_flags & libc::IFF_UP as libc::c_short == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            check(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req))?;
        }
    }
    Ok(())
}

/// `setsockopt` with a typed value.
pub fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: value points to size_of::<T>() readable bytes.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `getsockopt` into a plain-old-data value.
pub fn getsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &mut T,
) -> io::Result<()> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: value points to len writable bytes.
    check(unsafe { libc::getsockopt(fd, level, name, (value as *mut T).cast(), &mut len) })
        .map(drop)
}

/// Sends all of `packet` on a bound packet socket without blocking; false
/// when it was not sent whole (a full socket buffer, or any failure).
pub fn send_whole(fd: RawFd, packet: &[u8]) -> bool {
    // SAFETY: `packet` is readable for its length; the socket is bound to
    // its interface, so no address is needed.
    let ret = unsafe { libc::send(fd, packet.as_ptr().cast(), packet.len(), libc::MSG_DONTWAIT) };
    usize::try_from(ret) == Ok(packet.len())
}

/// `sendto(fd, NULL, 0, MSG_DONTWAIT)`: tells the kernel a tx ring has work.
/// A full device queue is not an error: the frames stay queued in the ring.
/// A socket reports an earlier event (its link went down) once, on the next
/// send, even when the link is back: a failed kick is retried once so such a
/// stale error does not fail a healthy port.
pub fn kick_tx(fd: RawFd) -> io::Result<()> {
    kick_once(fd).or_else(|_| kick_once(fd))
}

fn kick_once(fd: RawFd) -> io::Result<()> {
    // SAFETY: a zero-length send with no address reads no user memory.
    let ret = unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if ret >= 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN | libc::ENOBUFS | libc::EBUSY) => Ok(()),
        _ => Err(err),
    }
}

/// A shared memory mapping, unmapped on drop.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned memory; access discipline is the owner's job.
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` at `offset` (ring memory a socket exposes).
    pub fn of_fd(fd: RawFd, len: usize, offset: libc::off_t) -> io::Result<Mmap> {
        Self::map(len, libc::MAP_SHARED | libc::MAP_POPULATE, fd, offset)
    }

    /// Maps `len` bytes of zeroed anonymous memory (an AF_XDP UMEM).
    pub fn anonymous(len: usize) -> io::Result<Mmap> {
        Self::map(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    }

    fn map(len: usize, flags: libc::c_int, fd: RawFd, offset: libc::off_t) -> io::Result<Mmap> {
        // SAFETY: a fresh mapping chosen by the kernel aliases no Rust object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast())
            .map(|ptr| Mmap { ptr, len })
            .ok_or_else(|| io::Error::other("mmap returned null"))
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe a mapping we created and nobody uses after drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
