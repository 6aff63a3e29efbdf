//! The same behaviour checks for every packet I/O backend, each against a
//! Linux host in its own network namespace.

mod support;

use kernel_bypass::frame::Batch;
use kernel_bypass::io::offload::VnetHdr;
use kernel_bypass::io::{
    open_port, AfPacketConfig, AfXdpConfig, AfXdpPort, Backend, CopyMode, PacketPort,
    TpacketVersion,
};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::frames::{
    answer, arp_request, is_arp_reply_from, numbered, sequence, tcp_segment, udp_checksum_ok,
    with_vlan,
};
use support::netns::{is_root, run};
use support::ports::{
    ip_string, peer_and_port, peer_and_port_of, peer_and_port_with, raw_recv, raw_send,
    wait_readable, Peer, PortKind, PEER_IP, PORT_IP,
};

/// Upper bound for any single exchange, so a broken backend fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(5);
/// How long an idle receive loop sleeps in poll before looking again.
const IDLE: Duration = Duration::from_millis(10);

/// Receives until `seen` returns true for a frame or `patience` runs out.
fn recv_until(
    port: &mut dyn PacketPort,
    patience: Duration,
    mut seen: impl FnMut(&[u8]) -> bool,
) -> bool {
    let mut batch = Batch::new(64);
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        batch.clear();
        port.recv(&mut batch).expect("recv");
        if batch.frames().iter().any(|f| seen(f.data())) {
            return true;
        }
        wait_readable(port, IDLE);
    }
    false
}

/// One behaviour check on a port wired to a peer host.
type Check = fn(Backend, Peer, Box<dyn PacketPort>);

/// Runs `check` on a fresh default port of `backend` (skipped unless root).
fn on_fresh_port(backend: Backend, check: Check) {
    if !is_root() {
        return;
    }
    let (peer, port) = peer_and_port(backend);
    check(backend, peer, port);
}

/// The peer pings the port's address; the test answers ARP and ICMP echo
/// through the port, so the ping only succeeds if both directions work.
fn ping_from_peer_is_answered(backend: Backend, peer: Peer, mut port: Box<dyn PacketPort>) {
    let mut ping = peer
        .ns
        .command("ping")
        .args(["-c", "2", "-i", "0.2", "-W", "3", &ip_string(PORT_IP)])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn ping");
    let mut batch = Batch::new(64);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = ping.try_wait().expect("wait ping") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = ping.kill();
            break None;
        }
        batch.clear();
        port.recv(&mut batch).expect("recv");
        let replies: Vec<Vec<u8>> = batch
            .frames()
            .iter()
            .filter_map(|f| answer(f.data()))
            .collect();
        let sent = port
            .send(&mut replies.iter().map(Vec::as_slice))
            .expect("send");
        assert_eq!(sent, replies.len(), "replies not accepted");
        wait_readable(port.as_ref(), IDLE);
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "ping through {backend} failed: {status:?}"
    );
}

/// The port asks for the peer's MAC; the peer's kernel answers.
fn arp_request_is_answered_by_peer(backend: Backend, _peer: Peer, mut port: Box<dyn PacketPort>) {
    let request = arp_request(PEER_IP);
    assert_eq!(
        port.send(&mut std::iter::once(&request[..])).expect("send"),
        1
    );
    assert!(
        recv_until(port.as_mut(), PATIENCE, |f| is_arp_reply_from(f, PEER_IP)),
        "no ARP reply from the peer via {backend}"
    );
}

/// Opening a port turns receive coalescing off, so frames stay wire-sized.
fn receive_coalescing_is_off(backend: Backend) {
    if !is_root() {
        return;
    }
    // veth starts with GRO off: switch it on so the port has work to do.
    let (peer, _port) = peer_and_port_with(backend, 1, |ifname| {
        run(&["ethtool", "-K", ifname, "gro", "on"]);
        open_port(backend, ifname)
    });
    let features = run(&["ethtool", "-k", &peer.port_if]);
    for feature in ["generic-receive-offload", "large-receive-offload"] {
        let line = features
            .lines()
            .find(|l| l.starts_with(&format!("{feature}:")));
        assert!(
            line.is_some_and(|l| l.contains(": off")),
            "{backend}: {feature} not off: {line:?}"
        );
    }
}

