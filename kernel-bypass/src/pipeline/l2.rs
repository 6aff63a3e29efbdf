//! L2 domains (the bridge element's bridge domains, `crate::bridge`): a
//! frame received on a member (a port's untagged frames, a sub-interface's
//! VLAN, a VXLAN segment) is bridged in its domain instead of routed.
//!
//! `l2-input` pops the member's 802.1Q tag (frames inside a domain are
//! untagged), learns the source MAC (member, or member and remote VTEP)
//! and hands the frame to the domain's routed interface when addressed
//! to it (integrated routing and bridging: the BDI then is an ingress
//! interface like any other). `l2-forward` sends a known unicast frame to
//! its member, and floods broadcast, multicast and unknown unicast to the
//! other local members and, by head-end replication, to every remote VTEP
//! of the VXLAN members, except what came from the overlay (split
//! horizon: the remote VTEPs flood to each other themselves). Broadcast
//! and multicast also reach the routed interface (ARP for the gateway).
//! A frame routed out of the routed interface enters `l2-forward` with
//! its Ethernet header (`output::l2_output`). `l2-output` pushes the
//! member's tag or VXLAN encapsulation, after an MTU check.
//!
//! Flood copies go to the replica batch; the last target takes the frame
//! itself, the routed interface being last so that what it answers can
//! flood in turn. Nothing allocates.

use super::input::parse_l2;
use super::output::vxlan_source_port;
use super::{Stage, Verdict};
use crate::bridge::{Location, MacLearnt};
use crate::counters::Counter;
use crate::frame::Frame;
use crate::snapshot::{Iface, IfaceId, IfaceKind, L2DomainId, Snapshot};
use crate::wire::*;
use std::net::Ipv4Addr;

/// Where a bridged frame goes.
#[derive(Clone, Copy, Debug)]
enum Target {
    At(Location),
    /// The domain's routed interface.
    Router(IfaceId),
}

/// Removes an 802.1Q tag behind the MAC addresses.
fn untag(frame: &mut Frame) -> bool {
    match frame.data_mut().get_mut(..ETH_HEADER + VLAN_TAG) {
        Some(head) => head.copy_within(..12, VLAN_TAG),
        None => return false,
    }
    frame.pull_front(VLAN_TAG)
}

/// Inserts an 802.1Q tag for `vlan` behind the MAC addresses.
fn tag(frame: &mut Frame, vlan: u16) -> bool {
    if frame.push_front(VLAN_TAG).is_none() {
        return false;
    }
    let Some(head) = frame.data_mut().get_mut(..ETH_HEADER + VLAN_TAG) else {
        return false;
    };
    head.copy_within(VLAN_TAG..VLAN_TAG + 12, 0);
    put_be16(head, 12, ETHERTYPE_VLAN);
    put_be16(head, 14, vlan);
    true
}

impl Stage {
    /// `l2-input`: a frame (from its Ethernet header) received on a member
    /// of L2 domain `id`, from the remote VTEP `vtep` for a VXLAN member.
    /// `depth` counts tunnels already removed.
    pub(super) fn l2_domain_input(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        (member, vtep): (&Iface, Option<Ipv4Addr>),
        id: L2DomainId,
        depth: u8,
    ) -> Verdict {
        let Some(domain) = snap.l2_domain(id).filter(|_| member.is_up()) else {
            return self.count(member.id, Counter::InterfaceDown);
        };
        if matches!(member.kind, Some(IfaceKind::Vlan { .. })) && !untag(frame) {
            return self.count(member.id, Counter::EthernetRunt);
        }
        let d = frame.data();
        if d.len() < ETH_HEADER {
            return self.count(member.id, Counter::EthernetRunt);
        }
        let (dst, src) = (mac_at(d, 0), mac_at(d, 6));
        if is_multicast(&src) {
            return self.count(member.id, Counter::L2MulticastSource);
        }
        let router = (domain.router)
            .and_then(|r| snap.interface(r))
            .filter(|r| r.is_up());
        if router.is_some_and(|r| r.mac == src) {
            return self.count(member.id, Counter::EthernetOwnSource);
        }
        let at = match vtep {
            Some(vtep) => Location::Remote(member.id, vtep),
            None => Location::Member(member.id),
        };
        if domain.learn(&src, at, self.now_secs) == MacLearnt::Full {
            self.counters.event(Counter::L2MacLimit);
        }
        if let Some(r) = router.filter(|r| r.mac == dst) {
            return self.l2_domain_route(snap, frame, r, depth);
        }
        self.l2_domain_forward(snap, frame, id, Some(at), depth)
    }

