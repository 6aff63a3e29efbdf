//! The high-availability pair's state synchronisation (`redundancy`):
//! each box sends the other the sessions, NAT translations and
//! load-balancer sessions it owns, over UDP on its own stack, and takes
//! in the other's, so that whichever box VRRP makes master has them all.
//!
//! - What is sent: the entries the workers noted as new (the journal,
//!   drained every 10 ms) and a refresh that walks every table once per
//!   [`REFRESH`] (TCP states, liveness); a peer heard from a new run (it
//!   started, or this box did) gets the whole walk at once, a bulk copy.
//!   Both boxes send: the standby has nothing of its own to send until it
//!   takes traffic over, and then its walk sends the flows back, ready
//!   for the fail back.
//! - How: `message` (framing, HMAC-SHA256 with the shared key) and `link`
//!   (sequence numbers, cumulative acknowledgements, retransmission, a
//!   receive window against repeats and replays, runs against messages
//!   from before a restart). At most [`link::MAX_IN_FLIGHT`] messages
//!   wait for acknowledgement and [`PENDING`] records for the window:
//!   memory and bandwidth stay bounded; what does not fit waits in the
//!   journal or is lost and counted there, and the next refresh brings it.
//! - State: the box is active while every VRRP group of the failover group
//!   (`group vrrp`) is master (with no group: while any is). Both boxes
//!   active while they hear each other for [`SPLIT_BRAIN_AFTER`] is a
//!   split brain: logged and counted. Entries are never taken over a
//!   box's own, so when the pair converges the box that stays master
//!   keeps its sessions.
//! - `show redundancy` also says whether the VRRP groups, NAT and virtual
//!   servers of the two configurations differ (their digests travel in
//!   the hellos); configuration is not copied.

mod link;
mod message;

use grammar::config::{Config, SyncedTable};
use grammar::SyntaxError;
use kernel_bypass::local::{LocalStack, UdpSocket};
use kernel_bypass::state_sync::{StateSync, SyncRecord, Synced, SHARDS};
use kernel_bypass::Dataplane;
use link::{Link, LinkCounters, Received};
use message::{Digests, Message, Refused, MAX_DATAGRAM, MAX_RECORDS};
use shell::ShellBuilder;
use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Every table is walked once in this time.
pub const REFRESH: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_millis(10);
const HELLO_EVERY: Duration = Duration::from_secs(1);
/// A peer not heard for this long is down.
const PEER_DEAD_AFTER: Duration = Duration::from_secs(3);
/// Both boxes active for this long is a split brain (shorter overlaps
/// happen in every preemption).
const SPLIT_BRAIN_AFTER: Duration = Duration::from_secs(3);
/// Records waiting for the window at most.
const PENDING: usize = 65_536;

/// What `show redundancy` shows.
#[derive(Default)]
struct Status {
    peer: Option<SocketAddr>,
    tables: Vec<SyncedTable>,
    active: bool,
    members: Vec<((String, u8), bool)>,
    /// (active, digests, heard ago) of the peer's last hello.
    heard: Option<(bool, Digests, Duration)>,
    own_digests: Digests,
    link: LinkCounters,
    in_flight: usize,
    adopted: u64,
    refused: u64,
    not_authentic: u64,
    foreign: u64,
    bulk_copies: u64,
    refresh_passes: u64,
    journal_lost: u64,
    split_brains: u64,
    in_split_brain: bool,
}

/// The sync's state, shared with `show redundancy`.
#[derive(Clone, Default)]
pub struct Redundancy(Arc<Mutex<Status>>);

