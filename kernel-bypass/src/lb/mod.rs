//! The load balancer element (IOS SLB): virtual servers (`ip slb
//! vserver`) spread their clients' flows over a server farm's reals by
//! Maglev consistent hashing (`maglev`), weights honoured, with sessions
//! that keep each flow on its backend (`node`). Reals leave the table when
//! their probe fails `fall` times in a row and return after `rise`
//! successes; the probes themselves run on the appliance's own stack (the
//! binary's `slb_probes` service), which reads [`LoadBalancer::probe_targets`]
//! and reports with [`LoadBalancer::report`]. A real taken out of service
//! (`no inservice`) gets no new flows and keeps its sessions. Virtual
//! servers are IPv4 or IPv6, each with reals of its own family; each
//! family has its own session and full-NAT tables and its own node.
//!
//! Commands: `show ip slb vserver`, `show ip slb reals`, `show ip slb
//! sessions`, `clear ip slb sessions`.

pub mod maglev;
mod node;

use crate::counters::PerWorker;
use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Family, Point};
use crate::nat::{Address, NatState, SyncedTranslations, TranslationTable};
use crate::pipeline::{source_towards, Shared};
use crate::sessions::{TcpState, Timeouts};
use crate::snapshot::{Snapshot, GLOBAL_TABLE};
use crate::state_sync::{Kind, StateSync};
use crate::wire::{PROTO_TCP, PROTO_UDP};
use grammar::config::{Config, ProbeSettings, SlbProtocol};
pub use node::SlbNode;
use node::{LbPath, RealHealth, RealPath, SessionPrefetch, VserverCounters, VserverPath};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

/// Before NAT (50) at pre-routing: a virtual server's packets are the
/// balancer's, whatever NAT would make of them.
const ORDER: u16 = 40;

/// A real of a farm: (farm, endpoint).
pub type RealKey = (String, SocketAddr);

/// What the probe service checks, and how.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    pub real: RealKey,
    pub address: SocketAddr,
    pub settings: ProbeSettings,
}

#[derive(Default)]
struct Published {
    /// The sessions' timeouts, once a virtual server is compiled.
    timeouts: Option<Timeouts>,
    probes: Vec<ProbeTarget>,
    vrfs: Vec<Option<String>>,
    /// (vserver, farm) in name order.
    vservers: Vec<(Arc<VserverPath>, String)>,
}

/// One family's sessions and full-NAT state, kept across commits.
struct Tables<A: Address> {
    sessions: Arc<TranslationTable<A>>,
    snat: Arc<NatState<A>>,
}

/// A session of either family, as the show commands list it.
struct Session {
    protocol: u8,
    client: SocketAddr,
    vip: SocketAddr,
    real: SocketAddr,
    tcp: Option<TcpState>,
    age_secs: u32,
    idle_secs: u32,
}

impl<A: Address> Tables<A> {
    /// Empty tables, which the HA pair keeps alike (`sync`).
    fn new(max: usize, sync: &StateSync) -> Tables<A> {
        let tables = Tables {
            sessions: Arc::new(TranslationTable::by_remote(max)),
            snat: Arc::new(NatState::new(max)),
        };
        sync.register(SyncedTranslations::new(
            Kind::SlbSession,
            tables.sessions.clone(),
        ));
        sync.register(SyncedTranslations::new(Kind::SlbSnat, tables.snat.clone()));
        tables
    }

    fn set_max(&self, max: usize) {
        self.sessions.set_max(max);
        self.snat.table.set_max(max);
    }

    /// An empty path over these tables.
    fn path(&self, timeouts: Timeouts, sync: &Arc<StateSync>) -> LbPath<A> {
        LbPath::new(
            self.sessions.clone(),
            self.snat.clone(),
            timeouts,
            sync.clone(),
        )
    }

    /// Removes every session; how many there were.
    fn clear(&self) -> usize {
        let mut released = Vec::new();
        self.sessions.remove_where(&|_| true, &mut released);
        let mut snat = Vec::new();
        self.snat.table.remove_where(&|_| true, &mut snat);
        self.snat.release(snat);
        released.len()
    }

