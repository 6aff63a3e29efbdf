//! The VRRP element (version 3, RFC 5798, IPv4 and IPv6): first-hop
//! redundancy on interfaces and sub-interfaces. Each configured group runs
//! one virtual router per family it has addresses of (`machine`, the same
//! for both; `family` says what differs), whose state survives commits
//! that do not change it. A node at each family's interface-input takes
//! the advertisements (`packet`) of the groups on that interface; a ticker
//! sends this router's advertisements while master, and announces the
//! addresses (gratuitous ARP, unsolicited Neighbor Advertisements) when it
//! becomes master. While master, the interface takes frames to the virtual
//! MAC and answers ARP and neighbour solicitations for the virtual
//! addresses with it (`snapshot::VirtualRouter`), so hosts whose gateway
//! is a virtual address are routed by the master.
//!
//! Commands: `show vrrp [brief]`.

mod family;
mod machine;
mod packet;

use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Action, Emitted, FeatureNode, Packet, Point, Ticker};
use crate::pipeline::Shared;
use crate::snapshot::{IfaceId, Snapshot, VirtualRouter};
use family::{virtual_mac, VrrpFamily, ANNOUNCEMENT_MAX, PROTO_VRRP};
use grammar::config::Config;
use machine::{Router, Settings, State};
use packet::Advert;
use std::collections::HashMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

/// A router, shared by the node, the ticker and `show`.
type SharedRouter<A> = Arc<Mutex<Router<A>>>;

/// A poisoned lock still holds a consistent router: every update is one
/// assignment or a few counters.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The routers of one family in one snapshot: (interface id, its name,
/// router).
type Routers<A> = Vec<(IfaceId, String, SharedRouter<A>)>;

/// One family's virtual routers.
struct FamilyRouters<A> {
    /// By (interface name, group): kept across commits.
    kept: Mutex<HashMap<(String, u8), SharedRouter<A>>>,
    published: Mutex<Arc<Routers<A>>>,
}

impl<A> Default for FamilyRouters<A> {
    fn default() -> Self {
        FamilyRouters {
            kept: Mutex::default(),
            published: Mutex::default(),
        }
    }
}

pub struct Vrrp {
    shared: Arc<Shared>,
    ipv4: FamilyRouters<Ipv4Addr>,
    ipv6: FamilyRouters<Ipv6Addr>,
}

const BRIEF_HEADER: [&str; 8] = [
    "Interface",
    "Grp",
    "A-F",
    "Pri",
    "Time",
    "Own",
    "State",
    "Master addr",
];

impl Vrrp {
    pub fn new(shared: Arc<Shared>) -> Vrrp {
        Vrrp {
            shared,
            ipv4: FamilyRouters::default(),
            ipv6: FamilyRouters::default(),
        }
    }

    /// Each group's (interface, group) and whether it is master now (in
    /// every family it runs in).
    pub fn masters(&self) -> Vec<((String, u8), bool)> {
        let mut masters: std::collections::BTreeMap<(String, u8), bool> = Default::default();
        self.ipv4.masters(&mut masters);
        self.ipv6.masters(&mut masters);
        masters.into_iter().collect()
    }

    fn show(&self, brief: bool) -> String {
        let mut out = String::new();
        if brief {
            let [i, g, f, p, t, o, s, m] = BRIEF_HEADER;
            let _ = writeln!(
                out,
                "{i:<16}{g:<5}{f:<5}{p:<5}{t:<7}{o:<5}{s:<8}{m:<17}Group addr"
            );
        }
        self.ipv4.show(brief, &mut out);
        self.ipv6.show(brief, &mut out);
        out
    }
}

