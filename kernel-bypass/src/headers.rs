//! Bounds-checked views of IP and transport headers, in the manner of
//! smoltcp's `Packet::new_checked`: a view is made only when the buffer is
//! long enough for everything its accessors read, so no accessor can panic
//! and offsets live here once. New network elements read packets through
//! these (the older pipeline stages check lengths by hand, once per header).

use crate::wire::PROTO_ICMPV6;
use crate::wire::{be16, be32, ipv4_at, ipv4_header_len, ipv6_at, is_first_fragment, is_fragment};
use crate::wire::{IPV4_DST, IPV4_HEADER, IPV4_ID, IPV4_PROTOCOL, IPV4_SRC, PROTO_ICMP};
use crate::wire::{IPV6_DST, IPV6_HEADER, IPV6_NEXT_HEADER, IPV6_PAYLOAD_LEN, IPV6_SRC};
use crate::wire::{PROTO_TCP, PROTO_UDP, UDP_HEADER};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 header whose length fields fit the buffer.
#[derive(Clone, Copy)]
pub struct Ipv4View<'a> {
    data: &'a [u8],
    header_len: usize,
    total_len: usize,
}

impl<'a> Ipv4View<'a> {
    /// None unless version 4, a header length of at least 20 bytes within
    /// the buffer and a total length between the header's and the buffer's.
    pub fn new_checked(data: &'a [u8]) -> Option<Ipv4View<'a>> {
        let first = *data.first()?;
        let header_len = ipv4_header_len(data);
        if first >> 4 != 4 || header_len < IPV4_HEADER || data.len() < header_len {
            return None;
        }
        let total_len = usize::from(be16(data, 2));
        (header_len..=data.len())
            .contains(&total_len)
            .then_some(Ipv4View {
                data,
                header_len,
                total_len,
            })
    }

    pub fn src(&self) -> Ipv4Addr {
        ipv4_at(self.data, IPV4_SRC)
    }

    pub fn dst(&self) -> Ipv4Addr {
        ipv4_at(self.data, IPV4_DST)
    }

    pub fn protocol(&self) -> u8 {
        self.data[IPV4_PROTOCOL]
    }

    /// True for the first (or only) fragment: the one with the ports.
    pub fn is_first_fragment(&self) -> bool {
        is_first_fragment(self.data)
    }

    /// What follows the header, up to the total length.
    pub fn payload(&self) -> &'a [u8] {
        &self.data[self.header_len..self.total_len]
    }

    /// The piece of a fragmented packet this is (None for a whole packet).
    pub fn fragment(&self) -> Option<Fragment> {
        is_fragment(self.data).then(|| Fragment {
            id: u32::from(be16(self.data, IPV4_ID)),
            first: self.is_first_fragment(),
        })
    }
}

/// A piece of a fragmented packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// The packet's identification (IPv4's 16 bits, IPv6's 32).
    pub id: u32,
    /// The piece at offset 0: the one with the transport header.
    pub first: bool,
}

// IPv6 extension headers that may come before the transport header.
pub const HOP_BY_HOP: u8 = 0;
pub const ROUTING: u8 = 43;
pub const FRAGMENT: u8 = 44;
pub const DESTINATION_OPTIONS: u8 = 60;
const FRAGMENT_HEADER: usize = 8;
/// The fragment header's offset bits (in 8-byte units).
const FRAGMENT_OFFSET: u16 = 0xfff8;

/// What an IPv6 packet carries past its extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer {
    pub protocol: u8,
    /// Where its header starts, from the IPv6 header's first byte (for a
    /// later fragment: where the fragment's data starts).
    pub offset: usize,
    pub fragment: Option<Fragment>,
}

/// An IPv6 header whose payload length fits the buffer.
#[derive(Clone, Copy)]
pub struct Ipv6View<'a> {
    data: &'a [u8],
}

