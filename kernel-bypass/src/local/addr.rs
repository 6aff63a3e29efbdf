//! Conversions between std socket addresses and smoltcp endpoints.

use smoltcp::wire::{IpAddress, IpEndpoint};
use std::net::{Ipv4Addr, SocketAddrV4};

pub(super) fn is_unicast(addr: Ipv4Addr) -> bool {
    !(addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast())
}

pub(super) fn endpoint(addr: SocketAddrV4) -> IpEndpoint {
    IpEndpoint::new(IpAddress::Ipv4(*addr.ip()), addr.port())
}

/// The IPv4 socket address of a smoltcp endpoint. The stack only ever sees
/// IPv4 packets, so another family cannot occur.
pub(super) fn socket_addr(endpoint: IpEndpoint) -> SocketAddrV4 {
    match endpoint.addr {
        IpAddress::Ipv4(addr) => SocketAddrV4::new(addr, endpoint.port),
        IpAddress::Ipv6(_) => SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, endpoint.port),
    }
}
