//! Packet I/O backends behind one small batched trait.
//!
//! Every backend allocates its buffers when the port is opened; `recv` and
//! `send` copy between those and the caller's preallocated `Batch`.
//!
//! Received frames are as they were (or would have been) on the wire:
//! 802.1Q tags in place, no larger than a frame buffer, and TCP/UDP
//! checksums complete. Ports turn receive coalescing (GRO/LRO) off; a peer
//! on a virtual link with segmentation and checksum offload on (a Linux
//! host's default) still sends super-packets and partial checksums, which
//! the ports finish in software (`offload`) before the pipeline sees them.

mod af_packet;
mod af_xdp;
mod checksum;
mod coalesce;
mod nic;
pub mod offload;
mod queue_group;
pub(crate) mod sys;
mod tap;
mod xdp_prog;

pub use af_packet::{AfPacketConfig, AfPacketPort, TpacketVersion};
pub use af_xdp::{AfXdpConfig, AfXdpPort, CopyMode, QueuePorts};
pub use offload::OffloadCounters;
pub use queue_group::QueueGroup;
pub use tap::TapPort;
pub use xdp_prog::XdpMode;

use crate::frame::Batch;
use crate::wire::ETH_HEADER;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::str::FromStr;

/// Shortest frame a port sends (see `PacketPort::send`): an Ethernet header,
/// the least the kernel accepts from a transmit ring.
const MIN_TX_FRAME: usize = ETH_HEADER;

/// A NIC (or tap) the dataplane owns. Implementations never allocate per packet.
pub trait PacketPort: Send {
    /// The interface name this port is attached to.
    fn name(&self) -> &str;

    /// Appends received frames to `batch` until it is full or nothing is
    /// waiting; returns how many were added. Never blocks.
    fn recv(&mut self, batch: &mut Batch) -> io::Result<usize>;

    /// Queues the frames for transmission and kicks the NIC; returns how many
    /// were accepted (the rest are dropped by the caller and counted).
    /// Frames shorter than an Ethernet header or longer than a buffer are
    /// not accepted. Never blocks; the iterator is left where the queue
    /// filled up. While the link is down the ring backends return an error
    /// (`NetworkDown`); frames they queued leave once the link is back.
    /// Runs of consecutive TCP segments of one flow are put back together
    /// and sent as one GSO super-packet (`coalesce`; AF_XDP sends those
    /// through a packet socket): what reaches the wire is the same segments.
    fn send(&mut self, frames: &mut dyn Iterator<Item = &[u8]>) -> io::Result<usize>;

    /// A descriptor that polls readable when frames are waiting.
    fn poll_fd(&self) -> RawFd;

    /// Frames the kernel dropped since the port opened because the port's
    /// receive ring was full (the worker fell behind). Ports that cannot
    /// tell report 0; a TAP device counts those as its own tx drops.
    fn rx_ring_drops(&mut self) -> u64 {
        0
    }

    /// What the port did since it opened to turn offloaded packets (GSO
    /// super-packets, partial checksums) into wire frames, and how many it
    /// dropped because their offload metadata was malformed.
    fn offload_counters(&self) -> OffloadCounters {
        OffloadCounters::default()
    }
}

/// Which packet I/O mechanism a port uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    AfPacket,
    AfXdp,
    Tap,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::AfPacket, Backend::AfXdp, Backend::Tap];

    fn as_str(self) -> &'static str {
        match self {
            Backend::AfPacket => "af-packet",
            Backend::AfXdp => "af-xdp",
            Backend::Tap => "tap",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of parsing a backend name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBackend(pub String);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown packet I/O backend '{}' (expected af-packet, af-xdp or tap)",
            self.0
        )
    }
}

impl std::error::Error for UnknownBackend {}

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| UnknownBackend(s.to_owned()))
    }
}

/// Opens a port on `ifname` with the backend's default settings. The port
/// brings the interface up and, for AF_PACKET and AF_XDP, turns receive
/// coalescing off (AF_XDP also reduces the NIC to one receive queue; see
/// `AfXdpPort::open_queues` for one per worker); these settings stay after
/// the port closes. Errors name the backend and interface, e.g. `af-xdp on
/// eth9: no such interface`.
pub fn open_port(backend: Backend, ifname: &str) -> io::Result<Box<dyn PacketPort>> {
    let port: io::Result<Box<dyn PacketPort>> = match backend {
        Backend::AfPacket => {
            AfPacketPort::open(ifname, AfPacketConfig::default()).map(|p| Box::new(p) as _)
        }
        Backend::AfXdp => AfXdpPort::open(ifname, AfXdpConfig::default()).map(|p| Box::new(p) as _),
        Backend::Tap => TapPort::open(ifname).map(|p| Box::new(p) as _),
    };
    port.map_err(|e| opening_error(backend, ifname, e))
}

/// An error of opening a port, naming the backend and interface.
pub(crate) fn opening_error(backend: Backend, ifname: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{backend} on {ifname}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for backend in Backend::ALL {
            assert_eq!(backend.to_string().parse::<Backend>(), Ok(backend));
        }
        assert_eq!("af-packet".parse(), Ok(Backend::AfPacket));
        assert!("afxdp".parse::<Backend>().is_err());
    }

    #[test]
    fn missing_interface_is_named_in_the_error() {
        for backend in [Backend::AfPacket, Backend::AfXdp] {
            let err = open_port(backend, "ghnosuch0").err().expect("must fail");
            assert_eq!(
                err.to_string(),
                format!("{backend} on ghnosuch0: no such interface")
            );
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
        }
        for bad in [
            "bad/name",
            "",
            "a:b",
            "x y",
            "..",
            "nul\0",
            "sixteen-chars-xx",
        ] {
            let err = open_port(Backend::Tap, bad).err().expect("must fail");
            assert_eq!(
                err.to_string(),
                format!("tap on {bad}: invalid interface name")
            );
        }
    }
}
