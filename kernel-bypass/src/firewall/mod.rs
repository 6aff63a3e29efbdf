//! The firewall element of the packet path: the interfaces' access lists
//! (`ip access-group`, `ipv6 traffic-filter`) and the session table that
//! makes them stateful (see `node` for the semantics), with `show
//! access-lists`, `show sessions`, `show logging`, `clear sessions` and
//! `clear access-list counters`. With no list bound to any interface it
//! registers no node, and the path pays nothing for it.

mod acl;
mod fragments;
mod node;

use crate::counters::PerWorker;
use crate::elements::{DataplaneElement, ElementCommand};
use crate::event_log::OncePerSecond;
use crate::features::{Family as PathFamily, Point};
use crate::pipeline::Shared;
use crate::sessions::{SessionInfo, SessionTable, Timeouts};
use crate::snapshot::Snapshot;
pub use acl::address_match;
pub use acl::CompiledAcl;
use fragments::FragmentMemory;
use grammar::config::{AccessLists, Config, Direction, Family};
use grammar::Args;
pub use node::flow_key;
use node::{Bindings, FirewallCounters, FirewallNode, SessionPrefetch, IN, OUT};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where the firewall runs among a point's nodes (lower runs first).
const ORDER: u16 = 100;

/// The compiled bound lists by (family, name).
type CompiledLists = HashMap<(Family, String), Arc<CompiledAcl>>;

/// A list's header and its rules' lines with their hit counters.
type ListRules = (String, Vec<(String, Arc<AtomicU64>)>);

/// What the show commands read of the last compiled configuration.
#[derive(Default)]
struct Published {
    /// (list header, [(rule line, its hits)]) in running-config order.
    lists: Vec<ListRules>,
    /// VRF names by id (None: the global table).
    vrfs: Vec<Option<String>>,
    timeouts: Option<Timeouts>,
}

pub struct Firewall {
    shared: Arc<Shared>,
    sessions: Arc<SessionTable>,
    counters: Arc<PerWorker<FirewallCounters>>,
    fragments: Arc<FragmentMemory>,
    /// Hit counters by (family, list, sequence), kept across commits.
    hits: Mutex<HashMap<(Family, String, u32), Arc<AtomicU64>>>,
    /// The compiled lists and the section they were compiled from.
    compiled: Mutex<Option<(Arc<AccessLists>, CompiledLists)>>,
    published: Mutex<Published>,
}

impl Firewall {
    pub fn new(shared: Arc<Shared>) -> Firewall {
        let max = grammar::config::Inspect::default().effective().max_sessions as usize;
        let sessions = Arc::new(SessionTable::new(max));
        shared.sync.register(sessions.clone());
        Firewall {
            shared,
            sessions,
            counters: Arc::default(),
            fragments: Arc::default(),
            hits: Mutex::default(),
            compiled: Mutex::default(),
            published: Mutex::default(),
        }
    }

    fn hits_of(&self, family: Family, name: &str, seq: u32) -> Arc<AtomicU64> {
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        hits.entry((family, name.to_string(), seq))
            .or_default()
            .clone()
    }

    /// The compiled form of every bound list, kept while the access-list
    /// section is the same one (a commit that changes nothing in it, a
    /// hostname say, does not rebuild 10,000 rules' classifier).
    fn compiled_lists(&self, section: &Arc<AccessLists>) -> Result<CompiledLists, String> {
        let mut cache = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((source, lists)) = cache.as_ref() {
            if Arc::ptr_eq(source, section) {
                return Ok(lists.clone());
            }
        }
        let mut lists = CompiledLists::new();
        for ((_, family, _), name) in &section.bindings {
            let key = (*family, name.clone());
            if lists.contains_key(&key) {
                continue;
            }
            let list = section
                .lists
                .get(&key)
                .ok_or_else(|| format!("access list {name} is not defined"))?;
            let mut hits_of = |seq| self.hits_of(*family, name, seq);
            let acl = CompiledAcl::new(name, *family, list, &mut hits_of);
            lists.insert(key, Arc::new(acl));
        }
        *cache = Some((section.clone(), lists.clone()));
        Ok(lists)
    }

