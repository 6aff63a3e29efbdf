//! Reading and rewriting the endpoints of an IP packet in place, with
//! checksums updated incrementally (RFC 1624): IPv4's header checksum, and
//! the TCP/UDP checksum (whose pseudo-header holds the addresses, in both
//! families) or the ICMP echo identifier's. An ICMP error's quoted packet
//! is rewritten the same way, so that traceroute and path-MTU discovery
//! work through NAT; a quote cut short has whatever checksums it still
//! holds updated. IPv6 packets are read past their extension headers;
//! their TCP and UDP are translated, and ICMPv6 errors quoting them (what
//! the load balancer needs), not ICMPv6 echo.

use super::address::{Address, Endpoint};
use crate::headers::Ipv6View;
use crate::wire::{be16, checksum_adjust, fold, ipv4_header_len, ones_sum, put_be16};
use crate::wire::{ICMPV6_DEST_UNREACHABLE, ICMPV6_PACKET_TOO_BIG, ICMPV6_TIME_EXCEEDED};
use crate::wire::{ICMP_DEST_UNREACHABLE, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED};
use crate::wire::{IPV4_DST, IPV4_HEADER, IPV4_PROTOCOL, IPV4_SRC};
use crate::wire::{IPV6_DST, IPV6_SRC};
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use std::net::{Ipv4Addr, Ipv6Addr};

/// ICMP's error types besides those `wire` names.
const ICMP_SOURCE_QUENCH: u8 = 4;
const ICMP_PARAMETER_PROBLEM: u8 = 12;
const ICMPV6_PARAMETER_PROBLEM: u8 = 4;
/// The ICMP header before a quoted packet.
const ICMP_HEADER: usize = 8;
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;
const ICMP_CHECKSUM: usize = 2;
const ICMP_ECHO_ID: usize = 4;

/// Which endpoint of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Source,
    Destination,
}

/// What NAT reads of an IP packet (or of the packet an ICMP error quotes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow<A = Ipv4Addr> {
    /// Bytes before the transport header (IPv6: extension headers too).
    pub header_len: usize,
    /// Bytes from the header to the end of the packet (or of the quote).
    pub len: usize,
    pub protocol: u8,
    pub src: Endpoint<A>,
    pub dst: Endpoint<A>,
    /// TCP, UDP and ICMP echo with their header present (not a later
    /// fragment, not cut short): the ports (for echo, the identifier at
    /// the requester's end and 0 at the other) are real.
    pub has_ports: bool,
    pub tcp_flags: u8,
    /// ICMP type, for ICMP.
    pub icmp_type: Option<u8>,
    pub is_fragment: bool,
}

/// An IPv4 packet's flow.
pub type Ipv4Flow = Flow<Ipv4Addr>;

impl Flow<Ipv4Addr> {
    /// A packet (`quoted`: one an ICMP error quotes, whose length field
    /// may exceed what is quoted); None when its IP header is malformed.
    pub fn parse(data: &[u8], quoted: bool) -> Option<Ipv4Flow> {
        if data.len() < IPV4_HEADER || data[0] >> 4 != 4 {
            return None;
        }
        let header_len = ipv4_header_len(data);
        let total = usize::from(be16(data, 2));
        let len = if quoted { total.min(data.len()) } else { total };
        if header_len < IPV4_HEADER || len < header_len || len > data.len() {
            return None;
        }
        let flags_offset = be16(data, 6);
        let first = flags_offset & 0x1fff == 0;
        let l4 = &data[header_len..len];
        let protocol = data[IPV4_PROTOCOL];
        let addr = |at| Ipv4Addr::new(data[at], data[at + 1], data[at + 2], data[at + 3]);
        let mut flow = Flow {
            header_len,
            len,
            protocol,
            src: Endpoint::new(addr(IPV4_SRC), 0),
            dst: Endpoint::new(addr(IPV4_DST), 0),
            has_ports: false,
            tcp_flags: 0,
            icmp_type: None,
            is_fragment: !first || flags_offset & 0x2000 != 0,
        };
        if !first {
            return Some(flow);
        }
        match protocol {
            PROTO_TCP | PROTO_UDP => flow.read_ports(l4),
            PROTO_ICMP if !l4.is_empty() => {
                flow.icmp_type = Some(l4[0]);
                // The identifier names the requester's end: the source
                // of a request, the destination of a reply; the other
                // end's "port" is 0, the same in both directions.
                if matches!(l4[0], ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY) && l4.len() >= 8 {
                    let id = be16(l4, ICMP_ECHO_ID);
                    match l4[0] {
                        ICMP_ECHO_REQUEST => flow.src.port = id,
                        _ => flow.dst.port = id,
                    }
                    flow.has_ports = true;
                }
            }
            _ => {}
        }
        Some(flow)
    }
}

