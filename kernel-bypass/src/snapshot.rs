//! Compiles a committed `Config` into the immutable tables the workers read:
//! interfaces (with their ports, VLANs, tunnels and VRF), own addresses, and
//! per routing table (the global one, then one per VRF) the IPv4 and IPv6
//! FIBs with local, connected, static and learned routes
//! (`crate::route_table`). A snapshot is never changed after it is built; a
//! commit publishes a new one, sharing the route tables of the previous one
//! when nothing they are built from changed, and a batch of learned routes
//! publishes a copy with one route table changed (`with_table`).
//!
//! Tenancy: an interface belongs to one table, and every learned entry
//! (ARP and IPv6 neighbours, VXLAN MAC -> VTEP) is keyed by interface, so
//! tenants using the same addresses never meet in them; learned MACs of
//! L2 domains are keyed by domain.
//!
//! L2 domains (the bridge element's bridge domains) are compiled by their
//! element into `l2_domains`: a member interface's frames go to its domain
//! instead of L3 (`Iface::l2_domain`), and a domain's routed interface has
//! the domain as its L2 (`IfaceKind::L2Domain`).

use crate::counters::MAX_INTERFACES;
use crate::features::FeatureArcs;
pub use crate::route_table::{LearnedRoutes, RouteChange, RouteTable};
use crate::routes;
pub use crate::routes::{Entry, Entry6, Hop, RouteKind, Source};
use crate::tunnel::TunnelRef;
use crate::wire::{link_local_for, Mac};
use grammar::config::{Config, InterfaceKind};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Index of an interface in the snapshot and in the counter arrays.
pub type IfaceId = u16;
/// Index of an attached port (NIC queue) in a worker's port list.
pub type PortId = u16;
/// Index of a routing table in a snapshot: the global table, then the VRFs
/// in name order.
pub type VrfId = u16;
/// The global routing table (interfaces without `vrf forwarding`).
pub const GLOBAL_TABLE: VrfId = 0;
/// Index of an L2 domain in a snapshot's `l2_domains`.
pub type L2DomainId = u16;

/// The `down_reason` of an interface that is `shutdown`.
pub const ADMIN_DOWN: &str = "administratively down";

const DEFAULT_MTU: u16 = 1500;
/// Linux's default for VXLAN devices: 1500 minus the 50 bytes of encapsulation.
const DEFAULT_VXLAN_MTU: u16 = 1450;
/// wg-quick's default: 1500 minus the 80 bytes of WireGuard over IPv6.
const DEFAULT_WIREGUARD_MTU: u16 = 1420;

