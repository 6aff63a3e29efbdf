//! One neighbour's session task: connects to the peer's port 179 on the
//! appliance's own stack, feeds what happens to the [`Fsm`] and does what
//! it says, keeps the hold and keepalive timers, applies the peer's
//! UPDATEs to the shared RIB through the neighbour's inbound policy and
//! prefix limit, and sends the peer what this speaker originates through
//! its outbound policy (eBGP: our AS prepended, next hop self), first the
//! whole set and then its changes. A change of policy alone keeps the
//! session: the peer is asked for its routes again (route refresh) and
//! what we send is brought up to date.

use super::fsm::{Action, Event, Fsm, Settings, State};
use super::message::{
    decode, encode, error, Attributes, Message, Notification, Update, BGP_PORT, MAX_LEN,
    MAX_PREFIXES,
};
use super::policy::{prepend, Policy};
use super::rib::{PeerInfo, DEFAULT_LOCAL_PREF};
use super::{Bgp, Originated};
use grammar::config::{MaximumPrefix, NeighborFilter};
use ipnet::Ipv4Net;
use kernel_bypass::local::LocalStack;
use std::collections::{BTreeMap, HashMap};
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
    pub policy: PeerPolicy,
}

impl PeerConfig {
    /// Whether `other` differs at most in policy, which the session
    /// follows without a reset.
    fn same_session(&self, other: &PeerConfig) -> bool {
        (self.settings == other.settings)
            && (self.shutdown == other.shutdown)
            && (self.ipv4 == other.ipv4)
    }
}

/// A neighbour's policy: its filters each way, its prefix limit, and the
/// policy objects they name.
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    pub inbound: NeighborFilter,
    pub outbound: NeighborFilter,
    pub maximum_prefix: Option<MaximumPrefix>,
    pub policy: Arc<Policy>,
}

impl PartialEq for PeerPolicy {
    /// The policy objects compare by identity: they are rebuilt only when
    /// a commit changes them.
    fn eq(&self, other: &PeerPolicy) -> bool {
        (self.inbound == other.inbound)
            && (self.outbound == other.outbound)
            && (self.maximum_prefix == other.maximum_prefix)
            && Arc::ptr_eq(&self.policy, &other.policy)
    }
}

impl Eq for PeerPolicy {}