    fn published(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn show_access_lists(&self, name: Option<&str>) -> String {
        let published = self.published();
        let mut out = String::new();
        let wanted = published
            .lists
            .iter()
            .filter(|(header, _)| name.is_none_or(|n| header.ends_with(&format!(" {n}"))));
        for (header, rules) in wanted {
            let _ = writeln!(out, "{header}");
            for (line, hits) in rules {
                let _ = writeln!(out, "    {line} ({} matches)", hits.load(Ordering::Relaxed));
            }
        }
        if name.is_none() {
            let _ = writeln!(out, "Firewall:");
            for (what, n) in FirewallCounters::rows(&self.counters) {
                let _ = writeln!(out, "    {what}: {n}");
            }
        }
        out
    }

    /// `show sessions [vrf NAME] [address A] [tcp|udp|icmp]`: the sessions
    /// of a VRF, with an endpoint, of a protocol (ICMP meaning both
    /// families' echo).
    fn show_sessions(&self, args: &Args) -> String {
        let vrf = args.text("vrf");
        let address: Option<IpAddr> = match (args.ipv4("v4"), args.ipv6("v6")) {
            (Some(v4), _) => Some(v4.into()),
            (_, Some(v6)) => Some(v6.into()),
            _ => None,
        };
        let protocols: &[u8] = match () {
            _ if args.has("tcp") => &[crate::wire::PROTO_TCP],
            _ if args.has("udp") => &[crate::wire::PROTO_UDP],
            _ if args.has("icmp") => &[crate::wire::PROTO_ICMP, crate::wire::PROTO_ICMPV6],
            _ => &[],
        };
        let published = self.published();
        let Some(timeouts) = published.timeouts else {
            return "% No session table: no access list is bound to an interface\n".to_string();
        };
        let vrf_id = match vrf {
            None => None,
            Some(name) => match published
                .vrfs
                .iter()
                .position(|v| v.as_deref() == Some(name))
            {
                Some(id) => Some(id as u16),
                None => return format!("% VRF {name} does not exist\n"),
            },
        };
        let now = self.shared.now_secs();
        let wanted = |s: &SessionInfo| {
            vrf_id.is_none_or(|v| v == s.vrf)
                && address.is_none_or(|a| s.initiator.0 == a || s.responder.0 == a)
                && (protocols.is_empty() || protocols.contains(&s.protocol))
        };
        let sessions = self.sessions.sessions(now, &timeouts, &wanted);
        let mut out = format!(
            "{} sessions (table maximum {}, {} KiB)\n",
            sessions.len(),
            self.sessions.max(),
            self.sessions.memory_bytes() / 1024
        );
        for s in &sessions {
            let vrf_name = published.vrfs.get(usize::from(s.vrf)).cloned().flatten();
            let _ = writeln!(out, "{}", session_line(s, vrf_name.as_deref()));
        }
        out
    }

    fn clear_counters(&self) {
        let hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        hits.values().for_each(|h| h.store(0, Ordering::Relaxed));
    }
}

fn session_line(s: &SessionInfo, vrf: Option<&str>) -> String {
    let protocol = match s.protocol {
        crate::wire::PROTO_TCP => "tcp".to_string(),
        crate::wire::PROTO_UDP => "udp".to_string(),
        crate::wire::PROTO_ICMP => "icmp".to_string(),
        crate::wire::PROTO_ICMPV6 => "icmpv6".to_string(),
        n => n.to_string(),
    };
    let endpoint = |(addr, port): (std::net::IpAddr, u16)| match addr {
        std::net::IpAddr::V6(_) => format!("[{addr}]:{port}"),
        std::net::IpAddr::V4(_) => format!("{addr}:{port}"),
    };
    format!(
        "{protocol:<6} {} -> {}{}{}  age {}s idle {}s packets {}/{}",
        endpoint(s.initiator),
        endpoint(s.responder),
        s.tcp.map_or(String::new(), |t| format!(" {}", t.name())),
        vrf.map_or(String::new(), |v| format!(" vrf {v}")),
        s.age_secs,
        s.idle_secs,
        s.packets[0],
        s.packets[1]
    )
}

impl DataplaneElement for Firewall {
    fn table_sizes(&self, out: &mut Vec<crate::stats::TableSize>) {
        out.push(("sessions", self.sessions.len()));
    }

    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let settings = config.inspect.effective();
        let timeouts = Timeouts::of(&settings);
        self.sessions.set_max(settings.max_sessions as usize);
        let compiled = self.compiled_lists(&config.access_lists)?;
        let mut bindings: [Bindings; 2] = Default::default();
        let mut published = Published {
            vrfs: snap.tables.iter().map(|t| t.vrf.clone()).collect(),
            ..Published::default()
        };
        for ((iface, family, direction), name) in &config.access_lists.bindings {
            let Some(id) = snap
                .interfaces
                .iter()
                .flatten()
                .find(|i| &i.name == iface)
                .map(|i| i.id)
            else {
                continue;
            };
            let Some(acl) = compiled.get(&(*family, name.clone())) else {
                continue; // compiled_lists refused an undefined one
            };
            let table = &mut bindings[*family as usize];
            if table.len() <= usize::from(id) {
                table.resize(usize::from(id) + 1, [None, None]);
            }
            let slot = if *direction == Direction::In { IN } else { OUT };
            table[usize::from(id)][slot] = Some(acl.clone());
        }
        for acl in compiled.values() {
            let rules = acl.actions.iter().map(|a| (a.line.clone(), a.hits.clone()));
            published.lists.push((acl.header.clone(), rules.collect()));
        }
        published.lists.sort_by(|a, b| a.0.cmp(&b.0));
        if compiled.is_empty() {
            *self.published() = published;
            return Ok(());
        }
        published.timeouts = Some(timeouts);
        for (family, path) in [
            (Family::Ipv4, PathFamily::Ipv4),
            (Family::Ipv6, PathFamily::Ipv6),
        ] {
            let table = Arc::new(std::mem::take(&mut bindings[family as usize]));
            for (point, name) in [
                (Point::PostRouting, "acl-forward"),
                (Point::LocalIn, "acl-local-in"),
                (Point::LocalOut, "sessions-local-out"),
            ] {
                let node = FirewallNode {
                    name,
                    point,
                    bindings: table.clone(),
                    sessions: self.sessions.clone(),
                    timeouts,
                    counters: self.counters.clone(),
                    fragments: self.fragments.clone(),
                    shared: self.shared.clone(),
                    full_reported: OncePerSecond::default(),
                };
                snap.features.register(path, point, ORDER, Arc::new(node));
            }
        }
        let warm = SessionPrefetch(self.sessions.clone());
        snap.features.register_prefetch(Arc::new(warm));
        *self.published() = published;
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        let (lists, sessions, logging, clear_sessions, clear_counters) =
            (self.clone(), self.clone(), self.clone(), self.clone(), self);
        vec![
            ElementCommand::Show {
                syntax: "access-lists [WORD$name]",
                help: &["Access lists, their rules and hit counters", "One list"],
                run: Box::new(move |args| lists.show_access_lists(args.text("name"))),
            },
            ElementCommand::Show {
                syntax:
                    "sessions [vrf WORD$vrf] [address (A.B.C.D$v4|X:X::X:X$v6)] [(tcp|udp|icmp)]",
                help: &[
                    "The session table",
                    "Sessions of one VRF",
                    "VRF name",
                    "Sessions with one endpoint",
                    "IPv4 address",
                    "IPv6 address",
                    "TCP sessions",
                    "UDP sessions",
                    "ICMP echo sessions",
                ],
                run: Box::new(move |args| sessions.show_sessions(args)),
            },
            ElementCommand::Show {
                syntax: "logging",
                help: &["The dataplane's log (access-list matches, NAT events)"],
                run: Box::new(move |_| logging.shared.log.render()),
            },
            ElementCommand::Exec {
                syntax: "clear sessions",
                help: &["Reset functions", "Remove every session"],
                run: Box::new(move |_| {
                    clear_sessions.sessions.clear();
                    Ok(String::new())
                }),
            },
            ElementCommand::Exec {
                syntax: "clear access-list counters",
                help: &["Reset functions", "Access lists", "Their hit counters"],
                run: Box::new(move |_| {
                    clear_counters.clear_counters();
                    Ok(String::new())
                }),
            },
        ]
    }
}
