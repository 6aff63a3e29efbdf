//! Receive side: Ethernet/802.1Q classification, ARP, IPv4 validation,
//! local delivery, VXLAN decapsulation and the hand-over to elements'
//! tunnel drivers (IPv6 continues in `ipv6`) and to L2 domains (`l2`) for
//! frames of their members.

use super::{neighbor_key, vtep_key, Stage, Verdict};
use crate::counters::Counter;
use crate::features::{Ahead, Family, Point};
use crate::frame::Frame;
use crate::snapshot::{Iface, IfaceKind, PortId, RouteKind, Snapshot, GLOBAL_TABLE};
use crate::tunnel::{Decapsulated, TunnelRef};
use crate::wire::*;
use std::net::Ipv4Addr;

/// An Ethernet header as classified on input.
pub(super) struct L2 {
    dst: Mac,
    src: Mac,
    ethertype: u16,
    header_len: usize,
}

/// Reads the Ethernet header and an optional 802.1Q tag: (header, VLAN id).
pub(super) fn parse_l2(d: &[u8]) -> Option<(L2, Option<u16>)> {
    if d.len() < ETH_HEADER {
        return None;
    }
    let (ethertype, header_len, vlan) = match be16(d, 12) {
        ETHERTYPE_VLAN if d.len() < ETH_HEADER + VLAN_TAG => return None,
        ETHERTYPE_VLAN => (
            be16(d, 16),
            ETH_HEADER + VLAN_TAG,
            Some(be16(d, 14) & 0x0fff),
        ),
        ethertype => (ethertype, ETH_HEADER, None),
    };
    let l2 = L2 {
        dst: mac_at(d, 0),
        src: mac_at(d, 6),
        ethertype,
        header_len,
    };
    Some((l2, vlan))
}

/// Lets the elements warm their tables for a frame received on `port` that
/// the path reaches a few frames later (plain and 802.1Q-tagged IP only).
pub(super) fn prefetch_flow(snap: &Snapshot, port: PortId, frame: &[u8]) {
    let Some((l2, vlan)) = parse_l2(frame) else {
        return;
    };
    let family = match l2.ethertype {
        ETHERTYPE_IPV4 => Family::Ipv4,
        ETHERTYPE_IPV6 => Family::Ipv6,
        _ => return,
    };
    let Some(iface) = snap.ingress(port, vlan).and_then(|id| snap.interface(id)) else {
        return;
    };
    snap.features.prefetch(&Ahead {
        ip: &frame[l2.header_len..],
        family,
        ingress: iface.id,
        vrf: iface.vrf,
    });
}

impl Stage {
    /// Entry point for a frame received on `frame.port`.
    pub(super) fn ethernet_input(&mut self, snap: &Snapshot, frame: &mut Frame) -> Verdict {
        let Some((l2, vlan)) = parse_l2(frame.data()) else {
            self.counters.event(Counter::EthernetRunt);
            return Verdict::Done;
        };
        let Some(iface) = snap
            .ingress(frame.port, vlan)
            .and_then(|id| snap.interface(id))
        else {
            self.counters.event(if vlan.is_some() {
                Counter::EthernetUnknownVlan
            } else {
                Counter::EthernetNoInterface
            });
            return Verdict::Done;
        };
        self.counters.rx(iface.id, frame.len());
        if let Some(domain) = iface.l2_domain {
            return self.l2_domain_input(snap, frame, (iface, None), domain, 0);
        }
        self.l2_input(snap, frame, iface, &l2, 0)
    }

    /// A frame (starting at its Ethernet header) received on `iface`;
    /// `depth` counts tunnels already removed.
    pub(super) fn l2_input(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
        l2: &L2,
        depth: u8,
    ) -> Verdict {
        if l2.src == iface.mac {
            return self.count(iface.id, Counter::EthernetOwnSource);
        }
        let to_virtual_router =
            || (iface.virtual_routers.iter()).any(|v| v.mac == l2.dst && v.is_master());
        if l2.dst != iface.mac && !is_multicast(&l2.dst) && !to_virtual_router() {
            return self.count(iface.id, Counter::EthernetOtherHost);
        }
        if !iface.is_up() {
            return self.count(iface.id, Counter::InterfaceDown);
        }
        frame.pull_front(l2.header_len);
        match l2.ethertype {
            ETHERTYPE_ARP => self.arp_input(snap, frame, iface),
            ETHERTYPE_IPV4 => self.ipv4_input(snap, frame, iface, depth),
            ETHERTYPE_IPV6 => self.ipv6_input(snap, frame, iface),
            _ => self.count(iface.id, Counter::EthernetUnknownType),
        }
    }

