//! The operator's tools' packets that leave the usual path: ping and
//! traceroute in a VRF, and echoes that routers may fragment. smoltcp knows
//! neither VRFs nor a per-socket DF bit, so the link tells these packets
//! apart by their ICMP echo identifier or UDP port, on the way out (which
//! table routes them, DF cleared) and on the way in (only answers from
//! that table reach the socket, and no other table's). It also notes the
//! echoes a router refused for their size (smoltcp gives a ping socket no
//! ICMP errors), for ping's `M`.

use crate::snapshot::{VrfId, GLOBAL_TABLE};
use crate::wire::*;
use std::collections::{HashMap, HashSet};

/// Refused echoes remembered at most, so a flood of errors cannot grow it.
const TOO_BIG_KEPT: usize = 64;

/// What a packet belongs to: an echo identifier or a local UDP port.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum FlowKey {
    Echo(u16),
    Udp(u16),
}

/// How a flow's packets are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTag {
    /// The table routing them; None while their VRF does not exist
    /// (they are dropped).
    pub vrf: Option<VrfId>,
    /// IPv4 DF stays set (smoltcp sets it on everything); else cleared.
    pub dont_fragment: bool,
}

/// The flows of the sockets opened with a scope, with their tables resolved.
#[derive(Default)]
pub struct Flows {
    tags: HashMap<FlowKey, FlowTag>,
    /// (identifier, sequence number) of echoes refused for their size.
    too_big: HashSet<(u16, u16)>,
}

const ICMP_QUOTE: usize = 8;

/// The flow of a packet the stack sends: echo request or UDP datagram.
fn outgoing_key(packet: &[u8]) -> Option<FlowKey> {
    let (protocol, l4) = transport(packet)?;
    match (protocol, l4.first()?) {
        (PROTO_ICMP, &ICMP_ECHO_REQUEST) | (PROTO_ICMPV6, &ICMPV6_ECHO_REQUEST) => {
            Some(FlowKey::Echo(be16(l4.get(4..6)?, 0)))
        }
        (PROTO_UDP, _) => Some(FlowKey::Udp(be16(l4.get(0..2)?, 0))),
        _ => None,
    }
}

/// The flow a received ICMP message answers: an echo reply's, or the
/// packet an error quotes (a UDP probe or an echo request).
fn incoming_key(packet: &[u8]) -> Option<FlowKey> {
    let (protocol, l4) = transport(packet)?;
    let kind = *l4.first()?;
    match protocol {
        PROTO_ICMP if kind == ICMP_ECHO_REPLY => Some(FlowKey::Echo(be16(l4.get(4..6)?, 0))),
        PROTO_ICMPV6 if kind == ICMPV6_ECHO_REPLY => Some(FlowKey::Echo(be16(l4.get(4..6)?, 0))),
        PROTO_ICMP if kind == ICMP_DEST_UNREACHABLE || kind == ICMP_TIME_EXCEEDED => {
            outgoing_key(l4.get(ICMP_QUOTE..)?)
        }
        PROTO_ICMPV6 if kind < ICMPV6_INFORMATIONAL => outgoing_key(l4.get(ICMP_QUOTE..)?),
        _ => None,
    }
}

/// The identifier and sequence number of the echo request that an ICMP
/// "fragmentation needed" or ICMPv6 "packet too big" quotes.
fn too_big_echo(packet: &[u8]) -> Option<(u16, u16)> {
    let (protocol, l4) = transport(packet)?;
    let too_big = match protocol {
        PROTO_ICMP => l4.get(..2)? == [ICMP_DEST_UNREACHABLE, ICMP_CODE_FRAGMENTATION_NEEDED],
        PROTO_ICMPV6 => *l4.first()? == ICMPV6_PACKET_TOO_BIG,
        _ => false,
    };
    let (inner, echo) = transport(l4.get(ICMP_QUOTE..).filter(|_| too_big)?)?;
    match (inner, *echo.first()?) {
        (PROTO_ICMP, ICMP_ECHO_REQUEST) | (PROTO_ICMPV6, ICMPV6_ECHO_REQUEST) => {
            Some((be16(echo.get(4..6)?, 0), be16(echo.get(6..8)?, 0)))
        }
        _ => None,
    }
}

/// The protocol and transport bytes of an IPv4 or IPv6 packet (IPv6 with
/// no extension headers, as smoltcp and the tools send).
fn transport(packet: &[u8]) -> Option<(u8, &[u8])> {
    match packet.first()? >> 4 {
        4 => {
            let header = usize::from(packet.first()? & 0x0f) * 4;
            Some((*packet.get(IPV4_PROTOCOL)?, packet.get(header..)?))
        }
        6 => Some((*packet.get(IPV6_NEXT_HEADER)?, packet.get(IPV6_HEADER..)?)),
        _ => None,
    }
}

impl Flows {
    pub fn set(&mut self, tags: HashMap<FlowKey, FlowTag>) {
        self.tags = tags;
        let tags = &self.tags;
        (self.too_big).retain(|(ident, _)| tags.contains_key(&FlowKey::Echo(*ident)));
    }

