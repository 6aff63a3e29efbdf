//! One `wgN` interface's tunnel: its peers (a boringtun `Tunn` each, kept
//! across commits that do not change the peer's keys), cryptokey routing
//! (an inner destination picks the peer whose allowed-ips hold it, longest
//! prefix first; an inner source must be in the allowed-ips of the peer it
//! came from), roaming (a peer's endpoint follows its authenticated
//! packets), and the outer IPv4/IPv6 and UDP headers.
//!
//! Workers share a peer through its lock, so its state (sessions, replay
//! window, timers) is the same whichever worker a packet reaches. Handshake
//! messages are checked by boringtun's rate limiter first, which answers
//! with a cookie while the interface is under load, so a flood of
//! handshakes costs a MAC each and not a Diffie-Hellman. A packet is
//! encrypted or decrypted through a per-thread scratch buffer: nothing is
//! allocated per packet, except by boringtun for the packets it holds
//! while a handshake runs.

use super::counters::{Reject, WgCounters};
use crate::frame::{Frame, MAX_FRAME};
use crate::pipeline::source_towards;
use crate::snapshot::{Iface, IfaceId, Snapshot, VrfId};
use crate::tunnel::{Decapsulated, TunnelDriver};
use crate::wire::*;
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet as Message, Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use grammar::config::WgPeer;
use ipnet::IpNet;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Handshakes a second an interface takes before answering with cookies
/// (boringtun's rate limiter counts each one twice here: once when the
/// interface checks it, once in the peer's `Tunn`).
const HANDSHAKES_PER_SEC: u64 = 2 * 100;
/// How often boringtun's timers run (its device runs them every 250 ms).
const TIMERS_EVERY_MS: u64 = 100;
/// A data message's header and tag; the plaintext is padded to 16 more.
const DATA_OVERHEAD: usize = 32 + 15;
/// The scratch buffer: a whole frame and the largest message boringtun
/// writes (a handshake initiation, 148 bytes).
const SCRATCH: usize = MAX_FRAME + 256;
/// Packets waiting for the next tick (handshake flushes) before more are dropped.
const OUTBOX_MAX: usize = 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8; SCRATCH]>> = RefCell::new(Box::new([0; SCRATCH]));
}

/// A peer's mutable state.
pub struct PeerState {
    pub tunn: Tunn,
    /// Where its packets go: as configured, then where it last sent from.
    pub endpoint: Option<SocketAddr>,
    /// boringtun holds packets released by a handshake: the next tick
    /// sends them (after the handshake's own reply).
    needs_flush: bool,
}

/// One peer's identity and state, shared by the tunnels of successive
/// commits while its keys stay the same.
pub struct Peer {
    pub key: [u8; 32],
    /// Our index for it (boringtun's: the upper 24 bits of a session's).
    pub index: u32,
    state: Mutex<PeerState>,
}