impl<'a> Ipv6View<'a> {
    pub fn new_checked(data: &'a [u8]) -> Option<Ipv6View<'a>> {
        let view = Ipv6View::new_quoted(data)?;
        let total = IPV6_HEADER + usize::from(be16(data, IPV6_PAYLOAD_LEN));
        (view.data.len() == total).then_some(view)
    }

    /// The header of a packet an ICMPv6 error quotes: its payload length
    /// may say more than the quote holds, which is taken as the payload.
    pub fn new_quoted(data: &'a [u8]) -> Option<Ipv6View<'a>> {
        if data.len() < IPV6_HEADER || data[0] >> 4 != 6 {
            return None;
        }
        let total = IPV6_HEADER + usize::from(be16(data, IPV6_PAYLOAD_LEN));
        Some(Ipv6View {
            data: &data[..total.min(data.len())],
        })
    }

    /// Bytes of the header and its payload.
    pub fn total_len(&self) -> usize {
        self.data.len()
    }

    pub fn src(&self) -> Ipv6Addr {
        ipv6_at(self.data, IPV6_SRC)
    }

    pub fn dst(&self) -> Ipv6Addr {
        ipv6_at(self.data, IPV6_DST)
    }

    /// The upper-layer protocol past the hop-by-hop, routing, fragment
    /// and destination options headers; None when they run past the packet.
    pub fn upper_layer(&self) -> Option<UpperLayer> {
        let (mut protocol, mut offset) = (self.data[IPV6_NEXT_HEADER], IPV6_HEADER);
        let mut fragment = None;
        // Each header moves on by 8 bytes or more: the walk ends.
        loop {
            match protocol {
                HOP_BY_HOP | ROUTING | DESTINATION_OPTIONS => {
                    let header = self.data.get(offset..offset + 2)?;
                    protocol = header[0];
                    offset += (usize::from(header[1]) + 1) * 8;
                }
                FRAGMENT => {
                    let header = self.data.get(offset..offset + FRAGMENT_HEADER)?;
                    protocol = header[0];
                    offset += FRAGMENT_HEADER;
                    let first = be16(header, 2) & FRAGMENT_OFFSET == 0;
                    fragment = Some(Fragment {
                        id: be32(header, 4),
                        first,
                    });
                    if !first {
                        break;
                    }
                }
                _ => break,
            }
        }
        (offset <= self.data.len()).then_some(UpperLayer {
            protocol,
            offset,
            fragment,
        })
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.data[IPV6_HEADER..]
    }
}

/// The TCP flag bits `established` and the session states read.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;

    /// A connection's opening segment: SYN without ACK.
    pub fn is_syn(flags: u8) -> bool {
        flags & (SYN | ACK) == SYN
    }
}

/// What identifies a packet's flow and what stateful filtering reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    /// TCP/UDP ports; for ICMP echo the identifier in both; 0 otherwise.
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags (0 for other protocols).
    pub tcp_flags: u8,
    /// ICMP or ICMPv6 type and code (0 for other protocols).
    pub icmp: (u8, u8),
    /// The transport header was present (not a later fragment, not cut short).
    pub has_transport: bool,
    /// The piece of a fragmented packet this is (None for a whole packet).
    pub fragment: Option<Fragment>,
}

impl FlowInfo {
    /// The flow of an IPv4 or IPv6 packet (IP header first), or None when
    /// the IP header itself is malformed.
    pub fn parse(packet: &[u8]) -> Option<FlowInfo> {
        let (src, dst, protocol, l4, fragment) = match packet.first()? >> 4 {
            4 => {
                let ip = Ipv4View::new_checked(packet)?;
                let l4 = ip.is_first_fragment().then(|| ip.payload());
                let (src, dst) = (ip.src().into(), ip.dst().into());
                (src, dst, ip.protocol(), l4, ip.fragment())
            }
            6 => {
                let ip = Ipv6View::new_checked(packet)?;
                let upper = ip.upper_layer()?;
                let first = upper.fragment.is_none_or(|f| f.first);
                let l4 = first.then(|| &ip.data[upper.offset..]);
                let (src, dst) = (ip.src().into(), ip.dst().into());
                (src, dst, upper.protocol, l4, upper.fragment)
            }
            _ => return None,
        };
        let mut flow = FlowInfo {
            src,
            dst,
            protocol,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            icmp: (0, 0),
            has_transport: false,
            fragment,
        };
        if let Some(l4) = l4 {
            flow.read_transport(l4);
        }
        Some(flow)
    }