    /// Learns the sender of ARP for our addresses and answers requests.
    fn arp_input(&mut self, snap: &Snapshot, frame: &mut Frame, iface: &Iface) -> Verdict {
        let d = frame.data();
        if d.len() < ARP_PACKET
            || be16(d, 0) != 1
            || be16(d, 2) != ETHERTYPE_IPV4
            || d[4] != 6
            || d[5] != 4
        {
            return self.count(iface.id, Counter::ArpMalformed);
        }
        let op = be16(d, 6);
        let sender_mac = mac_at(d, ARP_SENDER_MAC);
        let sender_ip = ipv4_at(d, ARP_SENDER_IP);
        let target_ip = ipv4_at(d, ARP_TARGET_IP);
        // A master virtual router answers for its addresses with its MAC.
        let virtual_mac = iface.virtual_mac_for(target_ip.into());
        let for_us = iface.addresses.iter().any(|a| a.addr() == target_ip)
            || iface.published.contains(&target_ip.into())
            || virtual_mac.is_some();
        // Policed before it is learned from or answered: a flood of ARP
        // for our addresses must not crowd out the rest.
        if for_us && !snap.features.admits_arp(self.now_ms) {
            return self.count(iface.id, Counter::ArpPoliced);
        }
        let key = neighbor_key(iface.id, sender_ip);
        let known = self.shared.neighbors.get(key).is_some();
        if (for_us || known) && !is_multicast(&sender_mac) && !sender_ip.is_unspecified() {
            self.shared
                .neighbors
                .learn(key, mac_to_u64(&sender_mac), self.now_secs);
            self.counters.event(Counter::ArpLearned);
        }
        if !for_us {
            return self.count(iface.id, Counter::ArpNotForUs);
        }
        if op != ARP_REQUEST {
            self.counters.event(Counter::ArpReplyReceived);
            return Verdict::Done;
        }
        let mac = virtual_mac.unwrap_or(iface.mac);
        let reply = frame.reset(ARP_PACKET);
        write_arp(
            reply,
            ARP_REPLY,
            (&mac, target_ip),
            (&sender_mac, sender_ip),
        );
        self.counters.event(Counter::ArpReplySent);
        // The reply is a new packet: no encapsulation applied yet.
        self.l2_output_from(snap, frame, iface, (&sender_mac, &mac), ETHERTYPE_ARP)
    }

    /// Validates an IPv4 header, then delivers locally or forwards.
    pub(super) fn ipv4_input(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
        depth: u8,
    ) -> Verdict {
        let at = (Some(iface.id), iface.vrf, None);
        if let Some(verdict) = self.feature(snap, (Family::Ipv4, Point::InterfaceInput), frame, at)
        {
            return verdict;
        }
        let d = frame.data();
        if d.len() < IPV4_HEADER || d[0] >> 4 != 4 {
            return self.count(iface.id, Counter::Ipv4Malformed);
        }
        let header_len = ipv4_header_len(d);
        let total_len = usize::from(be16(d, 2));
        if header_len < IPV4_HEADER || total_len < header_len || total_len > d.len() {
            return self.count(iface.id, Counter::Ipv4Malformed);
        }
        if checksum(&d[..header_len]) != 0 {
            return self.count(iface.id, Counter::Ipv4BadChecksum);
        }
        let (src, dst) = (ipv4_at(d, IPV4_SRC), ipv4_at(d, IPV4_DST));
        if dst.is_broadcast() || dst.is_multicast() || src.is_multicast() || src.is_broadcast() {
            return self.count(iface.id, Counter::Ipv4NotRoutable);
        }
        // Ethernet pads short frames: the IPv4 length is authoritative.
        frame.truncate(total_len);
        let (vrf, dst) = match self.pre_routing(snap, Family::Ipv4, frame, iface) {
            Ok(None) => (iface.vrf, dst),
            // Destination NAT may have changed where the packet goes.
            Ok(Some(vrf)) => (vrf, ipv4_at(frame.data(), IPV4_DST)),
            Err(verdict) => return verdict,
        };
        match snap.table(vrf).route(dst).map(|r| &r.kind) {
            Some(RouteKind::Local { .. }) => self.ip_local(snap, frame, iface, header_len, depth),
            // Directed broadcasts are not forwarded (RFC 2644).
            Some(&RouteKind::Connected { prefix_len, .. })
                if prefix_len < 31 && dst == subnet_broadcast(dst, prefix_len) =>
            {
                self.count(iface.id, Counter::Ipv4NotRoutable)
            }
            _ => self.ip_forward(snap, frame, iface, vrf),
        }
    }

    /// A packet for one of our addresses: a tunnel's (an element's, or
    /// VXLAN), ICMP echo, or the local stack.
    fn ip_local(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
        header_len: usize,
        depth: u8,
    ) -> Verdict {
        let d = frame.data();
        // There is no reassembly: a piece of a packet can be neither
        // decapsulated, answered nor handed to the local stack.
        if is_fragment(d) {
            return self.count(iface.id, Counter::LocalFragment);
        }
        let udp_port = match &d[header_len..] {
            l4 if d[IPV4_PROTOCOL] == PROTO_UDP && l4.len() >= UDP_HEADER => Some(be16(l4, 2)),
            _ => None,
        };
        // A tunnel carries forwarded traffic, not the appliance's own: not
        // policed by the control plane (the VNI lookup refuses strangers,
        // an element's driver guards its handshakes itself).
        if let Some(tunnel) = udp_port.and_then(|p| snap.udp_tunnel(p)) {
            return self.tunnel_input(snap, frame, iface, tunnel, header_len);
        }
        if udp_port.is_some_and(|p| snap.is_tunnel_port(p)) {
            return self.vxlan_input(snap, frame, iface, header_len, depth);
        }
        let at = (Some(iface.id), iface.vrf, None);
        if let Some(verdict) = self.feature(snap, (Family::Ipv4, Point::LocalIn), frame, at) {
            return verdict;
        }
        let d = frame.data();
        let (protocol, l4) = (d[IPV4_PROTOCOL], &d[header_len..]);
        if protocol == PROTO_ICMP && l4.first() == Some(&ICMP_ECHO_REQUEST) {
            return self.icmp_echo(snap, frame, iface, header_len);
        }
        self.local_deliver(frame, iface)
    }

