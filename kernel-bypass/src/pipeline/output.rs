//! Transmit side: TTL and checksum update, route lookup with ECMP,
//! neighbour resolution, IPv4 fragmentation (in `fragment`), Ethernet/802.1Q
//! rewrite, VXLAN encapsulation and the hand-over to elements' tunnel
//! drivers (`crate::tunnel`) and L2 domains (`l2`).
//!
//! A VXLAN packet too big for the underlay is fragmented as an outer IPv4
//! packet (DF clear), as Linux's vxlan does by default, rather than by
//! fragmenting the inner packet before encapsulation: it works for every
//! inner payload (IPv6, ARP, inner IPv4 with DF set that fit the tunnel's
//! MTU), keeps one fragmentation path, and leaves the tunnel's MTU what was
//! configured. The remote VTEP must reassemble: Linux does, this appliance
//! does not (see `fragment`). Keeping the tunnel's MTU at the underlay's
//! minus 50 (the default) avoids the fragments.

use super::icmp::IcmpError;
use super::{Stage, Verdict, ARP_REFRESH_SECS};
use crate::counters::Counter;
use crate::features::{Family, Point};
use crate::fib::flow_hash;
use crate::frame::Frame;
use crate::snapshot::{Hop, Iface, IfaceKind, RouteKind, Snapshot, Tunnel, VrfId};
use crate::tunnel::TunnelRef;
use crate::wire::*;
use std::net::{IpAddr, Ipv4Addr};

/// The 5-tuple hash of an IPv4 packet (ports only for unfragmented TCP/UDP).
fn ipv4_flow_hash(d: &[u8]) -> u32 {
    if d.len() < IPV4_HEADER {
        return 0;
    }
    let header_len = ipv4_header_len(d);
    let protocol = d[IPV4_PROTOCOL];
    let (sport, dport) = match (protocol, d.get(header_len..header_len + 4)) {
        (PROTO_TCP | PROTO_UDP, Some(p)) if is_first_fragment(d) => (be16(p, 0), be16(p, 2)),
        _ => (0, 0),
    };
    flow_hash(be32(d, IPV4_SRC), be32(d, IPV4_DST), protocol, sport, dport)
}

/// Whether an IPv4 packet (its header length checked) has DF set.
fn dont_fragment(frame: &Frame) -> bool {
    be16(frame.data(), IPV4_FLAGS) & IPV4_DF != 0
}

/// VXLAN source port from the inner frame's flow (RFC 7348: 49152-65535).
pub(super) fn vxlan_source_port(inner: &[u8]) -> u16 {
    let hash = match inner.get(ETH_HEADER..) {
        Some(ip) if be16(inner, 12) == ETHERTYPE_IPV4 => ipv4_flow_hash(ip),
        _ => flow_hash(be32(inner, 2), be32(inner, 8), 0, 0, 0),
    };
    49152 | (hash as u16 & 0x3fff)
}

/// The interface through which `addr` is reached, unless it is one of
/// our own addresses (chooses the source address of ICMP errors).
pub(crate) fn interface_towards(snap: &Snapshot, vrf: VrfId, addr: Ipv4Addr) -> Option<&Iface> {
    egress(snap, &snap.table(vrf).route(addr)?.kind)
}

/// The address the appliance sends from to reach `dst` in table `vrf`
/// (a tunnel's outer packets): one of the egress interface's.
pub(crate) fn source_towards(snap: &Snapshot, vrf: VrfId, dst: IpAddr) -> Option<IpAddr> {
    match dst {
        IpAddr::V4(v4) => interface_towards(snap, vrf, v4)?
            .source_for(v4)
            .map(IpAddr::V4),
        IpAddr::V6(v6) => {
            let out = egress(snap, &snap.table(vrf).route6(v6)?.kind)?;
            Some(IpAddr::V6(out.source_for_ipv6(v6)))
        }
    }
}

/// The (first) interface a route leads out of; None for own addresses.
pub(super) fn egress<'s, A>(snap: &'s Snapshot, kind: &RouteKind<A>) -> Option<&'s Iface> {
    let iface = match kind {
        RouteKind::Local { .. } => return None,
        RouteKind::Connected { iface, .. } => *iface,
        RouteKind::Static { hops } => hops.members()[0].iface,
    };
    snap.interface(iface)
}

