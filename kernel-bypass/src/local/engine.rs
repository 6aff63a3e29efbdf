//! The smoltcp interface and every socket of the local stack, with the
//! bookkeeping around them: listening pools, ports in use, source address
//! choice, and connections whose owners are gone. Always used under the
//! stack's lock.

use super::addr::endpoint;
use super::device::LinkDevice;
use super::flows::{FlowKey, FlowTag};
use super::link::Link;
use super::scope::{OwnTables, Scope};
use crate::snapshot::{VrfId, GLOBAL_TABLE};
use ipnet::IpNet;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{icmp, tcp, udp, Socket};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Receive and send buffer of each TCP connection.
const TCP_BUFFER: usize = 32 * 1024;
/// Listening sockets kept per port: how many handshakes can be in progress
/// at once before further SYNs are refused.
const LISTEN_BACKLOG: usize = 32;
/// Datagrams and payload bytes buffered per UDP socket and direction.
const UDP_PACKETS: usize = 64;
const UDP_BUFFER: usize = 64 * 1024;
/// Messages and bytes buffered per ICMP socket and direction (a ping's).
const ICMP_PACKETS: usize = 16;
const ICMP_BUFFER: usize = 16 * 1600;
/// Local ports for outgoing connections and unbound UDP sockets (NAT's
/// port translation leaves them alone).
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// The driver polls at least this often, so it notices when the stack is gone.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// How the stack notices TCP peers that went away. Applies to connections
/// opened after it is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// An idle connection probes its peer this often...
    pub keep_alive: Duration,
    /// ...and is reset when the peer stays silent this long (this also
    /// bounds an outgoing connect).
    pub peer_timeout: Duration,
    /// A connection whose owner dropped it gets this long to finish closing
    /// before it is reset and freed.
    pub orphan_linger: Duration,
    /// A half-open incoming connection is dropped when the peer stays
    /// silent this long, so a SYN flood cannot hold a listening pool for
    /// long. Applies to listeners opened after it is set.
    pub handshake_timeout: Duration,
}