/// VXLAN tunnel parameters of an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub vni: u32,
    pub source: Ipv4Addr,
    /// The table the outer packets are routed in: the source interface's.
    pub underlay: VrfId,
    pub remotes: Vec<Ipv4Addr>,
    pub udp_port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfaceKind {
    Port {
        port: PortId,
    },
    Vlan {
        port: PortId,
        vlan: u16,
    },
    Vxlan(Tunnel),
    /// A point-to-point tunnel an element encapsulates (`crate::tunnel`).
    Tunnel(TunnelRef),
    /// A routed interface on an L2 domain (`bdiN`): its frames are
    /// bridged into the domain.
    L2Domain(L2DomainId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iface {
    pub id: IfaceId,
    pub name: String,
    /// The routing table it forwards in.
    pub vrf: VrfId,
    /// None while the interface cannot carry traffic (see `down_reason`).
    pub kind: Option<IfaceKind>,
    pub mac: Mac,
    /// IPv4 addresses, the primary first (the source address when no
    /// subnet fits the peer).
    pub addresses: Vec<Ipv4Net>,
    /// Configured IPv6 addresses (link-local ones included).
    pub ipv6_addresses: Vec<Ipv6Net>,
    /// The automatic link-local address (EUI-64 from the MAC).
    pub link_local: Ipv6Addr,
    pub mtu: u16,
    /// Why the interface is down ("administratively down", ...), None when up.
    pub down_reason: Option<&'static str>,
    /// Addresses in its subnets that elements answer for (NAT public
    /// addresses, virtual servers): ARP and neighbour discovery get the
    /// interface's MAC for them.
    pub published: Vec<IpAddr>,
    /// VRRP virtual routers on it: while one is master, the interface
    /// takes frames to its MAC and answers ARP or neighbour solicitations
    /// for its addresses with it.
    pub virtual_routers: Vec<VirtualRouter>,
    /// The L2 domain it is a member of: its frames are bridged there,
    /// not routed.
    pub l2_domain: Option<L2DomainId>,
}

/// A virtual router as the path sees it.
#[derive(Clone, Debug)]
pub struct VirtualRouter {
    pub mac: Mac,
    /// Of one family (a group runs one virtual router per family).
    pub addresses: Vec<IpAddr>,
    pub master: Arc<std::sync::atomic::AtomicBool>,
}

/// The same router: the same flag, not merely equal flags.
impl PartialEq for VirtualRouter {
    fn eq(&self, other: &Self) -> bool {
        self.mac == other.mac
            && self.addresses == other.addresses
            && Arc::ptr_eq(&self.master, &other.master)
    }
}

impl Eq for VirtualRouter {}

impl VirtualRouter {
    pub fn is_master(&self) -> bool {
        self.master.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Iface {
    pub fn is_up(&self) -> bool {
        self.down_reason.is_none()
    }

    /// The addresses of the virtual routers that are master here, each
    /// with its router's MAC.
    pub fn mastered_addresses(&self) -> impl Iterator<Item = (IpAddr, Mac)> + '_ {
        (self.virtual_routers.iter())
            .filter(|v| v.is_master())
            .flat_map(|v| v.addresses.iter().map(|a| (*a, v.mac)))
    }

    /// The MAC of the master virtual router holding `address`, if one is.
    pub fn virtual_mac_for(&self, address: IpAddr) -> Option<Mac> {
        (self.mastered_addresses())
            .find(|(a, _)| *a == address)
            .map(|(_, mac)| mac)
    }

    /// The address to use as source when talking to `peer` from this interface.
    pub fn source_for(&self, peer: Ipv4Addr) -> Option<Ipv4Addr> {
        self.addresses
            .iter()
            .find(|a| a.contains(&peer))
            .or(self.addresses.first())
            .map(|a| a.addr())
    }

    /// The addresses the local stack owns here: IPv4, IPv6 and the
    /// automatic link-local one.
    pub fn own_networks(&self) -> impl Iterator<Item = IpNet> + '_ {
        let link_local = Ipv6Net::new(self.link_local, 64).ok().map(IpNet::V6);
        let v4 = self.addresses.iter().copied().map(IpNet::V4);
        let v6 = self.ipv6_addresses.iter().copied().map(IpNet::V6);
        v4.chain(v6).chain(link_local)
    }

    /// True when `addr` is one of this interface's IPv6 addresses.
    pub fn has_ipv6(&self, addr: Ipv6Addr) -> bool {
        addr == self.link_local || self.ipv6_addresses.iter().any(|a| a.addr() == addr)
    }

    /// The IPv6 source for talking to `peer` from this interface: an
    /// address of its subnet, else a global one, else the link-local one.
    pub fn source_for_ipv6(&self, peer: Ipv6Addr) -> Ipv6Addr {
        let global = |a: &&Ipv6Net| !a.addr().is_unicast_link_local();
        self.ipv6_addresses
            .iter()
            .find(|a| a.contains(&peer))
            .or(self.ipv6_addresses.iter().find(global))
            .filter(|_| !peer.is_unicast_link_local())
            .map_or(self.link_local, |a| a.addr())
    }
}

/// Interfaces reached through one port: the untagged one and its VLANs.
#[derive(Clone, Debug, Default)]
struct PortBinding {
    untagged: Option<IfaceId>,
    vlans: Vec<(u16, IfaceId)>,
}

/// Stable interface ids across commits, so counters keep their meaning.
#[derive(Default)]
pub struct InterfaceIds {
    ids: HashMap<String, IfaceId>,
}

impl InterfaceIds {
    fn id_of(&mut self, name: &str) -> Result<IfaceId, String> {
        if let Some(id) = self.ids.get(name) {
            return Ok(*id);
        }
        let id = self.ids.len();
        if id >= MAX_INTERFACES {
            return Err(format!("{name}: more than {MAX_INTERFACES} interfaces"));
        }
        self.ids.insert(name.to_string(), id as IfaceId);
        Ok(id as IfaceId)
    }
}

/// A routing table of the snapshot: its VRF name (None for the global
/// table) and its routes, shared between snapshots while unchanged.
#[derive(Clone)]
pub struct Table {
    pub vrf: Option<String>,
    /// The VRF's route distinguisher, for `show vrf`.
    pub rd: Option<String>,
    pub routes: Arc<RouteTable>,
}

/// The immutable tables of one committed configuration. Cloning it is
/// cheap but for the interfaces (the route tables are shared).
#[derive(Clone)]
pub struct Snapshot {
    /// Indexed by `IfaceId`; None for ids of interfaces no longer configured.
    pub interfaces: Vec<Option<Iface>>,
    /// The interfaces as the configuration made them, before the elements
    /// gave them drivers, published addresses or virtual routers: what the
    /// next commit compares to tell whether the route tables can be kept.
    configured_interfaces: Vec<Option<Iface>>,
    ports: Vec<PortBinding>,
    tunnels: Vec<(u16, u32, IfaceId)>,
    /// UDP ports elements' tunnel drivers claimed (`crate::tunnel`).
    udp_tunnels: Vec<(u16, TunnelRef)>,
    /// Indexed by `VrfId`: the global table first.
    pub tables: Vec<Table>,
    /// The network elements' nodes at the feature points.
    pub features: FeatureArcs,
    /// Indexed by `L2DomainId`.
    pub l2_domains: Vec<crate::bridge::Domain>,
}

/// A locally administered MAC derived from the interface name, so it is
/// stable across restarts and distinct from the host's own MAC on that link.
pub fn mac_for(name: &str) -> Mac {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let b = h.to_be_bytes();
    [0x02, 0x47, b[0], b[1], b[2], b[3]]
}

impl Snapshot {
    /// A snapshot with no interfaces and no routes.
    pub fn empty() -> Snapshot {
        Snapshot {
            interfaces: Vec::new(),
            configured_interfaces: Vec::new(),
            ports: Vec::new(),
            tunnels: Vec::new(),
            udp_tunnels: Vec::new(),
            tables: vec![Table {
                vrf: None,
                rd: None,
                routes: Arc::default(),
            }],
            features: FeatureArcs::default(),
            l2_domains: Vec::new(),
        }
    }

    /// Builds the tables for `config`. `port_of` gives the attached port of a
    /// physical interface (None: not attached, the interface is down).
    pub fn compile(
        config: &Config,
        ids: &mut InterfaceIds,
        port_of: &dyn Fn(&str) -> Option<PortId>,
    ) -> Result<Snapshot, String> {
        Snapshot::compile_after(config, ids, port_of, None, &LearnedRoutes::default())
    }

    /// Like `compile`, sharing the route tables of `previous` (the snapshot
    /// of the configuration before) when the interfaces came out the same
    /// and no section routes are built from changed: a commit that changes
    /// only a hostname does not rebuild a million routes. `learned` joins
    /// the tables it builds (the tables of `previous` have it already).
    pub fn compile_after(
        config: &Config,
        ids: &mut InterfaceIds,
        port_of: &dyn Fn(&str) -> Option<PortId>,
        previous: Option<(&Config, &Snapshot)>,
        learned: &LearnedRoutes,
    ) -> Result<Snapshot, String> {
        let mut snap = Snapshot::empty();
        let vrf_ids: HashMap<&str, VrfId> = config
            .vrfs
            .definitions
            .keys()
            .enumerate()
            .map(|(i, name)| (name.as_str(), (i + 1) as VrfId))
            .collect();
        let vrf_of = |name: &str| config.vrf_of(name).and_then(|v| vrf_ids.get(v).copied());
        for (name, conf) in config.interfaces.iter() {
            let id = ids.id_of(name)?;
            let (kind, mut down) = match InterfaceKind::of(name) {
                InterfaceKind::Physical => match port_of(name) {
                    Some(port) => (Some(IfaceKind::Port { port }), None),
                    None => (None, Some("not attached")),
                },
                InterfaceKind::SubInterface {
                    parent,
                    vlan_id_in_name,
                } => {
                    let parent_conf = config.interfaces.get(&parent);
                    // Without `encapsulation dot1q` the name's number is the VLAN.
                    let vlan = conf
                        .dot1q
                        .or_else(|| u16::try_from(vlan_id_in_name).ok())
                        .filter(|v| (1..=4094).contains(v));
                    match (parent_conf, vlan, port_of(&parent)) {
                        (None, _, _) => (None, Some("parent not configured")),
                        (_, None, _) => (None, Some("VLAN id out of range")),
                        (Some(p), _, _) if p.shutdown => (None, Some("parent down")),
                        (_, _, None) => (None, Some("parent not attached")),
                        (Some(_), Some(vlan), Some(port)) => {
                            (Some(IfaceKind::Vlan { port, vlan }), None)
                        }
                    }
                }
                InterfaceKind::Vxlan => match tunnel_of(config, name, &vrf_of) {
                    Ok(t) => (Some(IfaceKind::Vxlan(t)), None),
                    Err(why) => (None, Some(why)),
                },
                // Up, so that its routes are built; its element gives it
                // its driver (`claim_tunnel`) or its domain, or a reason
                // to be down.
                InterfaceKind::WireGuard | InterfaceKind::Bdi => (None, None),
            };
            if conf.shutdown {
                down = Some(ADMIN_DOWN);
            }
            let mac = match InterfaceKind::of(name) {
                InterfaceKind::SubInterface { parent, .. } => mac_for(&parent),
                _ => mac_for(name),
            };
            let default_mtu = match InterfaceKind::of(name) {
                InterfaceKind::Vxlan => DEFAULT_VXLAN_MTU,
                InterfaceKind::WireGuard => DEFAULT_WIREGUARD_MTU,
                _ => DEFAULT_MTU,
            };
            let primary = conf.primary_ipv4();
            let secondaries = conf.ipv4_addresses.iter().filter(|a| Some(**a) != primary);
            let iface = Iface {
                id,
                name: name.clone(),
                vrf: vrf_of(name).unwrap_or(GLOBAL_TABLE),
                kind: if down.is_none() { kind } else { None },
                mac,
                addresses: primary.into_iter().chain(secondaries.copied()).collect(),
                ipv6_addresses: conf.ipv6_addresses.iter().copied().collect(),
                link_local: link_local_for(&mac),
                mtu: conf.mtu.unwrap_or(default_mtu),
                down_reason: down,
                published: Vec::new(),
                virtual_routers: Vec::new(),
                l2_domain: None,
            };
            snap.bind(&iface);
            let slot = usize::from(id);
            if snap.interfaces.len() <= slot {
                snap.interfaces.resize(slot + 1, None);
            }
            snap.interfaces[slot] = Some(iface);
        }
        let unchanged = previous.filter(|(old, old_snap)| {
            Arc::ptr_eq(&old.interfaces, &config.interfaces)
                && Arc::ptr_eq(&old.vrfs, &config.vrfs)
                && Arc::ptr_eq(&old.routes, &config.routes)
                && old_snap.configured_interfaces == snap.interfaces
        });
        snap.tables = match unchanged {
            Some((_, old_snap)) => old_snap.tables.clone(),
            None => snap.build_tables(config, learned)?,
        };
        snap.configured_interfaces = snap.interfaces.clone();
        Ok(snap)
    }

    /// Records how received traffic finds this interface.
    fn bind(&mut self, iface: &Iface) {
        let port = match &iface.kind {
            Some(IfaceKind::Port { port }) | Some(IfaceKind::Vlan { port, .. }) => *port,
            Some(IfaceKind::Vxlan(t)) => {
                self.tunnels.push((t.udp_port, t.vni, iface.id));
                return;
            }
            Some(IfaceKind::Tunnel(_)) | Some(IfaceKind::L2Domain(_)) | None => return,
        };
        let slot = usize::from(port);
        if self.ports.len() <= slot {
            self.ports.resize(slot + 1, PortBinding::default());
        }
        match &iface.kind {
            Some(IfaceKind::Vlan { vlan, .. }) => self.ports[slot].vlans.push((*vlan, iface.id)),
            _ => self.ports[slot].untagged = Some(iface.id),
        }
    }

    pub fn up_interfaces(&self) -> impl Iterator<Item = &Iface> {
        self.interfaces.iter().flatten().filter(|i| i.is_up())
    }

    /// (interface, address) of every up interface of table `vrf`, from `of`.
    fn addresses_of<P: Copy>(&self, vrf: VrfId, of: impl Fn(&Iface) -> &[P]) -> Vec<(IfaceId, P)> {
        self.up_interfaces()
            .filter(|i| i.vrf == vrf)
            .flat_map(|i| of(i).iter().map(|a| (i.id, *a)))
            .collect()
    }

    fn up_interface_named(&self, name: &str) -> Option<IfaceId> {
        self.up_interfaces().find(|i| i.name == name).map(|i| i.id)
    }

    /// This snapshot with table `vrf`'s routes replaced (a batch of
    /// learned routes applied); the same when there is no such table.
    pub fn with_table(&self, vrf: VrfId, routes: RouteTable) -> Snapshot {
        let mut snap = self.clone();
        if let Some(table) = snap.tables.get_mut(usize::from(vrf)) {
            table.routes = Arc::new(routes);
        }
        snap
    }

    /// The global table and one per VRF, in `VrfId` order.
    fn build_tables(&self, config: &Config, learned: &LearnedRoutes) -> Result<Vec<Table>, String> {
        let names = std::iter::once(None).chain(config.vrfs.definitions.keys().map(Some));
        names
            .enumerate()
            .map(|(id, vrf)| {
                let routes = config.routes.table(vrf.map(String::as_str));
                let rd = vrf.and_then(|v| config.vrfs.definitions.get(v)?.rd.clone());
                Ok(Table {
                    vrf: vrf.cloned(),
                    rd,
                    routes: Arc::new(self.build_routes(id as VrfId, vrf, routes, learned)?),
                })
            })
            .collect()
    }

    /// The routes of table `vrf`: its interfaces' local and connected
    /// routes, its static routes (whose interface next hops may be in
    /// any table: that is how routes leak between tenants) and its
    /// learned routes.
    fn build_routes(
        &self,
        vrf: VrfId,
        name: Option<&String>,
        statics: Option<&grammar::config::RouteTable>,
        learned: &LearnedRoutes,
    ) -> Result<RouteTable, String> {
        let by_name = |n: &str| self.up_interface_named(n);
        let v4 = self.addresses_of(vrf, |i| &i.addresses);
        let static_v4 = statics.into_iter().flat_map(|t| t.ipv4());
        let routes = routes::build(&v4, static_v4, &by_name);
        // Link-local subnets exist on every link: they are answered per
        // interface (ND, own addresses) and never routed (RFC 4291 2.5.6).
        let mut v6 = self.addresses_of(vrf, |i| &i.ipv6_addresses);
        v6.retain(|(_, a)| !a.addr().is_unicast_link_local());
        let static_v6 = statics.into_iter().flat_map(|t| t.ipv6());
        let routes6 = routes::build(&v6, static_v6, &by_name);
        let interfaces = self.up_interfaces().map(|i| (i.name.clone(), i.id));
        let mut table = RouteTable::new(routes, routes6, interfaces.collect())?;
        table.apply_learned(learned.announcements(name.map(String::as_str)))?;
        Ok(table)
    }

    #[inline]
    pub fn interface(&self, id: IfaceId) -> Option<&Iface> {
        self.interfaces
            .get(usize::from(id))
            .and_then(|i| i.as_ref())
    }

    /// The interface a frame received on `port` with optional VLAN tag belongs to.
    #[inline]
    pub fn ingress(&self, port: PortId, vlan: Option<u16>) -> Option<IfaceId> {
        let b = self.ports.get(usize::from(port))?;
        match vlan {
            None => b.untagged,
            Some(v) => b.vlans.iter().find(|(tag, _)| *tag == v).map(|(_, id)| *id),
        }
    }

    /// The VXLAN interface terminating `vni` on UDP port `udp_port`.
    pub fn tunnel(&self, udp_port: u16, vni: u32) -> Option<IfaceId> {
        self.tunnels
            .iter()
            .find(|(p, v, _)| *p == udp_port && *v == vni)
            .map(|(_, _, id)| *id)
    }

    /// Makes interface `id` a tunnel driven by `driver`, which receives the
    /// datagrams for `udp_port` at our addresses (an element's compile).
    pub fn claim_tunnel(&mut self, id: IfaceId, driver: TunnelRef, udp_port: u16) {
        if let Some(Some(iface)) = self.interfaces.get_mut(usize::from(id)) {
            if iface.is_up() {
                iface.kind = Some(IfaceKind::Tunnel(driver.clone()));
            }
        }
        self.udp_tunnels.push((udp_port, driver));
    }

    /// The L2 domain `id`.
    #[inline]
    pub fn l2_domain(&self, id: L2DomainId) -> Option<&crate::bridge::Domain> {
        self.l2_domains.get(usize::from(id))
    }

    /// The tunnel driver receiving datagrams for this UDP port.
    #[inline]
    pub fn udp_tunnel(&self, udp_port: u16) -> Option<&TunnelRef> {
        (self.udp_tunnels.iter())
            .find(|(p, _)| *p == udp_port)
            .map(|(_, t)| t)
    }

    /// Every tunnel driver (their timers run on one worker).
    pub fn tunnel_drivers(&self) -> impl Iterator<Item = &TunnelRef> {
        self.udp_tunnels.iter().map(|(_, t)| t)
    }

    /// True when some tunnel listens on this UDP port.
    pub fn is_tunnel_port(&self, udp_port: u16) -> bool {
        self.tunnels.iter().any(|(p, _, _)| *p == udp_port)
    }

    /// Has every interface of table `vrf` with a subnet holding `addr`
    /// (but not the address itself) answer ARP or neighbour solicitations
    /// for it: an element's address on that link.
    pub fn publish(&mut self, vrf: VrfId, addr: IpAddr) {
        for iface in self
            .interfaces
            .iter_mut()
            .flatten()
            .filter(|i| i.vrf == vrf)
        {
            let on_link = match addr {
                IpAddr::V4(a) => (iface.addresses.iter()).any(|n| n.contains(&a) && n.addr() != a),
                IpAddr::V6(a) => {
                    (iface.ipv6_addresses.iter()).any(|n| n.contains(&a) && n.addr() != a)
                }
            };
            if on_link && !iface.published.contains(&addr) {
                iface.published.push(addr);
            }
        }
    }

    /// The routes of table `vrf` (the global table for an unknown id).
    #[inline(always)]
    pub fn table(&self, vrf: VrfId) -> &RouteTable {
        match self.tables.get(usize::from(vrf)).or(self.tables.first()) {
            Some(table) => &table.routes,
            // Never: `empty` and `compile_after` always make the global
            // table. (A `match`, so the lazy static is not touched per packet.)
            None => &EMPTY_TABLE,
        }
    }

    /// Longest-prefix match in the global table.
    pub fn route(&self, dst: Ipv4Addr) -> Option<&Entry> {
        self.table(GLOBAL_TABLE).route(dst)
    }

    /// Longest-prefix match for IPv6 in the global table.
    pub fn route6(&self, dst: Ipv6Addr) -> Option<&Entry6> {
        self.table(GLOBAL_TABLE).route6(dst)
    }

    /// The id of the table of VRF `name` (None: the global table).
    pub fn vrf_id(&self, name: Option<&str>) -> Option<VrfId> {
        let found = self.tables.iter().position(|t| t.vrf.as_deref() == name);
        found.map(|i| i as VrfId)
    }

    /// Every own address for the local stack: IPv4, IPv6 and each
    /// interface's automatic link-local address, of the global table's
    /// interfaces (the appliance's services answer in the global table).
    pub fn own_addresses(&self) -> Vec<IpNet> {
        self.up_interfaces()
            .filter(|i| i.vrf == GLOBAL_TABLE)
            .flat_map(Iface::own_networks)
            .collect()
    }

    /// The VRFs and the up interfaces of every table, for the local
    /// stack's tools (`ping vrf`, `source`).
    pub fn own_tables(&self) -> crate::local::OwnTables {
        let vrfs = self.tables.iter().enumerate();
        let vrfs = vrfs.filter_map(|(id, t)| Some((t.vrf.clone()?, id as VrfId)));
        let interfaces = self.up_interfaces().map(|i| crate::local::OwnInterface {
            name: i.name.clone(),
            table: i.vrf,
            addresses: i.own_networks().collect(),
        });
        crate::local::OwnTables {
            vrfs: vrfs.collect(),
            interfaces: interfaces.collect(),
        }
    }

    /// Names of the physical interfaces a config attaches (not shut down).
    pub fn attached_names(config: &Config) -> Vec<String> {
        config
            .interfaces
            .iter()
            .filter(|(name, conf)| {
                InterfaceKind::of(name) == InterfaceKind::Physical && !conf.shutdown
            })
            .map(|(name, _)| name.clone())
            .collect()
    }
}

static EMPTY_TABLE: std::sync::LazyLock<RouteTable> = std::sync::LazyLock::new(RouteTable::default);

fn tunnel_of(
    config: &Config,
    name: &str,
    vrf_of: &dyn Fn(&str) -> Option<VrfId>,
) -> Result<Tunnel, &'static str> {
    let v = config
        .interfaces
        .get(name)
        .and_then(|i| i.vxlan.as_ref())
        .ok_or("no vxlan settings")?;
    let vni = v.vni.ok_or("no vni")?;
    let source_name = v.source_interface.as_ref().ok_or("no source-interface")?;
    let source = config
        .interfaces
        .get(source_name)
        .and_then(|i| i.ipv4_addresses.iter().next())
        .ok_or("source-interface has no address")?;
    Ok(Tunnel {
        vni,
        source: source.addr(),
        underlay: vrf_of(source_name).unwrap_or(GLOBAL_TABLE),
        remotes: v.remotes.iter().copied().collect(),
        udp_port: v.udp_port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammar::config::{Interface, NextHop, StaticRoute};

    fn with_addresses(addresses: &[&str]) -> Interface {
        Interface {
            ipv4_addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            ..Interface::default()
        }
    }

    fn route(prefix: &str, via: &str, distance: u8) -> StaticRoute {
        StaticRoute {
            prefix: prefix.parse().unwrap(),
            next_hop: NextHop::Address(via.parse().unwrap()),
            distance,
        }
    }

    fn compile(config: &Config) -> Snapshot {
        Snapshot::compile(config, &mut InterfaceIds::default(), &|name| {
            (name == "eth0").then_some(0)
        })
        .unwrap()
    }

    #[test]
    fn learned_routes_join_the_global_table_and_a_static_of_lower_distance_wins() {
        let mut c = Config::default();
        c.interfaces_mut()
            .insert("eth0".into(), with_addresses(&["10.0.0.1/24"]));
        c.routes_mut().add_ipv4(route("10.7.0.0/16", "10.0.0.3", 1));
        let mut learned = LearnedRoutes::default();
        let announce = |prefix, via| RouteChange::Announce(route(prefix, via, 20));
        learned.apply(
            None,
            &[
                announce("10.7.0.0/16", "10.0.0.2"),
                announce("10.8.0.0/16", "10.0.0.2"),
            ],
        );
        let port_of = |name: &str| (name == "eth0").then_some(0);
        let s = Snapshot::compile_after(&c, &mut InterfaceIds::default(), &port_of, None, &learned)
            .unwrap();
        let bgp = s.route("10.8.1.1".parse().unwrap()).unwrap();
        assert_eq!((bgp.source, bgp.distance), (Source::Bgp, 20));
        let RouteKind::Static { hops } = &bgp.kind else {
            panic!("a route with a next hop expected: {bgp:?}")
        };
        assert_eq!(hops.members()[0].gateway, Some("10.0.0.2".parse().unwrap()));
        let stat = s.route("10.7.1.1".parse().unwrap()).unwrap();
        assert_eq!((stat.source, stat.distance), (Source::Static, 1));
    }

    #[test]
    fn a_batch_changes_its_vrf_only_and_a_rebuild_applies_it_again() {
        let mut c = Config::default();
        let interfaces = c.interfaces_mut();
        interfaces.insert("eth0".into(), with_addresses(&["10.0.0.1/24"]));
        interfaces.insert("eth1".into(), with_addresses(&["10.0.0.1/24"]));
        let vrfs = Arc::make_mut(&mut c.vrfs);
        vrfs.definitions.insert("A".into(), Default::default());
        vrfs.members.insert("eth1".into(), "A".into());
        let port_of = |name: &str| ["eth0", "eth1"].iter().position(|n| *n == name);
        let port_of = |name: &str| port_of(name).map(|p| p as PortId);
        let mut ids = InterfaceIds::default();
        let first = Snapshot::compile(&c, &mut ids, &port_of).unwrap();
        let changes = [RouteChange::Announce(route("10.9.0.0/16", "10.0.0.2", 20))];
        let a = first.vrf_id(Some("A")).unwrap();
        let mut table = first.table(a).clone();
        table.apply_learned(&changes).unwrap();
        let second = first.with_table(a, table);
        let dst: Ipv4Addr = "10.9.0.1".parse().unwrap();
        assert!(
            first.table(a).route(dst).is_none(),
            "the published one unchanged"
        );
        assert!(second.table(a).route(dst).is_some());
        assert!(second.route(dst).is_none(), "not in the global table");

        let mut learned = LearnedRoutes::default();
        learned.apply(Some("A"), &changes);
        let mut routed = c.clone();
        (routed.routes_mut()).add_ipv4(route("10.5.0.0/16", "10.0.0.3", 1));
        let third =
            Snapshot::compile_after(&routed, &mut ids, &port_of, Some((&c, &second)), &learned)
                .unwrap();
        assert!(!Arc::ptr_eq(
            &second.tables[a as usize].routes,
            &third.tables[a as usize].routes
        ));
        let bgp = third.table(a).route(dst).map(|r| r.source);
        assert_eq!(bgp, Some(Source::Bgp), "applied again after the rebuild");
        assert!(third.route("10.5.0.1".parse().unwrap()).is_some());
    }

    #[test]
    fn best_distance_wins_and_unresolvable_next_hops_are_ignored() {
        let mut c = Config::default();
        c.interfaces_mut()
            .insert("eth0".into(), with_addresses(&["10.0.0.1/24"]));
        c.routes_mut().add_ipv4(route("10.5.0.0/16", "10.0.0.2", 5));
        c.routes_mut().add_ipv4(route("10.5.0.0/16", "10.0.0.3", 1));
        c.routes_mut()
            .add_ipv4(route("10.6.0.0/16", "192.0.2.1", 1));
        c.routes_mut().add_ipv4(route("10.0.0.0/24", "10.0.0.9", 1));
        let s = compile(&c);
        let r = s.route("10.5.1.1".parse().unwrap()).unwrap();
        assert_eq!(r.distance, 1);
        let RouteKind::Static { hops } = &r.kind else {
            panic!("static expected: {r:?}")
        };
        assert_eq!(hops.members()[0].gateway, Some("10.0.0.3".parse().unwrap()));
        assert!(
            s.route("10.6.0.1".parse().unwrap()).is_none(),
            "next hop not on a connected network"
        );
        let connected = s.route("10.0.0.9".parse().unwrap()).unwrap();
        assert!(
            matches!(connected.kind, RouteKind::Connected { .. }),
            "connected beats static"
        );
        let own = s.route("10.0.0.1".parse().unwrap()).unwrap();
        assert!(matches!(own.kind, RouteKind::Local { .. }));
    }

    #[test]
    fn ipv6_routes_resolve_like_ipv4_and_link_local_stays_off_the_fib() {
        let mut c = Config::default();
        let mut eth0 = with_addresses(&[]);
        eth0.ipv6_addresses = ["2001:db8::1/64", "fe80::1/64"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        c.interfaces_mut().insert("eth0".into(), eth0);
        for (via, distance) in [("2001:db8::2", 5), ("2001:db8::3", 1), ("2001:db8:5::1", 1)] {
            c.routes_mut().add_ipv6(StaticRoute {
                prefix: "2001:db8:9::/48".parse().unwrap(),
                next_hop: NextHop::Address(via.parse().unwrap()),
                distance,
            });
        }
        let s = compile(&c);
        let r = s.route6("2001:db8:9::7".parse().unwrap()).unwrap();
        let RouteKind::Static { hops } = &r.kind else {
            panic!("static expected: {r:?}")
        };
        let gateways: Vec<_> = hops.members().iter().map(|h| h.gateway).collect();
        assert_eq!(gateways, [Some("2001:db8::3".parse().unwrap())]);
        let own = s.route6("2001:db8::1".parse().unwrap()).unwrap();
        assert!(matches!(own.kind, RouteKind::Local { .. }));
        assert!(s.route6("fe80::1".parse().unwrap()).is_none());
        let eth0 = s.interfaces.iter().flatten().next().unwrap();
        assert_eq!(
            eth0.link_local,
            crate::wire::link_local_for(&mac_for("eth0"))
        );
        assert!(eth0.has_ipv6("fe80::1".parse().unwrap()));
        assert_eq!(
            eth0.source_for_ipv6("fe80::9".parse().unwrap()),
            eth0.link_local
        );
        assert_eq!(
            eth0.source_for_ipv6("2001:db8:77::1".parse().unwrap()),
            "2001:db8::1".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn interfaces_that_cannot_carry_traffic_say_why() {
        let mut c = Config::default();
        c.interfaces_mut()
            .insert("eth0".into(), with_addresses(&["10.0.0.1/24"]));
        c.interfaces_mut()
            .insert("eth9".into(), Interface::default());
        c.interfaces_mut()
            .insert("eth0.7".into(), Interface::default());
        c.interfaces_mut()
            .insert("eth0.5000".into(), Interface::default());
        c.interfaces_mut()
            .insert("vxlan3".into(), with_addresses(&["10.3.0.1/24"]));
        let mut down = with_addresses(&["10.4.0.1/24"]);
        down.shutdown = true;
        c.interfaces_mut().insert(
            "eth0.8".into(),
            Interface {
                dot1q: Some(8),
                ..down
            },
        );
        let s = compile(&c);
        let reason = |name: &str| {
            s.interfaces
                .iter()
                .flatten()
                .find(|i| i.name == name)
                .and_then(|i| i.down_reason)
        };
        assert_eq!(reason("eth0"), None);
        assert_eq!(reason("eth9"), Some("not attached"));
        assert_eq!(reason("eth0.7"), None, "VLAN 7 from the name");
        assert_eq!(reason("eth0.5000"), Some("VLAN id out of range"));
        assert!(s.ingress(0, Some(7)).is_some());
        assert_eq!(reason("vxlan3"), Some("no vxlan settings"));
        assert_eq!(reason("eth0.8"), Some("administratively down"));
        assert!(
            s.route("10.4.0.1".parse().unwrap()).is_none(),
            "no routes of down interfaces"
        );
        assert_eq!(s.ingress(0, Some(8)), None);
    }

    #[test]
    fn a_commit_that_changes_nothing_routes_are_built_from_keeps_the_route_tables() {
        let mut c = Config::default();
        c.interfaces_mut()
            .insert("eth0".into(), with_addresses(&["10.0.0.1/24"]));
        let mut ids = InterfaceIds::default();
        let port_of = |name: &str| (name == "eth0").then_some(0);
        let mut first = Snapshot::compile(&c, &mut ids, &port_of).unwrap();
        // What elements add to interfaces (a NAT's published address) is
        // not a change of the configuration.
        if let Some(Some(eth0)) = first.interfaces.first_mut() {
            eth0.published.push("10.0.0.9".parse().unwrap());
        }
        let mut renamed = c.clone();
        renamed.system_mut().hostname = Some("r2".into());
        let second = Snapshot::compile_after(
            &renamed,
            &mut ids,
            &port_of,
            Some((&c, &first)),
            &LearnedRoutes::default(),
        )
        .unwrap();
        assert!(Arc::ptr_eq(
            &first.tables[0].routes,
            &second.tables[0].routes
        ));
        let mut routed = renamed.clone();
        routed
            .routes_mut()
            .add_ipv4(route("10.5.0.0/16", "10.0.0.2", 1));
        let third = Snapshot::compile_after(
            &routed,
            &mut ids,
            &port_of,
            Some((&renamed, &second)),
            &LearnedRoutes::default(),
        )
        .unwrap();
        assert!(!Arc::ptr_eq(
            &second.tables[0].routes,
            &third.tables[0].routes
        ));
        assert!(third.route("10.5.0.1".parse().unwrap()).is_some());
        let detached = |_: &str| None;
        let fourth = Snapshot::compile_after(
            &routed,
            &mut ids,
            &detached,
            Some((&routed, &third)),
            &LearnedRoutes::default(),
        )
        .unwrap();
        assert!(
            fourth.route("10.5.0.1".parse().unwrap()).is_none(),
            "a NIC gone takes its routes with it although the config is the same"
        );
    }
}
