//! Worker threads: each owns its ports and its pipeline, picks up the newest
//! snapshot between batches, and sleeps in poll() when no port has traffic.

use crate::counters::WorkerCounters;
use crate::io::PacketPort;
use crate::pipeline::Pipeline;
use crate::snapshot::{PortId, Snapshot};
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How long an idle worker sleeps before checking the stop flag and timers.
const IDLE_POLL_MS: i32 = 20;

/// A port to attach (Some) or detach (None) at a port index.
pub type PortChange = (PortId, Option<Box<dyn PacketPort>>);

/// The control side's handle on one worker thread.
pub struct Worker {
    thread: JoinHandle<()>,
    ports: Sender<PortChange>,
    pub counters: Arc<WorkerCounters>,
    /// The CPU the thread is pinned to, if any.
    pub cpu: Option<usize>,
}

impl Worker {
    /// Starts a worker thread, pinned to `cpu` when given.
    pub fn spawn(
        index: usize,
        cpu: Option<usize>,
        pipeline: Pipeline,
        counters: Arc<WorkerCounters>,
        snapshots: Arc<ArcSwap<Snapshot>>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name(format!("dataplane-{index}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    pin_to(cpu);
                }
                run(pipeline, rx, &snapshots, &stop)
            })?;
        Ok(Worker {
            thread,
            ports: tx,
            counters,
            cpu,
        })
    }

    /// Hands a port change to the worker; it applies it before its next round.
    pub fn change_port(&self, change: PortChange) {
        // A worker that exited has nothing left to attach to.
        let _ = self.ports.send(change);
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; the kernel fills at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|cpu| libc::CPU_ISSET(*cpu, &set))
            .collect()
    }
}

/// Keeps the calling thread on one CPU. Best effort: a worker that cannot
/// be pinned still works, only with less predictable caches.
fn pin_to(cpu: usize) {
    // SAFETY: as above; `cpu` is below CPU_SETSIZE (it came from allowed_cpus).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn run(
    mut pipeline: Pipeline,
    changes: Receiver<PortChange>,
    snapshots: &ArcSwap<Snapshot>,
    stop: &AtomicBool,
) {
    let mut ports: Vec<Option<Box<dyn PacketPort>>> = Vec::new();
    let mut poll_set: Vec<libc::pollfd> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // Snapshot first: ports it names were sent before it was published.
        let snap = snapshots.load();
        let mut changed = poll_set.is_empty();
        while let Ok((index, port)) = changes.try_recv() {
            let index = usize::from(index);
            if ports.len() <= index {
                ports.resize_with(index + 1, || None);
            }
            ports[index] = port;
            changed = true;
        }
        if changed {
            poll_set = ports
                .iter()
                .flatten()
                .map(|p| p.poll_fd())
                .chain(pipeline.local_wake_fd())
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
        }
        if !pipeline.run_once(&snap, &mut ports) {
            idle(&mut poll_set);
        }
    }
}

/// Sleeps until a port or the local stack has work, or the idle period ends.
fn idle(poll_set: &mut [libc::pollfd]) {
    // SAFETY: the pointer and length describe a live, exclusively borrowed slice.
    unsafe {
        libc::poll(
            poll_set.as_mut_ptr(),
            poll_set.len() as libc::nfds_t,
            IDLE_POLL_MS,
        );
    }
    // A port whose interface vanished polls as failed at once: sleep the
    // idle period instead of spinning until the config drops it.
    let failed = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
    if poll_set.iter().any(|p| p.revents & failed != 0) {
        std::thread::sleep(std::time::Duration::from_millis(IDLE_POLL_MS as u64));
    }
}
