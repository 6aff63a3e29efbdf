//! ICMP on the local stack, for the operator's tools: echo messages of one
//! identifier (`ping`), or the errors about datagrams sent from one UDP
//! port (`traceroute`'s time exceeded and port unreachable). The caller
//! writes whole ICMP messages; the stack fills in the checksum and the
//! source address.

use super::flows::FlowKey;
use super::scope::Scope;
use super::stack::Shared;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::icmp;
use smoltcp::wire::IpAddress;
use std::future::poll_fn;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::Poll;

/// What an ICMP socket receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpBinding {
    /// Echo messages with this identifier.
    Echo(u16),
    /// Errors about datagrams sent from this UDP port.
    UdpErrors(u16),
}

impl From<IcmpBinding> for icmp::Endpoint {
    fn from(binding: IcmpBinding) -> icmp::Endpoint {
        match binding {
            IcmpBinding::Echo(ident) => icmp::Endpoint::Ident(ident),
            IcmpBinding::UdpErrors(port) => {
                icmp::Endpoint::Udp(smoltcp::wire::IpListenEndpoint { addr: None, port })
            }
        }
    }
}

pub struct IcmpSocket {
    shared: Arc<Shared>,
    handle: SocketHandle,
    binding: IcmpBinding,
    scope: Scope,
}

impl IcmpSocket {
    pub(super) fn new(
        shared: Arc<Shared>,
        handle: SocketHandle,
        binding: IcmpBinding,
        scope: Scope,
    ) -> IcmpSocket {
        IcmpSocket {
            shared,
            handle,
            binding,
            scope,
        }
    }

    /// Sends one ICMP message to `target`, with `hop_limit` (None: the
    /// default); waits while the send buffer is full.
    pub async fn send_to(
        &self,
        message: &[u8],
        target: IpAddr,
        hop_limit: Option<u8>,
    ) -> io::Result<()> {
        poll_fn(|cx| {
            let mut engine = self.shared.lock();
            engine.use_icmp_source(&self.scope, target)?;
            let socket = engine.sockets.get_mut::<icmp::Socket>(self.handle);
            socket.set_hop_limit(hop_limit.filter(|h| *h > 0));
            match socket.send_slice(message, IpAddress::from(target)) {
                Ok(()) => {
                    // Out before another socket changes the ICMP source.
                    engine.flush();
                    drop(engine);
                    self.shared.wake_driver();
                    Poll::Ready(Ok(()))
                }
                Err(icmp::SendError::BufferFull) => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                Err(icmp::SendError::Unaddressable) => {
                    Poll::Ready(Err(io::ErrorKind::AddrNotAvailable.into()))
                }
            }
        })
        .await
    }

    /// Whether a router answered echo `seq` (of an echo socket) with
    /// "fragmentation needed" or "packet too big"; true once.
    pub fn refused_for_size(&self, seq: u16) -> bool {
        match self.binding {
            IcmpBinding::Echo(ident) => self.shared.lock().take_too_big(ident, seq),
            IcmpBinding::UdpErrors(_) => false,
        }
    }

    /// Receives one ICMP message and its sender; a longer message than
    /// `buf` is truncated.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr)> {
        poll_fn(|cx| {
            let mut engine = self.shared.lock();
            let socket = engine.sockets.get_mut::<icmp::Socket>(self.handle);
            match socket.recv() {
                Ok((message, from)) => {
                    let len = message.len().min(buf.len());
                    buf[..len].copy_from_slice(&message[..len]);
                    Poll::Ready(Ok((len, IpAddr::from(from))))
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

impl Drop for IcmpSocket {
    fn drop(&mut self) {
        let mut engine = self.shared.lock();
        engine.sockets.remove(self.handle);
        if let IcmpBinding::Echo(ident) = self.binding {
            engine.remove_flow(FlowKey::Echo(ident));
        }
    }
}