impl Default for Liveness {
    fn default() -> Liveness {
        Liveness {
            keep_alive: Duration::from_secs(10),
            peer_timeout: Duration::from_secs(30),
            orphan_linger: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// Picks the source address for a destination in a table, as the
/// dataplane's routing knows it (the egress interface's address; for a
/// link-local peer, the address of its link); `None` leaves the choice to
/// the stack.
pub type SourceSelector = Arc<dyn Fn(VrfId, IpAddr) -> Option<IpAddr> + Send + Sync>;

/// A connection whose owner is gone, kept until its close completes.
struct Orphan {
    handle: SocketHandle,
    deadline: std::time::Instant,
}

/// Everything the stack's lock protects.
pub(super) struct Engine {
    iface: Interface,
    device: LinkDevice,
    pub(super) sockets: SocketSet<'static>,
    clock: std::time::Instant,
    /// The appliance's own addresses (IPv4, IPv6 and link-local); used to
    /// pick source addresses.
    pub(super) addresses: Vec<IpNet>,
    /// Every table's VRF and up interfaces, for the tools' scopes.
    pub(super) tables: OwnTables,
    /// The scopes of the tools' sockets, by the flow their packets carry.
    scopes: HashMap<FlowKey, Scope>,
    pub(super) liveness: Liveness,
    pub(super) source_selector: Option<SourceSelector>,
    /// Listening socket pool of each listened TCP port.
    pub(super) listeners: HashMap<u16, Vec<SocketHandle>>,
    udp_ports: HashSet<u16>,
    orphans: Vec<Orphan>,
    next_ephemeral: u16,
}

impl Engine {
    pub(super) fn new(link: Arc<Link>) -> Engine {
        let mut device = LinkDevice::new(link);
        let clock = std::time::Instant::now();
        let seed = RandomState::new().hash_one(clock);
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::ZERO);
        // The pipeline only hands over packets for the appliance's own
        // addresses, so accept every destination, and send everything back
        // to the pipeline, which does the real routing.
        iface.set_any_ip(true);
        // A gateway is required by smoltcp's route table; with an IP medium
        // it is never used to address anything.
        let routes = iface.routes_mut();
        let _ = routes.add_default_ipv4_route(Ipv4Addr::new(0, 0, 0, 1));
        let _ = routes.add_default_ipv6_route(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
        let start = *EPHEMERAL_PORTS.start();
        let spread = (seed % EPHEMERAL_PORTS.len() as u64) as u16;
        Engine {
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            clock,
            addresses: Vec::new(),
            tables: OwnTables::default(),
            scopes: HashMap::new(),
            liveness: Liveness::default(),
            source_selector: None,
            listeners: HashMap::new(),
            udp_ports: HashSet::new(),
            orphans: Vec::new(),
            next_ephemeral: start + spread,
        }
    }

    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.clock.elapsed().as_micros() as i64)
    }

    /// Moves packets both ways and runs socket timers. Returns how long the
    /// driver may sleep if nothing else happens.
    pub(super) fn poll(&mut self) -> Duration {
        let more_input = self.device.start_round();
        let now = self.now();
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.reap_orphans();
        if self.device.tx_blocked() {
            // Polling again before the worker drains would only spin.
            return IDLE_TICK;
        }
        if more_input {
            return Duration::ZERO;
        }
        self.iface
            .poll_delay(self.now(), &self.sockets)
            .map_or(IDLE_TICK, |delay| {
                Duration::from_micros(delay.total_micros()).min(IDLE_TICK)
            })
    }

    fn reap_orphans(&mut self) {
        let now = std::time::Instant::now();
        let sockets = &mut self.sockets;
        self.orphans.retain(|orphan| {
            let socket = sockets.get_mut::<tcp::Socket>(orphan.handle);
            match socket.state() {
                tcp::State::Closed | tcp::State::TimeWait => {
                    sockets.remove(orphan.handle);
                    false
                }
                _ => {
                    if now >= orphan.deadline {
                        // Sends a reset on the next poll; removed once closed.
                        socket.abort();
                    }
                    true
                }
            }
        })
    }

    /// Hands a TCP socket to the reaper: closed gracefully, or reset right
    /// away when `abort`. The caller wakes the driver.
    pub(super) fn orphan(&mut self, handle: SocketHandle, abort: bool) {
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        let deadline = std::time::Instant::now();
        let deadline = if abort {
            socket.abort();
            deadline
        } else {
            socket.close();
            deadline + self.liveness.orphan_linger
        };
        self.orphans.push(Orphan { handle, deadline });
    }

    /// A TCP socket with the appliance's buffers.
    fn add_tcp_socket(&mut self) -> SocketHandle {
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
            tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        );
        // Writers hand over whole messages (SSH packets, HTTP responses),
        // so holding back small segments would only add latency.
        socket.set_nagle_enabled(false);
        self.sockets.add(socket)
    }

    /// Gives a connection its keep-alive and peer timeout.
    pub(super) fn watch_liveness(&mut self, handle: SocketHandle) {
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        socket.set_keep_alive(Some(self.liveness.keep_alive.into()));
        socket.set_timeout(Some(self.liveness.peer_timeout.into()));
    }

    /// Starts listening on `port` with a full pool of listening sockets.
    pub(super) fn add_listener(&mut self, port: u16) -> io::Result<()> {
        if self.listeners.contains_key(&port) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        let pool = (0..LISTEN_BACKLOG)
            .map(|_| self.add_listening_socket(port))
            .collect();
        self.listeners.insert(port, pool);
        Ok(())
    }

    /// A listening TCP socket for the pool of `port`.
    pub(super) fn add_listening_socket(&mut self, port: u16) -> SocketHandle {
        let handle = self.add_tcp_socket();
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        socket.set_timeout(Some(self.liveness.handshake_timeout.into()));
        // Cannot fail: the socket is new (closed) and the port is non-zero.
        let _ = socket.listen(port);
        handle
    }

