//! TCP on the local stack as tokio streams: a listener that accepts from a
//! pool of listening sockets, and streams implementing AsyncRead/AsyncWrite
//! whose wakers are registered with their smoltcp socket.

use super::addr::socket_addr;
use super::stack::Shared;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, RecvError, State};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Accepts connections on one TCP port. Dropping it resets connections
/// that were not accepted yet and frees the port.
pub struct TcpListener {
    shared: Arc<Shared>,
    port: u16,
}

impl TcpListener {
    pub(super) fn new(shared: Arc<Shared>, port: u16) -> TcpListener {
        TcpListener { shared, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for an established connection. Meant for one accepting task
    /// per listener (only the latest waiting task is woken).
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut guard = self.shared.lock();
        let engine = &mut *guard;
        let Some(pool) = engine.listeners.get_mut(&self.port) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        let mut ready = None;
        for (index, &handle) in pool.iter().enumerate() {
            let socket = engine.sockets.get_mut::<tcp::Socket>(handle);
            match socket.state() {
                State::Established | State::CloseWait => {
                    ready = Some(index);
                    break;
                }
                // The handshake failed (reset or timed out): listen again.
                State::Closed | State::TimeWait => {
                    socket.abort();
                    let _ = socket.listen(self.port);
                    socket.register_recv_waker(cx.waker());
                }
                // Any state change of a pool socket wakes this task.
                _ => socket.register_recv_waker(cx.waker()),
            }
        }
        let Some(index) = ready else {
            return Poll::Pending;
        };
        let handle = pool.swap_remove(index);
        engine.watch_liveness(handle);
        let replacement = engine.add_listening_socket(self.port);
        if let Some(pool) = engine.listeners.get_mut(&self.port) {
            pool.push(replacement);
        }
        let socket = engine.sockets.get::<tcp::Socket>(handle);
        let (Some(local), Some(remote)) = (socket.local_endpoint(), socket.remote_endpoint())
        else {
            // Established sockets always know both ends; free it rather than trust that.
            engine.orphan(handle, true);
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        };
        let peer = socket_addr(remote);
        drop(guard);
        let stream = TcpStream::new(self.shared.clone(), handle, socket_addr(local), peer);
        Poll::Ready(Ok((stream, peer)))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let mut engine = self.shared.lock();
        for handle in engine.listeners.remove(&self.port).unwrap_or_default() {
            engine.orphan(handle, true);
        }
        drop(engine);
        self.shared.wake_driver();
    }
}

/// One TCP connection. Dropping it closes the connection gracefully (the
/// stack finishes the close, or resets the peer after a grace period).
pub struct TcpStream {
    shared: Arc<Shared>,
    handle: SocketHandle,
    local: SocketAddr,
    peer: SocketAddr,
    reset_on_drop: bool,
}

/// The endpoints only: protocol clients (tokio-modbus) ask for Debug.
impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TcpStream({} -> {})", self.local, self.peer)
    }
}

impl TcpStream {
    pub(super) fn new(
        shared: Arc<Shared>,
        handle: SocketHandle,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> TcpStream {
        TcpStream {
            shared,
            handle,
            local,
            peer,
            reset_on_drop: false,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Resolves when an outgoing connection is established, or fails when
    /// it is refused or times out.
    pub(super) async fn established(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut engine = self.shared.lock();
            let socket = engine.sockets.get_mut::<tcp::Socket>(self.handle);
            match socket.state() {
                State::SynSent | State::SynReceived => {
                    socket.register_send_waker(cx.waker());
                    Poll::Pending
                }
                State::Closed | State::TimeWait => {
                    Poll::Ready(Err(io::ErrorKind::ConnectionRefused.into()))
                }
                _ => Poll::Ready(Ok(())),
            }
        })
        .await
    }

    /// Resets the connection at once instead of closing it gracefully.
    pub fn abort(mut self) {
        self.reset_on_drop = true;
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut engine = self.shared.lock();
        let socket = engine.sockets.get_mut::<tcp::Socket>(self.handle);
        match socket.recv_slice(buf.initialize_unfilled()) {
            Ok(0) => {
                socket.register_recv_waker(cx.waker());
                Poll::Pending
            }
            Ok(read) => {
                buf.advance(read);
                drop(engine);
                // The receive window grew: the peer may be waiting to hear so.
                self.shared.wake_driver();
                Poll::Ready(Ok(()))
            }
            Err(RecvError::Finished) => Poll::Ready(Ok(())),
            Err(RecvError::InvalidState) => Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut engine = self.shared.lock();
        let socket = engine.sockets.get_mut::<tcp::Socket>(self.handle);
        match socket.send_slice(data) {
            Ok(0) => {
                socket.register_send_waker(cx.waker());
                Poll::Pending
            }
            Ok(written) => {
                drop(engine);
                self.shared.wake_driver();
                Poll::Ready(Ok(written))
            }
            Err(tcp::SendError::InvalidState) => {
                let kind = if socket.state() == State::Closed {
                    io::ErrorKind::ConnectionReset
                } else {
                    io::ErrorKind::BrokenPipe
                };
                Poll::Ready(Err(kind.into()))
            }
        }
    }

    /// Data is with the stack once written, as with a kernel socket.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Sends FIN after the queued data; reading stays possible.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared
            .lock()
            .sockets
            .get_mut::<tcp::Socket>(self.handle)
            .close();
        self.shared.wake_driver();
        Poll::Ready(Ok(()))
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        self.shared.lock().orphan(self.handle, self.reset_on_drop);
        self.shared.wake_driver();
    }
}