/// The poll descriptor wakes an idle worker when a frame arrives, and the
/// frame is then there to receive.
fn poll_fd_wakes_on_arrival(backend: Backend, peer: Peer, mut port: Box<dyn PacketPort>) {
    let peer_sock = peer.raw_socket();
    let mut batch = Batch::new(64);
    while port.recv(&mut batch).expect("drain") > 0 {
        batch.clear();
    }
    assert!(raw_send(&peer_sock, &numbered(1)), "peer send");
    let mut pfd = libc::pollfd {
        fd: port.poll_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, PATIENCE.as_millis() as i32) };
    assert_eq!(ready, 1, "{backend}: poll did not wake");
    batch.clear();
    port.recv(&mut batch).expect("recv");
    assert!(
        batch.frames().iter().any(|f| sequence(f.data()) == Some(1)),
        "{backend}: woken but the frame is not there"
    );
}

/// An 802.1Q-tagged frame from the peer arrives with its tag in the frame
/// (the kernel moves tags out of the data before packet sockets see them).
fn vlan_tag_arrives(backend: Backend, peer: Peer, mut port: Box<dyn PacketPort>) {
    let peer_sock = peer.raw_socket();
    let tagged = with_vlan(&numbered(7), 7);
    assert!(raw_send(&peer_sock, &tagged), "peer send");
    assert!(
        recv_until(port.as_mut(), PATIENCE, |f| f == &tagged[..]),
        "tagged frame not received intact via {backend}"
    );
}

/// A UDP datagram from the peer's stack, whose veth leaves the checksum to
/// "hardware", arrives with a checksum that verifies.
fn udp_checksum_arrives_valid(backend: Backend, peer: Peer, mut port: Box<dyn PacketPort>) {
    let port_ip = ip_string(PORT_IP);
    let lladdr = "02:00:00:00:00:02";
    peer.ns.run(&[
        "ip",
        "neigh",
        "replace",
        &port_ip,
        "lladdr",
        lladdr,
        "dev",
        &peer.host_if,
    ]);
    let send = format!("echo checksum-me > /dev/udp/{port_ip}/9999");
    let mut verdict = None;
    let deadline = Instant::now() + PATIENCE;
    while verdict.is_none() && Instant::now() < deadline {
        peer.ns.run(&["bash", "-c", &send]);
        recv_until(port.as_mut(), Duration::from_millis(200), |f| {
            verdict = udp_checksum_ok(f);
            verdict.is_some()
        });
    }
    assert_eq!(verdict, Some(true), "UDP checksum via {backend}");
}

const BATCH_FRAMES: u32 = 1024;
const CHUNK: u32 = 64;

/// An AF_XDP port whose rings hold only 64 frames.
fn small_xdp_rings() -> PortKind {
    PortKind::AfXdp(AfXdpConfig {
        ring_size: 64,
        ..AfXdpConfig::default()
    })
}

/// Ports with small rings wrap around them many times in the batch exchange.
#[test]
fn small_rings_wrap_without_loss() {
    if !is_root() {
        return;
    }
    let small_packet_rings = AfPacketConfig {
        rx_block_size: 4096,
        rx_blocks: 4,
        tx_slots: 64,
        ..AfPacketConfig::default()
    };
    // 128 one-frame slots.
    let small_frame_rings = AfPacketConfig {
        version: TpacketVersion::V2,
        rx_block_size: 1 << 16,
        rx_blocks: 4,
        tx_slots: 64,
        ..AfPacketConfig::default()
    };
    for kind in [
        PortKind::AfPacket(small_packet_rings),
        PortKind::AfPacket(small_frame_rings),
        small_xdp_rings(),
    ] {
        let (peer, port) = peer_and_port_of(kind);
        exchange_numbered_frames(kind.backend(), peer, port);
    }
}

