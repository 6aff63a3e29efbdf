//! A pseudo-terminal for tests that drive the CLI as a person at a
//! terminal does: `open` gives its two ends, `Screen` reads the master end
//! in the background and waits for text to appear.

use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A new pty: (master, slave), with default settings and size.
pub fn open() -> (File, File) {
    let (mut master_fd, mut slave_fd) = (0, 0);
    let no_name = std::ptr::null_mut();
    let (default_termios, default_size) = (std::ptr::null(), std::ptr::null());
    // SAFETY: openpty writes two new descriptors into the integers given;
    // the null pointers ask for no name and default settings.
    let rc = unsafe {
        libc::openpty(
            &mut master_fd,
            &mut slave_fd,
            no_name,
            default_termios,
            default_size,
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // SAFETY: both descriptors were just opened and are owned here only.
    unsafe { (File::from_raw_fd(master_fd), File::from_raw_fd(slave_fd)) }
}

/// What a pty master shows, read in the background; `wait_for` finds text
/// after the previous match.
pub struct Screen {
    seen: Arc<Mutex<Vec<u8>>>,
    checked: usize,
    /// A hang guard, not a timing.
    patience: Duration,
}

impl Screen {
    pub fn start(mut master: File, patience: Duration) -> Screen {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut master, &mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Screen {
            seen,
            checked: 0,
            patience,
        }
    }

    /// Waits until `text` appears after what earlier waits matched; the
    /// screen from the previous match to the end of `text`.
    pub fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + self.patience;
        loop {
            let seen = String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned();
            if let Some(at) = seen.get(self.checked..).and_then(|s| s.find(text)) {
                let found = seen[self.checked..self.checked + at + text.len()].to_string();
                self.checked += at + text.len();
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never came; screen:\n{seen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