impl Redundancy {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn render(&self) -> String {
        let s = self.status();
        let Some(peer) = s.peer else {
            return "Redundancy is not configured (no peer)\n".to_string();
        };
        let role = |active: bool| if active { "active" } else { "standby" };
        let mut out = format!("Redundancy peer {peer}: this box is {}\n", role(s.active));
        for ((interface, group), master) in &s.members {
            let state = if *master { "Master" } else { "Backup" };
            let _ = writeln!(out, "  vrrp {group} on {interface}: {state}");
        }
        match s.heard {
            Some((active, digests, ago)) if ago < PEER_DEAD_AFTER => {
                let _ = writeln!(
                    out,
                    "Peer: up, {}, heard {} ms ago",
                    role(active),
                    ago.as_millis()
                );
                let differ: Vec<_> = [
                    (digests.vrrp != s.own_digests.vrrp, "VRRP groups"),
                    (digests.nat != s.own_digests.nat, "NAT"),
                    (digests.slb != s.own_digests.slb, "virtual servers"),
                ]
                .into_iter()
                .filter_map(|(differs, what)| differs.then_some(what))
                .collect();
                let _ = match differ.is_empty() {
                    true => writeln!(out, "  Configuration: the same in what failover needs"),
                    false => writeln!(
                        out,
                        "  Configuration DIFFERS from the peer's: {}",
                        differ.join(", ")
                    ),
                };
            }
            Some((_, _, ago)) => {
                let _ = writeln!(out, "Peer: DOWN, last heard {} s ago", ago.as_secs());
            }
            None => out.push_str("Peer: never heard\n"),
        }
        let tables: Vec<_> = s.tables.iter().map(|t| t.word()).collect();
        let _ = writeln!(out, "Synchronised tables: {}", tables.join(" "));
        let l = &s.link;
        let _ = writeln!(
            out,
            "Sent: {} messages, {} records, {} retransmitted, {} waiting for acknowledgement",
            l.messages_sent, l.records_sent, l.retransmitted, s.in_flight
        );
        let _ = writeln!(
            out,
            "Received: {} records ({} adopted, {} refused), {} repeated messages, {} stale",
            l.records_received, s.adopted, s.refused, l.repeats, l.stale
        );
        let _ = writeln!(
            out,
            "Dropped: {} not authentic, {} not sync messages; {} journal notes lost",
            s.not_authentic, s.foreign, s.journal_lost
        );
        let _ = writeln!(
            out,
            "Refresh every {} s: {} passes; {} bulk copies sent; peer runs seen: {}",
            REFRESH.as_secs(),
            s.refresh_passes,
            s.bulk_copies,
            l.peer_runs
        );
        let _ = writeln!(
            out,
            "Split brain: {} times{}",
            s.split_brains,
            if s.in_split_brain {
                ", NOW (both boxes active)"
            } else {
                ""
            }
        );
        out
    }
}

/// Adds `show redundancy` to `builder`.
pub fn register_commands(
    builder: ShellBuilder,
    redundancy: &Redundancy,
) -> Result<ShellBuilder, SyntaxError> {
    let redundancy = redundancy.clone();
    builder.show(
        "redundancy",
        &["High-availability pair: state, peer, synchronisation"],
        move |_| redundancy.render(),
    )
}

/// What the sync link is made of: a change starts it over. Both boxes
/// use the same port: the peer's is also the one bound here.
#[derive(Clone, PartialEq, Eq)]
struct LinkSettings {
    peer: SocketAddr,
    key: String,
}

fn link_settings(config: &Config) -> Option<LinkSettings> {
    let r = &config.redundancy;
    Some(LinkSettings {
        peer: SocketAddr::from((r.peer?, r.port())),
        key: r.key.clone()?,
    })
}

/// What a run takes from the rest of the configuration, worked out when
/// it changes rather than at every tick.
struct FromConfig {
    digests: Digests,
    group: BTreeSet<(String, u8)>,
    tables: Vec<SyncedTable>,
}

impl FromConfig {
    fn of(config: &Config) -> FromConfig {
        let r = &config.redundancy;
        FromConfig {
            digests: digests(config),
            group: r.group.clone(),
            tables: (SyncedTable::ALL.into_iter())
                .filter(|t| r.syncs(*t))
                .collect(),
        }
    }
}

/// Runs the sync while a peer is configured, until the configuration's
/// sender is gone.
pub async fn serve(
    stack: LocalStack,
    dataplane: Arc<Dataplane>,
    redundancy: Redundancy,
    mut config: watch::Receiver<Config>,
) {
    loop {
        let settings = link_settings(&config.borrow_and_update());
        *redundancy.status() = Status::default();
        let ended = match settings {
            Some(settings) => {
                let mut sync = SyncRun::new(&dataplane, &redundancy, &settings);
                sync.run(&stack, &settings, &mut config).await
            }
            None => config.changed().await.is_err(),
        };
        if ended {
            return;
        }
    }
}

/// Where the walk of the tables is.
#[derive(Default)]
struct Walk {
    /// The next (table, shard), counted over all tables' shards.
    position: usize,
    started: Option<Instant>,
    /// The whole walk at once, for a peer that (re)joined.
    bulk: bool,
}

impl Walk {
    /// A walk of everything from the start, at once.
    fn bulk() -> Walk {
        Walk {
            bulk: true,
            ..Walk::default()
        }
    }
}

/// One run of the sync with one peer.
struct SyncRun<'a> {
    dataplane: &'a Dataplane,
    state: Arc<StateSync>,
    redundancy: &'a Redundancy,
    key: ring::hmac::Key,
    link: Link,
    pending: VecDeque<SyncRecord>,
    walk: Walk,
    last_hello: Option<Instant>,
    both_active_since: Option<Instant>,
    peer_was_up: bool,
}