impl Flow<Ipv6Addr> {
    /// An IPv6 packet whose payload length is within `data` (`quoted`: one
    /// an ICMPv6 error quotes, cut to what is quoted), read past its
    /// extension headers; None when they run past the payload.
    pub fn parse6(data: &[u8], quoted: bool) -> Option<Flow<Ipv6Addr>> {
        let ip = match quoted {
            true => Ipv6View::new_quoted(data)?,
            false => Ipv6View::new_checked(data)?,
        };
        let upper = ip.upper_layer()?;
        let (next, at, len) = (upper.protocol, upper.offset, ip.total_len());
        let first = upper.fragment.is_none_or(|f| f.first);
        let packet = &data[..len];
        let l4 = &packet[at..];
        let mut flow = Flow {
            header_len: at,
            len,
            protocol: next,
            src: Endpoint::new(Ipv6Addr::read(packet, IPV6_SRC), 0),
            dst: Endpoint::new(Ipv6Addr::read(packet, IPV6_DST), 0),
            has_ports: false,
            tcp_flags: 0,
            icmp_type: None,
            is_fragment: upper.fragment.is_some(),
        };
        match next {
            PROTO_TCP | PROTO_UDP if first => flow.read_ports(l4),
            PROTO_ICMPV6 if first => flow.icmp_type = l4.first().copied(),
            _ => {}
        }
        Some(flow)
    }
}

impl<A: Address> Flow<A> {
    /// TCP's or UDP's ports (and TCP's flags), when `l4` holds them.
    fn read_ports(&mut self, l4: &[u8]) {
        if l4.len() < 4 {
            return;
        }
        self.src.port = be16(l4, 0);
        self.dst.port = be16(l4, 2);
        self.has_ports = true;
        if self.protocol == PROTO_TCP && l4.len() > 13 {
            self.tcp_flags = l4[13];
        }
    }

    pub fn endpoint(&self, end: End) -> Endpoint<A> {
        match end {
            End::Source => self.src,
            End::Destination => self.dst,
        }
    }

    /// Whether it may open a flow: a TCP SYN, a UDP datagram, an ICMP
    /// echo request.
    pub fn opens_flow(&self) -> bool {
        self.has_ports
            && match self.protocol {
                PROTO_TCP => crate::headers::tcp_flags::is_syn(self.tcp_flags),
                PROTO_UDP => true,
                PROTO_ICMP => self.icmp_type == Some(ICMP_ECHO_REQUEST),
                _ => false,
            }
    }
}

/// ICMP's error types that quote a packet.
pub(super) const ICMP_ERRORS: [u8; 4] = [
    ICMP_DEST_UNREACHABLE,
    ICMP_SOURCE_QUENCH,
    ICMP_TIME_EXCEEDED,
    ICMP_PARAMETER_PROBLEM,
];
/// ICMPv6's (RFC 4443).
pub(super) const ICMPV6_ERRORS: [u8; 4] = [
    ICMPV6_DEST_UNREACHABLE,
    ICMPV6_PACKET_TOO_BIG,
    ICMPV6_TIME_EXCEEDED,
    ICMPV6_PARAMETER_PROBLEM,
];

impl<A: Address> Flow<A> {
    /// Whether it is an ICMP (ICMPv6) error quoting a packet.
    pub fn is_icmp_error(&self) -> bool {
        self.protocol == A::ICMP
            && self.icmp_type.is_some_and(|t| A::ICMP_ERRORS.contains(&t))
            && !self.is_fragment
    }

    /// The packet an ICMP error quotes, if its IP header is whole.
    pub fn quoted(&self, data: &[u8]) -> Option<Flow<A>> {
        let at = self.header_len + ICMP_HEADER;
        A::quoted_flow(data.get(at..self.len)?)
    }
}

/// Adjusts the checksum at `at` (if it is within `data`) for 16-bit words
/// that changed (old, new); `zero_is_none`: UDP's 0 means "no checksum"
/// and stays 0, and a computed 0 is sent as 0xffff.
fn adjust(
    data: &mut [u8],
    at: usize,
    words: impl IntoIterator<Item = (u16, u16)>,
    zero_is_none: bool,
) {
    if data.len() < at + 2 {
        return;
    }
    let mut sum = be16(data, at);
    if zero_is_none && sum == 0 {
        return;
    }
    for (old, new) in words {
        sum = checksum_adjust(sum, old, new);
    }
    if zero_is_none && sum == 0 {
        sum = 0xffff;
    }
    put_be16(data, at, sum);
}