impl Peer {
    /// A peer with no session yet, reached at its configured endpoint.
    pub fn new(
        key: [u8; 32],
        index: u32,
        settings: &WgPeer,
        private: &StaticSecret,
        rate_limiter: &Arc<RateLimiter>,
    ) -> Peer {
        let tunn = Tunn::new(
            private.clone(),
            PublicKey::from(key),
            settings.preshared_key.map(|k| k.0),
            settings.persistent_keepalive,
            index,
            Some(rate_limiter.clone()),
        );
        Peer {
            key,
            index,
            state: Mutex::new(PeerState {
                tunn,
                endpoint: settings.endpoint,
                needs_flush: false,
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, PeerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The rate limiter of an interface whose public key is `public`.
pub fn rate_limiter(public: &PublicKey) -> Arc<RateLimiter> {
    Arc::new(RateLimiter::new(public, HANDSHAKES_PER_SEC))
}

/// The settings a tunnel is built from.
pub struct TunnelSettings<'a> {
    pub name: &'a str,
    pub iface: IfaceId,
    pub private_key: [u8; 32],
    pub port: u16,
    /// The table outer packets are routed in.
    pub underlay: VrfId,
    /// The interface whose address outer packets come from, if configured.
    pub source: Option<IfaceId>,
}

pub struct WgTunnel {
    pub name: String,
    pub iface: IfaceId,
    pub private: StaticSecret,
    pub public: PublicKey,
    pub port: u16,
    pub underlay: VrfId,
    pub source: Option<IfaceId>,
    /// In public-key order, with their settings.
    pub peers: Vec<(Arc<Peer>, WgPeer)>,
    by_key: HashMap<[u8; 32], usize>,
    by_index: HashMap<u32, usize>,
    /// (network, peer), longest prefix first.
    routes: Vec<(IpNet, usize)>,
    pub rate_limiter: Arc<RateLimiter>,
    pub counters: WgCounters,
    /// Packets boringtun released after a handshake, for the next tick.
    outbox: Mutex<Vec<(VrfId, Vec<u8>)>>,
    timers_due_ms: AtomicU64,
    limiter_reset_due_ms: AtomicU64,
}

/// The destination address of an IPv4 or IPv6 packet.
fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 if packet.len() >= IPV4_HEADER => Some(IpAddr::V4(ipv4_at(packet, IPV4_DST))),
        6 if packet.len() >= IPV6_HEADER => Some(IpAddr::V6(ipv6_at(packet, IPV6_DST))),
        _ => None,
    }
}

/// The outer headers' length towards `remote`.
fn outer_len(remote: &SocketAddr) -> usize {
    match remote {
        SocketAddr::V4(_) => IPV4_HEADER + UDP_HEADER,
        SocketAddr::V6(_) => IPV6_HEADER + UDP_HEADER,
    }
}

/// Writes IP and UDP headers in front of a `payload_len`-byte message
/// already at `packet[outer_len(remote)..]`; false when the families of
/// source and remote differ.
fn write_outer(
    packet: &mut [u8],
    source: IpAddr,
    remote: SocketAddr,
    port: u16,
    payload_len: usize,
) -> bool {
    let udp_len = (UDP_HEADER + payload_len) as u16;
    let udp_at = match (source, remote.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            write_ipv4_header(
                packet,
                IPV4_HEADER as u16 + udp_len,
                DEFAULT_TTL,
                PROTO_UDP,
                s,
                d,
            );
            IPV4_HEADER
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            write_ipv6_header(packet, udp_len, PROTO_UDP, DEFAULT_TTL, s, d);
            IPV6_HEADER
        }
        _ => return false,
    };
    put_be16(packet, udp_at, port);
    put_be16(packet, udp_at + 2, remote.port());
    put_be16(packet, udp_at + 4, udp_len);
    put_be16(packet, udp_at + 6, 0);
    // IPv4 may go without a UDP checksum (the message is authenticated);
    // IPv6 may not (RFC 8200).
    if udp_at == IPV6_HEADER {
        let end = IPV6_HEADER + usize::from(udp_len);
        let sum = match ipv6_payload_checksum(&packet[..end]) {
            0 => 0xffff,
            sum => sum,
        };
        put_be16(packet, udp_at + 6, sum);
    }
    true
}

/// The reason boringtun gave for refusing a message.
fn reject_of(error: &WireGuardError) -> Reject {
    match error {
        WireGuardError::DuplicateCounter | WireGuardError::InvalidCounter => Reject::Replay,
        WireGuardError::InvalidMac
        | WireGuardError::InvalidAeadTag
        | WireGuardError::WrongKey
        | WireGuardError::WrongIndex => Reject::Authentication,
        WireGuardError::UnderLoad => Reject::UnderLoad,
        WireGuardError::NoCurrentSession | WireGuardError::ConnectionExpired => Reject::NoSession,
        _ => Reject::Invalid,
    }
}

impl WgTunnel {
    /// A tunnel for `settings` with `peers` (each with its settings),
    /// whose handshakes `rate_limiter` checks.
    pub fn new(
        settings: TunnelSettings<'_>,
        rate_limiter: Arc<RateLimiter>,
        peers: Vec<(Arc<Peer>, WgPeer)>,
    ) -> WgTunnel {
        let private = StaticSecret::from(settings.private_key);
        let public = PublicKey::from(&private);
        let mut routes: Vec<_> = (peers.iter().enumerate())
            .flat_map(|(at, (_, conf))| conf.allowed_ips.iter().map(move |n| (*n, at)))
            .collect();
        routes.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        WgTunnel {
            name: settings.name.to_string(),
            iface: settings.iface,
            private,
            public,
            port: settings.port,
            underlay: settings.underlay,
            source: settings.source,
            by_key: (peers.iter().enumerate())
                .map(|(at, (p, _))| (p.key, at))
                .collect(),
            by_index: (peers.iter().enumerate())
                .map(|(at, (p, _))| (p.index, at))
                .collect(),
            routes,
            peers,
            rate_limiter,
            counters: WgCounters::default(),
            outbox: Mutex::default(),
            timers_due_ms: AtomicU64::new(0),
            limiter_reset_due_ms: AtomicU64::new(0),
        }
    }