/// AF_PACKET with per-frame (TPACKET_V2) rings passes the exchanges the
/// block-based default does.
#[test]
fn af_packet_v2_rings_pass_the_same_exchanges() {
    if !is_root() {
        return;
    }
    let checks: [Check; 3] = [
        exchange_numbered_frames,
        vlan_tag_arrives,
        udp_checksum_arrives_valid,
    ];
    for check in checks {
        let (peer, port) = peer_and_port_of(PortKind::af_packet_v2());
        check(Backend::AfPacket, peer, port);
    }
}

/// A port that does not read while the peer sends more than its ring
/// holds: every frame is either received later or counted as dropped.
#[test]
fn full_rings_count_their_drops() {
    if !is_root() {
        return;
    }
    // Fewer than veth's own 256-frame queue, so only the port's ring drops.
    const SENT: u32 = 200;
    let small_packet_rings = AfPacketConfig {
        rx_block_size: 4096,
        rx_blocks: 2,
        ..AfPacketConfig::default()
    };
    for kind in [PortKind::AfPacket(small_packet_rings), small_xdp_rings()] {
        let backend = kind.backend();
        let (peer, mut port) = peer_and_port_of(kind);
        let peer_sock = peer.raw_socket();
        for seq in 0..SENT {
            assert!(raw_send(&peer_sock, &numbered(seq)), "peer send");
        }
        let mut received = 0;
        recv_until(port.as_mut(), Duration::from_millis(500), |f| {
            received += u32::from(sequence(f).is_some());
            false
        });
        let dropped = port.rx_ring_drops();
        assert!(
            dropped > 0,
            "{backend}: nothing dropped, received {received}"
        );
        assert_eq!(
            u64::from(received) + dropped,
            u64::from(SENT),
            "{backend}: received {received}"
        );
    }
}

