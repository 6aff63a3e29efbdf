//! Makes the serial console PID 1's controlling terminal on stdin, stdout
//! and stderr (the kernel hands init /dev/console, which cannot be one).

use std::ffi::CString;
use std::fs;

/// The tty behind /dev/console: the last one in the kernel's active list
/// (the last `console=` on the command line).
fn console_tty() -> Option<String> {
    let active = fs::read_to_string("/sys/class/tty/console/active").ok()?;
    active.split_whitespace().last().map(str::to_string)
}

/// Starts a new session and opens the console tty as its controlling
/// terminal; on failure the kernel's /dev/console stays in place.
pub fn attach() -> Result<String, String> {
    let tty = console_tty().ok_or("no active console tty in /sys/class/tty/console/active")?;
    let path = CString::new(format!("/dev/{tty}")).map_err(|_| "bad console name")?;
    unsafe {
        libc::setsid();
        let fd = libc::open(path.as_ptr(), libc::O_RDWR);
        if fd < 0 {
            return Err(format!(
                "cannot open /dev/{tty}: {}",
                std::io::Error::last_os_error()
            ));
        }
        libc::ioctl(fd, libc::TIOCSCTTY, 1);
        for target in 0..3 {
            libc::dup2(fd, target);
        }
        if fd > 2 {
            libc::close(fd);
        }
    }
    Ok(tty)
}
