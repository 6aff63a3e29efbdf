//! Spreading an interface's received traffic over the workers, each worker
//! with a port of its own on the interface:
//! - AF_PACKET: the workers' sockets join one fanout group and the kernel
//!   hands each frame to one of them by flow hash (`PACKET_FANOUT_HASH`).
//!   The hash, not `PACKET_FANOUT_CPU`: the CPU a frame arrives on is the
//!   queue's interrupt CPU on a multi-queue NIC, which would give one
//!   worker per queue only where interrupts are pinned to match the
//!   workers, but on veth it is whichever CPU the sender runs on, so a
//!   flow would move between workers (and be reordered) as its sender
//!   moves. The hash keeps a flow on one worker on every NIC.
//! - AF_XDP: a socket serves one rx queue, so every queue gets a socket
//!   (`AfXdpPort::open_queues`) and worker i serves queues i, i + W,
//!   i + 2W ... of W workers, transmitting on queue i: one queue each when
//!   the NIC has as many queues as workers (the NIC is asked for more when
//!   it has fewer, never for fewer). A NIC that cannot have a queue per
//!   worker is refused: a worker without a queue there could not send
//!   there either. What was opened is logged.
//! - TAP: one worker.
//!
//! Which worker gets a packet is the NIC's or the kernel's choice, and the
//! two directions of a flow may reach different workers: everything a
//! packet needs from another is shared (sessions, NAT translations,
//! neighbours, learned MACs; `sessions` explains the choice), and what a
//! worker keeps to itself (its packets waiting for ARP, its ICMP error
//! budget) looks only at those shared tables.

use crate::io::{self, sys, AfXdpConfig, AfXdpPort, Backend, PacketPort, QueueGroup};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};

/// The kernel reassembles IP fragments before hashing, so a datagram's
/// fragments reach the same worker.
const FLAG_DEFRAG: u32 = 0x8000;

/// One interface's ports, in worker order, what part of the traffic
/// each serves (`show dataplane workers`), and what is worth logging
/// about how they share it.
pub struct Spread {
    pub ports: Vec<Box<dyn PacketPort>>,
    pub shares: Vec<String>,
    pub notes: Vec<String>,
}

/// Opens a port on `ifname` for each of `workers` workers.
pub fn open_ports(backend: Backend, ifname: &str, workers: usize) -> Result<Spread, String> {
    match backend {
        Backend::AfXdp => per_queue(ifname, workers),
        Backend::AfPacket | Backend::Tap => fanout(backend, ifname, workers),
    }
}

/// An AF_XDP port on every rx queue; each worker gets its queues'.
fn per_queue(ifname: &str, workers: usize) -> Result<Spread, String> {
    let workers_u32 = u32::try_from(workers).unwrap_or(u32::MAX);
    let opened = AfXdpPort::open_queues(ifname, workers_u32, AfXdpConfig::default())
        .map_err(|e| io::opening_error(Backend::AfXdp, ifname, e).to_string())?;
    let copy = match opened.ports.first().map(AfXdpPort::zero_copy) {
        Some(true) => "zero-copy",
        _ => "copy mode (the driver has no zero-copy)",
    };
    let queues = opened.ports.len();
    let mut notes = vec![format!(
        "%DATAPLANE-5-QUEUES: {ifname}: AF_XDP on {queues} rx queue(s) for {workers} worker(s), {copy}"
    )];
    if opened.nic_queues as usize > queues {
        notes.push(format!(
            "%DATAPLANE-4-QUEUES: {ifname}: queues {queues} to {} of {} go to the kernel unserved",
            opened.nic_queues - 1,
            opened.nic_queues
        ));
    }
    // Worker w's ports: queues w, w + workers, ...; its first one sends.
    let mut mine: Vec<Vec<Box<dyn PacketPort>>> = (0..workers).map(|_| Vec::new()).collect();
    for (queue, port) in opened.ports.into_iter().enumerate() {
        if let Some(ports) = mine.get_mut(queue % workers) {
            ports.push(Box::new(port));
        }
    }
    let mut ports = Vec::with_capacity(workers);
    let mut shares = Vec::with_capacity(workers);
    for (worker, own) in mine.into_iter().enumerate() {
        let served: Vec<String> = (worker..queues)
            .step_by(workers)
            .map(|q| q.to_string())
            .collect();
        let mut own = own.into_iter();
        // open_queues gave at least one queue per worker.
        let Some(first) = own.next() else {
            return Err(format!("{ifname}: no rx queue for worker {worker}"));
        };
        let others: Vec<_> = own.collect();
        ports.push(if others.is_empty() {
            first
        } else {
            Box::new(QueueGroup::new(first, others).map_err(|e| format!("{ifname}: {e}"))?)
        });
        let plural = if served.len() > 1 { "s" } else { "" };
        shares.push(format!("rx queue{plural} {}", served.join(", ")));
    }
    Ok(Spread {
        ports,
        shares,
        notes,
    })
}

/// A port per worker in one fanout group (just the port for one worker).
fn fanout(backend: Backend, ifname: &str, workers: usize) -> Result<Spread, String> {
    let group = new_group();
    let mut ports = Vec::with_capacity(workers);
    for _ in 0..workers {
        let port = io::open_port(backend, ifname).map_err(|e| e.to_string())?;
        if workers > 1 {
            join(port.poll_fd(), group)
                .map_err(|e| format!("{ifname}: cannot share between workers: {e}"))?;
        }
        ports.push(port);
    }
    let share = if workers > 1 {
        "fanout by flow hash"
    } else {
        "all traffic"
    };
    Ok(Spread {
        ports,
        shares: vec![share.to_string(); workers],
        notes: Vec::new(),
    })
}

/// A fanout group id not used before by this process. Ids are shared by
/// the whole network namespace, so the process id is mixed in too.
fn new_group() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let pid = std::process::id() as u16;
    pid.wrapping_mul(1021)
        .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Joins the AF_PACKET socket `fd` (an AF_PACKET port's poll descriptor is
/// its socket) to fanout group `group`; every socket of the group must be
/// bound to the same interface.
fn join(fd: RawFd, group: u16) -> std::io::Result<()> {
    let arg: u32 = u32::from(group) | ((libc::PACKET_FANOUT_HASH | FLAG_DEFRAG) << 16);
    sys::setsockopt(fd, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
}