/// Where a route sends a flow (its hash computed only for ECMP) and the
/// up interface it leaves by: (next hop, interface). None for own
/// addresses: nothing loops back.
pub(super) fn next_hop<'s, A: Copy>(
    snap: &'s Snapshot,
    kind: &RouteKind<A>,
    dst: A,
    hash: impl FnOnce() -> u32,
) -> Option<(A, &'s Iface)> {
    let hop = match kind {
        RouteKind::Local { .. } => return None,
        RouteKind::Connected { iface, .. } => Hop {
            iface: *iface,
            gateway: None,
        },
        RouteKind::Static { hops } if hops.len() == 1 => hops.members()[0],
        RouteKind::Static { hops } => *hops.select(hash()),
    };
    let out = snap.interface(hop.iface).filter(|i| i.is_up())?;
    Some((hop.gateway.unwrap_or(dst), out))
}

impl Stage {
    /// Forwards a received packet: TTL check and decrement, then routing
    /// in table `vrf`.
    pub(super) fn ip_forward(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        ingress: &Iface,
        vrf: VrfId,
    ) -> Verdict {
        let d = frame.data_mut();
        if d[IPV4_TTL] <= 1 {
            self.counters
                .on_interface(ingress.id, Counter::Ipv4TtlExpired);
            return self.icmp_error(snap, frame, ingress, IcmpError::TimeExceeded);
        }
        let old = be16(d, IPV4_TTL);
        d[IPV4_TTL] -= 1;
        let sum = checksum_adjust(be16(d, IPV4_CHECKSUM), old, be16(d, IPV4_TTL));
        put_be16(d, IPV4_CHECKSUM, sum);
        match self.route_hop(snap, vrf, frame.data()) {
            // Too big with DF: the sender learns the MTU (without DF the
            // packet is fragmented on output).
            Some((_, out)) if frame.len() > usize::from(out.mtu) && dont_fragment(frame) => {
                self.counters.on_interface(out.id, Counter::Ipv4MtuExceeded);
                let error = IcmpError::FragmentationNeeded { mtu: out.mtu };
                self.icmp_error(snap, frame, ingress, error)
            }
            Some((hop, out)) => {
                let at = (Some(ingress.id), vrf, Some(out.id));
                if let Some(verdict) =
                    self.feature(snap, (Family::Ipv4, Point::PostRouting), frame, at)
                {
                    return verdict;
                }
                self.counters.event(Counter::Ipv4Forwarded);
                self.neighbor_output(snap, frame, out, IpAddr::V4(hop), 0)
            }
            None => {
                self.counters.on_interface(ingress.id, Counter::Ipv4NoRoute);
                self.icmp_error(snap, frame, ingress, IcmpError::NetUnreachable)
            }
        }
    }

    /// Routes a packet the appliance originates (replies, local stack output,
    /// VXLAN outer headers) in table `vrf`. `depth` counts encapsulations
    /// already applied.
    pub(super) fn ip_output(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        vrf: VrfId,
        depth: u8,
    ) -> Verdict {
        if frame.len() < IPV4_HEADER {
            self.counters.event(Counter::Ipv4Malformed);
            return Verdict::Done;
        }
        match self.route_hop(snap, vrf, frame.data()) {
            Some((hop, out)) => self.neighbor_output(snap, frame, out, IpAddr::V4(hop), depth),
            None => {
                self.counters.event(Counter::Ipv4NoRoute);
                Verdict::Done
            }
        }
    }

