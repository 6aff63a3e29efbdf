//! The BGP speaker, a control-plane service on the appliance's own stack:
//! `message` (the wire format), `fsm` (RFC 4271's state machine), `rib`
//! (the peers' routes and best-path selection), `policy` (prefix lists
//! and route maps applied on import and export), `session` (one task per
//! neighbour), `show` (the show and clear commands). This module follows
//! the committed configuration: it starts, resets and stops sessions, works
//! out what the speaker originates (`network` prefixes present in the
//! routing table, `redistribute static|connected`) and installs the best
//! paths in the dataplane's global table: every [`INSTALL_EVERY`] at most,
//! one batch of the prefixes whose best path changed since the last
//! installation, which the dataplane applies to its published table
//! without rebuilding it.

mod fsm;
mod message;
mod policy;
mod rib;
mod session;
mod show;

pub use show::register_commands;

use fsm::{Peer, Settings, State};
use grammar::config::{BgpRouter, Config, Redistribute};
use ipnet::Ipv4Net;
use kernel_bypass::local::LocalStack;
use kernel_bypass::snapshot::{RouteKind, Source};
use kernel_bypass::Dataplane;
use message::{Attributes, Notification, Origin};
use policy::Policy;
use rib::{PeerInfo, Rib};
use session::{Inputs, PeerConfig, PeerPolicy};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The most often the best paths go to the dataplane: what changes in
/// between is coalesced into one batch.
pub const INSTALL_EVERY: Duration = Duration::from_millis(100);
/// How long a removed neighbour's session may take to say goodbye.
const GOODBYE: Duration = Duration::from_secs(5);
/// How often the routing table is read again for what we originate.
const ORIGINATE_EVERY: Duration = Duration::from_secs(1);

/// What this speaker announces: prefix -> ORIGIN (IGP for `network`,
/// incomplete for redistributed routes, as IOS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Originated {
    pub prefixes: BTreeMap<Ipv4Net, Origin>,
}

/// One neighbour as `show ip bgp` reports it.
#[derive(Clone, Debug)]
struct PeerStatus {
    remote_as: u32,
    description: Option<String>,
    /// Its filters and prefix limit, for `show ip bgp neighbors`.
    policy: PeerPolicy,
    state: State,
    admin_down: bool,
    /// Held down for sending more prefixes than `maximum-prefix` allows,
    /// until `clear ip bgp`.
    prefix_limited: bool,
    /// Since when it is up, or down again.
    since: Option<Instant>,
    received: u64,
    sent: u64,
    peer: Option<Peer>,
    /// The last NOTIFICATION: (sent by us, what).
    last_error: Option<(bool, Notification)>,
    established_count: u32,
}

#[derive(Debug, Default)]
struct Shared {
    /// (local AS, router id) of the running process.
    local: Option<(u32, Ipv4Addr)>,
    peers: BTreeMap<Ipv4Addr, PeerStatus>,
    rib: Rib,
    originated: Arc<Originated>,
    /// The committed prefix lists and route maps.
    policy: Arc<Policy>,
    /// Lines for the appliance's log, written at the next tick.
    logs: Vec<String>,
}

/// The speaker's state, shared by its tasks and its show commands.
#[derive(Clone)]
pub struct Bgp {
    shared: Arc<Mutex<Shared>>,
    resets: Arc<watch::Sender<u64>>,
    soft_resets: Arc<watch::Sender<u64>>,
}

impl Default for Bgp {
    fn default() -> Self {
        Bgp {
            shared: Arc::default(),
            resets: Arc::new(watch::channel(0).0),
            soft_resets: Arc::new(watch::channel(0).0),
        }
    }
}

