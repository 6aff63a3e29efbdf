//! Neighbour Discovery (RFC 4861), the IPv6 counterpart of ARP: answers
//! solicitations for our addresses, learns neighbours from solicitations
//! (their source link-layer option) and advertisements (target option), and
//! builds the solicitations `pending` sends for unresolved next hops.
//! A VRRP virtual router that is master here answers for its IPv6
//! addresses with its virtual MAC, and announces them with the unsolicited
//! advertisements built here. Router advertisements and redirects are not
//! spoken.

use super::icmp6::set_icmp6_checksum;
use super::{neighbor6_key, Stage, Verdict};
use crate::counters::Counter;
use crate::frame::Frame;
use crate::snapshot::{Iface, Snapshot};
use crate::wire::*;
use std::net::Ipv6Addr;

/// A solicitation or advertisement with one link-layer address option.
pub(crate) const ND_PACKET: usize = IPV6_HEADER + ND_OPTIONS + ND_LINK_OPTION;

/// A parsed solicitation or advertisement (ICMPv6 message after the IPv6
/// header).
#[derive(Debug, PartialEq, Eq)]
struct NdMessage {
    kind: u8,
    target: Ipv6Addr,
    /// The source (solicitation) or target (advertisement) link-layer address.
    link: Option<Mac>,
}

/// Parses a neighbour solicitation or advertisement; None when malformed
/// (RFC 4861 7.1.1/7.1.2: hop limit 255, code 0, length, non-multicast
/// target, options with non-zero lengths that fit).
fn parse(packet: &[u8]) -> Option<NdMessage> {
    if packet.len() < IPV6_HEADER + ND_OPTIONS || packet[IPV6_HOP_LIMIT] != ND_HOP_LIMIT {
        return None;
    }
    let icmp = &packet[IPV6_HEADER..];
    let kind = icmp[0];
    let wanted = match kind {
        ICMPV6_NEIGHBOR_SOLICIT => ND_OPTION_SOURCE_LINK,
        ICMPV6_NEIGHBOR_ADVERT => ND_OPTION_TARGET_LINK,
        _ => return None,
    };
    let target = ipv6_at(icmp, ND_TARGET);
    if icmp[1] != 0 || target.is_multicast() {
        return None;
    }
    let mut link = None;
    let mut options = &icmp[ND_OPTIONS..];
    while options.len() >= 2 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        if options[0] == wanted && len == ND_LINK_OPTION && link.is_none() {
            link = Some(mac_at(options, 2));
        }
        options = &options[len..];
    }
    Some(NdMessage { kind, target, link })
}

/// Writes a solicitation or advertisement about `target` with a link-layer
/// option carrying `mac`, checksum included.
fn write_nd(
    p: &mut [u8],
    kind: u8,
    flags: u8,
    (src, dst): (Ipv6Addr, Ipv6Addr),
    target: Ipv6Addr,
    mac: &Mac,
) {
    let payload = (ND_PACKET - IPV6_HEADER) as u16;
    write_ipv6_header(p, payload, PROTO_ICMPV6, ND_HOP_LIMIT, src, dst);
    let icmp = &mut p[IPV6_HEADER..];
    icmp[..ND_TARGET].copy_from_slice(&[kind, 0, 0, 0, flags, 0, 0, 0]);
    icmp[ND_TARGET..ND_OPTIONS].copy_from_slice(&target.octets());
    let option = match kind {
        ICMPV6_NEIGHBOR_SOLICIT => ND_OPTION_SOURCE_LINK,
        _ => ND_OPTION_TARGET_LINK,
    };
    icmp[ND_OPTIONS] = option;
    icmp[ND_OPTIONS + 1] = 1;
    icmp[ND_OPTIONS + 2..ND_OPTIONS + ND_LINK_OPTION].copy_from_slice(mac);
    set_icmp6_checksum(p);
}

/// Fills `f` with a solicitation for `target` from `out`, addressed to the
/// target's solicited-node group.
pub(super) fn write_solicitation(f: &mut Frame, out: &Iface, target: Ipv6Addr) {
    let addresses = (out.source_for_ipv6(target), solicited_node(target));
    let p = f.reset(ND_PACKET);
    write_nd(p, ICMPV6_NEIGHBOR_SOLICIT, 0, addresses, target, &out.mac);
}

/// Fills `p` with an unsolicited advertisement of `target` at `mac` to
/// all nodes, router and override flags set (RFC 4861 7.2.6): how a new
/// VRRP master announces a virtual address (RFC 5798 6.4.1).
pub(crate) fn write_unsolicited_advert(p: &mut [u8], target: Ipv6Addr, mac: &Mac) {
    let flags = ND_FLAG_ROUTER | ND_FLAG_OVERRIDE;
    let addresses = (target, IPV6_ALL_NODES);
    write_nd(p, ICMPV6_NEIGHBOR_ADVERT, flags, addresses, target, mac);
}