impl<A: VrrpFamily> FamilyRouters<A> {
    /// Runs the family's routers of `config` on the snapshot's interfaces,
    /// keeping those whose settings did not change, and registers the
    /// node and the ticker that drive them.
    fn compile(&self, config: &Config, snap: &mut Snapshot, now: u64) {
        let mut kept = lock(&self.kept);
        let mut routers = Routers::new();
        let mut next = HashMap::new();
        for ((name, vrid), group) in &config.vrrp.groups {
            let addresses = A::addresses(group);
            if addresses.is_empty() {
                continue; // the group runs in the other family only
            }
            let Some(configured) = config.interfaces.get(name) else {
                continue; // the commit checks refuse it
            };
            // A tracked interface is down when the snapshot has it down
            // (shut down, its NIC gone) or has no such interface.
            let tracked_down = |tracked: &str| {
                !(snap.interfaces.iter().flatten()).any(|i| i.name == tracked && i.is_up())
            };
            let priority = group.tracked_priority(tracked_down);
            // The pair's failover group (`redundancy`) fails over as one:
            // a member whose interface is down takes every member's
            // priority to the least, so the peer takes them all.
            let failover_group = &config.redundancy.group;
            let priority = match failover_group.contains(&(name.clone(), *vrid))
                && failover_group
                    .iter()
                    .any(|(member, _)| tracked_down(member))
            {
                true if priority != 255 => 1,
                _ => priority,
            };
            let Some(iface) = (snap.interfaces.iter_mut().flatten()).find(|i| &i.name == name)
            else {
                continue; // not attached: nothing to run on
            };
            let Some(primary) = A::primary(configured, iface) else {
                continue; // the commit checks ask for an address in its subnet
            };
            let settings = Settings {
                vrid: *vrid,
                priority,
                preempt: group.preempt,
                preempt_delay_ms: u64::from(group.preempt_delay.unwrap_or(0)) * 1000,
                interval_cs: (group.advertise_ms() / 10).clamp(1, 4095) as u16,
                addresses,
                primary,
            };
            let key = (name.clone(), *vrid);
            // A new priority alone (a tracked interface went down or came
            // back) keeps the router and its state: a master advertises the
            // lower priority and a better backup preempts it (RFC 5798).
            let same_but_priority = |r: &Router<A>| {
                Settings {
                    priority: settings.priority,
                    ..r.settings.clone()
                } == settings
            };
            let router = match kept.get(&key) {
                Some(r) if same_but_priority(&lock(r)) => {
                    lock(r).settings.priority = settings.priority;
                    r.clone()
                }
                _ => Arc::new(Mutex::new(Router::new(settings.clone(), now))),
            };
            iface.virtual_routers.push(VirtualRouter {
                mac: virtual_mac::<A>(*vrid),
                addresses: settings.addresses.iter().map(|a| (*a).into()).collect(),
                master: lock(&router).master.clone(),
            });
            routers.push((iface.id, name.clone(), router.clone()));
            next.insert(key, router);
        }
        *kept = next;
        let routers = Arc::new(routers);
        if !routers.is_empty() {
            let input = Arc::new(AdvertInput(routers.clone()));
            let family = A::FEATURE_FAMILY;
            snap.features
                .register(family, Point::InterfaceInput, 0, input);
            snap.features
                .register_ticker(Arc::new(Advertiser(routers.clone())));
        }
        *lock(&self.published) = routers;
    }

    fn masters(&self, out: &mut std::collections::BTreeMap<(String, u8), bool>) {
        for (_, name, router) in lock(&self.published).iter() {
            let r = lock(router);
            let master = out.entry((name.clone(), r.settings.vrid)).or_insert(true);
            *master &= r.state == State::Master;
        }
    }