    /// The peer whose allowed-ips hold `addr` (longest prefix).
    fn peer_for(&self, addr: IpAddr) -> Option<usize> {
        (self.routes.iter())
            .find(|(net, _)| net.contains(&addr))
            .map(|(_, peer)| *peer)
    }

    /// The peer a message is for: by the index in it, or for a handshake
    /// initiation by the static key in it.
    fn peer_of(&self, message: &Message<'_>) -> Option<usize> {
        let index = match message {
            Message::HandshakeInit(init) => {
                let half = parse_handshake_anon(&self.private, &self.public, init).ok()?;
                return self.by_key.get(&half.peer_static_public).copied();
            }
            Message::HandshakeResponse(m) => m.receiver_idx,
            Message::PacketCookieReply(m) => m.receiver_idx,
            Message::PacketData(m) => m.receiver_idx,
        };
        self.by_index.get(&(index >> 8)).copied()
    }

    /// The address outer packets to `remote` come from.
    fn source_for(&self, snap: &Snapshot, remote: IpAddr) -> Option<IpAddr> {
        let configured = self.source.and_then(|id| snap.interface(id));
        match (configured, remote) {
            (Some(i), IpAddr::V4(r)) => i.source_for(r).map(IpAddr::V4),
            (Some(i), IpAddr::V6(r)) => Some(IpAddr::V6(i.source_for_ipv6(r))),
            (None, _) => source_towards(snap, self.underlay, remote),
        }
    }

    /// Writes the outer headers to `remote` in front of the `message_len`
    /// bytes at `outer_len(remote)` of `packet`; false without a source.
    fn write_headers(
        &self,
        snap: &Snapshot,
        packet: &mut [u8],
        remote: SocketAddr,
        message_len: usize,
    ) -> bool {
        let source = self.source_for(snap, remote.ip());
        source.is_some_and(|s| write_outer(packet, s, remote, self.port, message_len))
    }

    /// Turns `message_len` bytes boringtun wrote at `outer_len(remote)` of
    /// `frame` into a routable packet to the peer.
    fn finish_outer(
        &self,
        snap: &Snapshot,
        frame: &mut Frame,
        remote: SocketAddr,
        message_len: usize,
    ) -> Option<VrfId> {
        if !self.write_headers(snap, frame.data_mut(), remote, message_len) {
            self.counters.count(Reject::NoRoute);
            return None;
        }
        frame.truncate(outer_len(&remote) + message_len);
        Some(self.underlay)
    }

    /// Builds the outer packet of a message boringtun produced outside the
    /// packet path (a timer's, a flush's) for the outbox.
    fn outer_packet(&self, snap: &Snapshot, remote: SocketAddr, message: &[u8]) -> Option<Vec<u8>> {
        let header = outer_len(&remote);
        let mut packet = vec![0; header + message.len()];
        packet[header..].copy_from_slice(message);
        self.write_headers(snap, &mut packet, remote, message.len())
            .then_some(packet)
    }