    /// Whether a router refused echo `seq` of `ident` for its size (once).
    pub fn take_too_big(&mut self, ident: u16, seq: u16) -> bool {
        self.too_big.remove(&(ident, seq))
    }

    /// The table an outgoing packet is routed in, after clearing its DF
    /// bit if its flow asks; None drops it (its VRF is gone).
    pub fn outgoing(&self, packet: &mut [u8]) -> Option<VrfId> {
        if self.tags.is_empty() {
            return Some(GLOBAL_TABLE);
        }
        let Some(tag) = outgoing_key(packet).and_then(|k| self.tags.get(&k)) else {
            return Some(GLOBAL_TABLE);
        };
        if !tag.dont_fragment && packet.len() >= IPV4_HEADER && packet[0] >> 4 == 4 {
            let old = be16(packet, IPV4_FLAGS);
            let new = old & !IPV4_DF;
            put_be16(packet, IPV4_FLAGS, new);
            let sum = checksum_adjust(be16(packet, IPV4_CHECKSUM), old, new);
            put_be16(packet, IPV4_CHECKSUM, sum);
        }
        tag.vrf
    }

    /// Whether a packet received in table `vrf` may reach the stack: a
    /// flow's answers only from the flow's table, the rest only from the
    /// global table (the appliance's services answer there).
    pub fn incoming(&mut self, packet: &[u8], vrf: VrfId) -> bool {
        let tag = match self.tags.is_empty() {
            true => None,
            false => incoming_key(packet).and_then(|k| self.tags.get(&k)),
        };
        match tag {
            Some(tag) if tag.vrf == Some(vrf) => {
                if let Some(echo) = too_big_echo(packet) {
                    if self.too_big.len() < TOO_BIG_KEPT {
                        self.too_big.insert(echo);
                    }
                }
                true
            }
            Some(_) => false,
            None => vrf == GLOBAL_TABLE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 packet with DF set (as smoltcp sends) carrying `l4`.
    fn ipv4(protocol: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0];
        p.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
        let sum = crate::wire::checksum(&p);
        put_be16(&mut p, IPV4_CHECKSUM, sum);
        p.extend_from_slice(l4);
        p
    }

    fn flows(key: FlowKey, vrf: Option<VrfId>, dont_fragment: bool) -> Flows {
        let mut flows = Flows::default();
        let tag = FlowTag { vrf, dont_fragment };
        flows.set(HashMap::from([(key, tag)]));
        flows
    }

    #[test]
    fn an_echo_of_a_vrf_flow_leaves_in_its_table_with_df_cleared() {
        let flows = flows(FlowKey::Echo(7), Some(2), false);
        let mut echo = ipv4(PROTO_ICMP, &[8, 0, 0, 0, 0, 7, 0, 1]);
        assert_eq!(flows.outgoing(&mut echo), Some(2));
        assert_eq!(be16(&echo, IPV4_FLAGS) & IPV4_DF, 0);
        assert_eq!(crate::wire::checksum(&echo[..IPV4_HEADER]), 0);
        let mut other = ipv4(PROTO_ICMP, &[8, 0, 0, 0, 0, 8, 0, 1]);
        assert_eq!(flows.outgoing(&mut other), Some(GLOBAL_TABLE));
        assert_ne!(be16(&other, IPV4_FLAGS) & IPV4_DF, 0, "untouched");
        let gone = self::flows(FlowKey::Echo(7), None, true);
        assert_eq!(gone.outgoing(&mut echo), None);
    }

    #[test]
    fn answers_reach_the_stack_only_from_their_flows_table() {
        let mut flows = flows(FlowKey::Udp(50000), Some(2), true);
        let probe = ipv4(PROTO_UDP, &[0xc3, 0x50, 0x82, 0x9a, 0, 8, 0, 0]);
        let mut error = vec![11, 0, 0, 0, 0, 0, 0, 0];
        error.extend_from_slice(&probe);
        let time_exceeded = ipv4(PROTO_ICMP, &error);
        assert!(flows.incoming(&time_exceeded, 2));
        assert!(!flows.incoming(&time_exceeded, GLOBAL_TABLE));
        let reply = ipv4(PROTO_ICMP, &[0, 0, 0, 0, 0, 9, 0, 1]);
        assert!(flows.incoming(&reply, GLOBAL_TABLE));
        assert!(!flows.incoming(&reply, 2), "no flow of that VRF");
    }

    #[test]
    fn an_echo_refused_for_its_size_is_noted_once() {
        let mut flows = flows(FlowKey::Echo(7), Some(GLOBAL_TABLE), true);
        let echo = ipv4(PROTO_ICMP, &[8, 0, 0, 0, 0, 7, 0, 3]);
        let mut error = vec![3, 4, 0, 0, 0, 0, 0x05, 0x14];
        error.extend_from_slice(&echo);
        assert!(flows.incoming(&ipv4(PROTO_ICMP, &error), GLOBAL_TABLE));
        assert!(!flows.take_too_big(7, 2));
        assert!(flows.take_too_big(7, 3));
        assert!(!flows.take_too_big(7, 3), "once");
    }
}
