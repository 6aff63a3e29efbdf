//! The worker side of the local stack: how the forwarding pipeline hands
//! packets for the appliance's own addresses in, and takes the stack's
//! output back to route it.

use super::addr::is_unicast;
use super::link::{Link, QUEUE_PACKETS};
use crate::snapshot::{VrfId, GLOBAL_TABLE};
use crate::wire::{
    ipv4_at, ipv6_at, IPV4_DST, IPV4_HEADER, IPV4_SRC, IPV6_DST, IPV6_HEADER, IPV6_SRC,
};
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::sync::Arc;

/// Used by the forwarding pipeline between batches. `Send`, one per dataplane.
pub struct LocalPort {
    link: Arc<Link>,
}

impl LocalPort {
    pub(super) fn new(link: Arc<Link>) -> LocalPort {
        LocalPort { link }
    }

    /// Queues an IPv4 or IPv6 packet (no L2 header) addressed to one of the
    /// appliance's own addresses. The bytes are copied. Returns false when
    /// the packet is dropped: queue full, larger than the stack's MTU, or not
    /// a plausible IP packet between unicast addresses.
    pub fn deliver(&self, ip_packet: &[u8]) -> bool {
        self.deliver_in(ip_packet, GLOBAL_TABLE)
    }

    /// Like `deliver`, for a packet received in table `vrf` (the stack
    /// keeps it only if a tool's socket of that VRF waits for it).
    pub fn deliver_in(&self, ip_packet: &[u8], vrf: VrfId) -> bool {
        if !plausible_for_stack(ip_packet) {
            return false;
        }
        match self.link.inbound.push(ip_packet, vrf) {
            Some(was_empty) => {
                if was_empty {
                    self.link.poll_needed.notify_one();
                }
                true
            }
            None => false,
        }
    }

    /// Hands each IP packet the stack wants to send to `f`, with the table
    /// to route it in, as a received packet. Returns how many packets were
    /// handed over.
    pub fn drain_outgoing(&self, f: &mut dyn FnMut(&[u8], VrfId)) -> usize {
        self.drain_outgoing_max(QUEUE_PACKETS, f)
    }

    /// Like `drain_outgoing`, but hands over at most `max` packets (the room
    /// left in the caller's batch). Packets left behind keep `wake_fd`
    /// readable.
    pub fn drain_outgoing_max(&self, max: usize, f: &mut dyn FnMut(&[u8], VrfId)) -> usize {
        // Clear before draining: output queued from here on signals again.
        self.link.outgoing_ready.clear();
        // Bounded, so a busy stack cannot keep the worker here.
        let mut count = 0;
        while count < max {
            let Some(packet) = self.link.outbound.pop() else {
                break;
            };
            f(packet.data(), packet.vrf());
            self.link.outbound.recycle(packet);
            count += 1;
        }
        if !self.link.outbound.is_empty() {
            self.link.outgoing_ready.signal();
        }
        if count > 0 {
            self.link.release_tx();
        }
        count
    }

    /// Readable (an eventfd) while outgoing packets may wait, so a worker
    /// idle in poll() wakes up to call `drain_outgoing`.
    pub fn wake_fd(&self) -> RawFd {
        self.link.outgoing_ready.raw_fd()
    }
}

/// The stack must never answer from or to an address it cannot route
/// (smoltcp assumes unicast peers), so such packets stop here.
fn plausible_for_stack(packet: &[u8]) -> bool {
    let unicast = |src: IpAddr, dst: IpAddr| is_unicast(src) && is_unicast(dst);
    match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= IPV4_HEADER => unicast(
            ipv4_at(packet, IPV4_SRC).into(),
            ipv4_at(packet, IPV4_DST).into(),
        ),
        Some(6) if packet.len() >= IPV6_HEADER => unicast(
            ipv6_at(packet, IPV6_SRC).into(),
            ipv6_at(packet, IPV6_DST).into(),
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(source: [u8; 4], destination: [u8; 4]) -> [u8; 20] {
        let mut packet = [0u8; 20];
        packet[0] = 0x45;
        packet[12..16].copy_from_slice(&source);
        packet[16..20].copy_from_slice(&destination);
        packet
    }

    fn ipv4_from(source: [u8; 4]) -> [u8; 20] {
        ipv4(source, [10, 0, 0, 1])
    }

    /// An IPv6 header from `source` to 2001:db8::1.
    fn ipv6_from(source: &str) -> [u8; 40] {
        let mut packet = [0u8; 40];
        packet[0] = 0x60;
        let source: std::net::Ipv6Addr = source.parse().unwrap();
        packet[IPV6_SRC..IPV6_DST].copy_from_slice(&source.octets());
        packet[IPV6_DST..IPV6_DST + 2].copy_from_slice(&[0x20, 0x01]);
        packet[39] = 1;
        packet
    }

    #[test]
    fn refuses_what_the_stack_must_not_answer() {
        let port = LocalPort::new(Arc::new(Link::new().unwrap()));
        assert!(port.deliver(&ipv4_from([10, 0, 0, 2])));
        assert!(
            !port.deliver(&ipv4_from([224, 0, 0, 5])),
            "multicast source"
        );
        assert!(
            !port.deliver(&ipv4_from([255, 255, 255, 255])),
            "broadcast source"
        );
        assert!(
            !port.deliver(&ipv4_from([0, 0, 0, 0])),
            "unspecified source"
        );
        assert!(!port.deliver(&[0x45, 0, 0]), "truncated");
        assert!(!port.deliver(&[0x45; 1501]), "over the MTU");
        assert!(port.deliver(&ipv6_from("2001:db8::2")));
        assert!(port.deliver(&ipv6_from("fe80::2")), "link-local source");
        assert!(!port.deliver(&ipv6_from("ff02::1")), "multicast source");
        assert!(!port.deliver(&ipv6_from("::")), "unspecified source");
        assert!(!port.deliver(&[0x60; 39]), "truncated IPv6");
    }

    #[test]
    fn partial_drain_keeps_the_worker_awake() {
        let link = Arc::new(Link::new().unwrap());
        let port = LocalPort::new(link.clone());
        for i in 0..3u8 {
            link.outbound.push(&[i], GLOBAL_TABLE);
        }
        link.outgoing_ready.signal();
        let mut seen = Vec::new();
        assert_eq!(port.drain_outgoing_max(2, &mut |p, _| seen.push(p[0])), 2);
        assert!(link.outgoing_ready.is_readable(), "one packet still waits");
        assert_eq!(port.drain_outgoing(&mut |p, _| seen.push(p[0])), 1);
        assert!(!link.outgoing_ready.is_readable());
        assert_eq!(seen, [0, 1, 2]);
    }
}
