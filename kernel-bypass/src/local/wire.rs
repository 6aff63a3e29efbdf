//! Two local stacks joined directly, port to port, by a thread that moves
//! their packets across: for tests and benchmarks that need a TCP/UDP peer
//! without a dataplane or root.

use super::port::LocalPort;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How long the wire thread sleeps in poll() before checking for stop.
const STOP_CHECK_MS: i32 = 50;

/// The running wire; dropping it stops the thread.
pub struct BackToBack {
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BackToBack {
    /// Everything `a` sends is delivered to `b` and the other way round.
    /// Packets a full queue refuses are lost, as on a real link.
    pub fn join(a: LocalPort, b: LocalPort) -> BackToBack {
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let (stopped, dropping) = (stop.clone(), cut.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let mut fds = [a.wake_fd(), b.wake_fd()].map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                // SAFETY: two valid pollfds for the duration of the call.
                unsafe { libc::poll(fds.as_mut_ptr(), 2, STOP_CHECK_MS) };
                let lose = dropping.load(Ordering::Relaxed);
                a.drain_outgoing(&mut |packet, _| {
                    if !lose {
                        b.deliver(packet);
                    }
                });
                b.drain_outgoing(&mut |packet, _| {
                    if !lose {
                        a.deliver(packet);
                    }
                });
            }
        });
        BackToBack {
            stop,
            cut,
            thread: Some(thread),
        }
    }

    /// Cuts the wire (every packet is lost) or mends it.
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }
}

impl Drop for BackToBack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