impl Stage {
    /// A solicitation or advertisement received on `iface` (checksum
    /// already verified).
    pub(super) fn nd_input(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        iface: &Iface,
    ) -> Verdict {
        let Some(message) = parse(frame.data()) else {
            return self.count(iface.id, Counter::NdMalformed);
        };
        let (src, dst) = (
            ipv6_at(frame.data(), IPV6_SRC),
            ipv6_at(frame.data(), IPV6_DST),
        );
        if message.kind == ICMPV6_NEIGHBOR_ADVERT {
            self.counters.event(Counter::NdAdvertReceived);
            // Learn answers to our solicitations, and news about known
            // neighbours; unsolicited strangers are not let in.
            let key = neighbor6_key(iface.id, message.target);
            if iface.has_ipv6(dst) || self.shared.neighbors6.get(key).is_some() {
                self.learn6(iface, message.target, message.link);
            }
            return Verdict::Done;
        }
        // Solicitations for other targets are discarded (RFC 4861 7.2.3);
        // an element's address on the link is answered for, a master
        // virtual router's with its MAC.
        let virtual_mac = iface.virtual_mac_for(message.target.into());
        if !iface.has_ipv6(message.target)
            && !iface.published.contains(&message.target.into())
            && virtual_mac.is_none()
        {
            return self.count(iface.id, Counter::NdNotForUs);
        }
        // A duplicate address probe carries no link-layer address (7.1.1).
        if src.is_unspecified() && message.link.is_some() {
            return self.count(iface.id, Counter::NdMalformed);
        }
        // A solicitation from an unspecified source is a duplicate address
        // probe: nothing to learn, and the answer goes to all nodes.
        if !src.is_unspecified() {
            self.learn6(iface, src, message.link);
        }
        let flags = ND_FLAG_ROUTER | ND_FLAG_OVERRIDE;
        // A group address given as the sender's own is not answered to.
        let sender_mac = message.link.filter(|m| !is_multicast(m));
        let (to, l2_dst, flags) = match src.is_unspecified() {
            true => (IPV6_ALL_NODES, Some(multicast_mac(IPV6_ALL_NODES)), flags),
            false => (src, sender_mac, flags | ND_FLAG_SOLICITED),
        };
        let mac = virtual_mac.unwrap_or(iface.mac);
        let reply = frame.reset(ND_PACKET);
        let addresses = (message.target, to);
        write_nd(
            reply,
            ICMPV6_NEIGHBOR_ADVERT,
            flags,
            addresses,
            message.target,
            &mac,
        );
        self.counters.event(Counter::NdAdvertSent);
        match l2_dst {
            Some(dst) => self.l2_output_from(snap, frame, iface, (&dst, &mac), ETHERTYPE_IPV6),
            // A unicast solicitation may omit its link-layer address: the
            // answer goes through ordinary resolution.
            None => self.ip6_output(snap, frame, Some(iface)),
        }
    }

    fn learn6(&mut self, iface: &Iface, addr: Ipv6Addr, link: Option<Mac>) {
        let Some(mac) = link.filter(|m| !is_multicast(m)) else {
            return;
        };
        let key = neighbor6_key(iface.id, addr);
        self.shared
            .neighbors6
            .learn(key, mac_to_u64(&mac), self.now_secs);
        self.counters.event(Counter::NdLearned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0, 0, 0, 0, 0x42];

    fn solicitation(target: &str) -> Vec<u8> {
        let mut p = vec![0; ND_PACKET];
        let (src, target) = ("fe80::1".parse().unwrap(), target.parse().unwrap());
        write_nd(
            &mut p,
            ICMPV6_NEIGHBOR_SOLICIT,
            0,
            (src, solicited_node(target)),
            target,
            &MAC,
        );
        p
    }

    #[test]
    fn a_built_solicitation_parses_back_with_a_valid_checksum() {
        let p = solicitation("2001:db8::7");
        assert_eq!(ipv6_payload_checksum(&p), 0);
        assert_eq!(
            ipv6_at(&p, IPV6_DST),
            "ff02::1:ff00:7".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            parse(&p),
            Some(NdMessage {
                kind: ICMPV6_NEIGHBOR_SOLICIT,
                target: "2001:db8::7".parse().unwrap(),
                link: Some(MAC),
            })
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = solicitation("2001:db8::7");
        let mut hop = good.clone();
        hop[IPV6_HOP_LIMIT] = 64;
        let mut code = good.clone();
        code[IPV6_HEADER + 1] = 1;
        let mut zero_option = good.clone();
        zero_option[IPV6_HEADER + ND_OPTIONS + 1] = 0;
        let mut long_option = good.clone();
        long_option[IPV6_HEADER + ND_OPTIONS + 1] = 2;
        let mut multicast = good.clone();
        multicast[IPV6_HEADER + ND_TARGET] = 0xff;
        for bad in [hop, code, zero_option, long_option, multicast] {
            assert_eq!(parse(&bad), None);
        }
        assert_eq!(parse(&good[..IPV6_HEADER + ND_OPTIONS - 1]), None);
    }

    #[test]
    fn options_are_walked_and_only_the_wanted_kind_is_taken() {
        let mut p = solicitation("2001:db8::7");
        // A target-link option in a solicitation is skipped, not taken.
        p[IPV6_HEADER + ND_OPTIONS] = ND_OPTION_TARGET_LINK;
        assert_eq!(parse(&p).map(|m| m.link), Some(None));
        // Without options (a unicast solicitation may omit them).
        let bare = &solicitation("2001:db8::7")[..IPV6_HEADER + ND_OPTIONS];
        assert_eq!(parse(bare).map(|m| m.link), Some(None));
    }
}