    fn show(&self, brief: bool, out: &mut String) {
        let routers = lock(&self.published).clone();
        for (_, name, router) in routers.iter() {
            let r = lock(router);
            let s = &r.settings;
            let state = match r.state {
                State::Master => "Master",
                State::Backup => "Backup",
            };
            let master = r
                .master_address
                .map_or("unknown".to_string(), |a| a.to_string());
            let addresses: Vec<String> = s.addresses.iter().map(|a| a.to_string()).collect();
            let interval_ms = u32::from(s.interval_cs) * 10;
            if brief {
                // A space at least after the master: IPv6 ones are long.
                let _ = writeln!(
                    out,
                    "{name:<16}{:<5}{:<5}{:<5}{interval_ms:<7}{:<5}{state:<8}{master:<16} {}",
                    s.vrid,
                    A::NAME,
                    s.priority,
                    if s.priority == 255 { "Y" } else { "N" },
                    addresses.join(" ")
                );
                continue;
            }
            let _ = writeln!(
                out,
                "{name} - Group {} - Address-Family {}\n  State is {state} ({} transitions)\n  \
                 Virtual IP address is {}\n  Virtual MAC address is {}\n  \
                 Advertisement interval is {interval_ms} msec\n  Preemption {}\n  Priority is {}\n  \
                 Master Router is {master}, priority is {}\n  Advertisements sent {}, received {}",
                s.vrid,
                A::NAME,
                r.transitions,
                addresses.join(", "),
                crate::wire::format_mac(&virtual_mac::<A>(s.vrid)),
                match (s.preempt, s.preempt_delay_ms) {
                    (false, _) => "disabled".to_string(),
                    (true, 0) => "enabled".to_string(),
                    (true, ms) => format!("enabled, delay {} s", ms / 1000),
                },
                s.priority,
                r.master_priority,
                r.adverts_sent,
                r.adverts_received,
            );
        }
    }
}

/// Takes the advertisements of one family's groups on the interface they
/// came in on.
struct AdvertInput<A>(Arc<Routers<A>>);

impl<A: VrrpFamily> FeatureNode for AdvertInput<A> {
    fn name(&self) -> &'static str {
        "vrrp-input"
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let data = &*packet.data;
        if data.get(A::PROTOCOL_AT) != Some(&PROTO_VRRP) {
            return Action::Continue;
        }
        let Some((from, advert)) = Advert::parse::<A>(data) else {
            return Action::Drop;
        };
        let ours = (self.0.iter()).find(|(iface, _, r)| {
            Some(*iface) == packet.ingress && lock(r).settings.vrid == advert.vrid
        });
        if let Some((_, _, router)) = ours {
            let mut r = lock(router);
            // Our own advertisement looped back by the link: not a peer's.
            if from != r.settings.primary {
                r.received(packet.now_ms, from, &advert);
            }
        }
        Action::Consumed
    }
}

/// Sends one family's masters' advertisements and announcements.
struct Advertiser<A>(Arc<Routers<A>>);

impl<A: VrrpFamily> Ticker for Advertiser<A> {
    fn tick(&self, now_ms: u64, emit: &mut dyn FnMut(Emitted<'_>)) {
        for (iface, _, router) in self.0.iter() {
            let (send, advert, settings) = {
                let mut r = lock(router);
                let send = r.tick(now_ms);
                if !send.advert {
                    continue;
                }
                (send, r.advert(), r.settings.clone())
            };
            let mac = virtual_mac::<A>(settings.vrid);
            let packet = advert.packet(settings.primary, &settings.addresses);
            emit(Emitted {
                iface: *iface,
                dst: A::GROUP_MAC,
                src: mac,
                ethertype: A::ETHERTYPE,
                payload: &packet,
            });
            if !send.announce {
                continue;
            }
            for address in &settings.addresses {
                let mut buf = [0u8; ANNOUNCEMENT_MAX];
                let (dst, ethertype, len) = A::announcement(*address, &mac, &mut buf);
                emit(Emitted {
                    iface: *iface,
                    dst,
                    src: mac,
                    ethertype,
                    payload: &buf[..len],
                });
            }
        }
    }
}

impl DataplaneElement for Vrrp {
    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let now = self.shared.now_ms();
        self.ipv4.compile(config, snap, now);
        self.ipv6.compile(config, snap, now);
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        vec![ElementCommand::Show {
            syntax: "vrrp [brief]",
            help: &["VRRP groups", "One line a group"],
            run: Box::new(move |args| self.show(args.has("brief"))),
        }]
    }
}
