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
//! - AF_XDP: a socket serves one rx queue, so the NIC is asked for one
//!   queue per worker and worker i receives and transmits on queue i
//!   (`AfXdpPort::open_queues`). A NIC that cannot have that many queues
//!   is refused: a worker without a queue there could not send there
//!   either. Queues the NIC keeps beyond the workers are left to the
//!   kernel, and logged.
//! - TAP: one worker.
//!
//! Which worker gets a packet is the NIC's or the kernel's choice, and the
//! two directions of a flow may reach different workers: everything a
//! packet needs from another is shared (sessions, NAT translations,
//! neighbours, learned MACs; `sessions` explains the choice), and what a
//! worker keeps to itself (its packets waiting for ARP, its ICMP error
//! budget) looks only at those shared tables.

use crate::io::{self, sys, AfXdpConfig, AfXdpPort, Backend, PacketPort};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU16, Ordering};

/// The kernel reassembles IP fragments before hashing, so a datagram's
/// fragments reach the same worker.
const FLAG_DEFRAG: u32 = 0x8000;

/// One interface's ports, in worker order, and what is worth logging
/// about how they share it.
pub struct Spread {
    pub ports: Vec<Box<dyn PacketPort>>,
    pub notes: Vec<String>,
}

/// Opens a port on `ifname` for each of `workers` workers.
pub fn open_ports(backend: Backend, ifname: &str, workers: usize) -> Result<Spread, String> {
    match backend {
        Backend::AfXdp => per_queue(ifname, workers),
        Backend::AfPacket | Backend::Tap => fanout(backend, ifname, workers),
    }
}

/// An AF_XDP port per worker, each on its own rx queue.
fn per_queue(ifname: &str, workers: usize) -> Result<Spread, String> {
    let queues = u32::try_from(workers).unwrap_or(u32::MAX);
    let opened = AfXdpPort::open_queues(ifname, queues, AfXdpConfig::default())
        .map_err(|e| io::opening_error(Backend::AfXdp, ifname, e).to_string())?;
    let copy = match opened.ports.first().map(AfXdpPort::zero_copy) {
        Some(true) => "zero-copy",
        _ => "copy mode (the driver has no zero-copy)",
    };
    let mut notes = vec![format!(
        "%DATAPLANE-5-QUEUES: {ifname}: AF_XDP on {queues} rx queue(s), one per worker, {copy}"
    )];
    if opened.nic_queues > queues {
        notes.push(format!(
            "%DATAPLANE-4-QUEUES: {ifname}: {} rx queues and {queues} worker(s); the NIC \
             refused fewer queues, so queues {queues} to {} go to the kernel unserved",
            opened.nic_queues,
            opened.nic_queues - 1
        ));
    }
    let ports = opened
        .ports
        .into_iter()
        .map(|p| Box::new(p) as Box<dyn PacketPort>)
        .collect();
    Ok(Spread { ports, notes })
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
    Ok(Spread {
        ports,
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
