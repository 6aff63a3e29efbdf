//! The DHCPv4 client element: `ip address dhcp` on an interface. Each such
//! interface has a client (`client`) whose state survives commits. Its
//! packets leave by that interface only, before it has an address, so
//! they do not go through the local stack (which routes by destination):
//! a ticker broadcasts them on the interface, and a node at
//! interface-input takes the servers' answers (UDP 67 -> 68, broadcast or
//! not) before the IPv4 checks would drop a broadcast.
//!
//! A lease changes the running dataplane, not the operator's
//! configuration: [`Dhcp::with_leases`] folds each bound lease into the
//! configuration the snapshot is compiled from (the address as the
//! interface's primary, a default route through the lease's router with
//! IOS's DHCP distance, 254), and [`Dhcp::changed`] wakes whoever re-applies
//! the configuration when a lease is granted, moves or ends.
//!
//! Commands: `show dhcp lease`.

mod client;

use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Action, Emitted, Family, FeatureNode, Packet, Point, Ticker};
use crate::headers::Ipv4View;
use crate::pipeline::Shared;
use crate::snapshot::{IfaceId, Snapshot};
use crate::wire::{be16, BROADCAST_MAC, ETHERTYPE_IPV4, PROTO_UDP, UDP_HEADER};
use client::{Client, Outcome};
use grammar::config::{Config, NextHop, RouteDetails};
use ipnet::Ipv4Net;
use smoltcp::wire::{DHCP_CLIENT_PORT, DHCP_SERVER_PORT};
use std::collections::HashMap;
use std::fmt::Write;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// IOS's administrative distance for a default route learned by DHCP.
pub const DHCP_ROUTE_DISTANCE: u8 = 254;

type SharedClient = Arc<Mutex<Client>>;

fn lock(c: &Mutex<Client>) -> std::sync::MutexGuard<'_, Client> {
    c.lock().unwrap_or_else(|p| p.into_inner())
}

/// The clients of one snapshot: (interface id, its name, client).
type Clients = Vec<(IfaceId, String, SharedClient)>;

pub struct Dhcp {
    shared: Arc<Shared>,
    /// By interface name: kept across commits.
    clients: Mutex<HashMap<String, SharedClient>>,
    published: Mutex<Arc<Clients>>,
    changed: Arc<Notify>,
}

impl Dhcp {
    pub fn new(shared: Arc<Shared>) -> Dhcp {
        Dhcp {
            shared,
            clients: Mutex::default(),
            published: Mutex::default(),
            changed: Arc::default(),
        }
    }

    /// Returns when a lease was granted, moved or ended since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// `config` with every bound lease of its `ip address dhcp` interfaces
    /// folded in: what the dataplane runs, never what the operator sees.
    pub fn with_leases(&self, config: &Config) -> Config {
        let mut effective = config.clone();
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        for (name, client) in clients.iter() {
            let dhcp = config.interfaces.get(name).is_some_and(|i| i.dhcp);
            let Some(lease) = lock(client).lease.clone().filter(|_| dhcp) else {
                continue;
            };
            if let Some(interface) = effective.interfaces_mut().get_mut(name) {
                interface.ipv4_addresses.insert(lease.address);
                interface.ipv4_primary = Some(lease.address);
            }
            let Some(router) = lease.router else {
                continue;
            };
            let vrf = config.vrf_of(name).map(str::to_string);
            let table = effective.routes_mut().tables.entry(vrf).or_default();
            let default = Ipv4Net::default();
            let next_hops = Arc::make_mut(table).v4.entry(default).or_default();
            // A route the operator typed to the same router wins.
            next_hops
                .entry(NextHop::Address(router))
                .or_insert(RouteDetails {
                    distance: DHCP_ROUTE_DISTANCE,
                    name: None,
                });
        }
        effective
    }

    /// Tells the re-applier, and logs, when a lease changed.
    fn follow(&self, name: &str, client: &Client, outcome: Outcome) {
        if !outcome.lease_changed {
            return;
        }
        let line = match &client.lease {
            Some(l) => format!(
                "%DHCP-6-ADDRESS_ASSIGN: Interface {name} assigned DHCP address {}, mask {}",
                l.address.addr(),
                l.address.netmask()
            ),
            None => format!("%DHCP-4-LEASE_END: Interface {name} lost its DHCP lease"),
        };
        self.shared.log.record(self.shared.now_secs(), || line);
        self.changed.notify_one();
    }

