//! The pair of packet queues joining the dataplane worker and the local
//! stack, with the signals each side uses to wake the other.

use super::eventfd::EventFd;
use super::queue::PacketQueue;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// Largest IP packet the local stack sends or accepts (its interface MTU).
pub const IP_MTU: usize = 1500;
/// Packets each direction can hold before the producer sees "full".
pub const QUEUE_PACKETS: usize = 512;

pub struct Link {
    /// Packets for the appliance's own addresses, from the worker.
    pub inbound: PacketQueue,
    /// Packets the stack sends, for the worker to route.
    pub outbound: PacketQueue,
    /// Readable while `outbound` may hold packets.
    pub outgoing_ready: EventFd,
    /// Tells the stack's driver to poll the interface now.
    pub poll_needed: Notify,
    /// Set when the driver held back output because `outbound` was full.
    tx_blocked: AtomicBool,
}

impl Link {
    pub fn new() -> io::Result<Link> {
        Ok(Link {
            inbound: PacketQueue::new(QUEUE_PACKETS, IP_MTU),
            outbound: PacketQueue::new(QUEUE_PACKETS, IP_MTU),
            outgoing_ready: EventFd::new()?,
            poll_needed: Notify::new(),
            tx_blocked: AtomicBool::new(false),
        })
    }

    /// Records that output waits for room in `outbound`.
    pub fn mark_tx_blocked(&self) {
        self.tx_blocked.store(true, Ordering::Release);
    }

    pub fn is_tx_blocked(&self) -> bool {
        self.tx_blocked.load(Ordering::Acquire)
    }

    /// Called after the worker made room in `outbound`: restarts held-back output.
    pub fn release_tx(&self) {
        if self.tx_blocked.swap(false, Ordering::AcqRel) {
            self.poll_needed.notify_one();
        }
    }
}