/// The channels a session follows.
pub struct Inputs {
    pub config: watch::Receiver<PeerConfig>,
    pub originated: watch::Receiver<Arc<Originated>>,
    /// `clear ip bgp *` counts up.
    pub resets: watch::Receiver<u64>,
    /// `clear ip bgp * soft` counts up.
    pub soft_resets: watch::Receiver<u64>,
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
            config: config.clone(),
            sent: BTreeMap::new(),
            next_hop: Ipv4Addr::UNSPECIFIED,
            limit: Limit::Below,
        };
        let mut event = Event::Start;
        while inputs.config.borrow().same_session(&config) {
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
            if !inputs.config.borrow().same_session(&config) {
                break;
            }
            if session.over_limit() {
                session.held_down(&mut inputs).await;
                event = Event::Start;
                continue;
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

/// Where the peer's prefix count stands against `maximum-prefix`; each
/// step is logged once a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Limit {
    Below,
    /// At the warning threshold.
    Warned,
    /// Over the limit: with `warning-only` logged, else the session is
    /// down until `clear ip bgp`.
    Exceeded,
}

struct Session {
    bgp: Bgp,
    peer: Ipv4Addr,
    fsm: Fsm,
    /// The configuration the session follows (its policy may change
    /// while it runs).
    config: PeerConfig,
    /// What the peer has from us, after the outbound policy.
    sent: BTreeMap<Ipv4Net, Attributes>,
    /// Our address on the connection: the NEXT_HOP we send.
    next_hop: Ipv4Addr,
    limit: Limit,
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
                Action::Apply(update) => {
                    if let Some(cease) = self.apply(&update) {
                        rest.extend(self.handle(Event::Stop(cease)));
                    }
                }
                other => rest.push(other),
            }
        }
        rest
    }

    /// Applies the peer's UPDATE through the inbound policy; the Cease to
    /// send when the peer is now over its prefix limit.
    fn apply(&mut self, update: &Update) -> Option<Notification> {
        let settings = &self.fsm.settings;
        let peer = self.fsm.peer.as_ref()?;
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
        let accept = self.config.ipv4 && !looped;
        let policy = &self.config.policy;
        let received = self.bgp.apply(info, update, |prefix, attributes| {
            accept
                .then(|| policy.policy.filter(&policy.inbound, prefix, attributes))
                .flatten()
        });
        self.check_limit(received)
    }

    /// Logs crossing `maximum-prefix`'s threshold and limit, IOS's
    /// messages; over the limit, the Cease of RFC 4486 (its data: AFI,
    /// SAFI and the limit) unless `warning-only`.
    fn check_limit(&mut self, received: usize) -> Option<Notification> {
        let limit = self.config.policy.maximum_prefix?;
        let max = u64::from(limit.max);
        let received = received as u64;
        let reached = match received {
            r if r > max => Limit::Exceeded,
            r if r * 100 >= max * u64::from(limit.threshold) => Limit::Warned,
            _ => Limit::Below,
        };
        if reached <= self.limit {
            return None;
        }
        self.limit = reached;
        let peer = self.peer;
        let line = match reached {
            Limit::Exceeded => format!(
                "%BGP-3-MAXPFXEXCEED: No. of prefix received from {peer} (afi 0): {received} exceed limit {max}"
            ),
            _ => format!(
                "%BGP-4-MAXPFX: No. of prefix received from {peer} (afi 0) reaches {received}, max {max}"
            ),
        };
        self.bgp.log(line);
        if reached < Limit::Exceeded || limit.warning_only {
            return None;
        }
        let mut data = vec![0, 1, 1];
        data.extend_from_slice(&limit.max.to_be_bytes());
        self.bgp.log(format!(
            "%BGP-3-NOTIFICATION: sent to neighbor {peer} 6/1 (Maximum Number of Prefixes Reached) {} bytes",
            data.len()
        ));
        Some(Notification::with_data(
            error::CEASE,
            error::MAX_PREFIXES,
            &data,
        ))
    }

    /// Down for going over the prefix limit: waits for `clear ip bgp`, as
    /// IOS does; policy edits meanwhile are followed, any other change
    /// ends the wait (the session starts again with it).
    async fn held_down(&mut self, inputs: &mut Inputs) {
        let peer = self.peer;
        self.bgp.with_peer(peer, |s| s.prefix_limited = true);
        inputs.resets.borrow_and_update();
        loop {
            tokio::select! {
                _ = inputs.resets.changed() => break,
                changed = inputs.config.changed() => {
                    let config = inputs.config.borrow_and_update().clone();
                    if changed.is_err() || !config.same_session(&self.config) {
                        break;
                    }
                    self.config = config;
                }
            }
        }
        inputs.resets.borrow_and_update();
        self.bgp.with_peer(peer, |s| s.prefix_limited = false);
    }

    /// The session ended for going over a limit that is not warning-only.
    fn over_limit(&self) -> bool {
        let limit = self.config.policy.maximum_prefix;
        self.limit == Limit::Exceeded && limit.is_some_and(|l| !l.warning_only)
    }

    async fn connected(&mut self, stream: kernel_bypass::local::TcpStream, inputs: &mut Inputs) {
        if let std::net::IpAddr::V4(local) = stream.local_addr().ip() {
            self.next_hop = local;
        }
        let (mut reader, mut writer) = tokio::io::split(stream);
        // A new session: the limit's steps are logged again.
        self.limit = Limit::Below;
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
                    if !gone && config.same_session(&self.config) {
                        match self.policy_changed(&mut writer, config, inputs).await {
                            None => continue,
                            event => event,
                        }
                    } else {
                        let subcode = match (gone, config.shutdown) {
                            (true, _) => error::PEER_DECONFIGURED,
                            (false, true) => error::ADMIN_SHUTDOWN,
                            // Another setting: reset so the new one is used.
                            (false, false) => error::OTHER_CONFIGURATION_CHANGE,
                        };
                        Some(Event::Stop(Notification::new(error::CEASE, subcode)))
                    }
                }
                _ = inputs.resets.changed() => {
                    Some(Event::Stop(Notification::new(error::CEASE, error::ADMIN_RESET)))
                }
                _ = inputs.soft_resets.changed(), if established => {
                    if !self.refresh(&mut writer, inputs, true).await {
                        Some(Event::TcpClosed)
                    } else {
                        continue;
                    }
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
                        if let Message::Update(Update {
                            treated_as_withdraw: Some(why),
                            ..
                        }) = &message
                        {
                            self.bgp.log(format!(
                                "%BGP-4-MALFORMED_ATTR: UPDATE from {}: {}; its routes are withdrawn (RFC 7606)",
                                self.peer,
                                why.describe()
                            ));
                        }
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

    /// Follows a new policy: the peer is asked for its routes again and
    /// what we send is brought up to date. The event to handle when that
    /// cannot be done: a reset for a peer that cannot resend its routes,
    /// or the connection lost.
    async fn policy_changed(
        &mut self,
        writer: &mut Writer,
        config: PeerConfig,
        inputs: &mut Inputs,
    ) -> Option<Event> {
        self.config = config;
        self.limit = Limit::Below;
        if self.fsm.state != State::Established {
            return None;
        }
        if !self.fsm.peer.as_ref().is_some_and(|p| p.route_refresh) {
            let cease = Notification::new(error::CEASE, error::OTHER_CONFIGURATION_CHANGE);
            return Some(Event::Stop(cease));
        }
        (!self.refresh(writer, inputs, false).await).then_some(Event::TcpClosed)
    }

    /// Asks the peer for its routes again, when it can resend them, and
    /// sends ours (all of them with `full`): `clear ip bgp * soft`, and
    /// the end of a policy change. False when the connection is lost.
    async fn refresh(&mut self, writer: &mut Writer, inputs: &mut Inputs, full: bool) -> bool {
        let can_resend = self.fsm.peer.as_ref().is_some_and(|p| p.route_refresh);
        (!can_resend || self.send(writer, &Message::RouteRefresh(1, 1)).await)
            && self.advertise(writer, inputs, full).await
    }

    /// Sends what we originate, through the outbound policy, to a peer
    /// activated for IPv4: all of it (`full`), or what changed since the
    /// last time. eBGP peers get our AS in front of the path and no
    /// LOCAL_PREF; iBGP peers an empty path and a LOCAL_PREF (RFC 4271
    /// 5.1.2, 5.1.5). Learned routes are not passed on: no transit.
    async fn advertise(&mut self, writer: &mut Writer, inputs: &mut Inputs, full: bool) -> bool {
        let settings = &self.fsm.settings;
        let ebgp = settings.remote_as != settings.local_as;
        let originated = inputs.originated.borrow_and_update().clone();
        let mut wanted: BTreeMap<Ipv4Net, Attributes> = BTreeMap::new();
        if self.config.ipv4 {
            let policy = &self.config.policy;
            for (prefix, origin) in &originated.prefixes {
                let ours = Arc::new(Attributes {
                    origin: *origin,
                    as_path: Vec::new(),
                    next_hop: self.next_hop,
                    med: None,
                    local_pref: None,
                    communities: Vec::new(),
                });
                let Some(out) = policy.policy.filter(&policy.outbound, *prefix, &ours) else {
                    continue;
                };
                // Our AS goes in front of what the route map prepended,
                // and LOCAL_PREF stays in our AS.
                let mut out = Arc::unwrap_or_clone(out);
                if ebgp {
                    prepend(&mut out, &[settings.local_as]);
                    out.local_pref = None;
                } else {
                    out.local_pref = Some(out.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
                }
                wanted.insert(*prefix, out);
            }
        }
        if full {
            self.sent.clear();
        }
        let withdrawn: Vec<Ipv4Net> = (self.sent.keys())
            .filter(|p| !wanted.contains_key(p))
            .copied()
            .collect();
        let mut by_attributes: HashMap<&Attributes, Vec<Ipv4Net>> = HashMap::new();
        for (prefix, attributes) in &wanted {
            if self.sent.get(prefix) != Some(attributes) {
                by_attributes.entry(attributes).or_default().push(*prefix);
            }
        }
        let mut updates: Vec<Update> = (withdrawn.chunks(MAX_PREFIXES))
            .map(|chunk| Update {
                withdrawn: chunk.to_vec(),
                ..Update::default()
            })
            .collect();
        for (attributes, prefixes) in by_attributes {
            updates.extend(prefixes.chunks(MAX_PREFIXES).map(|chunk| Update {
                attributes: Some(attributes.clone()),
                nlri: chunk.to_vec(),
                ..Update::default()
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
