//! The registry of network elements and the typed configuration model they
//! make up together: plain Rust data that parsing produces, the renderer
//! writes back as running-config text, and the dataplane consumes.
//!
//! Each element's section is behind an `Arc`: a candidate shares every
//! section it did not change with the configuration it started from, so a
//! commit can tell what changed by pointer and skip checking and compiling
//! the rest. Every collection is ordered (BTreeMap/BTreeSet) so that two
//! equal models render to the same text and compare equal.

use crate::commands::SubMode;
use crate::elements::{self, NetworkElement};
use std::sync::Arc;

pub use crate::elements::access_lists::{
    AccessList, AccessLists, AclProtocol, AclRule, AddressMatch, Direction, Entry, Family,
    PortMatch, EXT_NACL_MODE, IPV6_ACL_MODE,
};
pub use crate::elements::bgp::{
    Bgp, BgpNeighbor, BgpRouter, Ipv4Unicast, MaximumPrefix, NeighborFilter, Redistribute,
    DEFAULT_HOLD, DEFAULT_KEEPALIVE, ROUTER_AF_MODE, ROUTER_MODE,
};
pub use crate::elements::bridge_domain::{
    bdi_domain, BridgeDomain, BridgeDomains, BRIDGE_DOMAIN_MODE, DEFAULT_MAC_AGING_SECS,
    DEFAULT_MAC_LIMIT,
};
pub use crate::elements::control_plane::{
    default_policer, ControlPlane, CpClass, Policer, CP_MODE,
};
pub use crate::elements::inspect::{
    Inspect, SessionLimits, DEFAULT_ICMP_IDLE, DEFAULT_MAX_SESSIONS, DEFAULT_TCP_FINWAIT,
    DEFAULT_TCP_IDLE, DEFAULT_TCP_SYNWAIT, DEFAULT_UDP_IDLE,
};
pub use crate::elements::interfaces::{
    Interface, InterfaceKind, Interfaces, Vxlan, INTERFACE_MODE, VXLAN_DEFAULT_PORT,
};
pub use crate::elements::iot::{
    ByteOrder, DataType, Decimal, Device, Iot, Mqtt, MqttSettings, Publish, Table, Tag,
    DEVICE_MODE, IOT_MODE, MAX_READ_REGISTERS, TAG_MODE,
};
pub use crate::elements::line_vty::LINE_MODE;
pub use crate::elements::management::{
    http_client_permitted, Management, DEFAULT_LOG_BUFFER, LOG_LEVELS,
};
pub use crate::elements::nat::{
    DynamicNat, Nat, NatPolice, NatPool, NatSide, NatTarget, StaticKey, StaticNat, StaticProtocol,
    DEFAULT_MAX_TRANSLATIONS,
};
pub use crate::elements::prefix_list::{PolicyAction, PrefixEntry, PrefixList, PrefixLists};
pub use crate::elements::redundancy::{Redundancy, SyncedTable, DEFAULT_SYNC_PORT};
pub use crate::elements::route_map::{
    community_word, CommunitySet, RouteMap, RouteMapEntry, RouteMaps, ROUTE_MAP_MODE,
};
pub use crate::elements::slb::{
    parse_real_mode_object, real_mode_object, ProbeKind, ProbeSettings, Real, RealKey, ServerFarm,
    Slb, SlbProbe, SlbProtocol, VirtualServer, DEFAULT_MAGLEV_TABLE_SIZE, DEFAULT_REAL_WEIGHT,
    PROBE_MODE, REAL_MODE, SFARM_MODE, VSERVER_MODE,
};
pub use crate::elements::static_routes::{
    Ipv6Route, NextHop, RouteDetails, RouteTable, StaticRoute, StaticRoutes,
    STATIC_DEFAULT_DISTANCE,
};
pub use crate::elements::system::System;
pub use crate::elements::tcp_mss::TcpMss;
pub use crate::elements::users::{PasswordHash, SshKey, User, Users};
pub use crate::elements::vrf::{VrfDefinition, Vrfs, VRF_MODE};
pub use crate::elements::vrrp::{
    Vrrp, VrrpGroup, DEFAULT_VRRP_ADVERTISE_MS, DEFAULT_VRRP_PRIORITY,
};
pub use crate::elements::wireguard::{
    WgInterface, WgKey, WgPeer, WireGuard, DEFAULT_WG_PORT, WG_PEER_MODE,
};

/// Declares the configuration: one line per element, `field: Section =>
/// element`, in the canonical order of the running config. An element
/// that edits another's section (`line vty` keeps its access classes with
/// the access lists they name) has a line `=> element` of its own, for
/// its place in that order.
macro_rules! registry {
    ($($($field:ident: $section:ty)? => $element:expr),* $(,)?) => {
        /// The whole appliance configuration: one section per element.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Config {
            $($(pub $field: Arc<$section>,)?)*
        }

        /// Every network element, in the canonical order of the running config.
        pub static ELEMENTS: &[&dyn NetworkElement] = &[$(&$element),*];
    };
}

registry! {
    system: System => elements::system::Element,
    users: Users => elements::users::Element,
    vrfs: Vrfs => elements::vrf::Element,
    access_lists: AccessLists => elements::access_lists::Element,
    inspect: Inspect => elements::inspect::Element,
    interfaces: Interfaces => elements::interfaces::Element,
    bridge_domains: BridgeDomains => elements::bridge_domain::Element,
    nat: Nat => elements::nat::Element,
    slb: Slb => elements::slb::Element,
    vrrp: Vrrp => elements::vrrp::Element,
    redundancy: Redundancy => elements::redundancy::Element,
    tcp_mss: TcpMss => elements::tcp_mss::Element,
    wireguard: WireGuard => elements::wireguard::Element,
    routes: StaticRoutes => elements::static_routes::Element,
    bgp: Bgp => elements::bgp::Element,
    prefix_lists: PrefixLists => elements::prefix_list::Element,
    route_maps: RouteMaps => elements::route_map::Element,
    control_plane: ControlPlane => elements::control_plane::Element,
    management: Management => elements::management::Element,
    => elements::line_vty::Element,
    iot: Iot => elements::iot::Element,
}

impl Config {
    /// The hostname shown in prompts.
    pub fn hostname_or_default(&self) -> &str {
        self.system.hostname.as_deref().unwrap_or("gatehouse")
    }

    /// The interfaces, to change (copied first if shared).
    pub fn interfaces_mut(&mut self) -> &mut Interfaces {
        Arc::make_mut(&mut self.interfaces)
    }

    /// The static routes, to change (copied first if shared).
    pub fn routes_mut(&mut self) -> &mut StaticRoutes {
        Arc::make_mut(&mut self.routes)
    }

    /// The system settings, to change (copied first if shared).
    pub fn system_mut(&mut self) -> &mut System {
        Arc::make_mut(&mut self.system)
    }

    /// The VRF an interface forwards in; None for the global table.
    pub fn vrf_of(&self, interface: &str) -> Option<&str> {
        self.vrfs.members.get(interface).map(String::as_str)
    }
}

/// Every sub-mode the elements open.
pub fn sub_modes() -> impl Iterator<Item = &'static SubMode> {
    ELEMENTS
        .iter()
        .flat_map(|e| e.declaration().sub_modes.iter().copied())
}
