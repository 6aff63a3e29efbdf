//! Fixtures for the packet I/O backends: a Linux host in a network
//! namespace wired to the port's interface, plus raw sockets to speak
//! through that host.

use super::netns::{run, unique, Netns};
use kernel_bypass::io::{
    open_port, AfPacketConfig, AfPacketPort, AfXdpConfig, AfXdpPort, Backend, PacketPort,
    TpacketVersion,
};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// The peer host's address; the port answers for `PORT_IP`.
pub const PEER_IP: [u8; 4] = [10, 99, 0, 1];
pub const PORT_IP: [u8; 4] = [10, 99, 0, 2];
/// A locally administered MAC the tests use for the port.
pub const PORT_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
/// IEEE "local experimental" ethertype for test frames.
pub const TEST_ETHERTYPE: u16 = 0x88b5;

/// The peer host's namespace; on drop the namespace goes (with its
/// interfaces), and the port-side link too if it survives.
pub struct Peer {
    pub ns: Netns,
    /// The peer host's interface inside `ns`.
    pub host_if: String,
    /// The interface the port is opened on (in the test's namespace).
    pub port_if: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = super::netns::output(&["ip", "link", "del", &self.port_if]);
    }
}

impl Peer {
    fn new(prefix: &str, host_if: String, port_if: String) -> Peer {
        let peer = Peer {
            ns: Netns::named(prefix.to_owned()),
            host_if,
            port_if,
        };
        peer.ns
            .run(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        peer.ns
            .run(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        peer
    }

    /// Puts the host interface into the namespace with `PEER_IP`/24 and
    /// brings it up.
    fn configure_host(&self) {
        run(&["ip", "link", "set", &self.host_if, "netns", &self.ns.name]);
        let addr = format!("{}/24", ip_string(PEER_IP));
        self.ns
            .run(&["ip", "addr", "add", &addr, "dev", &self.host_if]);
        self.ns.run(&["ip", "link", "set", &self.host_if, "up"]);
    }

    /// Waits (bounded) until the kernel reports the host's link
    /// operationally up: before that its replies go to a qdisc that drops.
    pub fn wait_host_link_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let shown = self.ns.run(&["ip", "link", "show", "dev", &self.host_if]);
            // A tap has no operational state of its own: UNKNOWN with carrier.
            if shown.contains("LOWER_UP")
                && (shown.contains("state UP") || shown.contains("state UNKNOWN"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} in {} never came up", self.host_if, self.ns.name);
    }

    /// Sets the port-side interface "up" or "down" (for a tap it lives in
    /// the namespace); returns once the peer sees an "up" link.
    pub fn set_port_link(&self, backend: Backend, state: &str) {
        let args = ["ip", "link", "set", &self.port_if, state];
        match backend {
            Backend::Tap => self.ns.run(&args),
            _ => run(&args),
        };
        if state == "up" {
            self.wait_host_link_up();
        }
    }

    /// A raw AF_PACKET socket on the peer's interface, created inside the
    /// namespace.
    pub fn raw_socket(&self) -> OwnedFd {
        let host_if = self.host_if.clone();
        self.ns
            .in_thread(move || raw_socket_on(&host_if).expect("peer raw socket"))
    }
}

fn raw_socket_on(ifname: &str) -> io::Result<OwnedFd> {
    let cname = std::ffi::CString::new(ifname).expect("name");
    // SAFETY: plain libc calls on values we own.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK,
            (libc::ETH_P_ALL as u16).to_be() as i32,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let size: libc::c_int = 16 << 20;
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            4,
        );
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = libc::if_nametoindex(cname.as_ptr()) as i32;
        if libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        ) < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

/// Sends one frame on a raw socket; false if the socket buffer is full.
pub fn raw_send(fd: &OwnedFd, frame: &[u8]) -> bool {
    // SAFETY: frame is a readable buffer of frame.len() bytes.
    unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) >= 0 }
}