/// A random number that names this run of the sync.
fn new_run() -> u64 {
    let mut bytes = [0; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u64::from_be_bytes(bytes) | 1
}

impl<'a> SyncRun<'a> {
    fn new(dataplane: &'a Dataplane, redundancy: &'a Redundancy, settings: &LinkSettings) -> Self {
        SyncRun {
            dataplane,
            state: dataplane.state_sync(),
            redundancy,
            key: message::key(&settings.key),
            link: Link::new(new_run()),
            pending: VecDeque::new(),
            walk: Walk::default(),
            last_hello: None,
            both_active_since: None,
            peer_was_up: false,
        }
    }

    /// Returns when the link's settings change (false) or the
    /// configuration's sender is gone (true).
    async fn run(
        &mut self,
        stack: &LocalStack,
        settings: &LinkSettings,
        config: &mut watch::Receiver<Config>,
    ) -> bool {
        let socket = loop {
            match stack.udp_bind(settings.peer.port()).await {
                Ok(socket) => break socket,
                Err(_) => {
                    tokio::select! {
                        changed = config.changed() => return changed.is_err(),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        };
        let mut current = FromConfig::of(&config.borrow());
        let mut tick = tokio::time::interval(TICK);
        let mut buf = vec![0; MAX_DATAGRAM];
        loop {
            tokio::select! {
                received = socket.recv_from(&mut buf) => {
                    if let Ok((len, from)) = received {
                        if from == settings.peer {
                            self.receive(&socket, settings.peer, &buf[..len]).await;
                        }
                    }
                }
                _ = tick.tick() => self.tick(&socket, settings.peer, &current).await,
                changed = config.changed() => {
                    if changed.is_err() {
                        return true;
                    }
                    let changed = config.borrow_and_update();
                    if link_settings(&changed).as_ref() != Some(settings) {
                        return false;
                    }
                    current = FromConfig::of(&changed);
                }
            }
        }
    }

    async fn send(&self, socket: &UdpSocket, peer: SocketAddr, m: &Message) {
        let _ = socket.send_to(&m.seal(&self.key), peer).await;
    }

    async fn receive(&mut self, socket: &UdpSocket, peer: SocketAddr, datagram: &[u8]) {
        let m = match Message::open(&self.key, datagram) {
            Ok(m) => m,
            Err(refused) => {
                let mut s = self.redundancy.status();
                match refused {
                    Refused::NotAuthentic => s.not_authentic += 1,
                    Refused::Foreign | Refused::Malformed => s.foreign += 1,
                }
                return;
            }
        };
        match self.link.receive(m, Instant::now()) {
            Received::Hello { new_run: true } => {
                // A bulk copy for the new run, announced by a hello of ours
                // so that it learns this run at once.
                self.walk = Walk::bulk();
                self.pending.clear();
                self.redundancy.status().bulk_copies += 1;
                self.last_hello = None;
            }
            Received::Records(records) => {
                self.adopt(&records);
                self.send(socket, peer, &self.link.ack()).await;
            }
            Received::Repeat => self.send(socket, peer, &self.link.ack()).await,
            Received::Hello { new_run: false } | Received::Nothing => {}
        }
        for m in self.link.retransmit(Instant::now()) {
            self.send(socket, peer, &m).await;
        }
        self.pump(socket, peer).await;
    }

    fn adopt(&self, records: &[SyncRecord]) {
        let Some((tables, timeouts)) = self.state.tables() else {
            return;
        };
        let now = self.dataplane.now_secs();
        let adopted = (records.iter())
            .filter(|r| self.state.adopt(&tables, r, (now, &timeouts)))
            .count() as u64;
        let mut s = self.redundancy.status();
        s.adopted += adopted;
        s.refused += records.len() as u64 - adopted;
    }

    /// Sends what the window lets go now.
    async fn pump(&mut self, socket: &UdpSocket, peer: SocketAddr) {
        while !self.pending.is_empty() && self.link.can_send() {
            let take = self.pending.len().min(MAX_RECORDS);
            let records: Vec<_> = self.pending.drain(..take).collect();
            let m = self.link.send(records, Instant::now());
            self.send(socket, peer, &m).await;
        }
    }

    async fn tick(&mut self, socket: &UdpSocket, peer: SocketAddr, config: &FromConfig) {
        let now = Instant::now();
        if self.pending.len() < PENDING / 2 {
            let mut noted = Vec::new();
            self.state.journal.drain(&mut noted);
            self.pending.extend(noted);
            self.walk_due(now);
        }
        for m in self.link.retransmit(now) {
            self.send(socket, peer, &m).await;
        }
        self.pump(socket, peer).await;
        let members = self.dataplane.vrrp().masters();
        let group = &config.group;
        let members: Vec<_> = match group.is_empty() {
            true => members,
            false => members
                .into_iter()
                .filter(|(key, _)| group.contains(key))
                .collect(),
        };
        let active = match group.is_empty() {
            true => members.iter().any(|(_, master)| *master),
            false => !members.is_empty() && members.iter().all(|(_, master)| *master),
        };
        let digests = config.digests;
        if self
            .last_hello
            .is_none_or(|at| now.duration_since(at) >= HELLO_EVERY)
        {
            self.last_hello = Some(now);
            self.send(socket, peer, &self.link.hello(active, digests))
                .await;
        }
        self.follow_peer(peer, active, now);
        let mut s = self.redundancy.status();
        s.peer = Some(peer);
        s.tables = config.tables.clone();
        (s.active, s.members, s.own_digests) = (active, members, digests);
        s.heard = self.link.peer(now);
        (s.link, s.in_flight) = (self.link.counters, self.link.in_flight());
        s.journal_lost = self.state.journal.lost();
    }

    /// Walks the shards that are due: all at once for a bulk copy, else
    /// spread evenly over [`REFRESH`].
    fn walk_due(&mut self, now: Instant) {
        let Some((tables, timeouts)) = self.state.tables() else {
            return;
        };
        let total = tables.len() * SHARDS;
        let started = *self.walk.started.get_or_insert(now);
        let due = match self.walk.bulk {
            true => total,
            false => {
                let part = now.duration_since(started).as_secs_f64() / REFRESH.as_secs_f64();
                ((part * total as f64) as usize).min(total)
            }
        };
        let times = (self.dataplane.now_secs(), &timeouts);
        while self.walk.position < due && self.pending.len() < PENDING {
            let table: &Arc<dyn Synced> = &tables[self.walk.position / SHARDS];
            let pending = &mut self.pending;
            table.own_in_shard(self.walk.position % SHARDS, times, &mut |r| {
                pending.push_back(r)
            });
            self.walk.position += 1;
        }
        if self.walk.position >= total && (self.walk.bulk || now.duration_since(started) >= REFRESH)
        {
            self.walk = Walk::default();
            self.redundancy.status().refresh_passes += 1;
        }
    }

    /// Logs the peer going down and coming back, and split brains.
    fn follow_peer(&mut self, peer: SocketAddr, active: bool, now: Instant) {
        let heard = self
            .link
            .peer(now)
            .filter(|(_, _, ago)| *ago < PEER_DEAD_AFTER);
        let up = heard.is_some();
        if up != self.peer_was_up {
            self.peer_was_up = up;
            self.dataplane.log(match up {
                true => format!("%REDUNDANCY-5-PEER_UP: sync with peer {peer} established"),
                false => format!(
                    "%REDUNDANCY-4-PEER_DOWN: no sync message from peer {peer} for {} s{}",
                    PEER_DEAD_AFTER.as_secs(),
                    if active { "; this box is active" } else { "" }
                ),
            });
            if up && !self.walk.bulk {
                // What this box noted while the peer was away is lost to
                // it: a bulk copy brings it.
                self.walk = Walk::bulk();
            }
        }
        let both = active && heard.is_some_and(|(peer_active, _, _)| peer_active);
        let since = match both {
            true => *self.both_active_since.get_or_insert(now),
            false => {
                self.both_active_since = None;
                let mut s = self.redundancy.status();
                s.in_split_brain = false;
                return;
            }
        };
        let mut s = self.redundancy.status();
        if !s.in_split_brain && now.duration_since(since) >= SPLIT_BRAIN_AFTER {
            s.in_split_brain = true;
            s.split_brains += 1;
            drop(s);
            self.dataplane.log(format!(
                "%REDUNDANCY-3-SPLIT_BRAIN: this box and peer {peer} are both active; \
                 each keeps its own sessions over the other's"
            ));
        }
    }
}

/// Digests of what failover needs alike: the VRRP groups' numbers and
/// addresses (not their priorities, which differ by design), NAT, the
/// virtual servers.
fn digests(config: &Config) -> Digests {
    let digest = |text: String| {
        let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        u64::from_be_bytes(d.as_ref()[..8].try_into().unwrap_or_default())
    };
    let groups: Vec<(&(String, u8), Vec<Ipv4Addr>)> = (config.vrrp.groups.iter())
        .map(|(key, g)| (key, g.addresses.iter().copied().collect()))
        .collect();
    Digests {
        vrrp: digest(format!("{groups:?}")),
        nat: digest(format!("{:?}", config.nat)),
        slb: digest(format!("{:?}", config.slb)),
    }
}