    /// The own address to send to `destination` from in table `table`:
    /// the selector's choice if it has one, else one in the same subnet,
    /// else the first of the same family and scope (link-local or not).
    pub(super) fn source_for(&self, table: VrfId, destination: IpAddr) -> io::Result<IpAddr> {
        let addresses: Vec<&IpNet> = match table {
            GLOBAL_TABLE => self.addresses.iter().collect(),
            _ => self.tables.addresses(table).collect(),
        };
        let selected = self
            .source_selector
            .as_ref()
            .and_then(|f| f(table, destination));
        if let Some(source) = selected {
            if addresses.iter().any(|net| net.addr() == source) {
                return Ok(source);
            }
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{source} is not an address of the appliance"),
            ));
        }
        let link_local = |ip: IpAddr| matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
        let same_kind = |net: &&&IpNet| {
            net.addr().is_ipv4() == destination.is_ipv4()
                && link_local(net.addr()) == link_local(destination)
        };
        (addresses.iter())
            .find(|net| net.contains(&destination))
            .or(addresses.iter().find(same_kind))
            .map(|net| net.addr())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrNotAvailable,
                    format!("the appliance has no address to reach {destination} from"),
                )
            })
    }

    /// The source a tool's socket of `scope` sends to `destination` from.
    pub(super) fn source_in(&self, scope: &Scope, destination: IpAddr) -> io::Result<IpAddr> {
        let table = self.tables.table(scope.vrf.as_deref())?;
        match &scope.source {
            Some(source) => self.tables.source(source, table, destination),
            None => self.source_for(table, destination),
        }
    }

    /// Gives the packets of `flow` the table and DF handling of `scope`.
    pub(super) fn add_flow(&mut self, flow: FlowKey, scope: Scope) -> io::Result<()> {
        self.tables.table(scope.vrf.as_deref())?;
        self.scopes.insert(flow, scope);
        self.refresh_flows();
        Ok(())
    }

    pub(super) fn remove_flow(&mut self, flow: FlowKey) {
        if self.scopes.remove(&flow).is_some() {
            self.refresh_flows();
        }
    }

    /// Resolves the flows' VRFs again (after a socket came or went, or a
    /// commit changed the tables).
    pub(super) fn refresh_flows(&mut self) {
        let tags = self.scopes.iter().map(|(flow, scope)| {
            let tag = FlowTag {
                vrf: self.tables.table(scope.vrf.as_deref()).ok(),
                dont_fragment: scope.dont_fragment,
            };
            (*flow, tag)
        });
        self.device.flows.set(tags.collect());
    }

    /// Whether a router refused echo `seq` of `ident` for its size.
    pub(super) fn take_too_big(&mut self, ident: u16, seq: u16) -> bool {
        self.device.flows.take_too_big(ident, seq)
    }

    /// Hands queued output to the link now (so an ICMP message leaves
    /// with the source `use_icmp_source` just chose).
    pub(super) fn flush(&mut self) {
        let now = self.now();
        self.iface
            .poll_egress(now, &mut self.device, &mut self.sockets);
    }

    /// `address` if it is one of the appliance's own.
    pub(super) fn own_address(&self, address: IpAddr) -> io::Result<IpAddr> {
        if self.addresses.iter().any(|net| net.addr() == address) {
            Ok(address)
        } else {
            Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{address} is not an address of the appliance"),
            ))
        }
    }

    fn tcp_port_in_use(&self, port: u16) -> bool {
        self.listeners.contains_key(&port)
            || self.sockets.iter().any(|(_, socket)| match socket {
                Socket::Tcp(tcp) => tcp.local_endpoint().is_some_and(|ep| ep.port == port),
                _ => false,
            })
    }

    /// A free ephemeral port for TCP (`tcp`) or UDP.
    pub(super) fn ephemeral_port(&mut self, tcp: bool) -> io::Result<u16> {
        for _ in EPHEMERAL_PORTS {
            let port = self.next_ephemeral;
            self.next_ephemeral = if port == *EPHEMERAL_PORTS.end() {
                *EPHEMERAL_PORTS.start()
            } else {
                port + 1
            };
            let in_use = if tcp {
                self.tcp_port_in_use(port)
            } else {
                self.udp_ports.contains(&port)
            };
            if !in_use {
                return Ok(port);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free ephemeral port",
        ))
    }

    /// A TCP socket connecting from `local` to `remote`.
    pub(super) fn add_connecting_socket(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<SocketHandle> {
        let handle = self.add_tcp_socket();
        self.watch_liveness(handle);
        let socket = self.sockets.get_mut::<tcp::Socket>(handle);
        if let Err(e) = socket.connect(self.iface.context(), endpoint(remote), endpoint(local)) {
            self.sockets.remove(handle);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, e.to_string()));
        }
        Ok(handle)
    }

    pub(super) fn add_udp_socket(&mut self, port: u16) -> io::Result<SocketHandle> {
        if !self.udp_ports.insert(port) {
            return Err(io::ErrorKind::AddrInUse.into());
        }
        let buffer = || {
            udp::PacketBuffer::new(
                vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
                vec![0; UDP_BUFFER],
            )
        };
        let mut socket = udp::Socket::new(buffer(), buffer());
        // Cannot fail: the socket is new and the port is non-zero.
        let _ = socket.bind(port);
        Ok(self.sockets.add(socket))
    }

    /// An ICMP socket receiving what `endpoint` names.
    pub(super) fn add_icmp_socket(&mut self, endpoint: icmp::Endpoint) -> io::Result<SocketHandle> {
        let buffer = || {
            icmp::PacketBuffer::new(
                vec![icmp::PacketMetadata::EMPTY; ICMP_PACKETS],
                vec![0; ICMP_BUFFER],
            )
        };
        let mut socket = icmp::Socket::new(buffer(), buffer());
        socket
            .bind(endpoint)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.sockets.add(socket))
    }

    /// smoltcp takes an ICMP socket's source from its interface's
    /// addresses, which the stack otherwise leaves empty (TCP and UDP name
    /// theirs): it is given the one source of `target`'s family that
    /// `scope` chooses, until the next ICMP message of that family.
    pub(super) fn use_icmp_source(&mut self, scope: &Scope, target: IpAddr) -> io::Result<()> {
        let source = IpAddress::from(self.source_in(scope, target)?);
        let host = IpCidr::new(source, if target.is_ipv4() { 32 } else { 128 });
        self.iface.update_ip_addrs(|addrs| {
            addrs.retain(|a| a.address().version() != source.version());
            // Room for one address of each family (smoltcp's default two).
            let _ = addrs.push(host);
        });
        Ok(())
    }

    /// Frees a UDP socket once the datagrams it queued are handed to the
    /// link (unless the link is full), as a kernel socket would.
    pub(super) fn remove_udp_socket(&mut self, handle: SocketHandle, port: u16) {
        if self.sockets.get::<udp::Socket>(handle).send_queue() > 0 {
            self.flush();
        }
        self.sockets.remove(handle);
        self.udp_ports.remove(&port);
        self.remove_flow(FlowKey::Udp(port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        Engine::new(Arc::new(Link::new().unwrap()))
    }

    #[test]
    fn source_is_in_the_destination_subnet_or_the_first_address() {
        let mut engine = engine();
        let no_address = engine
            .source_for(GLOBAL_TABLE, [192, 0, 2, 9].into())
            .unwrap_err();
        assert_eq!(no_address.kind(), io::ErrorKind::AddrNotAvailable);
        engine.addresses = [
            "10.0.0.1/24",
            "192.0.2.1/28",
            "fe80::1/64",
            "2001:db8::1/64",
        ]
        .map(|net| net.parse().unwrap())
        .to_vec();
        let source = |engine: &Engine, dst: &str| {
            engine
                .source_for(GLOBAL_TABLE, dst.parse().unwrap())
                .unwrap()
                .to_string()
        };
        assert_eq!(source(&engine, "192.0.2.9"), "192.0.2.1");
        assert_eq!(source(&engine, "10.0.0.200"), "10.0.0.1");
        assert_eq!(source(&engine, "8.8.8.8"), "10.0.0.1");
        assert_eq!(source(&engine, "2001:db8::9"), "2001:db8::1");
        assert_eq!(
            source(&engine, "2001:db8:1::9"),
            "2001:db8::1",
            "not link-local"
        );
        assert_eq!(source(&engine, "fe80::9"), "fe80::1");
        engine.source_selector = Some(Arc::new(|_, dst: IpAddr| {
            (dst == IpAddr::from([8, 8, 8, 8])).then_some([192, 0, 2, 1].into())
        }));
        assert_eq!(source(&engine, "8.8.8.8"), "192.0.2.1");
        assert_eq!(source(&engine, "9.9.9.9"), "10.0.0.1");
        engine.source_selector = Some(Arc::new(|_, _| Some([198, 51, 100, 7].into())));
        let foreign = engine
            .source_for(GLOBAL_TABLE, [8, 8, 8, 8].into())
            .unwrap_err();
        assert_eq!(foreign.kind(), io::ErrorKind::AddrNotAvailable);
        engine.addresses.truncate(1);
        let no_ipv6 = engine
            .source_for(GLOBAL_TABLE, "2001:db8::9".parse().unwrap())
            .unwrap_err();
        assert_eq!(no_ipv6.kind(), io::ErrorKind::AddrNotAvailable);
    }

    #[test]
    fn a_scope_sends_from_its_vrfs_addresses_only() {
        use super::super::scope::{OwnInterface, Source};
        let mut engine = engine();
        engine.addresses = vec!["10.0.0.1/24".parse().unwrap()];
        engine.tables = OwnTables {
            vrfs: vec![("A".into(), 1)],
            interfaces: vec![
                OwnInterface {
                    name: "eth0".into(),
                    table: GLOBAL_TABLE,
                    addresses: engine.addresses.clone(),
                },
                OwnInterface {
                    name: "eth1".into(),
                    table: 1,
                    addresses: vec!["10.9.0.1/24".parse().unwrap()],
                },
            ],
        };
        let in_a = |source| Scope {
            vrf: Some("A".into()),
            source,
            dont_fragment: false,
        };
        let dst: IpAddr = [10, 9, 0, 2].into();
        let source = |scope: &Scope| engine.source_in(scope, dst).map(|a| a.to_string());
        assert_eq!(source(&in_a(None)).unwrap(), "10.9.0.1");
        let eth1 = Some(Source::Interface("eth1".into()));
        assert_eq!(source(&in_a(eth1.clone())).unwrap(), "10.9.0.1");
        let global = Some(Source::Address([10, 0, 0, 1].into()));
        assert!(source(&in_a(global.clone())).is_err(), "not in VRF A");
        let plain = |source| Scope {
            vrf: None,
            ..in_a(source)
        };
        assert_eq!(source(&plain(global)).unwrap(), "10.0.0.1");
        assert!(source(&plain(eth1)).is_err(), "eth1 is in VRF A");
        let unknown = Scope {
            vrf: Some("B".into()),
            ..Scope::default()
        };
        assert_eq!(
            source(&unknown).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn ephemeral_ports_skip_ports_in_use() {
        let mut engine = engine();
        let first = engine.ephemeral_port(false).unwrap();
        assert!(EPHEMERAL_PORTS.contains(&first));
        engine.add_udp_socket(first).unwrap();
        // Wind the counter back to the port just taken: it must be skipped.
        engine.next_ephemeral = first;
        assert_ne!(engine.ephemeral_port(false).unwrap(), first);
        engine.add_listener(first).unwrap();
        engine.next_ephemeral = first;
        assert_ne!(engine.ephemeral_port(true).unwrap(), first);
        assert_eq!(
            engine.add_listener(first).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
    }
}
