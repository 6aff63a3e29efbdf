//! The load balancer element (IOS SLB): virtual servers (`ip slb
//! vserver`) spread their clients' flows over a server farm's reals by
//! Maglev consistent hashing (`maglev`), weights honoured, with sessions
//! that keep each flow on its backend (`node`). Reals leave the table when
//! their probe fails `fall` times in a row and return after `rise`
//! successes; the probes themselves run on the appliance's own stack (the
//! binary's `slb_probes` service), which reads [`LoadBalancer::probe_targets`]
//! and reports with [`LoadBalancer::report`]. A real taken out of service
//! (`no inservice`) gets no new flows and keeps its sessions.
//!
//! Commands: `show ip slb vserver`, `show ip slb reals`, `show ip slb
//! sessions`, `clear ip slb sessions`.

pub mod maglev;
mod node;

use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Family, Point};
use crate::nat::{Endpoint, NatState, TranslationTable};
use crate::pipeline::{interface_towards, Shared};
use crate::sessions::Timeouts;
use crate::snapshot::{Snapshot, GLOBAL_TABLE};
use crate::wire::{PROTO_TCP, PROTO_UDP};
use grammar::config::{Config, ProbeSettings, SlbProtocol};
pub use node::SlbNode;
use node::{LbPath, RealHealth, RealPath, SessionPrefetch, VserverCounters, VserverPath};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

/// Before NAT (50) at pre-routing: a virtual server's packets are the
/// balancer's, whatever NAT would make of them.
const ORDER: u16 = 40;

/// A real of a farm: (farm, endpoint).
pub type RealKey = (String, Endpoint);

/// What the probe service checks, and how.
#[derive(Clone, Debug)]
pub struct ProbeTarget {
    pub real: RealKey,
    pub address: SocketAddr,
    pub settings: ProbeSettings,
}

#[derive(Default)]
struct Published {
    path: Option<Arc<LbPath>>,
    probes: Vec<ProbeTarget>,
    vrfs: Vec<Option<String>>,
    /// (vserver, farm) in name order.
    vservers: Vec<(Arc<VserverPath>, String)>,
}