    /// Hands an IPv4 or IPv6 packet for one of our addresses to the local
    /// stack. In a VRF only ICMP goes there: the answers to the tools'
    /// ping and traceroute (the services answer in the global table).
    pub(super) fn local_deliver(&mut self, frame: &Frame, iface: &Iface) -> Verdict {
        let d = frame.data();
        let icmp = match d.first().map(|b| b >> 4) {
            Some(4) => d.get(IPV4_PROTOCOL) == Some(&PROTO_ICMP),
            _ => d.get(IPV6_NEXT_HEADER) == Some(&PROTO_ICMPV6),
        };
        if iface.vrf != GLOBAL_TABLE && !icmp {
            return self.count(iface.id, Counter::LocalOtherVrf);
        }
        let Some(local) = &self.local else {
            return self.count(iface.id, Counter::LocalUnreachable);
        };
        if local.port.deliver_in(d, iface.vrf) {
            self.counters.event(Counter::LocalDelivered);
            Verdict::Done
        } else {
            self.count(iface.id, Counter::LocalQueueFull)
        }
    }

    /// Gives a datagram for a tunnel's UDP port to its driver; what comes
    /// out of the tunnel enters the IP input of the tunnel's interface.
    pub(super) fn tunnel_input(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
        tunnel: &TunnelRef,
        l4: usize,
    ) -> Verdict {
        if matches!(iface.kind, Some(IfaceKind::Tunnel(_))) {
            return self.count(iface.id, Counter::TunnelNested);
        }
        match tunnel.0.decapsulate(iface, frame, l4) {
            Decapsulated::Inner(id) => {
                let Some(inner) = snap.interface(id) else {
                    return Verdict::Done;
                };
                self.counters.event(Counter::TunnelDecapsulated);
                self.counters.rx(inner.id, frame.len());
                match frame.data().first().map(|b| b >> 4) {
                    Some(4) => self.ipv4_input(snap, frame, inner, 1),
                    Some(6) => self.ipv6_input(snap, frame, inner),
                    _ => self.count(inner.id, Counter::Ipv4Malformed),
                }
            }
            Decapsulated::Reply(vrf) => self.route_in(snap, frame, vrf, 1),
            Decapsulated::Done => Verdict::Done,
        }
    }

    /// Removes the outer headers of a VXLAN packet, learns the sender's VTEP
    /// and feeds the inner frame to the VXLAN interface.
    fn vxlan_input(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
        header_len: usize,
        depth: u8,
    ) -> Verdict {
        if depth > 0 {
            return self.count(iface.id, Counter::VxlanLoop);
        }
        let d = frame.data();
        let vxlan_at = header_len + UDP_HEADER;
        if d.len() < vxlan_at + VXLAN_HEADER + ETH_HEADER || d[vxlan_at] & 0x08 == 0 {
            return self.count(iface.id, Counter::VxlanMalformed);
        }
        let udp_port = be16(d, header_len + 2);
        let vni = be32(d, vxlan_at + 4) >> 8;
        let outer_src = ipv4_at(d, IPV4_SRC);
        let Some(tunnel) = snap.tunnel(udp_port, vni).and_then(|id| snap.interface(id)) else {
            return self.count(iface.id, Counter::VxlanUnknownVni);
        };
        frame.pull_front(vxlan_at + VXLAN_HEADER);
        let Some((l2, None)) = parse_l2(frame.data()) else {
            return self.count(tunnel.id, Counter::VxlanMalformed);
        };
        if let Some(domain) = tunnel.l2_domain {
            self.counters.event(Counter::VxlanDecapsulated);
            self.counters.rx(tunnel.id, frame.len());
            let from = (tunnel, Some(outer_src));
            return self.l2_domain_input(snap, frame, from, domain, depth + 1);
        }
        if !is_multicast(&l2.src) {
            self.shared.vteps.learn(
                vtep_key(tunnel.id, &l2.src),
                u64::from(u32::from(outer_src)),
                self.now_secs,
            );
        }
        self.counters.event(Counter::VxlanDecapsulated);
        self.counters.rx(tunnel.id, frame.len());
        self.l2_input(snap, frame, tunnel, &l2, depth + 1)
    }
}

/// The broadcast address of the /`prefix_len` subnet holding `addr`.
fn subnet_broadcast(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let host_bits = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    Ipv4Addr::from(u32::from(addr) | host_bits)
}