/// Many numbered frames each way, paced in chunks so no queue overflows:
/// every frame arrives exactly once.
fn exchange_numbered_frames(backend: Backend, peer: Peer, mut port: Box<dyn PacketPort>) {
    let peer_sock = peer.raw_socket();

    // Port -> peer.
    let mut seen = vec![false; BATCH_FRAMES as usize];
    let mut buf = [0u8; 2048];
    for start in (0..BATCH_FRAMES).step_by(CHUNK as usize) {
        let frames: Vec<[u8; 64]> = (start..start + CHUNK).map(numbered).collect();
        let mut pending = frames.iter().map(|f| &f[..]).peekable();
        let deadline = Instant::now() + PATIENCE;
        while pending.peek().is_some() && Instant::now() < deadline {
            port.send(&mut pending).expect("send");
        }
        let deadline = Instant::now() + PATIENCE;
        while !seen[start as usize..(start + CHUNK) as usize]
            .iter()
            .all(|s| *s)
            && Instant::now() < deadline
        {
            match raw_recv(&peer_sock, &mut buf) {
                Some(frame) => {
                    if let Some(seq) = sequence(frame) {
                        assert!(
                            !std::mem::replace(&mut seen[seq as usize], true),
                            "frame {seq} twice"
                        );
                    }
                }
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{backend}: frames sent by the port lost");

    // Peer -> port.
    let mut seen = vec![false; BATCH_FRAMES as usize];
    let mut batch = Batch::new(64);
    let mut largest_batch = 0;
    for start in (0..BATCH_FRAMES).step_by(CHUNK as usize) {
        for seq in start..start + CHUNK {
            assert!(raw_send(&peer_sock, &numbered(seq)), "peer send");
        }
        let deadline = Instant::now() + PATIENCE;
        while !seen[start as usize..(start + CHUNK) as usize]
            .iter()
            .all(|s| *s)
            && Instant::now() < deadline
        {
            batch.clear();
            largest_batch = largest_batch.max(port.recv(&mut batch).expect("recv"));
            for seq in batch.frames().iter().filter_map(|f| sequence(f.data())) {
                assert!(
                    !std::mem::replace(&mut seen[seq as usize], true),
                    "frame {seq} twice"
                );
            }
            wait_readable(port.as_ref(), IDLE);
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    assert_eq!(missing, 0, "{backend}: frames sent by the peer lost");
    eprintln!("{backend}: largest receive batch {largest_batch}");
}

/// A port whose interface goes down, comes back, then disappears keeps
/// returning (values or errors) without panicking or blocking, and works
/// again once its link is back.
fn survives_link_down_and_removal(backend: Backend, peer: Peer, mut port: Box<dyn PacketPort>) {
    let mut batch = Batch::new(64);
    let request = arp_request(PEER_IP);
    let mut exercise = |port: &mut dyn PacketPort| {
        for _ in 0..20 {
            batch.clear();
            let _ = port.recv(&mut batch);
            let _ = port.send(&mut std::iter::repeat_n(&request[..], 8));
        }
    };
    peer.set_port_link(backend, "down");
    exercise(port.as_mut());
    // A flapping link must not leave a dead port behind.
    peer.set_port_link(backend, "up");
    let answered = (0..10).any(|_| {
        port.send(&mut std::iter::once(&request[..])).expect("send");
        recv_until(port.as_mut(), Duration::from_millis(500), |f| {
            is_arp_reply_from(f, PEER_IP)
        })
    });
    assert!(answered, "{backend}: port dead after the link came back");
    drop(peer);
    exercise(port.as_mut());
}

/// Tests that run a check on a fresh default port of `$backend`.
macro_rules! port_tests {
    ($backend:ident: $($test:ident => $check:ident),* $(,)?) => {$(
        #[test]
        fn $test() {
            crate::on_fresh_port(kernel_bypass::io::Backend::$backend, crate::$check);
        }
    )*};
}

/// The checks every backend passes, in a module per backend.
macro_rules! backend_tests {
    ($($module:ident: $backend:ident),* $(,)?) => {$(
        mod $module {
            port_tests! { $backend:
                ping_from_peer_is_answered => ping_from_peer_is_answered,
                arp_request_is_answered_by_peer => arp_request_is_answered_by_peer,
                batches_arrive_complete => exchange_numbered_frames,
                vlan_tags_arrive_in_frames => vlan_tag_arrives,
                poll_fd_wakes_on_arrival => poll_fd_wakes_on_arrival,
                survives_link_down_and_removal => survives_link_down_and_removal,
            }
        }
    )*};
}

backend_tests!(af_packet: AfPacket, af_xdp: AfXdp, tap: Tap);

#[test]
fn af_packet_turns_receive_coalescing_off() {
    receive_coalescing_is_off(Backend::AfPacket);
}

#[test]
fn af_xdp_turns_receive_coalescing_off() {
    receive_coalescing_is_off(Backend::AfXdp);
}

// AF_PACKET and TAP are told a checksum is partial; AF_XDP is not, and
// recognises it by its value.
port_tests! { AfPacket: af_packet_udp_from_peer_stack_has_valid_checksum => udp_checksum_arrives_valid }
port_tests! { AfXdp: af_xdp_udp_from_peer_stack_has_valid_checksum => udp_checksum_arrives_valid }
port_tests! { Tap: tap_udp_from_peer_stack_has_valid_checksum => udp_checksum_arrives_valid }

/// Payload bytes and MSS of the super-packet the peer sends.
const SUPER_PAYLOAD: usize = 5000;
const SUPER_MSS: u16 = 1000;

/// A packet socket on the peer's interface that sends frames behind a
/// virtio-net header, as a VM's virtio NIC hands its host super-packets.
fn peer_gso_socket(peer: &Peer) -> OwnedFd {
    let host_if = peer.host_if.clone();
    peer.ns.in_thread(move || {
        let cname = std::ffi::CString::new(host_if).expect("name");
        // SAFETY: plain socket creation.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let on: libc::c_int = 1;
        // SAFETY: on is a readable c_int; PACKET_VNET_HDR (15) takes one.
        let set = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                15,
                (&on as *const libc::c_int).cast(),
                4,
            )
        };
        assert_eq!(
            set,
            0,
            "PACKET_VNET_HDR: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: sockaddr_ll is plain old data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        // SAFETY: cname is a valid C string.
        addr.sll_ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
        // SAFETY: addr is a valid sockaddr_ll of the stated length.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        fd
    })
}

/// A TCP/IPv4 super-packet from the peer to the port with its virtio-net
/// header (GSO TCPv4, partial checksum), as Linux's TSO path builds it.
fn tcp_super_packet() -> Vec<u8> {
    let payload: Vec<u8> = (0..SUPER_PAYLOAD).map(|i| (i % 251) as u8).collect();
    let mut tcp = vec![0u8; 20];
    tcp[..4].copy_from_slice(&[0x9c, 0x40, 0x13, 0x89]);
    tcp[4..8].copy_from_slice(&1u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
                    // The partial checksum: the folded pseudo-header sum.
    let mut sum: u32 = 6 + (20 + SUPER_PAYLOAD) as u32;
    for pair in [PEER_IP, PORT_IP].concat().chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    tcp[16..18].copy_from_slice(&(sum as u16).to_be_bytes());
    tcp.extend_from_slice(&payload);
    let ip = support::packets::ipv4(PEER_IP.into(), PORT_IP.into(), 6, 64, &tcp);
    let frame =
        support::packets::ethernet([0x02, 0, 0, 0, 0, 2], [0x02, 0, 0, 0, 0, 1], 0x0800, &ip);
    let hdr = VnetHdr {
        flags: 1,
        gso_type: 1,
        hdr_len: 54,
        gso_size: SUPER_MSS,
        csum_start: 34,
        csum_offset: 16,
    };
    [&hdr.to_bytes()[..], &frame].concat()
}

/// A TCP super-packet the peer sends arrives as wire-sized segments whose
/// checksums verify and whose payloads add up to the original. AF_PACKET
/// and TAP cut it themselves; on AF_XDP the peer's veth has lost TSO while
/// the program is attached, so the peer's kernel cuts it and the port
/// completes the partial checksums.
fn tcp_super_packet_arrives_segmented(backend: Backend, peer: Peer, mut port: Box<dyn PacketPort>) {
    let sock = peer_gso_socket(&peer);
    let packet = tcp_super_packet();
    let mut received = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while received.len() < SUPER_PAYLOAD && Instant::now() < deadline {
        received.clear();
        assert!(
            raw_send(&sock, &packet),
            "peer send: {}",
            std::io::Error::last_os_error()
        );
        recv_until(port.as_mut(), Duration::from_millis(300), |f| {
            if let Some((ok, payload)) = tcp_segment(f) {
                assert!(ok, "{backend}: a segment's checksums do not verify");
                assert!(
                    f.len() <= 14 + 40 + usize::from(SUPER_MSS),
                    "{backend}: {} bytes",
                    f.len()
                );
                received.extend_from_slice(payload);
            }
            received.len() >= SUPER_PAYLOAD
        });
    }
    let expected: Vec<u8> = (0..SUPER_PAYLOAD).map(|i| (i % 251) as u8).collect();
    assert_eq!(received, expected, "{backend}: payload");
    let counters = port.offload_counters();
    match backend {
        Backend::AfXdp => assert!(counters.checksums_completed >= 5, "{counters:?}"),
        _ => assert!(
            counters.super_packets >= 1 && counters.segments >= 5,
            "{counters:?}"
        ),
    }
    assert_eq!(counters.dropped, 0, "{backend}: {counters:?}");
}

port_tests! { AfPacket: af_packet_cuts_a_tcp_super_packet_into_segments => tcp_super_packet_arrives_segmented }
port_tests! { AfXdp: af_xdp_receives_a_tcp_super_packet_as_segments => tcp_super_packet_arrives_segmented }
port_tests! { Tap: tap_cuts_a_tcp_super_packet_into_segments => tcp_super_packet_arrives_segmented }

/// While the AF_XDP port's program is attached in driver mode, the veth
/// peer cannot use TSO (veth takes it away), so no super-packet can reach
/// the socket; once the port closes the peer has it back.
#[test]
fn af_xdp_takes_tso_from_the_veth_peer_while_open() {
    if !is_root() {
        return;
    }
    let (peer, port) = peer_and_port(Backend::AfXdp);
    let tso = |peer: &Peer| {
        let shown = peer.ns.run(&["ethtool", "-k", &peer.host_if]);
        shown
            .lines()
            .find(|l| l.starts_with("tcp-segmentation-offload:"))
            .unwrap_or_default()
            .to_owned()
    };
    let open = tso(&peer);
    assert!(open.contains(": off"), "{open}");
    drop(port);
    let closed = tso(&peer);
    assert!(closed.contains(": on"), "{closed}");
}

/// The AF_XDP port attaches its program while open and detaches it on drop.
#[test]
fn af_xdp_program_is_attached_only_while_open() {
    if !is_root() {
        return;
    }
    let (peer, port) = peer_and_port(Backend::AfXdp);
    let shown = run(&["ip", "link", "show", "dev", &peer.port_if]);
    assert!(
        shown.contains("prog/xdp id"),
        "no XDP program attached: {shown}"
    );
    drop(port);
    let shown = run(&["ip", "link", "show", "dev", &peer.port_if]);
    assert!(!shown.contains("xdp"), "XDP program left attached: {shown}");
    // The queue is free again for a new port, which works as the first did.
    let mut port = open_port(Backend::AfXdp, &peer.port_if).expect("reopen");
    let request = arp_request(PEER_IP);
    assert_eq!(
        port.send(&mut std::iter::once(&request[..])).expect("send"),
        1
    );
    assert!(recv_until(port.as_mut(), PATIENCE, |f| is_arp_reply_from(
        f, PEER_IP
    )));
}

/// On a NIC with several receive queues the AF_XDP port folds them into
/// the one it serves, so it still sees every frame.
#[test]
fn af_xdp_on_a_multiqueue_nic_sees_all_frames() {
    if !is_root() {
        return;
    }
    let (peer, port) = peer_and_port_with(Backend::AfXdp, 4, |ifname| {
        open_port(Backend::AfXdp, ifname)
    });
    let channels = run(&["ethtool", "-l", &peer.port_if]);
    let current = channels
        .split("Current hardware settings:")
        .nth(1)
        .unwrap_or_default();
    assert!(current.contains("RX:\t\t1"), "{channels}");
    exchange_numbered_frames(Backend::AfXdp, peer, port);
}

/// A port per queue: the interface's ports share its one program, each
/// sends on its own queue and hears the host's answers on the queue the
/// host picks, and the program stays until the last of them closes.
#[test]
fn af_xdp_ports_per_queue_share_one_program() {
    if !is_root() {
        return;
    }
    let mut second = None;
    let (peer, mut first) = peer_and_port_with(Backend::AfXdp, 2, |ifname| {
        let mut opened = AfXdpPort::open_queues(ifname, 2, AfXdpConfig::default())?;
        assert_eq!(opened.nic_queues, 2);
        second = opened.ports.pop();
        Ok(Box::new(opened.ports.remove(0)) as Box<dyn PacketPort>)
    });
    let mut second: Box<dyn PacketPort> = Box::new(second.expect("a port on queue 1"));
    let shown = run(&["ip", "link", "show", "dev", &peer.port_if]);
    assert_eq!(shown.matches("prog/xdp id").count(), 1, "{shown}");
    let request = arp_request(PEER_IP);
    for sender in 0..2 {
        let mut ports = [first.as_mut(), second.as_mut()];
        let sent = ports[sender].send(&mut std::iter::once(&request[..]));
        assert_eq!(sent.expect("send"), 1, "from queue {sender}");
        let deadline = Instant::now() + PATIENCE;
        let answered = loop {
            let heard = ports
                .iter_mut()
                .any(|p| recv_until(*p, IDLE, |f| is_arp_reply_from(f, PEER_IP)));
            if heard || Instant::now() > deadline {
                break heard;
            }
        };
        assert!(answered, "no answer to the request from queue {sender}");
    }
    drop(first);
    let shown = run(&["ip", "link", "show", "dev", &peer.port_if]);
    assert!(shown.contains("prog/xdp id"), "detached too early: {shown}");
    drop(second);
    // The kernel releases the program's link in deferred work.
    support::wait_until("the XDP program detached", || {
        !run(&["ip", "link", "show", "dev", &peer.port_if]).contains("xdp")
    });
}

/// A NIC with fewer queues than ports asked for is refused, saying so.
#[test]
fn af_xdp_ports_per_queue_need_the_queues() {
    if !is_root() {
        return;
    }
    // Only the fixture's one-queue veth wire is needed, not its port.
    let (peer, port) = peer_and_port(Backend::AfPacket);
    drop(port);
    let err = AfXdpPort::open_queues(&peer.port_if, 2, AfXdpConfig::default())
        .err()
        .expect("two ports on one queue");
    assert_eq!(
        err.to_string(),
        "1 rx queue(s), and AF_XDP needs one per worker (2)"
    );
}

/// A second port cannot take an interface an open port serves (its XDP
/// program is attached there), and says why.
#[test]
fn af_xdp_interface_in_use_is_refused_clearly() {
    if !is_root() {
        return;
    }
    let (peer, _port) = peer_and_port(Backend::AfXdp);
    let err = open_port(Backend::AfXdp, &peer.port_if)
        .err()
        .expect("second port on the queue");
    assert_eq!(
        err.to_string(),
        format!(
            "af-xdp on {}: attaching the XDP program: another XDP program is attached",
            peer.port_if
        )
    );
}

/// veth has no zero-copy AF_XDP: asking for it fails with a reason.
#[test]
fn af_xdp_zero_copy_on_veth_is_refused_clearly() {
    if !is_root() {
        return;
    }
    // Only the fixture's veth wire is needed, not its port.
    let (peer, port) = peer_and_port(Backend::AfPacket);
    drop(port);
    let config = AfXdpConfig {
        copy: CopyMode::ZeroCopy,
        ..AfXdpConfig::default()
    };
    let err = AfXdpPort::open(&peer.port_if, config)
        .err()
        .expect("zero-copy on veth");
    assert!(
        err.to_string()
            .ends_with("the driver does not support zero-copy"),
        "{err}"
    );
}

/// Segments of one flow handed to `send` together leave as one super-packet
/// (AF_XDP through a packet socket beside it), which the peer
/// receives whole: the headers of the first segment with the lengths of
/// the whole, and every payload byte in order.
fn segments_leave_as_one_super_packet(backend: Backend, peer: Peer, mut port: Box<dyn PacketPort>) {
    let sock = peer.raw_socket();
    let packet = tcp_super_packet();
    let hdr = VnetHdr::parse(&packet).expect("header");
    let mut batch = Batch::new(64);
    let mut counters = kernel_bypass::io::OffloadCounters::default();
    kernel_bypass::io::offload::deliver(&hdr, &packet[10..], None, &mut batch, &mut counters);
    assert_eq!(batch.len(), 5);
    let mut frames = batch.frames().iter().map(|f| f.data());
    assert_eq!(port.send(&mut frames).expect("send"), 5);
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(frame) = raw_recv(&sock, &mut buf) else {
            std::thread::sleep(IDLE);
            continue;
        };
        if frame.get(23) == Some(&6) {
            seen.push(frame.len());
            if frame.len() == packet.len() - 10 {
                assert_eq!(&frame[..14], &packet[10..24], "{backend}: Ethernet");
                assert_eq!(&frame[14..34], &packet[24..44], "{backend}: IPv4 header");
                assert_eq!(&frame[54..], &packet[64..], "{backend}: payload");
                return;
            }
        }
    }
    panic!("{backend}: no super-packet at the peer, TCP frames of {seen:?} bytes");
}

port_tests! { AfPacket: af_packet_sends_segments_as_one_super_packet => segments_leave_as_one_super_packet }
port_tests! { AfXdp: af_xdp_sends_segments_as_one_super_packet => segments_leave_as_one_super_packet }
port_tests! { Tap: tap_sends_segments_as_one_super_packet => segments_leave_as_one_super_packet }