    /// Moves the packets boringtun queued during a handshake to the
    /// outbox, in order.
    fn flush_queued(&self, snap: &Snapshot, state: &mut PeerState, scratch: &mut [u8]) {
        let Some(remote) = state.endpoint else {
            return;
        };
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        while let TunnResult::WriteToNetwork(message) = state.tunn.decapsulate(None, &[], scratch) {
            match self.outer_packet(snap, remote, message) {
                Some(p) if outbox.len() < OUTBOX_MAX => outbox.push((self.underlay, p)),
                _ => self.counters.count(Reject::NoRoute),
            }
        }
    }
}

impl TunnelDriver for WgTunnel {
    fn name(&self) -> &'static str {
        "wireguard"
    }

    fn encapsulate(&self, snap: &Snapshot, _iface: &Iface, frame: &mut Frame) -> Option<VrfId> {
        let inner_len = frame.len();
        let Some(dst) = destination(frame.data()) else {
            self.counters.count(Reject::Invalid);
            return None;
        };
        let Some((peer, _)) = self.peer_for(dst).map(|p| &self.peers[p]) else {
            self.counters.count(Reject::NoPeer);
            return None;
        };
        let mut state = peer.lock();
        let Some(remote) = state.endpoint else {
            self.counters.count(Reject::NoEndpoint);
            return None;
        };
        let header = outer_len(&remote);
        if header + inner_len + DATA_OVERHEAD > MAX_FRAME {
            self.counters.count(Reject::TooBig);
            return None;
        }
        SCRATCH_BUF.with(|scratch| {
            let scratch = &mut scratch.borrow_mut()[..];
            scratch[..inner_len].copy_from_slice(frame.data());
            let out = frame.reset(MAX_FRAME);
            let written = match state
                .tunn
                .encapsulate(&scratch[..inner_len], &mut out[header..])
            {
                TunnResult::WriteToNetwork(message) => message.len(),
                // Queued until the handshake this started completes.
                TunnResult::Done => return None,
                TunnResult::Err(e) => {
                    self.counters.count(reject_of(&e));
                    return None;
                }
                TunnResult::WriteToTunnelV4(..) | TunnResult::WriteToTunnelV6(..) => return None,
            };
            drop(state);
            self.finish_outer(snap, frame, remote, written)
        })
    }

