//! One neighbour's session task: connects to the peer's port 179 on the
//! appliance's own stack, feeds what happens to the [`Fsm`] and does what
//! it says, keeps the hold and keepalive timers, applies the peer's
//! UPDATEs to the shared RIB and sends the peer what this speaker
//! originates (eBGP: our AS prepended, next hop self), first the whole set
//! and then its changes.

use super::fsm::{Action, Event, Fsm, Settings, State};
use super::message::{
    decode, encode, error, Attributes, Message, Notification, Origin, Segment, Update, BGP_PORT,
    MAX_LEN, MAX_PREFIXES,
};
use super::rib::PeerInfo;
use super::{Bgp, Originated};
use ipnet::Ipv4Net;
use kernel_bypass::local::LocalStack;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

/// How long a TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait before connecting again (RFC 4271's ConnectRetryTimer; short,
/// as the appliance is the side that always connects).
pub const CONNECT_RETRY: Duration = Duration::from_secs(5);

/// What the configuration says of one neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub settings: Settings,
    pub shutdown: bool,
    /// Activated in `address-family ipv4 unicast`.
    pub ipv4: bool,
}

/// The channels a session follows.
pub struct Inputs {
    pub config: watch::Receiver<PeerConfig>,
    pub originated: watch::Receiver<Arc<Originated>>,
    /// `clear ip bgp *` counts up.
    pub resets: watch::Receiver<u64>,
}

type Writer = WriteHalf<kernel_bypass::local::TcpStream>;

/// Runs the session of `peer` until the neighbour is removed: one state
/// machine while its configuration stays the same.
pub async fn run(bgp: Bgp, stack: LocalStack, peer: Ipv4Addr, mut inputs: Inputs) {
    // Until the neighbour is removed (its configuration's sender dropped).
    while inputs.config.has_changed().is_ok() {
        let config = inputs.config.borrow_and_update().clone();
        if config.shutdown {
            bgp.set_state(peer, State::Idle, true);
            if inputs.config.changed().await.is_err() {
                return;
            }
            continue;
        }
        let mut session = Session {
            bgp: bgp.clone(),
            peer,
            fsm: Fsm::new(config.settings.clone()),
            ipv4: config.ipv4,
            sent: BTreeMap::new(),
            next_hop: Ipv4Addr::UNSPECIFIED,
        };
        let mut event = Event::Start;
        while *inputs.config.borrow() == config {
            session.handle(event);
            let connect =
                tokio::time::timeout(CONNECT_TIMEOUT, stack.tcp_connect((peer, BGP_PORT)));
            let stream = tokio::select! {
                stream = connect => stream,
                _ = inputs.config.changed() => break,
            };
            match stream {
                Ok(Ok(stream)) => session.connected(stream, &mut inputs).await,
                _ => {
                    session.handle(Event::TcpFailed);
                }
            }
            if *inputs.config.borrow() != config {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(CONNECT_RETRY) => {}
                _ = inputs.config.changed() => break,
            }
            event = match session.fsm.state {
                State::Active => Event::ConnectRetryExpired,
                _ => Event::Start,
            };
        }
    }
}

struct Session {
    bgp: Bgp,
    peer: Ipv4Addr,
    fsm: Fsm,
    ipv4: bool,
    /// What the peer has from us: prefix -> origin.
    sent: BTreeMap<Ipv4Net, Origin>,
    /// Our address on the connection: the NEXT_HOP we send.
    next_hop: Ipv4Addr,
}

impl Session {
    /// Runs the FSM on `event`; returns the actions that need the
    /// connection (sending, closing, the table) and does the rest.
    fn handle(&mut self, event: Event) -> Vec<Action> {
        let actions = self.fsm.handle(event);
        self.bgp.set_state(self.peer, self.fsm.state, false);
        if let Some(error) = &self.fsm.last_error {
            self.bgp.set_last_error(self.peer, error.clone());
        }
        let mut rest = Vec::new();
        for action in actions {
            match action {
                Action::Down => self.bgp.peer_down(self.peer),
                Action::Apply(update) => self.apply(&update),
                other => rest.push(other),
            }
        }
        rest
    }

    fn apply(&mut self, update: &Update) {
        let settings = &self.fsm.settings;
        let Some(peer) = &self.fsm.peer else { return };
        let info = PeerInfo {
            address: self.peer,
            router_id: peer.router_id,
            asn: settings.remote_as,
            ebgp: settings.remote_as != settings.local_as,
        };
        // A path through our own AS is a loop (RFC 4271 9.1.2); one not
        // activated for IPv4 unicast is not taken.
        let looped = update
            .attributes
            .as_ref()
            .is_some_and(|a| a.contains_as(settings.local_as));
        self.bgp.apply(info, update, self.ipv4 && !looped);
    }

