//! UDP on the local stack: a socket bound to one port of every own address.

use super::addr::{endpoint, is_unicast, socket_addr};
use super::link::IP_MTU;
use super::scope::Scope;
use super::stack::Shared;
use crate::snapshot::GLOBAL_TABLE;
use crate::wire::{IPV4_HEADER, IPV6_HEADER, UDP_HEADER};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::udp::{self, UdpMetadata};
use smoltcp::wire::IpAddress;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

/// Largest datagram payload to `target`: the stack does not fragment.
fn max_payload(target: SocketAddr) -> usize {
    let ip_header = if target.is_ipv4() {
        IPV4_HEADER
    } else {
        IPV6_HEADER
    };
    IP_MTU - ip_header - UDP_HEADER
}

pub struct UdpSocket {
    shared: Arc<Shared>,
    handle: SocketHandle,
    port: u16,
    /// A tool's scope; None: the global table and the routes' source.
    scope: Option<Scope>,
}

impl UdpSocket {
    pub(super) fn new(shared: Arc<Shared>, handle: SocketHandle, port: u16) -> UdpSocket {
        UdpSocket {
            shared,
            handle,
            port,
            scope: None,
        }
    }

    pub(super) fn with_scope(mut self, scope: Scope) -> UdpSocket {
        self.scope = Some(scope);
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends one datagram from the own address that suits `target`; waits
    /// while the send buffer is full.
    pub async fn send_to(&self, data: &[u8], target: impl Into<SocketAddr>) -> io::Result<usize> {
        let target = target.into();
        if data.len() > max_payload(target) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "datagram larger than the MTU",
            ));
        }
        if target.port() == 0 || !is_unicast(target.ip()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a unicast address and port",
            ));
        }
        poll_fn(|cx| {
            let mut engine = self.shared.lock();
            let source = match &self.scope {
                Some(scope) => engine.source_in(scope, target.ip())?,
                None => engine.source_for(GLOBAL_TABLE, target.ip())?,
            };
            let socket = engine.sockets.get_mut::<udp::Socket>(self.handle);
            let meta = UdpMetadata {
                local_address: Some(IpAddress::from(source)),
                ..endpoint(target).into()
            };
            match socket.send_slice(data, meta) {
                Ok(()) => {
                    drop(engine);
                    self.shared.wake_driver();
                    Poll::Ready(Ok(data.len()))
                }
                Err(udp::SendError::BufferFull) => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                Err(udp::SendError::Unaddressable) => {
                    Poll::Ready(Err(io::ErrorKind::AddrNotAvailable.into()))
                }
            }
        })
        .await
    }

    /// The hop limit (IPv4 TTL) of the datagrams it sends next; None for
    /// the default (traceroute's probes set it).
    pub fn set_hop_limit(&self, hop_limit: Option<u8>) {
        let mut engine = self.shared.lock();
        let socket = engine.sockets.get_mut::<udp::Socket>(self.handle);
        socket.set_hop_limit(hop_limit.filter(|h| *h > 0));
    }

    /// Receives one datagram; a datagram longer than `buf` is truncated.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| {
            let mut engine = self.shared.lock();
            let socket = engine.sockets.get_mut::<udp::Socket>(self.handle);
            match socket.recv() {
                Ok((payload, meta)) => {
                    let len = payload.len().min(buf.len());
                    buf[..len].copy_from_slice(&payload[..len]);
                    Poll::Ready(Ok((len, socket_addr(meta.endpoint))))
                }
                Err(_) => {
                    socket.register_recv_waker(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.shared.lock().remove_udp_socket(self.handle, self.port);
    }
}
