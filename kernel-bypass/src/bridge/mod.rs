//! The bridge element (physical-to-virtual gateway): bridge domains join
//! ports, 802.1Q VLANs and VXLAN segments into one L2 segment, with an
//! optional routed interface (`bdiN`) as the segment's gateway.
//!
//! Compiling a configuration makes one `Domain` per `bridge-domain N` in
//! the snapshot's L2 domains and marks its members (`Iface::l2_domain`)
//! and routed interface (`IfaceKind::L2Domain`); the pipeline's `l2`
//! stage bridges their frames with the domain's MAC table. The MAC table
//! (`table`), its per-domain counts and each domain's statistics live
//! here across commits; a ticker sweeps aged entries out a slice at a
//! time. Shows: `show bridge-domain [N]`, `show mac address-table
//! [bridge-domain N]`; `clear mac address-table dynamic [bridge-domain N]`.

mod table;

pub use table::{Location, MacLearnt, MacTable, MAX_DOMAIN};

use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Emitted, Ticker};
use crate::pipeline::Shared;
use crate::snapshot::{IfaceId, IfaceKind, L2DomainId, Snapshot};
use crate::wire::{format_mac, Mac};
use grammar::config::{bdi_domain, Config};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Slots of the MAC table the ageing sweep visits per tick (every 10 ms:
/// the whole table in about 1.3 s).
const SWEEP_SLOTS: usize = 2048;

/// What a domain counts across commits.
#[derive(Default)]
pub struct DomainStats {
    /// New source MACs not learned because the domain held its limit.
    pub not_learned: AtomicU64,
}

/// One bridge domain as the path sees it.
#[derive(Clone)]
pub struct Domain {
    pub number: u32,
    /// Ports and sub-interfaces.
    pub members: Vec<IfaceId>,
    /// VXLAN interfaces: the overlay, one split-horizon group.
    pub overlays: Vec<IfaceId>,
    /// The routed interface (`bdiN`).
    pub router: Option<IfaceId>,
    pub aging_secs: u32,
    pub mac_limit: u32,
    pub macs: Arc<MacTable>,
    pub stats: Arc<DomainStats>,
}

impl Domain {
    /// Learns where `mac` was seen.
    #[inline]
    pub fn learn(&self, mac: &Mac, at: Location, now: u32) -> MacLearnt {
        let learnt = self.macs.learn(self.number, mac, at, now, self.mac_limit);
        if learnt == MacLearnt::Full {
            self.stats.not_learned.fetch_add(1, Ordering::Relaxed);
        }
        learnt
    }

    /// Where `mac` is, unless unknown or aged out.
    #[inline]
    pub fn lookup(&self, mac: &Mac, now: u32) -> Option<Location> {
        self.macs.lookup(self.number, mac, now, self.aging_secs)
    }
}

/// What `show bridge-domain` prints of a domain, from its last commit.
struct DomainView {
    number: u32,
    aging_secs: u32,
    mac_limit: u32,
    /// Member lines: `eth1.100 (VLAN 100)`, `vxlan1 (VNI 5010, ...)`.
    members: Vec<String>,
    router: Option<String>,
    stats: Arc<DomainStats>,
}

/// The bridge element.
pub struct Bridge {
    shared: Arc<Shared>,
    /// Made at the first commit with a bridge domain (8 MiB).
    macs: OnceLock<Arc<MacTable>>,
    /// By domain number.
    stats: Mutex<BTreeMap<u32, Arc<DomainStats>>>,
    views: Mutex<Vec<DomainView>>,
    /// Interface names by id, for the MAC table's lines.
    names: Mutex<BTreeMap<IfaceId, String>>,
}

/// Removes aged entries and those of domains no longer configured.
struct Sweeper {
    shared: Arc<Shared>,
    macs: Arc<MacTable>,
    /// Ageing time by domain number.
    aging: BTreeMap<u32, u32>,
    next: AtomicUsize,
}

impl Ticker for Sweeper {
    fn tick(&self, _now_ms: u64, _emit: &mut dyn FnMut(Emitted<'_>)) {
        let now = self.shared.now_secs();
        let from = self.next.load(Ordering::Relaxed);
        let next = self.macs.sweep(from, SWEEP_SLOTS, now, |domain, age| {
            self.aging.get(&domain).is_none_or(|aging| age > *aging)
        });
        self.next.store(next, Ordering::Relaxed);
    }
}

impl Bridge {
    pub fn new(shared: Arc<Shared>) -> Bridge {
        Bridge {
            shared,
            macs: OnceLock::new(),
            stats: Mutex::default(),
            views: Mutex::default(),
            names: Mutex::default(),
        }
    }

    fn show_domains(&self, only: Option<u32>) -> String {
        let views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for v in views.iter().filter(|v| only.is_none_or(|n| n == v.number)) {
            let learned = self.macs.get().map_or(0, |t| t.count(v.number));
            let _ = writeln!(
                out,
                "Bridge-domain {} ({} ports in all)",
                v.number,
                v.members.len()
            );
            let _ = writeln!(out, "State: UP                    Mac learning: Enabled");
            let _ = writeln!(out, "Aging-Timer: {} second(s)", v.aging_secs);
            let _ = writeln!(out, "Maximum address limit: {}", v.mac_limit);
            let _ = writeln!(
                out,
                "MAC addresses learned: {learned}, not learned (limit): {}",
                v.stats.not_learned.load(Ordering::Relaxed)
            );
            if let Some(r) = &v.router {
                let _ = writeln!(out, "    BDI interface: {r}");
            }
            for m in &v.members {
                let _ = writeln!(out, "    {m}");
            }
        }
        match (out.is_empty(), only) {
            (true, Some(n)) => format!("% Bridge-domain {n} is not configured\n"),
            _ => out,
        }
    }

    fn show_macs(&self, only: Option<u32>) -> String {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.shared.now_secs();
        let mut entries = self.macs.get().map_or_else(Vec::new, |t| t.entries(now));
        entries.retain(|e| only.is_none_or(|n| n == e.domain));
        entries.sort_by_key(|e| (e.domain, e.mac));
        let mut out = String::from(" BD   mac addr           type     age  ports\n");
        for e in &entries {
            let name = |id| names.get(&id).map_or("?", String::as_str);
            let port = match e.at {
                Location::Member(id) => name(id).to_string(),
                Location::Remote(id, vtep) => format!("{} {vtep}", name(id)),
            };
            let _ = writeln!(
                out,
                " {:<5}{:<19}DYNAMIC  {:<5}{port}",
                e.domain,
                format_mac(&e.mac),
                e.age_secs
            );
        }
        let _ = writeln!(out, "Total Mac Addresses: {}", entries.len());
        out
    }
}

impl DataplaneElement for Bridge {
    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let mut views = Vec::new();
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        let domains = &config.bridge_domains.domains;
        stats.retain(|n, _| domains.contains_key(n));
        if domains.is_empty() {
            // No sweeper runs without domains: the last ones' MACs go now.
            if let Some(macs) = self.macs.get() {
                macs.clear(None);
            }
            *self.views.lock().unwrap_or_else(|p| p.into_inner()) = views;
            return Ok(());
        }
        let macs = self.macs.get_or_init(Default::default).clone();
        let id_of = |snap: &Snapshot, name: &str| {
            (snap.interfaces.iter().flatten())
                .find(|i| i.name == name)
                .map(|i| i.id)
        };
        for (index, (number, conf)) in domains.iter().enumerate() {
            let id = index as L2DomainId;
            let mut domain = Domain {
                number: *number,
                members: Vec::new(),
                overlays: Vec::new(),
                router: None,
                aging_secs: conf.aging_secs(),
                mac_limit: conf.mac_limit(),
                macs: macs.clone(),
                stats: stats.entry(*number).or_default().clone(),
            };
            let mut lines = Vec::new();
            for name in &conf.members {
                let Some(member) = id_of(snap, name) else {
                    continue;
                };
                domain.members.push(member);
                lines.push(member_line(snap, member, name));
            }
            for vni in &conf.vnis {
                let tunnel = (snap.interfaces.iter().flatten())
                    .find(|i| matches!(&i.kind, Some(IfaceKind::Vxlan(t)) if t.vni == *vni));
                match tunnel {
                    Some(t) => {
                        domain.overlays.push(t.id);
                        lines.push(member_line(snap, t.id, &t.name));
                    }
                    None => lines.push(format!("vni {vni} (down: no VXLAN interface up)")),
                }
            }
            for member in domain.members.iter().chain(&domain.overlays) {
                if let Some(Some(i)) = snap.interfaces.get_mut(usize::from(*member)) {
                    i.l2_domain = Some(id);
                }
            }
            let router = (snap.interfaces.iter_mut().flatten())
                .find(|i| bdi_domain(&i.name) == Some(*number));
            let router_line = router.map(|r| {
                if r.is_up() {
                    r.kind = Some(IfaceKind::L2Domain(id));
                }
                domain.router = Some(r.id);
                let addresses: Vec<_> = r.addresses.iter().map(|a| a.to_string()).collect();
                match addresses.is_empty() {
                    true => r.name.clone(),
                    false => format!("{} ({})", r.name, addresses.join(", ")),
                }
            });
            views.push(DomainView {
                number: *number,
                aging_secs: domain.aging_secs,
                mac_limit: domain.mac_limit,
                router: router_line,
                members: lines,
                stats: domain.stats.clone(),
            });
            snap.l2_domains.push(domain);
        }
        let aging = domains.iter().map(|(n, d)| (*n, d.aging_secs())).collect();
        snap.features.register_ticker(Arc::new(Sweeper {
            shared: self.shared.clone(),
            macs,
            aging,
            next: AtomicUsize::new(0),
        }));
        *self.names.lock().unwrap_or_else(|p| p.into_inner()) = (snap.interfaces.iter().flatten())
            .map(|i| (i.id, i.name.clone()))
            .collect();
        *self.views.lock().unwrap_or_else(|p| p.into_inner()) = views;
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        let (domains, macs, clear) = (self.clone(), self.clone(), self);
        vec![
            ElementCommand::Show {
                syntax: "bridge-domain [<1-16000>$domain]",
                help: &["Bridge domains", "Only this bridge domain"],
                run: Box::new(move |args| {
                    domains.show_domains(args.number("domain").map(|n| n as u32))
                }),
            },
            ElementCommand::Show {
                syntax: "mac address-table [bridge-domain <1-16000>$domain]",
                help: &[
                    "MAC configuration",
                    "MAC forwarding table",
                    "Only one bridge domain",
                    "Bridge domain number",
                ],
                run: Box::new(move |args| macs.show_macs(args.number("domain").map(|n| n as u32))),
            },
            ElementCommand::Exec {
                syntax: "clear mac address-table dynamic [bridge-domain <1-16000>$domain]",
                help: &[
                    "Reset functions",
                    "MAC forwarding table",
                    "MAC forwarding table",
                    "Learned entries",
                    "Only one bridge domain",
                    "Bridge domain number",
                ],
                run: Box::new(move |args| {
                    if let Some(t) = clear.macs.get() {
                        t.clear(args.number("domain").map(|n| n as u32));
                    }
                    Ok(String::new())
                }),
            },
        ]
    }

    fn table_sizes(&self, out: &mut Vec<crate::stats::TableSize>) {
        let views = self.views.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = self.macs.get() {
            let entries = views.iter().map(|v| t.count(v.number) as usize).sum();
            out.push(("bridge_macs", entries));
        }
    }
}

/// A member's line in `show bridge-domain`.
fn member_line(snap: &Snapshot, id: IfaceId, name: &str) -> String {
    let Some(i) = snap.interface(id) else {
        return name.to_string();
    };
    match (&i.kind, i.down_reason) {
        (_, Some(why)) => format!("{name} (down: {why})"),
        (Some(IfaceKind::Vlan { vlan, .. }), None) => format!("{name} (VLAN {vlan})"),
        (Some(IfaceKind::Vxlan(t)), None) => {
            format!("{name} (VNI {}, {} remote VTEPs)", t.vni, t.remotes.len())
        }
        _ => format!("{name} (untagged)"),
    }
}