    /// The next hop and outgoing interface for an IPv4 packet, if routable
    /// to another host (own addresses are not: nothing loops back).
    #[inline]
    fn route_hop<'s>(
        &self,
        snap: &'s Snapshot,
        vrf: VrfId,
        d: &[u8],
    ) -> Option<(Ipv4Addr, &'s Iface)> {
        let dst = ipv4_at(d, IPV4_DST);
        let route = snap.table(vrf).route(dst)?;
        next_hop(snap, &route.kind, dst, || ipv4_flow_hash(d))
    }

    /// Sends an IP packet to `next_hop` on `out`, or parks it until ARP
    /// (IPv4) or Neighbour Discovery (IPv6) resolves it.
    pub(super) fn neighbor_output(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        out: &Iface,
        next_hop: IpAddr,
        depth: u8,
    ) -> Verdict {
        let (ethertype, too_big) = match next_hop {
            IpAddr::V4(_) => (ETHERTYPE_IPV4, Counter::Ipv4MtuExceeded),
            IpAddr::V6(_) => (ETHERTYPE_IPV6, Counter::Ipv6MtuExceeded),
        };
        let fits = frame.len() <= usize::from(out.mtu);
        // Routers fragment IPv4 without DF only (IPv6: the sender does).
        if !fits && (ethertype == ETHERTYPE_IPV6 || dont_fragment(frame)) {
            return self.count(out.id, too_big);
        }
        // A tunnel has no neighbours: its encapsulation is its L2.
        let resolved = match out.kind {
            Some(IfaceKind::Tunnel(_)) => Some(([0; 6], 0)),
            _ => self.shared.neighbor(out.id, next_hop, self.now_secs),
        };
        match resolved {
            Some((mac, age)) => {
                if age >= ARP_REFRESH_SECS {
                    self.pending.refresh(out.id, next_hop);
                }
                if !fits {
                    return self.fragment_output(snap, frame, out, &mac, depth);
                }
                self.l2_output(snap, frame, out, &mac, ethertype, depth)
            }
            None => {
                let queued = self
                    .pending
                    .park(out.id, next_hop, frame.data(), self.now_ms);
                let c = if queued {
                    Counter::NeighborQueued
                } else {
                    Counter::NeighborQueueFull
                };
                self.count(out.id, c)
            }
        }
    }

    /// Adds the L2 header of `out` (Ethernet, 802.1Q, or inner Ethernet plus
    /// VXLAN encapsulation) in front of a payload and picks the port.
    pub(super) fn l2_output(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        out: &Iface,
        dst: &Mac,
        ethertype: u16,
        depth: u8,
    ) -> Verdict {
        let verdict = match &out.kind {
            Some(IfaceKind::Port { port }) => match frame.push_front(ETH_HEADER) {
                Some(h) => {
                    write_ethernet(h, dst, &out.mac, ethertype);
                    Verdict::Tx(*port)
                }
                None => return self.count(out.id, Counter::GeneratedOverflow),
            },
            Some(IfaceKind::Vlan { port, vlan }) => match frame.push_front(ETH_HEADER + VLAN_TAG) {
                Some(h) => {
                    write_ethernet(h, dst, &out.mac, ETHERTYPE_VLAN);
                    put_be16(h, 14, *vlan);
                    put_be16(h, 16, ethertype);
                    Verdict::Tx(*port)
                }
                None => return self.count(out.id, Counter::GeneratedOverflow),
            },
            Some(IfaceKind::Vxlan(tunnel)) => match frame.push_front(ETH_HEADER) {
                Some(h) => {
                    write_ethernet(h, dst, &out.mac, ethertype);
                    self.counters.tx(out.id, frame.len());
                    return self.vxlan_send(snap, frame, out, tunnel, depth);
                }
                None => return self.count(out.id, Counter::GeneratedOverflow),
            },
            Some(IfaceKind::Tunnel(tunnel)) => {
                self.counters.tx(out.id, frame.len());
                return self.tunnel_output(snap, frame, out, tunnel, depth);
            }
            Some(IfaceKind::L2Domain(domain)) => match frame.push_front(ETH_HEADER) {
                Some(h) => {
                    write_ethernet(h, dst, &out.mac, ethertype);
                    self.counters.tx(out.id, frame.len());
                    return self.l2_domain_forward(snap, frame, *domain, None, depth);
                }
                None => return self.count(out.id, Counter::GeneratedOverflow),
            },
            None => return self.count(out.id, Counter::InterfaceDown),
        };
        self.counters.tx(out.id, frame.len());
        verdict
    }

    /// Encapsulates a packet routed out of an element's tunnel and routes
    /// the outer packet.
    fn tunnel_output(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        out: &Iface,
        tunnel: &TunnelRef,
        depth: u8,
    ) -> Verdict {
        if depth > 0 {
            return self.count(out.id, Counter::TunnelNested);
        }
        match tunnel.0.encapsulate(snap, out, frame) {
            Some(vrf) => self.route_in(snap, frame, vrf, depth + 1),
            None => Verdict::Done,
        }
    }

    /// Routes an IPv4 or IPv6 packet the appliance originates in table
    /// `vrf` (a tunnel's outer packets).
    pub(super) fn route_in(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        vrf: VrfId,
        depth: u8,
    ) -> Verdict {
        match frame.data().first().map(|b| b >> 4) {
            Some(6) => self.ip6_output_in(snap, frame, vrf),
            _ => self.ip_output(snap, frame, vrf, depth),
        }
    }

    /// As `l2_output`, from source MAC `src` instead of the interface's
    /// (a VRRP virtual router's frames).
    pub(super) fn l2_output_from(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        out: &Iface,
        (dst, src): (&Mac, &Mac),
        ethertype: u16,
    ) -> Verdict {
        let verdict = self.l2_output(snap, frame, out, dst, ethertype, 0);
        if let (Verdict::Tx(_), Some(header)) = (verdict, frame.data_mut().get_mut(6..12)) {
            header.copy_from_slice(src);
        }
        verdict
    }

    /// Sends an inner Ethernet frame into a tunnel: to the VTEP that owns the
    /// destination MAC, or to every remote (head-end replication) for
    /// broadcast, multicast and unknown unicast.
    fn vxlan_send(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        out: &Iface,
        tunnel: &Tunnel,
        depth: u8,
    ) -> Verdict {
        if depth > 0 {
            return self.count(out.id, Counter::VxlanLoop);
        }
        let dst = mac_at(frame.data(), 0);
        let known = match is_multicast(&dst) {
            true => None,
            false => self.shared.vtep(out.id, &dst, self.now_secs),
        };
        let source_port = vxlan_source_port(frame.data());
        if let Some(remote) = known {
            return self.vxlan_encap(snap, frame, tunnel, remote, source_port);
        }
        let Some((first, rest)) = tunnel.remotes.split_first() else {
            return self.count(out.id, Counter::VxlanNoRemote);
        };
        for remote in rest {
            self.flood_copy(snap, frame, out, tunnel, *remote, source_port);
        }
        self.vxlan_encap(snap, frame, tunnel, *first, source_port)
    }

    /// Encapsulates a copy of `frame` towards `remote` in the replica batch.
    fn flood_copy(
        &mut self,
        snap: &Snapshot,
        frame: &Frame,
        out: &Iface,
        tunnel: &Tunnel,
        remote: Ipv4Addr,
        source_port: u16,
    ) {
        if self.replicate(frame, out.id, |stage, copy| {
            stage.vxlan_encap(snap, copy, tunnel, remote, source_port)
        }) {
            self.counters.event(Counter::VxlanFlooded);
        }
    }

    /// Pushes outer IPv4/UDP/VXLAN headers and routes the result.
    pub(super) fn vxlan_encap(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        tunnel: &Tunnel,
        remote: Ipv4Addr,
        source_port: u16,
    ) -> Verdict {
        let inner_len = frame.len();
        let Some(h) = frame.push_front(VXLAN_OVERHEAD) else {
            self.counters.event(Counter::GeneratedOverflow);
            return Verdict::Done;
        };
        let total = (VXLAN_OVERHEAD + inner_len) as u16;
        write_ipv4_header(h, total, DEFAULT_TTL, PROTO_UDP, tunnel.source, remote);
        // DF is clear: the outer packet may be fragmented, and its
        // fragments are told apart from other packets' by this (RFC 6864).
        self.next_ip_id = self.next_ip_id.wrapping_add(1);
        put_be16(h, 4, self.next_ip_id);
        let sum = checksum_adjust(be16(h, IPV4_CHECKSUM), 0, self.next_ip_id);
        put_be16(h, IPV4_CHECKSUM, sum);
        let udp = &mut h[IPV4_HEADER..];
        put_be16(udp, 0, source_port);
        put_be16(udp, 2, tunnel.udp_port);
        put_be16(udp, 4, total - IPV4_HEADER as u16);
        put_be16(udp, 6, 0);
        let vxlan = &mut udp[UDP_HEADER..];
        vxlan[..4].copy_from_slice(&[0x08, 0, 0, 0]);
        vxlan[4..8].copy_from_slice(&(tunnel.vni << 8).to_be_bytes());
        self.counters.event(Counter::VxlanEncapsulated);
        self.ip_output(snap, frame, tunnel.underlay, 1)
    }
}
