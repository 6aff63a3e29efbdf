//! IPv6 receive, forward and output: header validation, own addresses
//! (Neighbour Discovery, ICMPv6 echo), hop limit, route lookup with ECMP,
//! and the egress MTU (routers never fragment IPv6: too-big packets become
//! ICMPv6 packet-too-big). Extension headers are not parsed: TCP and UDP
//! right after the fixed header go to the local stack (smoltcp), other
//! packets for our addresses are counted as unreachable.

use super::icmp::ICMP_HEADER;
use super::icmp6::Icmp6Error;
use super::output::next_hop;
use super::{Stage, Verdict};
use crate::counters::Counter;
use crate::features::{Family, Point};
use crate::fib::flow_hash;
use crate::frame::Frame;
use crate::snapshot::{Iface, RouteKind, Snapshot, VrfId, GLOBAL_TABLE};
use crate::wire::*;
use std::net::{IpAddr, Ipv6Addr};

/// An IPv6 address folded to 32 bits for the flow hash.
fn fold_address(d: &[u8], at: usize) -> u32 {
    (0..4).fold(0, |h, i| h ^ be32(d, at + 4 * i))
}

/// The 5-tuple hash of an IPv6 packet (ports only for TCP/UDP right after
/// the fixed header).
fn ipv6_flow_hash(d: &[u8]) -> u32 {
    let next = d[IPV6_NEXT_HEADER];
    let (sport, dport) = match (next, d.get(IPV6_HEADER..IPV6_HEADER + 4)) {
        (PROTO_TCP | PROTO_UDP, Some(p)) => (be16(p, 0), be16(p, 2)),
        _ => (0, 0),
    };
    let (src, dst) = (fold_address(d, IPV6_SRC), fold_address(d, IPV6_DST));
    flow_hash(src, dst, next, sport, dport)
}

fn off_the_wire(address: Ipv6Addr) -> bool {
    address.is_loopback() || address.to_ipv4_mapped().is_some()
}

/// True for the multicast groups an interface listens to: all-nodes and
/// the solicited-node groups of its addresses, of those it publishes and
/// of its master virtual routers'.
fn is_member(iface: &Iface, group: Ipv6Addr) -> bool {
    let virtual_addresses = iface.mastered_addresses().map(|(a, _)| a);
    let answered_for = (iface.published.iter().copied())
        .chain(virtual_addresses)
        .filter_map(|a| match a {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        });
    group == IPV6_ALL_NODES
        || group == solicited_node(iface.link_local)
        || (iface.ipv6_addresses.iter().map(|a| a.addr()))
            .chain(answered_for)
            .any(|a| group == solicited_node(a))
}

impl Stage {
    /// Validates an IPv6 header, then delivers locally or forwards.
    pub(super) fn ipv6_input(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
    ) -> Verdict {
        let at = (Some(iface.id), iface.vrf, None);
        if let Some(verdict) = self.feature(snap, (Family::Ipv6, Point::InterfaceInput), frame, at)
        {
            return verdict;
        }
        let d = frame.data();
        if d.len() < IPV6_HEADER || d[0] >> 4 != 6 {
            return self.count(iface.id, Counter::Ipv6Malformed);
        }
        let total = IPV6_HEADER + usize::from(be16(d, IPV6_PAYLOAD_LEN));
        if total > d.len() {
            return self.count(iface.id, Counter::Ipv6Malformed);
        }
        let (src, dst) = (ipv6_at(d, IPV6_SRC), ipv6_at(d, IPV6_DST));
        // Ethernet pads short frames: the payload length is authoritative.
        frame.truncate(total);
        // Loopback and IPv4-mapped addresses never belong on a wire, nor
        // does an unspecified destination (RFC 4291 2.5.2-2.5.5): neither
        // forwarded nor answered. (An unspecified source is a DAD probe.)
        if src.is_multicast() || off_the_wire(src) || off_the_wire(dst) || dst.is_unspecified() {
            return self.count(iface.id, Counter::Ipv6NotRoutable);
        }
        let (vrf, dst) = match self.pre_routing(snap, Family::Ipv6, frame, iface) {
            Ok(None) => (iface.vrf, dst),
            // Destination NAT may have changed where the packet goes.
            Ok(Some(vrf)) => (vrf, ipv6_at(frame.data(), IPV6_DST)),
            Err(verdict) => return verdict,
        };
        if dst.is_multicast() {
            return match is_member(iface, dst) {
                true => self.ip6_local(snap, frame, iface),
                false => self.count(iface.id, Counter::Ipv6NotRoutable),
            };
        }
        // What pre-routing left for an address an element publishes or a
        // master virtual router holds (neighbour unreachability
        // detection, echo) is the appliance's.
        if iface.has_ipv6(dst)
            || iface.published.contains(&IpAddr::V6(dst))
            || iface.virtual_mac_for(IpAddr::V6(dst)).is_some()
        {
            return self.ip6_local(snap, frame, iface);
        }
        // Link-local packets never leave their link (RFC 4291 2.5.6).
        if dst.is_unicast_link_local() || src.is_unicast_link_local() || src.is_unspecified() {
            return self.count(iface.id, Counter::Ipv6NotRoutable);
        }
        match snap.table(vrf).route6(dst).map(|r| &r.kind) {
            Some(RouteKind::Local { .. }) => self.ip6_local(snap, frame, iface),
            _ => self.ip6_forward(snap, frame, iface, vrf),
        }
    }

