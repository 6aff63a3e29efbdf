//! The control-plane side of the local stack: `LocalStack`, the handle
//! tokio tasks open sockets with, and the driver task that polls the
//! interface.

use super::addr::is_unicast;
use super::engine::{Engine, Liveness, SourceSelector};
use super::flows::FlowKey;
use super::icmp::{IcmpBinding, IcmpSocket};
use super::link::Link;
use super::port::LocalPort;
use super::scope::{OwnTables, Scope};
use super::show;
use super::tcp::{TcpListener, TcpStream};
use super::udp::UdpSocket;
use crate::snapshot::GLOBAL_TABLE;
use ipnet::IpNet;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use tokio::runtime::Handle;

/// What the sockets and the driver share.
pub(super) struct Shared {
    engine: Mutex<Engine>,
    link: Arc<Link>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Engine> {
        // smoltcp keeps its state consistent between calls, so a panic in
        // another holder leaves nothing half-done that we could trip over.
        self.engine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the driver to poll soon (after socket buffers changed).
    pub(super) fn wake_driver(&self) {
        self.link.poll_needed.notify_one();
    }
}

/// Creates the local stack: `LocalStack` for tokio tasks, `LocalPort` for
/// the dataplane worker. The driver task runs on `runtime` (which needs its
/// time driver: `enable_all`) until every `LocalStack` clone and socket is
/// dropped. Fails only if the kernel refuses an eventfd.
pub fn local_stack(runtime: Handle) -> io::Result<(LocalStack, LocalPort)> {
    let link = Arc::new(Link::new()?);
    let shared = Arc::new(Shared {
        engine: Mutex::new(Engine::new(link.clone())),
        link: link.clone(),
    });
    runtime.spawn(drive(Arc::downgrade(&shared), link.clone()));
    Ok((LocalStack { shared }, LocalPort::new(link)))
}

/// Polls the interface whenever packets arrive, sockets have output, or a
/// smoltcp timer is due.
async fn drive(shared: Weak<Shared>, link: Arc<Link>) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let delay = shared.lock().poll();
        drop(shared);
        if delay.is_zero() {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = link.poll_needed.notified() => {}
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// The appliance's own sockets. Cheap to clone; usable from any tokio task.
#[derive(Clone)]
pub struct LocalStack {
    shared: Arc<Shared>,
}

impl LocalStack {
    /// Sets the appliance's own addresses, IPv4 and IPv6 (from the
    /// interfaces of the committed config). They choose the source address
    /// of outgoing connections and datagrams; incoming packets are accepted
    /// for whatever the pipeline delivers.
    pub fn set_addresses(&self, addrs: &[IpNet]) {
        self.shared.lock().addresses = addrs.to_vec();
    }

    /// Sets the VRFs and up interfaces of every table (from the committed
    /// config), for the tools' scopes.
    pub fn set_tables(&self, tables: OwnTables) {
        let mut engine = self.shared.lock();
        engine.tables = tables;
        engine.refresh_flows();
    }

    /// Lets the dataplane choose source addresses by its routes (the
    /// egress interface's address), so connections and datagrams to
    /// networks behind a gateway leave from the right address, and those to
    /// a link-local peer from the address of the peer's link. It runs
    /// under the stack's lock: it must be quick and must not use the stack.
    pub fn set_source_selector(&self, selector: SourceSelector) {
        self.shared.lock().source_selector = Some(selector);
    }

    /// Sets how dead peers are detected, for connections opened from now on.
    pub fn set_liveness(&self, liveness: Liveness) {
        self.shared.lock().liveness = liveness;
    }

    /// Listens on TCP `port` of every own address.
    pub async fn tcp_listen(&self, port: u16) -> io::Result<TcpListener> {
        if port == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot listen on port 0",
            ));
        }
        self.shared.lock().add_listener(port)?;
        Ok(TcpListener::new(self.shared.clone(), port))
    }

    /// Opens a TCP connection from the own address that suits `remote`
    /// (the source selector's, else one in the same subnet, else the first
    /// of its family and scope); resolves once established.
    pub async fn tcp_connect(&self, remote: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        self.connect(None, remote.into()).await
    }

    /// Opens a TCP connection from the own address `source` (as BGP's
    /// update-source needs); resolves once established.
    pub async fn tcp_connect_from(
        &self,
        source: impl Into<IpAddr>,
        remote: impl Into<SocketAddr>,
    ) -> io::Result<TcpStream> {
        self.connect(Some(source.into()), remote.into()).await
    }

    async fn connect(&self, source: Option<IpAddr>, remote: SocketAddr) -> io::Result<TcpStream> {
        let destination = remote.ip();
        if remote.port() == 0 || !is_unicast(destination) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a unicast address and port",
            ));
        }
        let (handle, local) = {
            let mut engine = self.shared.lock();
            let source = match source {
                Some(source) => engine.own_address(source)?,
                None => engine.source_for(GLOBAL_TABLE, destination)?,
            };
            let local = SocketAddr::new(source, engine.ephemeral_port(true)?);
            (engine.add_connecting_socket(local, remote)?, local)
        };
        // The stream owns the socket from here, so it is freed even if the
        // handshake fails or this future is dropped.
        let stream = TcpStream::new(self.shared.clone(), handle, local, remote);
        self.shared.wake_driver();
        stream.established().await?;
        Ok(stream)
    }

    /// Binds UDP `port` (0 picks an ephemeral port) on every own address.
    pub async fn udp_bind(&self, port: u16) -> io::Result<UdpSocket> {
        let mut engine = self.shared.lock();
        let port = if port == 0 {
            engine.ephemeral_port(false)?
        } else {
            port
        };
        let handle = engine.add_udp_socket(port)?;
        Ok(UdpSocket::new(self.shared.clone(), handle, port))
    }

    /// Like `udp_bind`, for a tool: its datagrams go out in `scope` and
    /// the ICMP errors about them come in only from its table.
    pub async fn udp_bind_in(&self, port: u16, scope: Scope) -> io::Result<UdpSocket> {
        let socket = self.udp_bind(port).await?;
        let mut engine = self.shared.lock();
        engine.add_flow(FlowKey::Udp(socket.port()), scope.clone())?;
        drop(engine);
        Ok(socket.with_scope(scope))
    }

    /// An ICMP socket for what `binding` names (an echo identifier, or a
    /// UDP port the caller has bound), sending in `scope`.
    pub fn icmp_socket(&self, binding: IcmpBinding, scope: Scope) -> io::Result<IcmpSocket> {
        let mut engine = self.shared.lock();
        if let IcmpBinding::Echo(ident) = binding {
            engine.add_flow(FlowKey::Echo(ident), scope.clone())?;
        }
        let handle = match engine.add_icmp_socket(binding.into()) {
            Ok(handle) => handle,
            Err(e) => {
                if let IcmpBinding::Echo(ident) = binding {
                    engine.remove_flow(FlowKey::Echo(ident));
                }
                return Err(e);
            }
        };
        Ok(IcmpSocket::new(self.shared.clone(), handle, binding, scope))
    }

    /// The address a tool's socket of `scope` sends to `destination` from
    /// (its VRF must exist; its source must be an own address of it).
    pub fn source(&self, scope: &Scope, destination: IpAddr) -> io::Result<IpAddr> {
        self.shared.lock().source_in(scope, destination)
    }

    /// The socket table for `show`: protocol, local and remote address,
    /// TCP state; each listened port's pool on one line.
    pub fn show_sockets(&self) -> String {
        show::sockets(&self.shared.lock())
    }

    /// How many sockets the stack holds (listening pools included); lets
    /// tests and `show` commands see that closed connections are freed.
    pub fn socket_count(&self) -> usize {
        self.shared.lock().sockets.iter().count()
    }
}