/// Rewrites one endpoint of the packet `flow` describes (at the start of
/// `data`) to `new`: address always, port when the packet has ports.
pub fn rewrite<A: Address>(data: &mut [u8], flow: &Flow<A>, end: End, new: Endpoint<A>) {
    let (addr_at, port_at) = match end {
        End::Source => (A::SRC, 0),
        End::Destination => (A::DST, 2),
    };
    let old = flow.endpoint(end);
    let (old_addr, new_addr) = (old.addr.octets(), new.addr.octets());
    let (old_addr, new_addr) = (old_addr.as_ref(), new_addr.as_ref());
    data[addr_at..addr_at + new_addr.len()].copy_from_slice(new_addr);
    let addr_words = (old_addr.chunks_exact(2))
        .zip(new_addr.chunks_exact(2))
        .map(|(o, n)| (be16(o, 0), be16(n, 0)));
    if let Some(at) = A::HEADER_CHECKSUM {
        adjust(data, at, addr_words.clone(), false);
    }
    let l4_at = flow.header_len;
    let l4 = &mut data[l4_at..flow.len];
    let port = (old.port, new.port);
    match flow.protocol {
        PROTO_TCP | PROTO_UDP if !flow.is_fragment || flow.has_ports => {
            let (sum_at, zero_is_none) = match flow.protocol {
                PROTO_TCP => (TCP_CHECKSUM, false),
                _ => (UDP_CHECKSUM, true),
            };
            if flow.has_ports {
                put_be16(l4, port_at, new.port);
                adjust(l4, sum_at, addr_words.chain([port]), zero_is_none);
            } else {
                adjust(l4, sum_at, addr_words, zero_is_none);
            }
        }
        // Only the requester's end carries the identifier.
        PROTO_ICMP if flow.has_ports && old.port != new.port => {
            put_be16(l4, ICMP_ECHO_ID, new.port);
            adjust(l4, ICMP_CHECKSUM, [port], false);
        }
        _ => {}
    }
}