    fn read_transport(&mut self, l4: &[u8]) {
        const TCP_FLAGS: usize = 13;
        match self.protocol {
            PROTO_TCP if l4.len() > TCP_FLAGS => {
                (self.src_port, self.dst_port) = (be16(l4, 0), be16(l4, 2));
                self.tcp_flags = l4[TCP_FLAGS];
            }
            PROTO_UDP if l4.len() >= UDP_HEADER => {
                (self.src_port, self.dst_port) = (be16(l4, 0), be16(l4, 2));
            }
            PROTO_ICMP | PROTO_ICMPV6 if l4.len() >= 8 => {
                self.icmp = (l4[0], l4[1]);
                if is_echo(self.protocol, l4[0]) {
                    let id = be16(l4, 4);
                    (self.src_port, self.dst_port) = (id, id);
                }
            }
            _ => return,
        }
        self.has_transport = true;
    }

    /// The flow of the packet an ICMP or ICMPv6 error (`packet`, whose
    /// flow is `self`) quotes: a packet the error's receiver sent. None
    /// for any other packet. The quote may be cut short: its length field
    /// is taken as what is there.
    pub fn quoted(&self, packet: &[u8]) -> Option<FlowInfo> {
        let is_error = match self.protocol {
            PROTO_ICMP => matches!(self.icmp.0, 3 | 4 | 11 | 12),
            PROTO_ICMPV6 => (1..=4).contains(&self.icmp.0),
            _ => false,
        };
        if !is_error || !self.has_transport {
            return None;
        }
        let l4_at = match self.protocol {
            PROTO_ICMP => ipv4_header_len(packet),
            _ => IPV6_HEADER,
        };
        let quote = packet.get(l4_at + 8..)?;
        // A copy whose length field says what is quoted, for the checked
        // views (an IPv4 and a transport header fit in 128 bytes).
        let mut copy = [0u8; 128];
        let n = quote.len().min(copy.len());
        copy[..n].copy_from_slice(&quote[..n]);
        let l4_at = match copy[0] >> 4 {
            4 => {
                crate::wire::put_be16(&mut copy, 2, n as u16);
                ipv4_header_len(&copy)
            }
            6 => {
                let payload = n.saturating_sub(IPV6_HEADER) as u16;
                crate::wire::put_be16(&mut copy, IPV6_PAYLOAD_LEN, payload);
                IPV6_HEADER
            }
            _ => return None,
        };
        let mut flow = FlowInfo::parse(&copy[..n])?;
        // RFC 792 quotes only 8 bytes of TCP: the ports, not the flags.
        let l4 = copy.get(l4_at..n).unwrap_or_default();
        if flow.protocol == PROTO_TCP && !flow.has_transport && l4.len() >= 4 {
            (flow.src_port, flow.dst_port) = (be16(l4, 0), be16(l4, 2));
            flow.has_transport = true;
        }
        Some(flow)
    }

    /// ICMPv6 Neighbour Discovery (RFC 4861: types 133-137), IPv6's ARP.
    pub fn is_neighbor_discovery(&self) -> bool {
        self.has_transport && self.protocol == PROTO_ICMPV6 && (133..=137).contains(&self.icmp.0)
    }

    /// ICMP echo requests and replies (both families).
    pub fn is_echo(&self) -> bool {
        self.has_transport && is_echo(self.protocol, self.icmp.0)
    }
}