    fn decapsulate(&self, ingress: &Iface, frame: &mut Frame, l4: usize) -> Decapsulated {
        let d = frame.data();
        // Replies leave from the address the peer sent to.
        let (sender, local) = match d[0] >> 4 {
            4 => (
                IpAddr::V4(ipv4_at(d, IPV4_SRC)),
                IpAddr::V4(ipv4_at(d, IPV4_DST)),
            ),
            _ => (
                IpAddr::V6(ipv6_at(d, IPV6_SRC)),
                IpAddr::V6(ipv6_at(d, IPV6_DST)),
            ),
        };
        let reply_to = (local, ingress.vrf);
        let udp_len = usize::from(be16(d, l4 + 4));
        if udp_len < UDP_HEADER || l4 + udp_len > d.len() {
            self.counters.count(Reject::Invalid);
            return Decapsulated::Done;
        }
        let remote = SocketAddr::new(sender, be16(d, l4));
        let header = outer_len(&remote);
        SCRATCH_BUF.with(|scratch| {
            let scratch = &mut scratch.borrow_mut()[..];
            let datagram = &frame.data()[l4 + UDP_HEADER..l4 + udp_len];
            let mut cookie = [0u8; 64];
            let message = match self
                .rate_limiter
                .verify_packet(Some(sender), datagram, &mut cookie)
            {
                Ok(m) => m,
                Err(TunnResult::WriteToNetwork(reply)) => {
                    self.counters.count(Reject::UnderLoad);
                    let n = reply.len();
                    scratch[..n].copy_from_slice(reply);
                    frame.reset(MAX_FRAME)[header..header + n].copy_from_slice(&scratch[..n]);
                    return self.reply(frame, reply_to, remote, n);
                }
                Err(TunnResult::Err(e)) => {
                    self.counters.count(reject_of(&e));
                    return Decapsulated::Done;
                }
                Err(_) => return Decapsulated::Done,
            };
            let Some(at) = self.peer_of(&message) else {
                self.counters.count(Reject::UnknownPeer);
                return Decapsulated::Done;
            };
            let is_cookie = matches!(message, Message::PacketCookieReply(_));
            let n = datagram.len();
            scratch[..n].copy_from_slice(datagram);
            let mut state = self.peers[at].0.lock();
            let out = frame.reset(MAX_FRAME);
            let (source, len) =
                match state
                    .tunn
                    .decapsulate(Some(sender), &scratch[..n], &mut out[header..])
                {
                    TunnResult::WriteToNetwork(reply) => (None, reply.len()),
                    TunnResult::WriteToTunnelV4(inner, src) => (Some(IpAddr::V4(src)), inner.len()),
                    TunnResult::WriteToTunnelV6(inner, src) => (Some(IpAddr::V6(src)), inner.len()),
                    // A keepalive, or a cookie taken for the next handshake.
                    TunnResult::Done => {
                        if !is_cookie {
                            state.endpoint = Some(remote);
                        }
                        return Decapsulated::Done;
                    }
                    TunnResult::Err(e) => {
                        self.counters.count(reject_of(&e));
                        return Decapsulated::Done;
                    }
                };
            // Authenticated: the peer is where it sent from (roaming).
            state.endpoint = Some(remote);
            match source {
                None => {
                    self.counters.handshakes.fetch_add(1, Ordering::Relaxed);
                    state.needs_flush = true;
                    self.reply(frame, reply_to, remote, len)
                }
                Some(src) if self.peer_for(src) == Some(at) => {
                    frame.pull_front(header);
                    frame.truncate(len);
                    Decapsulated::Inner(self.iface)
                }
                Some(_) => {
                    self.counters.count(Reject::SourceNotAllowed);
                    Decapsulated::Done
                }
            }
        })
    }

    fn tick(&self, snap: &Snapshot, now_ms: u64, emit: &mut dyn FnMut(VrfId, &[u8])) {
        if now_ms >= self.limiter_reset_due_ms.load(Ordering::Relaxed) {
            self.limiter_reset_due_ms
                .store(now_ms + 1000, Ordering::Relaxed);
            self.rate_limiter.reset_count();
        }
        let timers_due = now_ms >= self.timers_due_ms.load(Ordering::Relaxed);
        if timers_due {
            self.timers_due_ms
                .store(now_ms + TIMERS_EVERY_MS, Ordering::Relaxed);
        }
        SCRATCH_BUF.with(|scratch| {
            let scratch = &mut scratch.borrow_mut()[..];
            for (peer, _) in &self.peers {
                let mut state = peer.lock();
                if state.needs_flush {
                    state.needs_flush = false;
                    self.flush_queued(snap, &mut state, scratch);
                }
                if !timers_due {
                    continue;
                }
                let remote = state.endpoint;
                if let (TunnResult::WriteToNetwork(message), Some(remote)) =
                    (state.tunn.update_timers(scratch), remote)
                {
                    if let Some(packet) = self.outer_packet(snap, remote, message) {
                        emit(self.underlay, &packet);
                    }
                }
            }
        });
        let outbox = std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|p| p.into_inner()));
        for (vrf, packet) in outbox {
            emit(vrf, &packet);
        }
    }
}

impl WgTunnel {
    /// The frame holds a `len`-byte message at `outer_len(remote)`: an
    /// answer to `remote`, from `local` in table `vrf`.
    fn reply(
        &self,
        frame: &mut Frame,
        (local, vrf): (IpAddr, VrfId),
        remote: SocketAddr,
        len: usize,
    ) -> Decapsulated {
        if !write_outer(frame.data_mut(), local, remote, self.port, len) {
            return Decapsulated::Done;
        }
        frame.truncate(outer_len(&remote) + len);
        Decapsulated::Reply(vrf)
    }
}
