//! Conversions between std socket addresses and smoltcp endpoints.

use smoltcp::wire::{IpAddress, IpEndpoint};
use std::net::{IpAddr, SocketAddr};

/// True for an address a socket may talk to: not unspecified, multicast or
/// (IPv4) broadcast.
pub(super) fn is_unicast(addr: IpAddr) -> bool {
    let broadcast = matches!(addr, IpAddr::V4(v4) if v4.is_broadcast());
    !(addr.is_unspecified() || addr.is_multicast() || broadcast)
}

pub(super) fn endpoint(addr: SocketAddr) -> IpEndpoint {
    IpEndpoint::new(IpAddress::from(addr.ip()), addr.port())
}

/// The socket address of a smoltcp endpoint. A link-local IPv6 peer gets no
/// scope id: the dataplane finds its link by itself (see the pipeline's
/// IPv6 output).
pub(super) fn socket_addr(endpoint: IpEndpoint) -> SocketAddr {
    SocketAddr::new(IpAddr::from(endpoint.addr), endpoint.port)
}