    /// The frame enters the routed interface `router` as if received there.
    fn l2_domain_route(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        router: &Iface,
        depth: u8,
    ) -> Verdict {
        let Some((l2, None)) = parse_l2(frame.data()) else {
            return self.count(router.id, Counter::EthernetRunt);
        };
        self.counters.rx(router.id, frame.len());
        self.l2_input(snap, frame, router, &l2, depth)
    }

    /// `l2-forward`: an untagged frame in L2 domain `id`, from `from`
    /// (None: routed out of the domain's routed interface).
    pub(super) fn l2_domain_forward(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        id: L2DomainId,
        from: Option<Location>,
        depth: u8,
    ) -> Verdict {
        let Some(domain) = snap.l2_domain(id) else {
            self.counters.event(Counter::L2NoMember);
            return Verdict::Done;
        };
        let dst = mac_at(frame.data(), 0);
        let from_overlay = matches!(from, Some(Location::Remote(..)));
        let from_member = from.map(|f| f.member());
        let ingress = from_member.or(domain.router).unwrap_or_default();
        if !is_multicast(&dst) {
            // A MAC learned on an interface that left the domain is unknown.
            let known = domain.lookup(&dst, self.now_secs).filter(|to| {
                snap.interface(to.member())
                    .is_some_and(|i| i.l2_domain == Some(id))
            });
            match known {
                Some(Location::Remote(..)) if from_overlay => {
                    return self.count(ingress, Counter::L2SplitHorizon)
                }
                Some(to) if Some(to.member()) == from_member => {
                    return self.count(ingress, Counter::L2SameMember)
                }
                Some(to) => {
                    self.counters.event(Counter::L2Forwarded);
                    return self.l2_domain_send(snap, frame, Target::At(to), depth);
                }
                None => {}
            }
        }
        let locals = (domain.members.iter())
            .filter(|m| Some(**m) != from_member)
            .map(|m| Target::At(Location::Member(*m)));
        let overlays = (domain.overlays.iter())
            .filter(|_| !from_overlay)
            .filter_map(|id| match snap.interface(*id).map(|i| &i.kind) {
                Some(Some(IfaceKind::Vxlan(t))) => Some((*id, t)),
                _ => None,
            })
            .flat_map(|(id, t)| {
                (t.remotes.iter()).map(move |vtep| Target::At(Location::Remote(id, *vtep)))
            });
        let to_router = is_multicast(&dst) && from.is_some();
        let router = domain.router.filter(|_| to_router).map(Target::Router);
        let mut targets = locals.chain(overlays).chain(router).peekable();
        while let Some(target) = targets.next() {
            if targets.peek().is_none() {
                return self.l2_domain_send(snap, frame, target, depth);
            }
            if self.replicate(frame, ingress, |stage, copy| {
                stage.l2_domain_send(snap, copy, target, depth)
            }) {
                self.counters.event(Counter::L2Flooded);
            }
        }
        self.count(ingress, Counter::L2NoMember)
    }

    /// `l2-output`: sends a frame of the domain to one target.
    fn l2_domain_send(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        target: Target,
        depth: u8,
    ) -> Verdict {
        let to = match target {
            Target::Router(r) => match snap.interface(r) {
                Some(router) => return self.l2_domain_route(snap, frame, router, depth),
                None => return Verdict::Done,
            },
            Target::At(to) => to,
        };
        let Some(out) = snap.interface(to.member()).filter(|i| i.is_up()) else {
            self.counters.event(Counter::InterfaceDown);
            return Verdict::Done;
        };
        // The MTU is the payload's, as for routed packets: what would not
        // fit the member (or the underlay behind a VXLAN member) is
        // counted, never cut.
        if frame.len().saturating_sub(ETH_HEADER) > usize::from(out.mtu) {
            return self.count(out.id, Counter::L2MtuExceeded);
        }
        match (to, &out.kind) {
            (Location::Member(_), Some(IfaceKind::Port { port })) => {
                self.counters.tx(out.id, frame.len());
                Verdict::Tx(*port)
            }
            (Location::Member(_), Some(IfaceKind::Vlan { port, vlan })) => {
                if !tag(frame, *vlan) {
                    return self.count(out.id, Counter::GeneratedOverflow);
                }
                self.counters.tx(out.id, frame.len());
                Verdict::Tx(*port)
            }
            (Location::Remote(_, vtep), Some(IfaceKind::Vxlan(tunnel))) => {
                self.counters.tx(out.id, frame.len());
                let source_port = vxlan_source_port(frame.data());
                self.vxlan_encap(snap, frame, tunnel, vtep, source_port)
            }
            _ => self.count(out.id, Counter::InterfaceDown),
        }
    }
}