impl Bgp {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every change under the lock is whole before it can panic, so a
        // poisoned lock still holds consistent tables.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_peer(&self, peer: Ipv4Addr, f: impl FnOnce(&mut PeerStatus)) {
        if let Some(status) = self.lock().peers.get_mut(&peer) {
            f(status);
        }
    }

    fn set_state(&self, peer: Ipv4Addr, state: State, admin_down: bool) {
        self.with_peer(peer, |s| {
            s.state = state;
            s.admin_down = admin_down;
        });
    }

    fn set_last_error(&self, peer: Ipv4Addr, error: (bool, Notification)) {
        self.with_peer(peer, |s| s.last_error = Some(error));
    }

    fn count(&self, peer: Ipv4Addr, received: bool) {
        self.with_peer(peer, |s| match received {
            true => s.received += 1,
            false => s.sent += 1,
        });
    }

    fn peer_up(&self, peer: Ipv4Addr, negotiated: Option<Peer>) {
        self.with_peer(peer, |s| {
            s.since = Some(Instant::now());
            s.peer = negotiated;
            s.established_count += 1;
        });
    }

    /// The peer's session left Established (or the neighbour is gone).
    fn peer_down(&self, peer: Ipv4Addr) {
        let mut shared = self.lock();
        if let Some(s) = shared.peers.get_mut(&peer) {
            s.since = Some(Instant::now());
            s.peer = None;
        }
        shared.rib.drop_peer(peer);
    }

    /// Applies an UPDATE of a configured neighbour's through `import`;
    /// returns how many prefixes the peer now has in the RIB.
    fn apply(
        &self,
        peer: PeerInfo,
        update: &message::Update,
        import: impl Fn(Ipv4Net, &Arc<Attributes>) -> Option<Arc<Attributes>>,
    ) -> usize {
        let mut shared = self.lock();
        if shared.peers.contains_key(&peer.address) {
            shared.rib.apply(peer, update, import);
        }
        shared.rib.received_from(peer.address)
    }

    /// Adds a line to the appliance's log.
    fn log(&self, line: String) {
        self.lock().logs.push(line);
    }

    /// `clear ip bgp *`: every session is reset.
    fn reset_all(&self) {
        self.resets.send_modify(|n| *n += 1);
    }

    /// `clear ip bgp * soft`: every session asks for its peer's routes
    /// again and resends ours, without a reset.
    fn refresh_all(&self) {
        self.soft_resets.send_modify(|n| *n += 1);
    }
}

/// A running session task and its configuration channel.
struct Running {
    config: watch::Sender<PeerConfig>,
    task: JoinHandle<()>,
}

/// Follows the committed configuration until its sender is gone.
pub async fn serve(
    stack: LocalStack,
    dataplane: Arc<Dataplane>,
    bgp: Bgp,
    mut config: watch::Receiver<Config>,
) {
    let (originated, _) = watch::channel(Arc::new(Originated::default()));
    let mut sessions: BTreeMap<Ipv4Addr, Running> = BTreeMap::new();
    let mut tick = tokio::time::interval(INSTALL_EVERY);
    let mut next_originate = Instant::now();
    loop {
        let changed = tokio::select! {
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
                true
            }
            _ = tick.tick() => false,
        };
        // A commit that lands after the tick won the select is still in
        // what is read here: reconciling every time (only the neighbours
        // whose settings differ hear of it) misses none.
        let committed = config.borrow_and_update().clone();
        let router = committed.bgp.router.as_ref();
        reconcile(&bgp, &stack, &committed, &mut sessions, &originated);
        if changed || Instant::now() >= next_originate {
            next_originate = Instant::now() + ORIGINATE_EVERY;
            let wanted = Arc::new(router.map(|r| originate(r, &dataplane)).unwrap_or_default());
            originated.send_if_modified(|current| {
                let differs = **current != *wanted;
                if differs {
                    *current = wanted.clone();
                    bgp.lock().originated = wanted;
                }
                differs
            });
        }
        let (changes, logs) = {
            let mut shared = bgp.lock();
            (shared.rib.take_changes(), std::mem::take(&mut shared.logs))
        };
        logs.into_iter().for_each(|line| dataplane.log(line));
        if !changes.is_empty() {
            let changes = Arc::new(changes);
            let (to, batch) = (dataplane.clone(), changes.clone());
            let install = move || to.change_learned_routes(None, &batch);
            let outcome = tokio::task::spawn_blocking(install).await;
            if !matches!(outcome, Ok(Ok(()))) {
                // Tried again at the next tick, as the RIB is then.
                bgp.lock().rib.retry(&changes);
            }
            if let Ok(Err(e)) = outcome {
                dataplane_log(&dataplane, &e);
            }
        }
    }
    sessions.into_values().for_each(|s| s.task.abort());
}

fn dataplane_log(dataplane: &Dataplane, problem: &str) {
    dataplane.log(format!("%BGP-3-INSTALL: routes not installed: {problem}"));
}

