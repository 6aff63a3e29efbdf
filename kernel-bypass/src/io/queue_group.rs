//! Several ports of one interface served as one, for a worker that serves
//! more than one of its rx queues (AF_XDP on a NIC with more queues than
//! workers): it receives from each port in turn, starting from the next
//! one each time so that none waits behind the others, and sends on the
//! first (its own transmit queue). An epoll descriptor polls readable when
//! any of the ports does.

use super::offload::OffloadCounters;
use super::sys;
use super::PacketPort;
use crate::frame::Batch;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

pub struct QueueGroup {
    /// Never empty; the first one sends.
    ports: Vec<Box<dyn PacketPort>>,
    epoll: OwnedFd,
    /// The port the next `recv` starts at.
    next: usize,
}

impl QueueGroup {
    /// Groups `first` (which sends) with `others`.
    pub fn new(
        first: Box<dyn PacketPort>,
        others: Vec<Box<dyn PacketPort>>,
    ) -> io::Result<QueueGroup> {
        let mut ports = Vec::with_capacity(1 + others.len());
        ports.push(first);
        ports.extend(others);
        // SAFETY: plain descriptor creation.
        let epoll = sys::owned_fd(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        for port in &ports {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: 0,
            };
            // SAFETY: both descriptors are open and `event` is a valid
            // epoll_event, which the kernel copies.
            sys::check(unsafe {
                libc::epoll_ctl(
                    epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    port.poll_fd(),
                    &mut event,
                )
            })?;
        }
        Ok(QueueGroup {
            ports,
            epoll,
            next: 0,
        })
    }
}

impl PacketPort for QueueGroup {
    fn name(&self) -> &str {
        self.ports.first().map_or("", |p| p.name())
    }

    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize> {
        let count = self.ports.len();
        let (before, from_start) = self.ports.split_at_mut(self.next.min(count));
        self.next = (self.next + 1) % count.max(1);
        let mut added = 0;
        for port in from_start.iter_mut().chain(before) {
            if batch.is_full() {
                break;
            }
            added += port.recv(batch)?;
        }
        Ok(added)
    }

    fn send(&mut self, frames: &mut dyn Iterator<Item = &[u8]>) -> io::Result<usize> {
        match self.ports.first_mut() {
            Some(port) => port.send(frames),
            None => Ok(0),
        }
    }

    fn poll_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    fn rx_ring_drops(&mut self) -> u64 {
        self.ports.iter_mut().map(|p| p.rx_ring_drops()).sum()
    }

    fn offload_counters(&self) -> OffloadCounters {
        let mut total = OffloadCounters::default();
        for port in &self.ports {
            total += port.offload_counters();
        }
        total
    }
}
