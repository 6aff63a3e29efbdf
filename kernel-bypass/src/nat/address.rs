//! What translation needs of an address family, so that one translation
//! table, one allocator of public endpoints and one rewriter serve IPv4
//! (NAT44, the load balancer's IPv4 virtual servers) and IPv6 (the load
//! balancer's IPv6 virtual servers): where the addresses sit in the IP
//! header, whether the header has a checksum over them, and how a table
//! record holds and hashes them. An IPv4 table keeps its 32-byte records;
//! an IPv6 one's are wider, never mixed with them.

use super::rewrite::{Flow, ICMPV6_ERRORS, ICMP_ERRORS};
use crate::wire::{ones_sum, IPV4_CHECKSUM, IPV4_DST, IPV4_PROTOCOL, IPV4_SRC};
use crate::wire::{IPV6_DST, IPV6_NEXT_HEADER, IPV6_SRC, PROTO_ICMP, PROTO_ICMPV6};
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An address as a table record holds it: 4-byte aligned words, so
/// records pack.
pub trait Packed: Copy + Default + Eq + Debug + Send + Sync + 'static {
    /// 64 bits to hash: an IPv4 address is itself (below bit 32), so the
    /// tables hash it as they always did.
    fn fold(self) -> u64;
}

impl Packed for u32 {
    #[inline(always)]
    fn fold(self) -> u64 {
        u64::from(self)
    }
}

impl Packed for [u32; 4] {
    #[inline]
    fn fold(self) -> u64 {
        let [a, b, c, d] = self.map(u64::from);
        (a << 32 | b).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (c << 32 | d)
    }
}

/// An address family's address, as translation handles it.
pub trait Address:
    Copy + Eq + Ord + Hash + Debug + Display + Send + Sync + Into<IpAddr> + 'static
{
    type Packed: Packed;
    /// Its bytes in network order.
    type Octets: AsRef<[u8]>;
    /// Where the source and destination addresses sit in the IP header.
    const SRC: usize;
    const DST: usize;
    /// The IP header's own checksum over the addresses (IPv4's).
    const HEADER_CHECKSUM: Option<usize>;
    /// Where the IP header names what follows it (IPv6: the first
    /// extension header, if any).
    const PROTOCOL: usize;
    /// The family's ICMP, and its error types that quote a packet.
    const ICMP: u8;
    const ICMP_ERRORS: [u8; 4];

    fn pack(self) -> Self::Packed;
    fn unpack(packed: Self::Packed) -> Self;
    fn octets(self) -> Self::Octets;
    /// The address at `at` of `data` (the caller checked the length).
    fn read(data: &[u8], at: usize) -> Self;
    /// This family's address of `ip`, if `ip` is of this family.
    fn of(ip: IpAddr) -> Option<Self>;
    /// 64 bits to hash (see `Packed::fold`).
    fn fold(self) -> u64 {
        self.pack().fold()
    }
    /// The packet at the start of `data` (its IP header checked), as
    /// translation reads it; None when its headers are malformed.
    fn flow(data: &[u8]) -> Option<Flow<Self>>;
    /// The packet an ICMP error quotes (`data`, maybe cut short).
    fn quoted_flow(data: &[u8]) -> Option<Flow<Self>>;
    /// What the ICMP checksum covers besides the message of `len` bytes
    /// in `packet`, not yet folded: nothing for ICMP, the pseudo-header
    /// for ICMPv6.
    fn icmp_pseudo_sum(packet: &[u8], len: usize) -> u32;
}

impl Address for Ipv4Addr {
    type Packed = u32;
    type Octets = [u8; 4];
    const SRC: usize = IPV4_SRC;
    const DST: usize = IPV4_DST;
    const HEADER_CHECKSUM: Option<usize> = Some(IPV4_CHECKSUM);
    const PROTOCOL: usize = IPV4_PROTOCOL;
    const ICMP: u8 = PROTO_ICMP;
    const ICMP_ERRORS: [u8; 4] = ICMP_ERRORS;