    /// A packet for one of our addresses or groups: ND and echo are
    /// answered here, datagrams for a tunnel's port go to its driver, other
    /// unicast TCP and UDP, echo replies and errors to the local stack.
    fn ip6_local(&mut self, snap: &Snapshot, frame: &mut Frame, iface: &Iface) -> Verdict {
        let d = frame.data();
        // The stack must not answer a multicast or an unspecified address.
        let unicast =
            !ipv6_at(d, IPV6_DST).is_multicast() && !ipv6_at(d, IPV6_SRC).is_unspecified();
        let udp_port = d.get(IPV6_HEADER + 2..IPV6_HEADER + 4).map(|p| be16(p, 0));
        let tunnel = match d[IPV6_NEXT_HEADER] {
            PROTO_UDP if unicast => udp_port.and_then(|p| snap.udp_tunnel(p)),
            _ => None,
        };
        // A tunnel's traffic is not policed as the appliance's own (as IPv4).
        if let Some(tunnel) = tunnel {
            return self.tunnel_input(snap, frame, iface, tunnel, IPV6_HEADER);
        }
        let at = (Some(iface.id), iface.vrf, None);
        if let Some(verdict) = self.feature(snap, (Family::Ipv6, Point::LocalIn), frame, at) {
            return verdict;
        }
        let d = frame.data();
        match d[IPV6_NEXT_HEADER] {
            PROTO_TCP | PROTO_UDP if unicast => return self.local_deliver(frame, iface),
            PROTO_ICMPV6 => {}
            _ => return self.count(iface.id, Counter::Ipv6LocalUnhandled),
        }
        if d.len() < IPV6_HEADER + ICMP_HEADER || ipv6_payload_checksum(d) != 0 {
            return self.count(iface.id, Counter::Icmp6Malformed);
        }
        match d[IPV6_HEADER] {
            ICMPV6_ECHO_REQUEST if unicast => self.icmp6_echo(snap, frame, iface),
            ICMPV6_NEIGHBOR_SOLICIT | ICMPV6_NEIGHBOR_ADVERT => self.nd_input(snap, frame, iface),
            // Answers to the appliance's own ping and traceroute.
            ICMPV6_ECHO_REPLY | ICMPV6_DEST_UNREACHABLE | ICMPV6_TIME_EXCEEDED if unicast => {
                self.local_deliver(frame, iface)
            }
            _ => self.count(iface.id, Counter::Ipv6LocalUnhandled),
        }
    }

    /// Forwards a received packet: hop limit check and decrement (IPv6 has
    /// no header checksum), then routing in table `vrf`.
    fn ip6_forward(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        ingress: &Iface,
        vrf: VrfId,
    ) -> Verdict {
        if frame.data()[IPV6_HOP_LIMIT] <= 1 {
            self.counters
                .on_interface(ingress.id, Counter::Ipv6HopLimitExpired);
            return self.icmp6_error(snap, frame, ingress, Icmp6Error::TimeExceeded);
        }
        match route_hop6(snap, vrf, frame.data()) {
            Some((_, out)) if frame.len() > usize::from(out.mtu) => {
                self.counters.on_interface(out.id, Counter::Ipv6MtuExceeded);
                let error = Icmp6Error::PacketTooBig { mtu: out.mtu };
                self.icmp6_error(snap, frame, ingress, error)
            }
            Some((hop, out)) => {
                let at = (Some(ingress.id), vrf, Some(out.id));
                if let Some(verdict) =
                    self.feature(snap, (Family::Ipv6, Point::PostRouting), frame, at)
                {
                    return verdict;
                }
                // Decremented only now, so errors quote the packet as sent.
                frame.data_mut()[IPV6_HOP_LIMIT] -= 1;
                self.counters.event(Counter::Ipv6Forwarded);
                self.neighbor_output(snap, frame, out, IpAddr::V6(hop), 0)
            }
            None => {
                self.counters.on_interface(ingress.id, Counter::Ipv6NoRoute);
                self.icmp6_error(snap, frame, ingress, Icmp6Error::NoRoute)
            }
        }
    }

