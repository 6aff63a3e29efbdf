//! Packet I/O backends behind one small batched trait.

use crate::frame::Batch;
use std::io;
use std::os::fd::RawFd;

/// A NIC (or tap) the dataplane owns. Implementations never allocate per packet.
pub trait PacketPort: Send {
    /// The interface name this port is attached to.
    fn name(&self) -> &str;

    /// Appends received frames to `batch` until it is full or nothing is
    /// waiting; returns how many were added. Never blocks.
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize>;

    /// Queues the frames for transmission and kicks the NIC; returns how many
    /// were accepted (the rest are dropped by the caller and counted).
    fn send(&mut self, frames: &mut dyn Iterator<Item = &[u8]>) -> io::Result<usize>;

    /// A descriptor that polls readable when frames are waiting.
    fn poll_fd(&self) -> RawFd;
}