    fn live(&self, times: (u32, &Timeouts), out: &mut Vec<Session>) {
        let live = self.sessions.translations(times, &|_| true).into_iter();
        out.extend(live.map(|t| Session {
            protocol: t.translation.protocol,
            client: t.translation.remote.socket(),
            vip: t.translation.public.socket(),
            real: t.translation.inside.socket(),
            tcp: t.tcp,
            age_secs: t.age_secs,
            idle_secs: t.idle_secs,
        }));
    }
}

pub struct LoadBalancer {
    shared: Arc<Shared>,
    v4: Tables<Ipv4Addr>,
    v6: Tables<Ipv6Addr>,
    health: Mutex<HashMap<RealKey, Arc<RealHealth>>>,
    counters: Mutex<HashMap<String, Arc<PerWorker<VserverCounters>>>>,
    published: Mutex<Published>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LoadBalancer {
    pub fn new(shared: Arc<Shared>) -> LoadBalancer {
        let max = grammar::config::DEFAULT_MAX_SESSIONS as usize;
        LoadBalancer {
            v4: Tables::new(max, &shared.sync),
            v6: Tables::new(max, &shared.sync),
            shared,
            health: Mutex::default(),
            counters: Mutex::default(),
            published: Mutex::default(),
        }
    }

    /// The reals to probe (those of farms with a probe, in the global
    /// table: the appliance's own stack lives there).
    pub fn probe_targets(&self) -> Vec<ProbeTarget> {
        lock(&self.published).probes.clone()
    }

    /// A probe's result: after `rise` successes in a row a real is up,
    /// after `fall` failures down; a change rebuilds the lookup tables.
    pub fn report(&self, real: &RealKey, ok: bool, detail: &str) {
        let published = lock(&self.published);
        let Some(target) = published.probes.iter().find(|t| &t.real == real) else {
            return; // no longer configured
        };
        let Some(health) = lock(&self.health).get(real).cloned() else {
            return;
        };
        let up = health.up.load(Ordering::Relaxed);
        let flipped = {
            let mut streak = lock(&health.streak);
            streak.0 = match (ok, streak.0) {
                (true, n) if n > 0 => n.saturating_add(1),
                (true, _) => 1,
                (false, n) if n < 0 => n.saturating_sub(1),
                (false, _) => -1,
            };
            streak.1 = detail.to_string();
            let s = &target.settings;
            (ok && !up && streak.0 >= s.rise as i32) || (!ok && up && -streak.0 >= s.fall as i32)
        };
        if !flipped {
            return;
        }
        health.up.store(ok, Ordering::Relaxed);
        let (farm, e) = real;
        let state = if ok { "up" } else { "down" };
        self.shared.log.record(self.shared.now_secs(), || {
            format!("%SLB-4-REAL: real {e} of serverfarm {farm} is {state} ({detail})")
        });
        for (vs, _) in &published.vservers {
            if vs.reals.iter().any(|r| Arc::ptr_eq(&r.health, &health)) {
                vs.rebuild();
            }
        }
    }

    fn health_of(&self, real: RealKey) -> Arc<RealHealth> {
        lock(&self.health).entry(real).or_default().clone()
    }

    fn counters_of(&self, vserver: &str) -> Arc<PerWorker<VserverCounters>> {
        lock(&self.counters)
            .entry(vserver.to_string())
            .or_default()
            .clone()
    }

    /// The live sessions of both families.
    fn sessions(&self) -> Vec<Session> {
        let Some(timeouts) = lock(&self.published).timeouts else {
            return Vec::new();
        };
        let (now, mut out) = (self.shared.now_secs(), Vec::new());
        self.v4.live((now, &timeouts), &mut out);
        self.v6.live((now, &timeouts), &mut out);
        out
    }

    /// Live sessions per (virtual endpoint, backend endpoint).
    fn connections(&self) -> HashMap<(SocketAddr, SocketAddr), usize> {
        let mut out = HashMap::new();
        for s in self.sessions() {
            *out.entry((s.vip, s.real)).or_default() += 1;
        }
        out
    }

    fn show_vservers(&self) -> String {
        let connections = self.connections();
        let published = lock(&self.published);
        let mut out = format!(
            "{:<16}{:<6}{:<24}{:<16}{:<13}{:<10}{:<12}{}\n",
            "slb vserver",
            "prot",
            "virtual",
            "serverfarm",
            "state",
            "conns",
            "packets",
            "no backend"
        );
        for (vs, farm) in &published.vservers {
            let conns: usize = (connections.iter())
                .filter(|((vip, _), _)| *vip == vs.vip)
                .map(|(_, n)| n)
                .sum();
            let vrf = published.vrfs.get(usize::from(vs.vrf)).cloned().flatten();
            let virtual_ = format!(
                "{}{}",
                vs.vip,
                vrf.map_or(String::new(), |v| format!(" vrf {v}"))
            );
            let _ = writeln!(
                out,
                "{:<16}{:<6}{:<24}{:<16}{:<13}{:<10}{:<12}{}",
                vs.name,
                if vs.protocol == PROTO_TCP {
                    "TCP"
                } else {
                    "UDP"
                },
                virtual_,
                farm,
                if vs.lookup.read().map(|l| l.is_some()).unwrap_or(false) {
                    "OPERATIONAL"
                } else {
                    "NO-REALS"
                },
                conns,
                vs.counters.total(|c| &c.packets),
                vs.counters.total(|c| &c.no_backend),
            );
        }
        out
    }

    fn show_reals(&self) -> String {
        let connections = self.connections();
        let published = lock(&self.published);
        let mut out = format!(
            "{:<24}{:<16}{:<8}{:<14}{:<8}{}\n",
            "real", "farm name", "weight", "state", "conns", "probe"
        );
        let mut seen = std::collections::HashSet::new();
        for (vs, farm) in &published.vservers {
            for r in &vs.reals {
                if !seen.insert((farm.clone(), r.endpoint)) {
                    continue;
                }
                let conns: usize = (connections.iter())
                    .filter(|((_, real), _)| *real == r.endpoint)
                    .map(|(_, n)| n)
                    .sum();
                let state = match (r.inservice, r.health.up.load(Ordering::Relaxed)) {
                    (false, _) => "OUTOFSERVICE",
                    (true, true) => "OPERATIONAL",
                    (true, false) => "FAILED",
                };
                let probe = lock(&r.health.streak).1.clone();
                let _ = writeln!(
                    out,
                    "{:<24}{:<16}{:<8}{:<14}{:<8}{probe}",
                    r.endpoint.to_string(),
                    farm,
                    r.weight,
                    state,
                    conns
                );
            }
        }
        out
    }

    fn show_sessions(&self) -> String {
        if lock(&self.published).timeouts.is_none() {
            return String::new();
        }
        let mut sessions = self.sessions();
        sessions.sort_by_key(|s| (s.vip, s.client));
        let mut out = format!("{} sessions\n", sessions.len());
        for s in sessions {
            let _ = writeln!(
                out,
                "{} {} -> {} -> real {}{} age {}s idle {}s",
                if s.protocol == PROTO_TCP {
                    "tcp"
                } else {
                    "udp"
                },
                s.client,
                s.vip,
                s.real,
                s.tcp.map_or(String::new(), |s| format!(" {}", s.name())),
                s.age_secs,
                s.idle_secs
            );
        }
        out
    }
}

impl DataplaneElement for LoadBalancer {
    fn table_sizes(&self, out: &mut Vec<crate::stats::TableSize>) {
        let sessions = self.v4.sessions.len() + self.v6.sessions.len();
        out.push(("slb_sessions", sessions));
    }

    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let slb = &config.slb;
        let max = config.inspect.effective().max_sessions as usize;
        self.v4.set_max(max);
        self.v6.set_max(max);
        let mut published = Published {
            vrfs: snap.tables.iter().map(|t| t.vrf.clone()).collect(),
            ..Published::default()
        };
        let timeouts = Timeouts::of(&config.inspect.effective());
        let (mut path4, mut path6) = (
            self.v4.path(timeouts, &self.shared.sync),
            self.v6.path(timeouts, &self.shared.sync),
        );
        for (name, vs) in slb.vservers.iter().filter(|(_, v)| v.inservice) {
            let (Some((addr, protocol, port)), Some(farm_name)) =
                (vs.virtual_address, vs.farm.as_ref())
            else {
                continue; // the commit checks refuse this
            };
            let vrf = snap
                .vrf_id(vs.vrf.as_deref())
                .ok_or_else(|| format!("slb vserver {name}: VRF does not exist"))?;
            let farm = slb.farms.get(farm_name).ok_or_else(|| {
                format!("slb vserver {name}: serverfarm {farm_name} is not defined")
            })?;
            let probe = farm
                .probe
                .as_ref()
                .and_then(|p| slb.probes.get(p))
                .map(|p| p.effective());
            let mut reals = Vec::new();
            for ((real_addr, real_port), real) in &farm.reals {
                let real_addr = *real_addr;
                if real_addr.is_ipv4() != addr.is_ipv4() {
                    return Err(format!("slb vserver {name}: real {real_addr} of serverfarm {farm_name} is not in the family of virtual address {addr}"));
                }
                let endpoint = SocketAddr::new(real_addr, real_port.unwrap_or(port));
                let key = (farm_name.clone(), endpoint);
                let snat = match farm.nat_client {
                    true => Some(
                        source_towards(snap, vrf, real_addr)
                            // Clients stand behind a routable address.
                            .filter(|a| !matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local()))
                            .ok_or_else(|| format!("serverfarm {farm_name}: no address of the appliance towards {real_addr} for nat client"))?,
                    ),
                    false => None,
                };
                if let (Some(settings), true) = (&probe, vrf == GLOBAL_TABLE) {
                    let probe_port = settings.port.unwrap_or(endpoint.port());
                    published.probes.push(ProbeTarget {
                        real: key.clone(),
                        address: SocketAddr::new(real_addr, probe_port),
                        settings: settings.clone(),
                    });
                }
                reals.push(RealPath {
                    endpoint,
                    weight: real.weight,
                    inservice: real.inservice,
                    health: self.health_of(key),
                    snat,
                });
            }
            let protocol = match protocol {
                SlbProtocol::Tcp => PROTO_TCP,
                SlbProtocol::Udp => PROTO_UDP,
            };
            let vserver = Arc::new(VserverPath {
                name: name.clone(),
                vrf,
                protocol,
                vip: SocketAddr::new(addr, port),
                reals,
                full_nat: farm.nat_client,
                table_size: slb.table_size(),
                lookup: RwLock::new(None),
                counters: self.counters_of(name),
            });
            vserver.rebuild();
            snap.publish(vrf, addr);
            match addr {
                IpAddr::V4(_) => path4.add(&vserver),
                IpAddr::V6(_) => path6.add(&vserver),
            }
            published.vservers.push((vserver, farm_name.clone()));
        }
        published.probes.dedup_by(|a, b| a.real == b.real);
        if !published.vservers.is_empty() {
            published.timeouts = Some(timeouts);
        }
        register(snap, Family::Ipv4, path4);
        register(snap, Family::Ipv6, path6);
        *lock(&self.published) = published;
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        let (vservers, reals, sessions, clear) = (self.clone(), self.clone(), self.clone(), self);
        vec![
            ElementCommand::Show {
                syntax: "ip slb vserver",
                help: &["IP information", "Server load balancing", "Virtual servers"],
                run: Box::new(move |_| vservers.show_vservers()),
            },
            ElementCommand::Show {
                syntax: "ip slb reals",
                help: &[
                    "IP information",
                    "Server load balancing",
                    "Real servers: state, connections, probe results",
                ],
                run: Box::new(move |_| reals.show_reals()),
            },
            ElementCommand::Show {
                syntax: "ip slb sessions",
                help: &[
                    "IP information",
                    "Server load balancing",
                    "Sessions: client, virtual server, real",
                ],
                run: Box::new(move |_| sessions.show_sessions()),
            },
            ElementCommand::Exec {
                syntax: "clear ip slb sessions",
                help: &[
                    "Reset functions",
                    "IP",
                    "Server load balancing",
                    "Every session",
                ],
                run: Box::new(move |_| {
                    let n = clear.v4.clear() + clear.v6.clear();
                    Ok(format!("{n} sessions cleared\n"))
                }),
            },
        ]
    }
}

/// Runs the family's node at pre-routing if it has virtual servers.
fn register<A: Address>(snap: &mut Snapshot, family: Family, path: LbPath<A>) {
    if !path.vservers.is_empty() {
        let path = Arc::new(path);
        let node = Arc::new(SlbNode(path.clone()));
        snap.features
            .register(family, Point::PreRouting, ORDER, node);
        snap.features
            .register_prefetch(Arc::new(SessionPrefetch(path)));
    }
}
