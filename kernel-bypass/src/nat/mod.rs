//! The NAT element of the packet path: NAT44 in IOS's model (inside and
//! outside interfaces, dynamic translation by access list to an
//! interface's address or a pool, static translations, elastic IPs with a
//! rate limit), per VRF. `node` has the packet semantics, `table` the
//! translation table, `mappings` the endpoint-independent allocation of
//! public endpoints, `rewrite` the header and checksum rewriting, and
//! `address` what those three need of an address family (the load
//! balancer's IPv6 virtual servers use them too). With no
//! interface marked inside or outside it registers no node.
//!
//! Commands: `show ip nat translations [verbose]`, `show ip nat
//! statistics`, `show ip nat elastic-ip`, `clear ip nat translation *`,
//! `clear ip nat translation inside A.B.C.D`.

mod address;
mod mappings;
mod node;
mod rewrite;
mod sync;
mod table;

pub use address::{Address, Endpoint};
pub use mappings::Mappings;
pub use node::{In2Out, KeyHasher, NatPath, NatState, Out2In};
pub use rewrite::{rewrite, rewrite_icmp_error, End, Flow, Ipv4Flow};
pub use sync::SyncedTranslations;
pub use table::{Released, Translation, TranslationInfo, TranslationTable};

use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Family, Point};
use crate::firewall::CompiledAcl;
use crate::pipeline::Shared;
use crate::sessions::Timeouts;
use crate::snapshot::{Snapshot, VrfId, GLOBAL_TABLE};
use crate::state_sync::Kind;
use crate::token_bucket::TokenBucket;
use crate::wire::{PROTO_ICMP, PROTO_TCP, PROTO_UDP};
use grammar::config::{Config, Family as AclFamily, NatPolice, NatTarget, StaticProtocol};
use grammar::Args;
use node::{DynamicRule, Eip, NatCounters, StaticEntry, StaticMap, TranslationPrefetch, IN, OUT};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// Where NAT runs among a point's nodes: destination translation before
/// anything else at pre-routing, source translation after the firewall
/// (order 100) at post-routing, so the firewall sees inside addresses in
/// both directions.
const OUT2IN_ORDER: u16 = 50;
const IN2OUT_ORDER: u16 = 200;

/// What the show commands read of the last compiled configuration.
#[derive(Default)]
struct Published {
    path: Option<Arc<NatPath>>,
    vrfs: Vec<Option<String>>,
    /// (global address, its EIP) in address order.
    eips: Vec<(Ipv4Addr, Arc<Eip>)>,
    /// (pool or interface, addresses) of the dynamic rules.
    targets: Vec<(String, usize)>,
    interfaces: Vec<(String, &'static str)>,
}

/// Each global address's police settings and EIP.
type EipsByAddress = HashMap<Ipv4Addr, (Option<NatPolice>, Arc<Eip>)>;

pub struct Nat {
    shared: Arc<Shared>,
    state: Arc<NatState>,
    /// EIPs by global address and police settings: counters kept across commits.
    eips: Mutex<EipsByAddress>,
    published: Mutex<Published>,
}

impl Nat {
    pub fn new(shared: Arc<Shared>) -> Nat {
        let max = grammar::config::DEFAULT_MAX_TRANSLATIONS as usize;
        let state = Arc::new(NatState::new(max));
        (shared.sync).register(SyncedTranslations::new(Kind::Nat, state.clone()));
        Nat {
            shared,
            state,
            eips: Mutex::default(),
            published: Mutex::default(),
        }
    }

    fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The EIP of `global`: the same one while its police settings stay.
    fn eip(&self, global: Ipv4Addr, police: Option<NatPolice>) -> Arc<Eip> {
        let mut eips = self.eips.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((kept, eip)) = eips.get(&global) {
            if *kept == police {
                return eip.clone();
            }
        }
        let bucket = |p: NatPolice| {
            Mutex::new(TokenBucket::per_second(
                p.bits_per_second / 8,
                p.burst_bytes,
            ))
        };
        let eip = Arc::new(Eip {
            police: police.map(|p| [bucket(p), bucket(p)]),
            counters: Default::default(),
        });
        eips.insert(global, (police, eip.clone()));
        eip
    }