/// Rewrites an ICMP (ICMPv6) error: `end` of the outer packet becomes
/// `new.addr`, and the opposite end of the quoted packet (the quote is of
/// a packet going the other way) becomes `new`; the ICMP checksum is
/// computed again over the message (ICMPv6's over the pseudo-header too,
/// so after the outer rewrite).
pub fn rewrite_icmp_error<A: Address>(
    data: &mut [u8],
    outer: &Flow<A>,
    quoted: &Flow<A>,
    end: End,
    new: Endpoint<A>,
) {
    let inner_end = match end {
        End::Source => End::Destination,
        End::Destination => End::Source,
    };
    let outer_new = Endpoint::new(new.addr, outer.endpoint(end).port);
    rewrite(data, outer, end, outer_new);
    let at = outer.header_len + ICMP_HEADER;
    rewrite(&mut data[at..outer.len], quoted, inner_end, new);
    let pseudo = A::icmp_pseudo_sum(data, outer.len - outer.header_len);
    let icmp = &mut data[outer.header_len..outer.len];
    put_be16(icmp, ICMP_CHECKSUM, 0);
    let sum = !fold(ones_sum(icmp, pseudo));
    put_be16(icmp, ICMP_CHECKSUM, sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::{FRAGMENT, HOP_BY_HOP};
    use crate::wire::checksum;
    use crate::wire::{IPV4_CHECKSUM, IPV6_HEADER, IPV6_PAYLOAD_LEN, PROTO_ICMP};

    /// An IPv4 packet with a correct header checksum.
    pub fn ipv4(protocol: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, protocol, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        let len = p.len() as u16;
        put_be16(&mut p, 2, len);
        let sum = checksum(&p[..20]);
        put_be16(&mut p, IPV4_CHECKSUM, sum);
        p
    }

    /// The TCP/UDP checksum over the pseudo-header and segment.
    fn l4_sum(p: &[u8]) -> u16 {
        let mut pseudo = p[12..20].to_vec();
        pseudo.extend_from_slice(&[0, p[9]]);
        pseudo.extend_from_slice(&((p.len() - 20) as u16).to_be_bytes());
        pseudo.extend_from_slice(&p[20..]);
        checksum(&pseudo)
    }

    fn with_l4_sum(mut p: Vec<u8>, at: usize) -> Vec<u8> {
        let sum = l4_sum(&p);
        put_be16(&mut p, 20 + at, sum);
        p
    }

    #[test]
    fn tcp_and_udp_rewrites_keep_every_checksum_right() {
        for (protocol, sum_at) in [(PROTO_TCP, TCP_CHECKSUM), (PROTO_UDP, UDP_CHECKSUM)] {
            let mut l4 = vec![0u8; 24];
            put_be16(&mut l4, 0, 40000);
            put_be16(&mut l4, 2, 443);
            if protocol == PROTO_UDP {
                put_be16(&mut l4, 4, 24);
            }
            let mut p = with_l4_sum(
                ipv4(protocol, [10, 0, 0, 2], [198, 51, 100, 7], &l4),
                sum_at,
            );
            let flow = Ipv4Flow::parse(&p, false).unwrap();
            assert!(flow.has_ports);
            rewrite(
                &mut p,
                &flow,
                End::Source,
                Endpoint::new(Ipv4Addr::new(203, 0, 113, 1), 61000),
            );
            assert_eq!(checksum(&p[..20]), 0);
            assert_eq!(l4_sum(&p), 0, "{protocol}");
            let after = Ipv4Flow::parse(&p, false).unwrap();
            assert_eq!(
                after.src,
                Endpoint::new(Ipv4Addr::new(203, 0, 113, 1), 61000)
            );
            assert_eq!(after.dst, flow.dst);
        }
    }

    #[test]
    fn an_icmp_error_quoting_a_translated_packet_is_translated_back() {
        let mut udp = vec![0u8; 8];
        put_be16(&mut udp, 0, 61000);
        put_be16(&mut udp, 2, 33434);
        put_be16(&mut udp, 4, 8);
        let sent = with_l4_sum(
            ipv4(PROTO_UDP, [203, 0, 113, 1], [198, 51, 100, 7], &udp),
            UDP_CHECKSUM,
        );
        let mut icmp = vec![ICMP_TIME_EXCEEDED, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&sent);
        let sum = checksum(&icmp);
        put_be16(&mut icmp, 2, sum);
        let mut p = ipv4(PROTO_ICMP, [192, 0, 2, 9], [203, 0, 113, 1], &icmp);
        let outer = Ipv4Flow::parse(&p, false).unwrap();
        assert!(outer.is_icmp_error());
        let quoted = outer.quoted(&p).unwrap();
        assert_eq!(quoted.src.port, 61000);
        let inside = Endpoint::new(Ipv4Addr::new(10, 0, 0, 2), 40000);
        rewrite_icmp_error(&mut p, &outer, &quoted, End::Destination, inside);
        assert_eq!(checksum(&p[..20]), 0);
        assert_eq!(checksum(&p[20..]), 0, "ICMP checksum");
        assert_eq!(checksum(&p[28..48]), 0, "quoted header checksum");
        assert_eq!(l4_sum(&p[28..]), 0, "quoted UDP checksum");
        assert_eq!(Ipv4Flow::parse(&p, false).unwrap().dst.addr, inside.addr);
        assert_eq!(Ipv4Flow::parse(&p[28..], true).unwrap().src, inside);
    }

    /// An IPv6 packet: hop-by-hop options (8 bytes), a fragment header
    /// with `fragment` (offset and flags), then UDP 5000 -> 53.
    fn ipv6_fragment(fragment: u16) -> Vec<u8> {
        let mut p = vec![0u8; IPV6_HEADER];
        let (src, dst) = (
            "2001:db8::2".parse().unwrap(),
            "2001:db8::80".parse().unwrap(),
        );
        crate::wire::write_ipv6_header(&mut p, 24, HOP_BY_HOP, 64, src, dst);
        p.extend_from_slice(&[FRAGMENT, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&[PROTO_UDP, 0, 0, 0, 0, 0, 0, 1]);
        put_be16(&mut p, IPV6_HEADER + 10, fragment);
        p.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        p
    }

    #[test]
    fn ipv6_flows_are_read_past_extension_headers_and_later_fragments_have_no_ports() {
        let first = Flow::parse6(&ipv6_fragment(0x0001), false).unwrap();
        assert_eq!(
            (first.header_len, first.protocol),
            (IPV6_HEADER + 16, PROTO_UDP)
        );
        assert!(first.has_ports && first.is_fragment);
        assert_eq!((first.src.port, first.dst.port), (5000, 53));
        let later = Flow::parse6(&ipv6_fragment(0x0008), false).unwrap();
        assert!(!later.has_ports && later.is_fragment);
        let mut cut = ipv6_fragment(0);
        put_be16(&mut cut, IPV6_PAYLOAD_LEN, 12);
        assert_eq!(
            Flow::parse6(&cut, false),
            None,
            "the fragment header runs past the payload"
        );
        assert_eq!(Flow::parse6(&cut[..IPV6_HEADER - 1], false), None);
    }
}