/// Receives one frame on a non-blocking raw socket, if one is waiting.
pub fn raw_recv<'a>(fd: &OwnedFd, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    // SAFETY: buf is a writable buffer of buf.len() bytes.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).ok().map(|n| &buf[..n])
}

pub fn ip_string(ip: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])
}

/// How a port is opened: as `open_port` makes it for a backend, or with
/// non-default settings.
#[derive(Clone, Copy)]
pub enum PortKind {
    Default(Backend),
    AfPacket(AfPacketConfig),
    AfXdp(AfXdpConfig),
}

impl PortKind {
    /// AF_PACKET with per-frame (TPACKET_V2) rings instead of the default
    /// block-based ones.
    pub fn af_packet_v2() -> PortKind {
        PortKind::AfPacket(AfPacketConfig {
            version: TpacketVersion::V2,
            ..AfPacketConfig::default()
        })
    }

    pub fn backend(self) -> Backend {
        match self {
            PortKind::Default(backend) => backend,
            PortKind::AfPacket(_) => Backend::AfPacket,
            PortKind::AfXdp(_) => Backend::AfXdp,
        }
    }

    pub fn open(self, ifname: &str) -> io::Result<Box<dyn PacketPort>> {
        match self {
            PortKind::Default(backend) => open_port(backend, ifname),
            PortKind::AfPacket(config) => Ok(Box::new(AfPacketPort::open(ifname, config)?)),
            PortKind::AfXdp(config) => Ok(Box::new(AfXdpPort::open(ifname, config)?)),
        }
    }
}

/// A Linux peer wired to a freshly opened port of `backend`.
///
/// veth backends: a veth pair, one end in the test's namespace for the port,
/// the other in the peer's namespace. TAP: the port creates the tap, which
/// then moves into the peer's namespace (its fd keeps working).
pub fn peer_and_port(backend: Backend) -> (Peer, Box<dyn PacketPort>) {
    peer_and_port_of(PortKind::Default(backend))
}

/// Like `peer_and_port`, with the port opened as `kind` says.
pub fn peer_and_port_of(kind: PortKind) -> (Peer, Box<dyn PacketPort>) {
    peer_and_port_with(kind.backend(), 1, |ifname| kind.open(ifname))
}

/// Like `peer_and_port`, with `queues` rx and tx queues on each veth end and
/// the port opened by `open` (for non-default settings).
pub fn peer_and_port_with(
    backend: Backend,
    queues: u32,
    open: impl FnOnce(&str) -> io::Result<Box<dyn PacketPort>>,
) -> (Peer, Box<dyn PacketPort>) {
    let prefix = unique("");
    let peer = match backend {
        Backend::Tap => Peer::new(&prefix, format!("{prefix}t"), format!("{prefix}t")),
        Backend::AfPacket | Backend::AfXdp => {
            let peer = Peer::new(&prefix, format!("{prefix}h"), format!("{prefix}p"));
            let (port_if, host_if) = (&peer.port_if, &peer.host_if);
            let q = queues.to_string();
            let queue_args = ["numrxqueues", &q, "numtxqueues", &q];
            let mut add = vec!["ip", "link", "add", port_if];
            add.extend(queue_args);
            add.extend(["type", "veth", "peer", "name", host_if]);
            add.extend(queue_args);
            run(&add);
            // The test's own kernel stays quiet on the port's interface.
            run(&["ip", "link", "set", port_if, "addrgenmode", "none"]);
            peer
        }
    };
    // A tap exists only once its port created it, and then moves to the peer.
    let port = if backend == Backend::Tap {
        let port = open(&peer.port_if).expect("open port");
        peer.configure_host();
        port
    } else {
        peer.configure_host();
        open(&peer.port_if).expect("open port")
    };
    peer.wait_host_link_up();
    (peer, port)
}

/// Waits up to `timeout` for the port's descriptor to poll readable.
pub fn wait_readable(port: &dyn PacketPort, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd: port.poll_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
}
