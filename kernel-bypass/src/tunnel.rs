//! Point-to-point tunnel interfaces whose encapsulation an element owns
//! (WireGuard's `wgN`), in the spirit of VPP's UDP port registration: the
//! element compiles a driver into the interface's kind and claims its UDP
//! port in the snapshot; the IPv4/IPv6 path calls the driver when a packet
//! is routed out of the interface or a datagram arrives for the port at
//! one of our addresses, and never names the element.
//!
//! A tunnel interface has no neighbours: the path skips resolution, and
//! its "L2 output" is the driver's encapsulation, after which the outer
//! packet is routed in the table the driver names. A decapsulated packet
//! enters the IPv4/IPv6 input of the tunnel interface, as if received on
//! it; one that arrives through a tunnel interface is not decapsulated
//! again (no nesting, so no loop).

use crate::frame::Frame;
use crate::snapshot::{Iface, IfaceId, Snapshot, VrfId};
use std::fmt;
use std::sync::Arc;

/// What became of a datagram for a tunnel's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decapsulated {
    /// The frame holds the inner IP packet, received on this interface.
    Inner(IfaceId),
    /// The frame holds an answer (a handshake response): an outer packet
    /// to route in this table.
    Reply(VrfId),
    /// Taken (a handshake), or dropped and counted by the driver.
    Done,
}

/// An element's tunnel encapsulation, shared by every worker.
pub trait TunnelDriver: Send + Sync {
    /// `wireguard`: for `show interfaces`.
    fn name(&self) -> &'static str;

    /// An inner IP packet routed out of tunnel interface `iface`: Some(table)
    /// when the frame now holds the outer packet to route there; None when
    /// it was dropped or queued (the driver counted why).
    fn encapsulate(&self, snap: &Snapshot, iface: &Iface, frame: &mut Frame) -> Option<VrfId>;

    /// A UDP datagram for the driver's port at one of our addresses: the
    /// frame holds the outer IP packet, whose UDP header starts at `l4`.
    fn decapsulate(&self, ingress: &Iface, frame: &mut Frame, l4: usize) -> Decapsulated;

    /// Called every few milliseconds by one worker: the outer packets the
    /// driver sends on its own (handshakes, keepalives, packets queued
    /// while a handshake ran), each with the table to route it in.
    fn tick(&self, snap: &Snapshot, now_ms: u64, emit: &mut dyn FnMut(VrfId, &[u8]));
}

/// A driver as an interface kind holds it: the same driver, not an equal one.
#[derive(Clone)]
pub struct TunnelRef(pub Arc<dyn TunnelDriver>);

impl PartialEq for TunnelRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TunnelRef {}

impl fmt::Debug for TunnelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TunnelRef({})", self.0.name())
    }
}