    fn show_translations(&self, verbose: bool) -> String {
        let published = self.published();
        let Some(path) = published.path.clone() else {
            return String::new();
        };
        let vrf_name = |v: VrfId| published.vrfs.get(usize::from(v)).cloned().flatten();
        let mut out = format!(
            "{:<4}{:<22}{:<22}{:<22}{}\n",
            "Pro", "Inside global", "Inside local", "Outside local", "Outside global"
        );
        let mut statics: Vec<_> = path.statics_by_inside.values().collect();
        statics.sort_by_key(|s| (s.global, s.inside));
        for s in statics {
            let (global, local) = match s.protocol {
                0 => (s.global.addr.to_string(), s.inside.addr.to_string()),
                _ => (endpoint(s.global), endpoint(s.inside)),
            };
            let _ = writeln!(
                out,
                "{:<4}{global:<22}{local:<22}{:<22}---",
                protocol_name(s.protocol),
                "---"
            );
        }
        let now = self.shared.now_secs();
        let mut translations = self
            .state
            .table
            .translations((now, &path.timeouts), &|_| true);
        translations.sort_by_key(|t| (t.translation.public, t.translation.remote));
        for t in &translations {
            let tr = &t.translation;
            let remote = endpoint(tr.remote);
            let _ = writeln!(
                out,
                "{:<4}{:<22}{:<22}{remote:<22}{remote}",
                protocol_name(tr.protocol),
                endpoint(tr.public),
                endpoint(tr.inside),
            );
            if verbose {
                let _ = writeln!(
                    out,
                    "    create {}s, use {}s, timeout {}s{}{}",
                    t.age_secs,
                    t.idle_secs,
                    timeout_of(tr.protocol, t.tcp, &path.timeouts),
                    t.tcp.map_or(String::new(), |s| format!(", {}", s.name())),
                    vrf_name(tr.inside_vrf).map_or(String::new(), |v| format!(", vrf {v}")),
                );
            }
        }
        out
    }

    fn show_statistics(&self) -> String {
        let published = self.published();
        let (ports, addresses) = self.state.mappings.counts();
        let mut out = format!(
            "Total active translations: {} ({} static, {} dynamic; maximum {}, {} KiB)\n",
            published
                .path
                .as_ref()
                .map_or(0, |p| p.statics_by_inside.len())
                + self.state.table.len(),
            published
                .path
                .as_ref()
                .map_or(0, |p| p.statics_by_inside.len()),
            self.state.table.len(),
            self.state.table.max(),
            self.state.table.memory_bytes() / 1024,
        );
        let side = |which: &str| {
            let names: Vec<_> = (published.interfaces.iter())
                .filter(|(_, s)| *s == which)
                .map(|(n, _)| n.as_str())
                .collect();
            names.join(", ")
        };
        let _ = writeln!(out, "Outside interfaces:\n  {}", side("outside"));
        let _ = writeln!(out, "Inside interfaces:\n  {}", side("inside"));
        let _ = writeln!(
            out,
            "Mappings: {ports} endpoint-independent port mappings, {addresses} addresses bound"
        );
        for (target, n) in &published.targets {
            let _ = writeln!(out, "  {target}: {n} addresses");
        }
        for (what, n) in NatCounters::rows(&self.state.counters) {
            let _ = writeln!(out, "{what}: {n}");
        }
        out
    }

