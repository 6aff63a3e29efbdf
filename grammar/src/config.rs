//! The typed configuration model: plain Rust data that parsing produces, the
//! renderer writes back as running-config text, and the dataplane consumes.
//!
//! Every collection is ordered (BTreeMap/BTreeSet) so that two equal models
//! render to the same text and compare equal regardless of entry order.

use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Default UDP port of VXLAN (IANA).
pub const VXLAN_DEFAULT_PORT: u16 = 4789;

/// Administrative distance of a static route when none is given.
pub const STATIC_DEFAULT_DISTANCE: u8 = 1;

/// The whole appliance configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub hostname: Option<String>,
    pub banner_motd: Option<String>,
    /// Keyed by interface name (`eth0`, `eth0.100`, `vxlan10`).
    pub interfaces: BTreeMap<String, Interface>,
    pub routes: BTreeSet<StaticRoute>,
    pub ipv6_routes: BTreeSet<Ipv6Route>,
    /// Keyed by user name.
    pub users: BTreeMap<String, User>,
}

impl Config {
    /// The hostname shown in prompts.
    pub fn hostname_or_default(&self) -> &str {
        self.hostname.as_deref().unwrap_or("gatehouse")
    }
}

/// What an interface is, derived from its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InterfaceKind {
    /// A NIC the dataplane attaches to (`eth0`, or a host interface name in hosted mode).
    Physical,
    /// An 802.1Q sub-interface `PARENT.VLAN`.
    SubInterface {
        parent: String,
        vlan_id_in_name: u32,
    },
    /// A VXLAN tunnel interface `vxlanN`.
    Vxlan,
}

impl InterfaceKind {
    /// Classifies an interface name: `vxlan<N>` is VXLAN, `<parent>.<N>` is a
    /// sub-interface, anything else is physical.
    pub fn of(name: &str) -> InterfaceKind {
        if let Some(rest) = name.strip_prefix("vxlan") {
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                return InterfaceKind::Vxlan;
            }
        }
        if let Some((parent, sub)) = name.rsplit_once('.') {
            if let Ok(n) = sub.parse::<u32>() {
                return InterfaceKind::SubInterface {
                    parent: parent.to_string(),
                    vlan_id_in_name: n,
                };
            }
        }
        InterfaceKind::Physical
    }
}

/// One interface's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interface {
    pub description: Option<String>,
    pub shutdown: bool,
    pub mtu: Option<u16>,
    /// Interface addresses: host address plus prefix length (`10.0.0.1/24`).
    pub ipv4_addresses: BTreeSet<Ipv4Net>,
    pub ipv6_addresses: BTreeSet<Ipv6Net>,
    /// `encapsulation dot1q N` on a sub-interface.
    pub dot1q: Option<u16>,
    /// VXLAN settings; only meaningful on `vxlanN` interfaces.
    pub vxlan: Option<Vxlan>,
}

/// VXLAN tunnel settings of a `vxlanN` interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vxlan {
    pub vni: Option<u32>,
    /// The interface whose first IPv4 address is the tunnel source.
    pub source_interface: Option<String>,
    /// Static remote VTEPs (head-end replication list for BUM traffic).
    pub remotes: BTreeSet<Ipv4Addr>,
    pub udp_port: u16,
}

impl Default for Vxlan {
    fn default() -> Self {
        Vxlan {
            vni: None,
            source_interface: None,
            remotes: BTreeSet::new(),
            udp_port: VXLAN_DEFAULT_PORT,
        }
    }
}

/// `ip route PREFIX NEXTHOP [DISTANCE]`; with IPv6 types, `ipv6 route`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StaticRoute<P = Ipv4Net, A = Ipv4Addr> {
    /// Always stored truncated to the network address.
    pub prefix: P,
    pub next_hop: NextHop<A>,
    pub distance: u8,
}

/// `ipv6 route PREFIX NEXTHOP [DISTANCE]`. Next hops are global addresses:
/// a link-local one would need an interface too, which the syntax has no
/// room for, so the command refuses it.
pub type Ipv6Route = StaticRoute<Ipv6Net, Ipv6Addr>;

/// Where a static route points.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHop<A = Ipv4Addr> {
    Address(A),
    Interface(String),
}

/// `username NAME [privilege N] secret ...` and
/// `username NAME [privilege N] ssh-key TYPE BASE64 [COMMENT]`: a user has a
/// password, public keys, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// 1 = read-only (cannot enter config mode), 15 = full.
    pub privilege: u8,
    /// Salted PBKDF2 hash, never the clear-text password.
    pub secret: Option<PasswordHash>,
    /// Keys accepted for SSH public-key login.
    pub ssh_keys: BTreeSet<SshKey>,
}

/// One public key in OpenSSH authorized_keys form: `TYPE BASE64 [COMMENT]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SshKey {
    pub algorithm: String,
    pub base64: String,
    pub comment: Option<String>,
}

/// A salted PBKDF2-HMAC-SHA256 password hash, rendered as
/// `$pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordHash(pub String);