pub struct LoadBalancer {
    shared: Arc<Shared>,
    sessions: Arc<TranslationTable>,
    snat: Arc<NatState>,
    health: Mutex<HashMap<RealKey, Arc<RealHealth>>>,
    counters: Mutex<HashMap<String, Arc<VserverCounters>>>,
    published: Mutex<Published>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LoadBalancer {
    pub fn new(shared: Arc<Shared>) -> LoadBalancer {
        let max = grammar::config::DEFAULT_MAX_SESSIONS as usize;
        LoadBalancer {
            shared,
            sessions: Arc::new(TranslationTable::by_remote(max)),
            snat: Arc::new(NatState::new(max)),
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
            format!(
                "%SLB-4-REAL: real {}:{} of serverfarm {farm} is {state} ({detail})",
                e.addr, e.port
            )
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

    fn counters_of(&self, vserver: &str) -> Arc<VserverCounters> {
        lock(&self.counters)
            .entry(vserver.to_string())
            .or_default()
            .clone()
    }

    /// Live sessions per (virtual endpoint, backend endpoint).
    fn connections(&self) -> HashMap<(Endpoint, Endpoint), usize> {
        let published = lock(&self.published);
        let Some(path) = published.path.clone() else {
            return HashMap::new();
        };
        drop(published);
        let now = self.shared.now_secs();
        let mut out = HashMap::new();
        for t in self.sessions.translations((now, &path.timeouts), &|_| true) {
            *out.entry((t.translation.public, t.translation.inside))
                .or_default() += 1;
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
                "{}:{}{}",
                vs.vip.addr,
                vs.vip.port,
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
                vs.counters.packets.load(Ordering::Relaxed),
                vs.counters.no_backend.load(Ordering::Relaxed),
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
                    format!("{}:{}", r.endpoint.addr, r.endpoint.port),
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
        let published = lock(&self.published);
        let Some(path) = published.path.clone() else {
            return String::new();
        };
        drop(published);
        let now = self.shared.now_secs();
        let mut sessions = self.sessions.translations((now, &path.timeouts), &|_| true);
        sessions.sort_by_key(|t| (t.translation.public, t.translation.remote));
        let mut out = format!("{} sessions\n", sessions.len());
        for t in sessions {
            let tr = t.translation;
            let _ = writeln!(
                out,
                "{} {}:{} -> {}:{} -> real {}:{}{} age {}s idle {}s",
                if tr.protocol == PROTO_TCP {
                    "tcp"
                } else {
                    "udp"
                },
                tr.remote.addr,
                tr.remote.port,
                tr.public.addr,
                tr.public.port,
                tr.inside.addr,
                tr.inside.port,
                t.tcp.map_or(String::new(), |s| format!(" {}", s.name())),
                t.age_secs,
                t.idle_secs
            );
        }
        out
    }
}

impl DataplaneElement for LoadBalancer {
    fn table_sizes(&self, out: &mut Vec<crate::stats::TableSize>) {
        out.push(("slb_sessions", self.sessions.len()));
    }

    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let slb = &config.slb;
        let max = config.inspect.effective().max_sessions as usize;
        self.sessions.set_max(max);
        self.snat.table.set_max(max);
        let mut published = Published {
            vrfs: snap.tables.iter().map(|t| t.vrf.clone()).collect(),
            ..Published::default()
        };
        let mut path = LbPath {
            vservers: Default::default(),
            vips: Default::default(),
            backends: Default::default(),
            snat_addresses: Default::default(),
            sessions: self.sessions.clone(),
            snat: self.snat.clone(),
            timeouts: Timeouts::of(&config.inspect.effective()),
        };
        for (name, vs) in slb.vservers.iter().filter(|(_, v)| v.inservice) {
            let (Some((addr, protocol, port)), Some(farm_name)) =
                (vs.virtual_address, vs.farm.as_ref())
            else {
                continue; // the commit checks refuse this
            };
            let IpAddr::V4(vip) = addr else {
                return Err(format!("slb vserver {name}: IPv6 virtual servers are not supported by the dataplane yet"));
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
                let IpAddr::V4(real_addr) = *real_addr else {
                    return Err(format!(
                        "serverfarm {farm_name}: IPv6 reals are not supported by the dataplane yet"
                    ));
                };
                let endpoint = Endpoint::new(real_addr, real_port.unwrap_or(port));
                let key = (farm_name.clone(), endpoint);
                let snat = match farm.nat_client {
                    true => Some(
                        interface_towards(snap, vrf, real_addr)
                            .and_then(|i| i.source_for(real_addr))
                            .ok_or_else(|| format!("serverfarm {farm_name}: no address of the appliance towards {real_addr} for nat client"))?,
                    ),
                    false => None,
                };
                if let (Some(settings), true) = (&probe, vrf == GLOBAL_TABLE) {
                    let probe_port = settings.port.unwrap_or(endpoint.port);
                    published.probes.push(ProbeTarget {
                        real: key.clone(),
                        address: SocketAddr::new(real_addr.into(), probe_port),
                        settings: settings.clone(),
                    });
                }
                path.backends.insert((vrf, real_addr));
                if let Some(s) = snat {
                    path.snat_addresses.insert((vrf, s));
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
                vip: Endpoint::new(vip, port),
                reals,
                full_nat: farm.nat_client,
                table_size: slb.table_size(),
                lookup: RwLock::new(None),
                counters: self.counters_of(name),
            });
            vserver.rebuild();
            snap.publish(vrf, vip);
            path.vips.insert((vrf, vip));
            path.vservers
                .insert((vrf, protocol, vip, port), vserver.clone());
            published.vservers.push((vserver, farm_name.clone()));
        }
        published.probes.dedup_by(|a, b| a.real == b.real);
        if !path.vservers.is_empty() {
            let path = Arc::new(path);
            snap.features.register(
                Family::Ipv4,
                Point::PreRouting,
                ORDER,
                Arc::new(SlbNode(path.clone())),
            );
            (snap.features).register_prefetch(Arc::new(SessionPrefetch(path.clone())));
            published.path = Some(path);
        }
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
                    let mut released = Vec::new();
                    clear.sessions.remove_where(&|_| true, &mut released);
                    let n = released.len();
                    let mut snat = Vec::new();
                    clear.snat.table.remove_where(&|_| true, &mut snat);
                    clear.snat.release(snat);
                    Ok(format!("{n} sessions cleared\n"))
                }),
            },
        ]
    }
}