fn is_echo(protocol: u8, icmp_type: u8) -> bool {
    matches!(
        (protocol, icmp_type),
        (PROTO_ICMP, 0 | 8) | (PROTO_ICMPV6, 128 | 129)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ipv4(protocol: u8, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(l4);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p
    }

    /// An IPv6 packet from 2001:db8::1 to 2001:db8::2 whose first header is `next`.
    fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        for last in [1u8, 2] {
            p.extend_from_slice(&[
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last,
            ]);
        }
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn ipv6_flows_are_read_past_extension_headers_and_fragments_named() {
        let udp = [0x13, 0x88, 0, 53, 0, 8, 0, 0];
        // Hop-by-hop options (8 bytes), then a first fragment (id 7, more).
        let mut first = vec![FRAGMENT, 0, 0, 0, 0, 0, 0, 0];
        first.extend_from_slice(&[PROTO_UDP, 0, 0, 1, 0, 0, 0, 7]);
        first.extend_from_slice(&udp);
        let flow = FlowInfo::parse(&ipv6(HOP_BY_HOP, &first)).unwrap();
        assert_eq!(
            (flow.protocol, flow.src_port, flow.dst_port),
            (PROTO_UDP, 5000, 53)
        );
        assert_eq!(flow.fragment, Some(Fragment { id: 7, first: true }));
        // A later fragment (offset 8 bytes): no ports, the same packet.
        let later = [PROTO_UDP, 0, 0, 8, 0, 0, 0, 7, 0xde, 0xad];
        let flow = FlowInfo::parse(&ipv6(FRAGMENT, &later)).unwrap();
        assert_eq!(flow.protocol, PROTO_UDP);
        assert!(!flow.has_transport);
        assert_eq!(
            flow.fragment,
            Some(Fragment {
                id: 7,
                first: false
            })
        );
        // Headers that run past the packet make no flow.
        assert_eq!(FlowInfo::parse(&ipv6(HOP_BY_HOP, &[PROTO_UDP, 9])), None);
    }

    #[test]
    fn an_icmp_error_gives_the_flow_it_quotes_even_cut_short() {
        let mut tcp = [0u8; 20];
        tcp[..4].copy_from_slice(&[0x9c, 0x40, 0, 80]);
        let sent = ipv4(PROTO_TCP, &tcp);
        let mut error = vec![3, 4, 0, 0, 0, 0, 5, 0xdc];
        error.extend_from_slice(&sent[..28]);
        let packet = ipv4(PROTO_ICMP, &error);
        let flow = FlowInfo::parse(&packet).unwrap();
        let quoted = flow.quoted(&packet).unwrap();
        assert_eq!(
            (quoted.protocol, quoted.src_port, quoted.dst_port),
            (PROTO_TCP, 40000, 80)
        );
        assert!(quoted.has_transport);
        // Not an error: nothing quoted.
        let echo = ipv4(PROTO_ICMP, &[8, 0, 0, 0, 0, 1, 0, 1]);
        assert_eq!(FlowInfo::parse(&echo).unwrap().quoted(&echo), None);
    }

    #[test]
    fn reads_ports_flags_and_echo_identifiers() {
        let mut tcp = [0u8; 20];
        tcp[..4].copy_from_slice(&[0x30, 0x39, 0x01, 0xbb]);
        tcp[13] = tcp_flags::SYN;
        let f = FlowInfo::parse(&ipv4(PROTO_TCP, &tcp)).unwrap();
        assert_eq!(
            (f.src_port, f.dst_port, f.tcp_flags),
            (12345, 443, tcp_flags::SYN)
        );
        let echo = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        let f = FlowInfo::parse(&ipv4(PROTO_ICMP, &echo)).unwrap();
        assert!(f.is_echo());
        assert_eq!((f.src_port, f.dst_port, f.icmp), (0x1234, 0x1234, (8, 0)));
    }

    #[test]
    fn short_transport_headers_and_later_fragments_carry_no_ports() {
        let f = FlowInfo::parse(&ipv4(PROTO_TCP, &[1, 2, 3])).unwrap();
        assert!(!f.has_transport);
        let mut later = ipv4(PROTO_UDP, &[0, 53, 0, 53, 0, 8, 0, 0]);
        later[6..8].copy_from_slice(&[0, 1]);
        assert!(!FlowInfo::parse(&later).unwrap().has_transport);
    }

    proptest! {
        #[test]
        fn no_bytes_make_the_views_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = FlowInfo::parse(&bytes);
            for version in [0x45u8, 0x4f, 0x60] {
                let mut b = bytes.clone();
                if let Some(first) = b.first_mut() {
                    *first = version;
                }
                let _ = FlowInfo::parse(&b);
            }
        }
    }
}