    async fn connected(&mut self, stream: kernel_bypass::local::TcpStream, inputs: &mut Inputs) {
        if let std::net::IpAddr::V4(local) = stream.local_addr().ip() {
            self.next_hop = local;
        }
        let (mut reader, mut writer) = tokio::io::split(stream);
        let actions = self.handle(Event::TcpConnected);
        if !self.perform(&mut writer, actions, inputs).await {
            return;
        }
        let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_LEN);
        let mut chunk = vec![0u8; MAX_LEN];
        let far = || Instant::now() + Duration::from_secs(86400 * 365);
        let mut hold_at = far();
        let mut keepalive_at = far();
        let mut armed = (None, None);
        loop {
            // Timers follow the negotiated values as the state changes.
            let now = (self.fsm.hold_time(), self.fsm.keepalive());
            if now != armed {
                let at = |secs: Option<u16>| {
                    secs.map_or_else(far, |s| Instant::now() + Duration::from_secs(s.into()))
                };
                (hold_at, keepalive_at) = (at(now.0), at(now.1));
                armed = now;
            }
            let established = self.fsm.state == State::Established;
            let event = tokio::select! {
                read = reader.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => Some(Event::TcpClosed),
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(h) = armed.0 {
                            hold_at = Instant::now() + Duration::from_secs(h.into());
                        }
                        None
                    }
                },
                _ = sleep_until(hold_at) => Some(Event::HoldTimerExpired),
                _ = sleep_until(keepalive_at) => {
                    keepalive_at = armed.1.map_or_else(far, |s| Instant::now() + Duration::from_secs(s.into()));
                    if !self.send(&mut writer, &Message::Keepalive).await {
                        Some(Event::TcpClosed)
                    } else {
                        continue;
                    }
                }
                changed = inputs.config.changed() => {
                    let gone = changed.is_err();
                    let config = inputs.config.borrow().clone();
                    let subcode = match (gone, config.shutdown) {
                        (true, _) => error::PEER_DECONFIGURED,
                        (false, true) => error::ADMIN_SHUTDOWN,
                        // Another setting: reset so the new one is used.
                        (false, false) => error::OTHER_CONFIGURATION_CHANGE,
                    };
                    Some(Event::Stop(Notification::new(error::CEASE, subcode)))
                }
                _ = inputs.resets.changed() => {
                    Some(Event::Stop(Notification::new(error::CEASE, error::ADMIN_RESET)))
                }
                _ = inputs.originated.changed(), if established => {
                    if !self.advertise(&mut writer, inputs, false).await {
                        Some(Event::TcpClosed)
                    } else {
                        continue;
                    }
                }
            };
            if let Some(event) = event {
                let actions = self.handle(event);
                if !self.perform(&mut writer, actions, inputs).await {
                    return;
                }
                continue;
            }
            // Every whole message in the buffer, one at a time: an OPEN
            // changes how the next one decodes.
            loop {
                let event = match decode(&buf, self.fsm.four_octet_as()) {
                    Ok(None) => break,
                    Ok(Some((message, length))) => {
                        buf.drain(..length.min(buf.len()));
                        self.bgp.count(self.peer, true);
                        Event::Received(message)
                    }
                    Err(notification) => Event::Malformed(notification),
                };
                let actions = self.handle(event);
                if !self.perform(&mut writer, actions, inputs).await {
                    return;
                }
            }
        }
    }

    /// Does the connection's actions; false once it is closed.
    async fn perform(
        &mut self,
        writer: &mut Writer,
        actions: Vec<Action>,
        inputs: &mut Inputs,
    ) -> bool {
        for action in actions {
            let open = match action {
                Action::Send(message) => self.send(writer, &message).await,
                Action::Disconnect => {
                    let _ = writer.shutdown().await;
                    false
                }
                Action::Up => {
                    self.bgp.peer_up(self.peer, self.fsm.peer.clone());
                    self.advertise(writer, inputs, true).await
                }
                Action::Resend => self.advertise(writer, inputs, true).await,
                Action::Connect | Action::Down | Action::Apply(_) => true,
            };
            if !open {
                if self.fsm.state != State::Idle {
                    self.handle(Event::TcpClosed);
                }
                return false;
            }
        }
        true
    }

    async fn send(&mut self, writer: &mut Writer, message: &Message) -> bool {
        let bytes = encode(message, self.fsm.four_octet_as());
        let sent = writer.write_all(&bytes).await.is_ok();
        if sent {
            self.bgp.count(self.peer, false);
        }
        sent
    }

    /// Sends what we originate to an eBGP peer activated for IPv4: all of
    /// it (`full`), or what changed since the last time.
    async fn advertise(&mut self, writer: &mut Writer, inputs: &mut Inputs, full: bool) -> bool {
        let settings = &self.fsm.settings;
        let ebgp = settings.remote_as != settings.local_as;
        let wanted: BTreeMap<Ipv4Net, Origin> = match ebgp && self.ipv4 {
            true => inputs.originated.borrow_and_update().prefixes.clone(),
            false => BTreeMap::new(),
        };
        if full {
            self.sent.clear();
        }
        let withdrawn: Vec<Ipv4Net> = (self.sent.keys())
            .filter(|p| !wanted.contains_key(p))
            .copied()
            .collect();
        let mut by_origin: BTreeMap<Origin, Vec<Ipv4Net>> = BTreeMap::new();
        for (prefix, origin) in &wanted {
            if self.sent.get(prefix) != Some(origin) {
                by_origin.entry(*origin).or_default().push(*prefix);
            }
        }
        let mut updates: Vec<Update> = (withdrawn.chunks(MAX_PREFIXES))
            .map(|chunk| Update {
                withdrawn: chunk.to_vec(),
                ..Update::default()
            })
            .collect();
        for (origin, prefixes) in by_origin {
            let attributes = Attributes {
                origin,
                as_path: vec![Segment::Sequence(vec![settings.local_as])],
                next_hop: self.next_hop,
                med: None,
                local_pref: None,
            };
            updates.extend(prefixes.chunks(MAX_PREFIXES).map(|chunk| Update {
                withdrawn: Vec::new(),
                attributes: Some(attributes.clone()),
                nlri: chunk.to_vec(),
            }));
        }
        self.sent = wanted;
        for update in updates {
            if !self.send(writer, &Message::Update(update)).await {
                return false;
            }
        }
        true
    }
}