    /// Sends an IPv6 packet the appliance originates (replies, errors,
    /// packets released after resolution, the local stack's). Link-local
    /// destinations are on `link`, the interface the exchange happens on.
    /// A packet over the egress MTU is dropped: it would be lost further on
    /// (the local stack's datagrams are not fragmented).
    pub(super) fn ip6_output(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        link: Option<&Iface>,
    ) -> Verdict {
        if frame.len() < IPV6_HEADER {
            self.counters.event(Counter::Ipv6Malformed);
            return Verdict::Done;
        }
        let dst = ipv6_at(frame.data(), IPV6_DST);
        let hop = match link {
            Some(out) if dst.is_unicast_link_local() && out.is_up() => Some((dst, out)),
            // Packets of a link are routed in its table; the local stack's in the global one.
            _ => route_hop6(snap, link.map_or(GLOBAL_TABLE, |l| l.vrf), frame.data()),
        };
        self.ip6_send(snap, frame, hop)
    }

    /// Routes an IPv6 packet the appliance originates in table `vrf` (a
    /// tunnel's outer packets).
    pub(super) fn ip6_output_in(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        vrf: VrfId,
    ) -> Verdict {
        if frame.len() < IPV6_HEADER {
            self.counters.event(Counter::Ipv6Malformed);
            return Verdict::Done;
        }
        let hop = route_hop6(snap, vrf, frame.data());
        self.ip6_send(snap, frame, hop)
    }

    /// Sends an IPv6 packet the appliance originates to its next hop.
    fn ip6_send(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        hop: Option<(Ipv6Addr, &Iface)>,
    ) -> Verdict {
        match hop {
            Some((_, out)) if frame.len() > usize::from(out.mtu) => {
                self.count(out.id, Counter::Ipv6MtuExceeded)
            }
            Some((hop, out)) => self.neighbor_output(snap, frame, out, IpAddr::V6(hop), 0),
            None => {
                self.counters.event(Counter::Ipv6NoRoute);
                Verdict::Done
            }
        }
    }

    /// Routes an IPv6 packet of the local stack. smoltcp has one interface
    /// for every link, so a packet to a link-local peer does not say which
    /// link: it leaves on the interface owning its source address, the
    /// address the peer used, so the link the exchange came in on. VLAN
    /// sub-interfaces share their NIC's MAC and so its link-local address:
    /// among them, the one that knows the peer as a neighbour wins (the
    /// peer resolved us there before it could send).
    pub(super) fn local6_output(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        vrf: VrfId,
    ) -> Verdict {
        let d = frame.data();
        if d.len() < IPV6_HEADER || !ipv6_at(d, IPV6_DST).is_unicast_link_local() {
            return self.ip6_output_in(snap, frame, vrf);
        }
        let (src, dst) = (ipv6_at(d, IPV6_SRC), ipv6_at(d, IPV6_DST));
        let in_table = |i: &&Iface| i.vrf == vrf && i.has_ipv6(src);
        let mut owners = snap.interfaces.iter().flatten().filter(in_table);
        let first = owners.clone().next();
        let knows_peer = |i: &&Iface| {
            let now = self.now_secs;
            self.shared.neighbor(i.id, IpAddr::V6(dst), now).is_some()
        };
        let link = owners.find(knows_peer).or(first);
        self.ip6_output(snap, frame, link)
    }
}

/// The next hop and outgoing interface for an IPv6 packet, if routable to
/// another host.
#[inline]
fn route_hop6<'s>(snap: &'s Snapshot, vrf: VrfId, d: &[u8]) -> Option<(Ipv6Addr, &'s Iface)> {
    let dst = ipv6_at(d, IPV6_DST);
    let route = snap.table(vrf).route6(dst)?;
    next_hop(snap, &route.kind, dst, || ipv6_flow_hash(d))
}