    fn pack(self) -> u32 {
        self.into()
    }

    fn unpack(packed: u32) -> Self {
        packed.into()
    }

    fn octets(self) -> [u8; 4] {
        Ipv4Addr::octets(&self)
    }

    #[inline(always)]
    fn read(data: &[u8], at: usize) -> Self {
        crate::wire::ipv4_at(data, at)
    }

    fn of(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }

    fn flow(data: &[u8]) -> Option<Flow<Self>> {
        Flow::parse(data, false)
    }

    fn quoted_flow(data: &[u8]) -> Option<Flow<Self>> {
        Flow::parse(data, true)
    }

    fn icmp_pseudo_sum(_: &[u8], _: usize) -> u32 {
        0
    }
}

impl Address for Ipv6Addr {
    type Packed = [u32; 4];
    type Octets = [u8; 16];
    const SRC: usize = IPV6_SRC;
    const DST: usize = IPV6_DST;
    const HEADER_CHECKSUM: Option<usize> = None;
    const PROTOCOL: usize = IPV6_NEXT_HEADER;
    const ICMP: u8 = PROTO_ICMPV6;
    const ICMP_ERRORS: [u8; 4] = ICMPV6_ERRORS;

    fn pack(self) -> [u32; 4] {
        let b = u128::from(self);
        [
            (b >> 96) as u32,
            (b >> 64) as u32,
            (b >> 32) as u32,
            b as u32,
        ]
    }

    fn unpack([a, b, c, d]: [u32; 4]) -> Self {
        Ipv6Addr::from(
            u128::from(a) << 96 | u128::from(b) << 64 | u128::from(c) << 32 | u128::from(d),
        )
    }

    fn octets(self) -> [u8; 16] {
        Ipv6Addr::octets(&self)
    }

    #[inline]
    fn read(data: &[u8], at: usize) -> Self {
        crate::wire::ipv6_at(data, at)
    }

    fn of(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }

    fn flow(data: &[u8]) -> Option<Flow<Self>> {
        Flow::parse6(data, false)
    }

    fn quoted_flow(data: &[u8]) -> Option<Flow<Self>> {
        Flow::parse6(data, true)
    }

    fn icmp_pseudo_sum(packet: &[u8], len: usize) -> u32 {
        ones_sum(&packet[IPV6_SRC..IPV6_DST + 16], 0) + len as u32 + u32::from(PROTO_ICMPV6)
    }
}

/// An address and port (ICMP echo: the identifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint<A = Ipv4Addr> {
    pub addr: A,
    pub port: u16,
}

impl<A: Address> Endpoint<A> {
    pub fn new(addr: A, port: u16) -> Endpoint<A> {
        Endpoint { addr, port }
    }

    /// This family's endpoint of `socket`, if it is of this family.
    pub fn of(socket: SocketAddr) -> Option<Endpoint<A>> {
        Some(Endpoint::new(A::of(socket.ip())?, socket.port()))
    }

    /// As a socket address (shown as `a.b.c.d:port` or `[x::y]:port`).
    pub fn socket(self) -> SocketAddr {
        SocketAddr::new(self.addr.into(), self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_packed_and_endpoints_through_sockets() {
        let v6: Ipv6Addr = "2001:db8::1:2:3".parse().unwrap();
        assert_eq!(Ipv6Addr::unpack(v6.pack()), v6);
        let v4 = Ipv4Addr::new(192, 0, 2, 7);
        assert_eq!(Ipv4Addr::unpack(v4.pack()), v4);
        assert_eq!(v4.fold(), 0xc000_0207, "IPv4 hashes as it always did");
        let e = Endpoint::new(v6, 443);
        assert_eq!(e.socket().to_string(), "[2001:db8::1:2:3]:443");
        assert_eq!(Endpoint::<Ipv6Addr>::of(e.socket()), Some(e));
        assert_eq!(Endpoint::<Ipv4Addr>::of(e.socket()), None);
    }
}