/// Starts, changes and stops the session tasks to match `config`.
fn reconcile(
    bgp: &Bgp,
    stack: &LocalStack,
    config: &Config,
    sessions: &mut BTreeMap<Ipv4Addr, Running>,
    originated: &watch::Sender<Arc<Originated>>,
) {
    let policy = {
        let mut shared = bgp.lock();
        if !shared.policy.is_of(config) {
            shared.policy = Arc::new(Policy::new(config));
        }
        shared.policy.clone()
    };
    let wanted = (config.bgp.router.as_ref()).map(|r| peer_configs(r, config, &policy));
    let wanted = wanted.unwrap_or_default();
    let gone: Vec<Ipv4Addr> = sessions
        .keys()
        .filter(|p| !wanted.contains_key(p))
        .copied()
        .collect();
    for peer in gone {
        // Its status and routes go now, so nothing it still receives
        // counts; the task sees its configuration gone and sends a Cease
        // (peer de-configured), or is stopped after [`GOODBYE`].
        bgp.lock().peers.remove(&peer);
        bgp.peer_down(peer);
        if let Some(Running { config, task }) = sessions.remove(&peer) {
            drop(config);
            tokio::spawn(async move {
                tokio::time::sleep(GOODBYE).await;
                task.abort();
            });
        }
    }
    {
        let mut shared = bgp.lock();
        shared.local = (config.bgp.router.as_ref()).map(|r| (r.asn, router_id(r, config)));
        for (peer, (peer_config, description)) in &wanted {
            let status = shared.peers.entry(*peer).or_insert_with(|| PeerStatus {
                remote_as: peer_config.settings.remote_as,
                description: None,
                policy: peer_config.policy.clone(),
                state: State::Idle,
                admin_down: peer_config.shutdown,
                prefix_limited: false,
                since: None,
                received: 0,
                sent: 0,
                peer: None,
                last_error: None,
                established_count: 0,
            });
            status.remote_as = peer_config.settings.remote_as;
            status.description = description.clone();
            status.policy = peer_config.policy.clone();
        }
    }
    for (peer, (peer_config, _)) in wanted {
        match sessions.get(&peer) {
            Some(running) => {
                running.config.send_if_modified(|current| {
                    let differs = *current != peer_config;
                    *current = peer_config.clone();
                    differs
                });
            }
            None => {
                let (sender, receiver) = watch::channel(peer_config);
                let inputs = Inputs {
                    config: receiver,
                    originated: originated.subscribe(),
                    resets: bgp.resets.subscribe(),
                    soft_resets: bgp.soft_resets.subscribe(),
                };
                let task = tokio::spawn(session::run(bgp.clone(), stack.clone(), peer, inputs));
                sessions.insert(
                    peer,
                    Running {
                        config: sender,
                        task,
                    },
                );
            }
        }
    }
}

/// Each neighbour's session settings and description.
fn peer_configs(
    router: &BgpRouter,
    config: &Config,
    policy: &Arc<Policy>,
) -> BTreeMap<Ipv4Addr, (PeerConfig, Option<String>)> {
    let id = router_id(router, config);
    (router.neighbors.iter())
        .filter_map(|(peer, n)| {
            let (keepalive, hold_time) = n.timers();
            let settings = Settings {
                local_as: router.asn,
                remote_as: n.remote_as?,
                router_id: id,
                hold_time,
                keepalive,
            };
            let peer_config = PeerConfig {
                settings,
                shutdown: n.shutdown,
                ipv4: router.ipv4.activated.contains(peer),
                policy: PeerPolicy {
                    inbound: n.inbound.clone(),
                    outbound: n.outbound.clone(),
                    maximum_prefix: n.maximum_prefix,
                    policy: policy.clone(),
                },
            };
            Some((*peer, (peer_config, n.description.clone())))
        })
        .collect()
}

/// `bgp router-id`, else the highest IPv4 address of an interface (IOS
/// prefers loopbacks; the appliance has none).
fn router_id(router: &BgpRouter, config: &Config) -> Ipv4Addr {
    router.router_id.unwrap_or_else(|| {
        (config.interfaces.values())
            .flat_map(|i| i.ipv4_addresses.iter().map(|a| a.addr()))
            .max()
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    })
}

/// What the speaker announces: the `network` prefixes the global table
/// has (from a source other than BGP), and the static or connected routes
/// `redistribute` names.
fn originate(router: &BgpRouter, dataplane: &Dataplane) -> Originated {
    let af = &router.ipv4;
    let mut prefixes = BTreeMap::new();
    dataplane.with_global_table(|table| {
        for (prefix, route) in table.configured_routes() {
            let redistributed = match (&route.kind, route.source) {
                (RouteKind::Connected { .. }, _) => Some(Redistribute::Connected),
                (RouteKind::Static { .. }, Source::Static) => Some(Redistribute::Static),
                _ => None,
            };
            if af.networks.contains(&prefix) {
                prefixes.insert(prefix, Origin::Igp);
            } else if redistributed.is_some_and(|r| af.redistribute.contains(&r)) {
                prefixes.insert(prefix, Origin::Incomplete);
            }
        }
    });
    Originated { prefixes }
}