    fn show(&self) -> String {
        let clients = self
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let now = self.shared.now_ms();
        let secs = |at_ms: u64| at_ms.saturating_sub(now).div_ceil(1000);
        let mut out = String::new();
        for (_, name, client) in clients.iter() {
            let c = lock(client);
            let Some(l) = &c.lease else {
                let _ = writeln!(
                    out,
                    "Interface: {name}, no lease\n   DHCP state: {}\n   DHCP transaction id: {:X}\n   \
                     Retry count: {}   Replies taken: {}, ignored: {}",
                    c.state.name(),
                    c.transaction,
                    c.retries,
                    c.replies,
                    c.ignored
                );
                continue;
            };
            let dns: Vec<String> = l.dns.iter().map(|d| d.to_string()).collect();
            let _ = writeln!(
                out,
                "Temp IP addr: {}  for peer on Interface: {name}\n\
                 Temp  sub net mask: {}\n   \
                 DHCP Lease server: {}, state: {}\n   \
                 DHCP transaction id: {:X}\n   \
                 Lease: {} secs,  Renewal: {} secs,  Rebind: {} secs\n\
                 Temp default-gateway addr: {}\n   \
                 DNS servers: {}\n   \
                 Renewal in: {} secs,  Lease ends in: {} secs\n   \
                 Retry count: {}   Replies taken: {}, ignored: {}",
                l.address.addr(),
                l.address.netmask(),
                l.server,
                c.state.name(),
                c.transaction,
                l.lease_secs,
                l.renew_secs,
                l.rebind_secs,
                l.router.map_or("none".to_string(), |r| r.to_string()),
                if dns.is_empty() {
                    "none".to_string()
                } else {
                    dns.join(" ")
                },
                secs(l.renew_at_ms()),
                secs(l.expires_at_ms()),
                c.retries,
                c.replies,
                c.ignored,
            );
        }
        if out.is_empty() {
            out.push_str("No interface uses ip address dhcp\n");
        }
        out
    }
}

/// Takes servers' answers (UDP from 67 to 68) on interfaces with a client.
struct ReplyInput {
    clients: Arc<Clients>,
    dhcp: Arc<Dhcp>,
}

impl FeatureNode for ReplyInput {
    fn name(&self) -> &'static str {
        "dhcp-client-input"
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let ours = (self.clients.iter()).find(|(iface, _, _)| Some(*iface) == packet.ingress);
        let Some((_, name, client)) = ours else {
            return Action::Continue;
        };
        let Some(ip) = Ipv4View::new_checked(packet.data) else {
            return Action::Continue;
        };
        let udp = ip.payload();
        let is_reply = ip.protocol() == PROTO_UDP
            && ip.is_first_fragment()
            && udp.len() >= UDP_HEADER
            && be16(udp, 0) == DHCP_SERVER_PORT
            && be16(udp, 2) == DHCP_CLIENT_PORT;
        if !is_reply {
            return Action::Continue;
        }
        let mut c = lock(client);
        let outcome = c.receive(packet.now_ms, &udp[UDP_HEADER..]);
        self.dhcp.follow(name, &c, outcome);
        Action::Consumed
    }
}

/// Sends the clients' DISCOVERs and REQUESTs, and runs their lease timers.
struct Sender {
    clients: Arc<Clients>,
    dhcp: Arc<Dhcp>,
    /// The MAC of each client's interface, in `clients`' order.
    macs: Vec<crate::wire::Mac>,
}

impl Ticker for Sender {
    fn tick(&self, now_ms: u64, emit: &mut dyn FnMut(Emitted<'_>)) {
        for ((iface, name, client), mac) in self.clients.iter().zip(&self.macs) {
            let mut c = lock(client);
            let (outcome, packet) = c.tick(now_ms);
            self.dhcp.follow(name, &c, outcome);
            drop(c);
            if let Some(packet) = packet {
                emit(Emitted {
                    iface: *iface,
                    dst: BROADCAST_MAC,
                    src: *mac,
                    ethertype: ETHERTYPE_IPV4,
                    payload: &packet,
                });
            }
        }
    }
}

/// The element as the registry holds it: compiling needs the `Arc` the
/// nodes share.
pub struct DhcpElement(pub Arc<Dhcp>);

impl DataplaneElement for DhcpElement {
    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let dhcp = &self.0;
        let now = dhcp.shared.now_ms();
        let mut kept = dhcp.clients.lock().unwrap_or_else(|p| p.into_inner());
        let mut clients = Clients::new();
        let mut macs = Vec::new();
        let mut next = HashMap::new();
        let wanted = config.interfaces.iter().filter(|(_, i)| i.dhcp);
        for (name, _) in wanted {
            let attached = snap.interfaces.iter().flatten().find(|i| &i.name == name);
            let Some(iface) = attached else {
                continue; // not attached: nothing to run on
            };
            let client = match kept.get(name) {
                Some(c) if lock(c).mac == iface.mac => c.clone(),
                _ => {
                    let seed = std::collections::hash_map::RandomState::new().hash_one((name, now));
                    Arc::new(Mutex::new(Client::new(iface.mac, now, seed as u32)))
                }
            };
            clients.push((iface.id, name.clone(), client.clone()));
            macs.push(iface.mac);
            next.insert(name.clone(), client);
        }
        *kept = next;
        drop(kept);
        let clients = Arc::new(clients);
        if !clients.is_empty() {
            let input = ReplyInput {
                clients: clients.clone(),
                dhcp: dhcp.clone(),
            };
            snap.features
                .register(Family::Ipv4, Point::InterfaceInput, 0, Arc::new(input));
            snap.features.register_ticker(Arc::new(Sender {
                clients: clients.clone(),
                dhcp: dhcp.clone(),
                macs,
            }));
        }
        *dhcp.published.lock().unwrap_or_else(|p| p.into_inner()) = clients;
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        vec![ElementCommand::Show {
            syntax: "dhcp lease",
            help: &[
                "Dynamic Host Configuration Protocol",
                "Leases of this box's interfaces",
            ],
            run: Box::new(move |_| self.0.show()),
        }]
    }
}