    fn show_elastic_ips(&self) -> String {
        let published = self.published();
        let mut out = String::from(
            "Elastic IP       Police bit/s  In packets  In bytes      In policed  Out packets Out bytes     Out policed\n",
        );
        for (global, eip) in &published.eips {
            let rate = {
                let eips = self.eips.lock().unwrap_or_else(|p| p.into_inner());
                eips.get(global)
                    .and_then(|(p, _)| *p)
                    .map_or("-".to_string(), |p| p.bits_per_second.to_string())
            };
            let c = |d: usize, i: usize| eip.counters.total(|c| &c[d][i]);
            let _ = writeln!(
                out,
                "{:<17}{rate:<14}{:<12}{:<14}{:<12}{:<12}{:<14}{}",
                global.to_string(),
                c(IN, 0),
                c(IN, 1),
                c(IN, 2),
                c(OUT, 0),
                c(OUT, 1),
                c(OUT, 2)
            );
        }
        out
    }

    /// `clear ip nat translation *|inside A.B.C.D`.
    fn clear(&self, inside: Option<Ipv4Addr>) -> usize {
        let mut released = Vec::new();
        let doomed = |t: &Translation| inside.is_none_or(|a| t.inside.addr == a);
        self.state.table.remove_where(&doomed, &mut released);
        let n = released.len();
        self.state.release(released);
        n
    }
}

fn endpoint(e: Endpoint) -> String {
    format!("{}:{}", e.addr, e.port)
}

fn protocol_name(protocol: u8) -> String {
    match protocol {
        0 => "---".to_string(),
        PROTO_TCP => "tcp".to_string(),
        PROTO_UDP => "udp".to_string(),
        PROTO_ICMP => "icmp".to_string(),
        n => n.to_string(),
    }
}

fn timeout_of(protocol: u8, tcp: Option<crate::sessions::TcpState>, t: &Timeouts) -> u32 {
    match (protocol, tcp) {
        (_, Some(state)) => t.tcp(state),
        (PROTO_UDP, _) => t.udp_idle,
        _ => t.icmp_idle,
    }
}

impl DataplaneElement for Nat {
    fn table_sizes(&self, out: &mut Vec<crate::stats::TableSize>) {
        out.push(("nat_translations", self.state.table.len()));
    }

    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let nat = &config.nat;
        self.state.table.set_max(nat.max_translations() as usize);
        let mut published = Published {
            vrfs: snap.tables.iter().map(|t| t.vrf.clone()).collect(),
            ..Published::default()
        };
        if nat.sides.is_empty() {
            *self.published() = published;
            return Ok(());
        }
        let vrf_id = |name: &Option<String>| {
            snap.vrf_id(name.as_deref())
                .ok_or_else(|| format!("VRF {} does not exist", name.as_deref().unwrap_or("")))
        };
        let mut interfaces = Vec::new();
        for iface in snap.interfaces.iter().flatten() {
            let Some(side) = nat.sides.get(&iface.name) else {
                continue;
            };
            let id = usize::from(iface.id);
            if interfaces.len() <= id {
                interfaces.resize(id + 1, None);
            }
            interfaces[id] = Some((*side, iface.vrf));
            published.interfaces.push((iface.name.clone(), side.word()));
        }
        let mut statics_by_inside = StaticMap::default();
        let mut statics_by_global = StaticMap::default();
        let mut reserved = HashSet::new();
        let mut public = Vec::new();
        for ((vrf, protocol, local, lport), s) in &nat.statics {
            let protocol = match protocol {
                StaticProtocol::Any => 0,
                StaticProtocol::Tcp => PROTO_TCP,
                StaticProtocol::Udp => PROTO_UDP,
            };
            let eip = (protocol == 0).then(|| self.eip(s.global, s.police));
            if let Some(eip) = &eip {
                published.eips.push((s.global, eip.clone()));
            }
            let entry = Arc::new(StaticEntry {
                inside: Endpoint::new(*local, *lport),
                inside_vrf: vrf_id(vrf)?,
                global: Endpoint::new(s.global, s.global_port),
                outside_vrf: GLOBAL_TABLE,
                protocol,
                eip,
            });
            statics_by_inside.insert((entry.inside_vrf, protocol, *local, *lport), entry.clone());
            statics_by_global.insert((GLOBAL_TABLE, protocol, s.global, s.global_port), entry);
            if protocol != 0 {
                reserved.insert((protocol, s.global, s.global_port));
            }
            public.push((GLOBAL_TABLE, s.global));
        }
        let mut dynamic = Vec::new();
        for ((vrf, acl), rule) in &nat.dynamic {
            let list = config
                .access_lists
                .list(AclFamily::Ipv4, acl)
                .ok_or_else(|| format!("access list {acl} is not defined"))?;
            let mut hits = |_| Arc::default();
            let acl = Arc::new(CompiledAcl::new(acl, AclFamily::Ipv4, list, &mut hits));
            let (name, addresses, outside_vrf) = match &rule.target {
                NatTarget::Interface(name) => {
                    let iface = snap.interfaces.iter().flatten().find(|i| &i.name == name);
                    let first = iface.and_then(|i| i.addresses.first()).map(|a| a.addr());
                    let vrf = iface.map_or(GLOBAL_TABLE, |i| i.vrf);
                    (
                        format!("interface {name}"),
                        first.into_iter().collect(),
                        vrf,
                    )
                }
                NatTarget::Pool(pool) => {
                    let p = nat
                        .pools
                        .get(pool)
                        .ok_or_else(|| format!("pool {pool} is not defined"))?;
                    (
                        format!("pool {pool}"),
                        p.addresses().collect::<Vec<_>>(),
                        GLOBAL_TABLE,
                    )
                }
            };
            published.targets.push((name, addresses.len()));
            public.extend(addresses.iter().map(|a| (outside_vrf, *a)));
            dynamic.push(DynamicRule {
                vrf: vrf_id(vrf)?,
                acl,
                addresses,
                overload: rule.overload,
                outside_vrf,
            });
        }
        published.eips.sort_by_key(|(a, _)| *a);
        public.sort_unstable();
        public.dedup();
        for (vrf, addr) in &public {
            snap.publish(*vrf, (*addr).into());
        }
        let path = Arc::new(NatPath {
            interfaces,
            statics_by_inside,
            statics_by_global,
            dynamic,
            reserved,
            public,
            timeouts: Timeouts::of(&config.inspect.effective()),
            state: self.state.clone(),
            log: self.shared.clone(),
        });
        let features = &mut snap.features;
        features.register(
            Family::Ipv4,
            Point::PreRouting,
            OUT2IN_ORDER,
            Arc::new(Out2In(path.clone())),
        );
        features.register(
            Family::Ipv4,
            Point::PostRouting,
            IN2OUT_ORDER,
            Arc::new(In2Out(path.clone())),
        );
        features.register_prefetch(Arc::new(TranslationPrefetch(path.clone())));
        published.path = Some(path);
        *self.published() = published;
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        let (translations, statistics, eips, clear) =
            (self.clone(), self.clone(), self.clone(), self);
        vec![
            ElementCommand::Show {
                syntax: "ip nat translations [verbose]",
                help: &[
                    "IP information",
                    "NAT information",
                    "Translation entries",
                    "With ages, timeouts and VRFs",
                ],
                run: Box::new(move |args: &Args| {
                    translations.show_translations(args.has("verbose"))
                }),
            },
            ElementCommand::Show {
                syntax: "ip nat statistics",
                help: &[
                    "IP information",
                    "NAT information",
                    "Translation statistics",
                ],
                run: Box::new(move |_| statistics.show_statistics()),
            },
            ElementCommand::Show {
                syntax: "ip nat elastic-ip",
                help: &[
                    "IP information",
                    "NAT information",
                    "One-to-one translations: traffic and policing",
                ],
                run: Box::new(move |_| eips.show_elastic_ips()),
            },
            ElementCommand::Exec {
                syntax: "clear ip nat translation (*$all|inside A.B.C.D$inside)",
                help: &[
                    "Reset functions",
                    "IP",
                    "NAT",
                    "Translation entries",
                    "Every dynamic translation",
                    "The translations of one inside address",
                    "Inside local address",
                ],
                run: Box::new(move |args: &Args| {
                    let n = clear.clear(args.ipv4("inside"));
                    Ok(format!("{n} translations cleared\n"))
                }),
            },
        ]
    }
}
