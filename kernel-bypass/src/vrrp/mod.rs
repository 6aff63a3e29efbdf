//! The VRRP element (version 3, RFC 5798, IPv4): first-hop redundancy on
//! interfaces and sub-interfaces. Each configured group is a virtual
//! router (`machine`) whose state survives commits that do not change it.
//! A node at interface-input takes the advertisements (`packet`) of the
//! groups on that interface; a ticker sends this router's advertisements
//! while master, and gratuitous ARP when it becomes master. While master,
//! the interface takes frames to the virtual MAC and answers ARP for the
//! virtual addresses with it (`snapshot::VirtualRouter`), so hosts whose
//! gateway is a virtual address are routed by the master.
//!
//! Commands: `show vrrp [brief]`.

mod machine;
pub mod packet;

use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Action, Emitted, Family, FeatureNode, Packet, Point, Ticker};
use crate::pipeline::Shared;
use crate::snapshot::{IfaceId, Snapshot, VirtualRouter};
// Gratuitous ARP is a request for one's own address.
use crate::wire::{
    write_arp, ARP_PACKET, ARP_REQUEST, BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4,
};
use grammar::config::Config;
use machine::{Router, Settings, State};
use packet::{virtual_mac, Advert, VRRP_GROUP_MAC};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

/// A router, shared by the node, the ticker and `show`.
type SharedRouter = Arc<Mutex<Router>>;

fn lock(r: &Mutex<Router>) -> std::sync::MutexGuard<'_, Router> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// The routers of one snapshot: (interface id, its name, router).
type Routers = Vec<(IfaceId, String, SharedRouter)>;

pub struct Vrrp {
    shared: Arc<Shared>,
    /// By (interface name, group): kept across commits.
    routers: Mutex<HashMap<(String, u8), SharedRouter>>,
    published: Mutex<Arc<Routers>>,
}

impl Vrrp {
    pub fn new(shared: Arc<Shared>) -> Vrrp {
        Vrrp {
            shared,
            routers: Mutex::default(),
            published: Mutex::default(),
        }
    }

    /// Each router's (interface, group) and whether it is master now.
    pub fn masters(&self) -> Vec<((String, u8), bool)> {
        let routers = self
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let state = |r: &SharedRouter| {
            let r = lock(r);
            (r.settings.vrid, r.state == State::Master)
        };
        (routers.iter())
            .map(|(_, name, r)| {
                let (vrid, master) = state(r);
                ((name.clone(), vrid), master)
            })
            .collect()
    }

    fn show(&self, brief: bool) -> String {
        let routers = self
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = String::new();
        if brief {
            let _ = writeln!(
                out,
                "{:<16}{:<5}{:<5}{:<7}{:<5}{:<8}{:<17}Group addr",
                "Interface", "Grp", "Pri", "Time", "Own", "State", "Master addr"
            );
        }
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
            if brief {
                let _ = writeln!(
                    out,
                    "{name:<16}{:<5}{:<5}{:<7}{:<5}{state:<8}{master:<17}{}",
                    s.vrid,
                    s.priority,
                    u32::from(s.interval_cs) * 10,
                    if s.priority == 255 { "Y" } else { "N" },
                    addresses.join(" ")
                );
                continue;
            }
            let _ = writeln!(
                out,
                "{name} - Group {}\n  State is {state} ({} transitions)\n  Virtual IP address is {}\n  \
                 Virtual MAC address is {}\n  Advertisement interval is {} msec\n  \
                 Preemption {}\n  Priority is {}\n  Master Router is {master}, priority is {}\n  \
                 Advertisements sent {}, received {}",
                s.vrid,
                r.transitions,
                addresses.join(", "),
                virtual_mac(s.vrid).map(|b| format!("{b:02x}")).join(":"),
                u32::from(s.interval_cs) * 10,
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
        out
    }
}

/// Takes the advertisements of the groups on the interface they came in on.
struct AdvertInput(Arc<Routers>);

impl FeatureNode for AdvertInput {
    fn name(&self) -> &'static str {
        "vrrp-input"
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let data = &*packet.data;
        let is_vrrp = data.len() > crate::wire::IPV4_PROTOCOL
            && data[crate::wire::IPV4_PROTOCOL] == packet::PROTO_VRRP;
        if !is_vrrp {
            return Action::Continue;
        }
        let Some((from, advert)) = Advert::parse(data) else {
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

/// Sends the masters' advertisements and gratuitous ARP.
struct Advertiser(Arc<Routers>);

impl Ticker for Advertiser {
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
            let mac = virtual_mac(settings.vrid);
            let packet = advert.packet(settings.primary);
            emit(Emitted {
                iface: *iface,
                dst: VRRP_GROUP_MAC,
                src: mac,
                ethertype: ETHERTYPE_IPV4,
                payload: &packet,
            });
            if !send.garp {
                continue;
            }
            for address in &settings.addresses {
                let mut arp = [0u8; ARP_PACKET];
                write_arp(&mut arp, ARP_REQUEST, (&mac, *address), (&[0; 6], *address));
                emit(Emitted {
                    iface: *iface,
                    dst: BROADCAST_MAC,
                    src: mac,
                    ethertype: ETHERTYPE_ARP,
                    payload: &arp,
                });
            }
        }
    }
}

impl DataplaneElement for Vrrp {
    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let now = self.shared.now_ms();
        let mut kept = self.routers.lock().unwrap_or_else(|p| p.into_inner());
        let mut routers = Routers::new();
        let mut next = HashMap::new();
        for ((name, vrid), group) in &config.vrrp.groups {
            let primary = config
                .interfaces
                .get(name)
                .and_then(|i| i.primary_ipv4())
                .map(|net| net.addr());
            let Some(primary) = primary else {
                continue; // the commit checks ask for an address in its subnet
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
            let Some(iface) = snap
                .interfaces
                .iter_mut()
                .flatten()
                .find(|i| &i.name == name)
            else {
                continue; // not attached: nothing to run on
            };
            let settings = Settings {
                vrid: *vrid,
                priority,
                preempt: group.preempt,
                preempt_delay_ms: u64::from(group.preempt_delay.unwrap_or(0)) * 1000,
                interval_cs: (group.advertise_ms() / 10).clamp(1, 4095) as u16,
                addresses: group.addresses.iter().copied().collect(),
                primary,
            };
            let key = (name.clone(), *vrid);
            // A new priority alone (a tracked interface went down or came
            // back) keeps the router and its state: a master advertises the
            // lower priority and a better backup preempts it (RFC 5798).
            let same_but_priority = |r: &Router| {
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
                mac: virtual_mac(*vrid),
                addresses: settings.addresses.clone(),
                master: lock(&router).master.clone(),
            });
            routers.push((iface.id, name.clone(), router.clone()));
            next.insert(key, router);
        }
        *kept = next;
        let routers = Arc::new(routers);
        if !routers.is_empty() {
            let input = Arc::new(AdvertInput(routers.clone()));
            snap.features
                .register(Family::Ipv4, Point::InterfaceInput, 0, input);
            snap.features
                .register_ticker(Arc::new(Advertiser(routers.clone())));
        }
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = routers;
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
