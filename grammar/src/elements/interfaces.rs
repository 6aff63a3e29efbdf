//! The interfaces element: physical interfaces, 802.1Q sub-interfaces
//! (`NAME.VLAN`, `encapsulation dot1q`) and VXLAN tunnel interfaces
//! (`vxlanN`: `vni`, `source-interface`, `remote`, `udp-port`), their
//! addresses, MTU, description and shutdown. `interface NAME` opens the
//! `(config-if)` sub-mode where other elements add their own lines;
//! `interface range` opens it for several interfaces at once, and
//! `default interface NAME` empties one.

use crate::commands::{
    description_text, edit_set, ipv4_network, mask_form, required, set_or_clear, CommandDef,
    ConfigContext, Edit, Mode, SubMode, INCOMPLETE,
};
use crate::config::{Config, ELEMENTS};
use crate::element::is_interface_name;
use crate::render::Block;
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Default UDP port of VXLAN (IANA).
pub const VXLAN_DEFAULT_PORT: u16 = 4789;

/// `(config-if)#`, opened by `interface NAME`.
pub static INTERFACE_MODE: SubMode = SubMode {
    prompt: "if",
    parent: None,
};

/// Keyed by interface name (`eth0`, `eth0.100`, `vxlan10`).
pub type Interfaces = BTreeMap<String, Interface>;

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
    /// A WireGuard tunnel interface `wgN` (the wireguard element's).
    WireGuard,
    /// A routed interface on bridge domain N, `bdiN` (the bridge-domain
    /// element's).
    Bdi,
}

impl InterfaceKind {
    /// Classifies an interface name: `vxlan<N>` is VXLAN, `wg<N>`
    /// WireGuard, `bdi<N>` a bridge domain's routed interface,
    /// `<parent>.<N>` is a sub-interface, anything else is physical.
    pub fn of(name: &str) -> InterfaceKind {
        let numbered = |prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        if numbered("vxlan") {
            return InterfaceKind::Vxlan;
        }
        if numbered("wg") {
            return InterfaceKind::WireGuard;
        }
        if numbered("bdi") {
            return InterfaceKind::Bdi;
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
    /// Interface addresses: host address plus prefix length (`10.0.0.1/24`),
    /// the primary and its secondaries.
    pub ipv4_addresses: BTreeSet<Ipv4Net>,
    /// Which of `ipv4_addresses` is IOS's primary (typed without
    /// `secondary`); see [`Interface::primary_ipv4`].
    pub ipv4_primary: Option<Ipv4Net>,
    pub ipv6_addresses: BTreeSet<Ipv6Net>,
    /// `ip address dhcp`: the IPv4 address (and a default route) come from
    /// a DHCP lease, never from `ipv4_addresses`.
    pub dhcp: bool,
    /// `encapsulation dot1q N` on a sub-interface.
    pub dot1q: Option<u16>,
    /// VXLAN settings; only meaningful on `vxlanN` interfaces.
    pub vxlan: Option<Vxlan>,
}

impl Interface {
    /// The primary IPv4 address: the one typed without `secondary`, or the
    /// lowest for an interface built in code without saying.
    pub fn primary_ipv4(&self) -> Option<Ipv4Net> {
        let typed = self
            .ipv4_primary
            .filter(|p| self.ipv4_addresses.contains(p));
        typed.or_else(|| self.ipv4_addresses.first().copied())
    }

    /// Removes every IPv4 and IPv6 address.
    pub fn clear_addresses(&mut self) {
        self.ipv4_addresses.clear();
        self.ipv4_primary = None;
        self.ipv6_addresses.clear();
        self.dhcp = false;
    }
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

pub struct Element;

static SUB_MODES: &[&SubMode] = &[&INTERFACE_MODE];

const IF: Mode = Mode::Sub(&INTERFACE_MODE);

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "interface IFNAME$name",
        help: &[
            "Select an interface to configure",
            "Interface name (eth0, eth0.100, vxlan10, wg0)",
        ],
        handler: interface,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "interface range LINE$range",
        help: &[
            "Select an interface to configure",
            "Configure several interfaces at once",
            "NAME - LAST and NAME, separated by commas (eth1 - 3, eth5)",
        ],
        handler: interface_range,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "default interface IFNAME$name",
        help: &[
            "Set a command to its defaults",
            "Remove all configuration of an interface, keeping it",
            "Interface name",
        ],
        handler: default_interface,
    },
    CommandDef {
        mode: IF,
        syntax: "description LINE$text",
        help: &["Interface specific description", "Up to 240 characters"],
        handler: description,
    },
    CommandDef {
        mode: IF,
        syntax: "shutdown",
        help: &["Shut down the selected interface"],
        handler: shutdown,
    },
    CommandDef {
        mode: IF,
        syntax: "mtu <68-65535>$bytes",
        help: &["Set the interface MTU", "MTU in bytes"],
        handler: mtu,
    },
    CommandDef {
        mode: IF,
        syntax: "ip address (A.B.C.D/M$address|A.B.C.D$address A.B.C.D$mask) [secondary]",
        help: &[
            "Interface IP configuration",
            "Set an IP address",
            "Address and prefix length",
            "IP address",
            "IP subnet mask",
            "Make this a secondary address",
        ],
        handler: ip_address,
    },
    CommandDef {
        mode: IF,
        syntax: "ip address dhcp",
        help: &[
            "Interface IP configuration",
            "Set an IP address",
            "Take the address and a default route from a DHCP server",
        ],
        handler: ip_address_dhcp,
    },
    CommandDef {
        mode: IF,
        syntax: "ipv6 address X:X::X:X/M$address",
        help: &[
            "Interface IPv6 configuration",
            "Set an IPv6 address",
            "Address and prefix length",
        ],
        handler: ipv6_address,
    },
    CommandDef {
        mode: IF,
        syntax: "encapsulation dot1q <1-4094>$vlan",
        help: &[
            "Set the encapsulation of a sub-interface",
            "IEEE 802.1Q VLAN",
            "VLAN id",
        ],
        handler: encapsulation,
    },
    CommandDef {
        mode: IF,
        syntax: "vni <1-16777215>$vni",
        help: &["VXLAN network identifier", "VNI"],
        handler: vni,
    },
    CommandDef {
        mode: IF,
        syntax: "source-interface IFNAME$source",
        help: &[
            "Interface whose address is the VXLAN source",
            "Interface name",
        ],
        handler: source_interface,
    },
    CommandDef {
        mode: IF,
        syntax: "remote A.B.C.D$peer",
        help: &["Add a remote VTEP", "Remote VTEP address"],
        handler: remote,
    },
    CommandDef {
        mode: IF,
        syntax: "udp-port <1-65535>$port",
        help: &["VXLAN UDP destination port", "Port (default 4789)"],
        handler: udp_port,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "interfaces",
    commands: COMMANDS,
    sub_modes: SUB_MODES,
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    /// `interface NAME` blocks, with every element's lines for it.
    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        for name in config.interfaces.keys() {
            let mut body = Vec::new();
            for element in ELEMENTS {
                element.interface_lines(config, name, &mut body);
            }
            out.push(Block {
                header: format!("interface {name}"),
                body,
            });
        }
    }

    fn interface_lines(&self, config: &Config, name: &str, lines: &mut Vec<String>) {
        let Some(interface) = config.interfaces.get(name) else {
            return;
        };
        if let Some(text) = &interface.description {
            lines.push(format!("description {text}"));
        }
        if let Some(vlan) = interface.dot1q {
            lines.push(format!("encapsulation dot1q {vlan}"));
        }
        if let Some(vxlan) = &interface.vxlan {
            if let Some(vni) = vxlan.vni {
                lines.push(format!("vni {vni}"));
            }
            if let Some(source) = &vxlan.source_interface {
                lines.push(format!("source-interface {source}"));
            }
            lines.extend(vxlan.remotes.iter().map(|r| format!("remote {r}")));
            if vxlan.udp_port != VXLAN_DEFAULT_PORT {
                lines.push(format!("udp-port {}", vxlan.udp_port));
            }
        }
        if let Some(mtu) = interface.mtu {
            lines.push(format!("mtu {mtu}"));
        }
        if interface.dhcp {
            lines.push("ip address dhcp".to_string());
        }
        let primary = interface.primary_ipv4();
        lines.extend(primary.map(|a| format!("ip address {}", mask_form(&a))));
        let secondaries = interface
            .ipv4_addresses
            .iter()
            .filter(|a| Some(**a) != primary);
        lines.extend(secondaries.map(|a| format!("ip address {} secondary", mask_form(a))));
        let v6 = interface.ipv6_addresses.iter();
        lines.extend(v6.map(|a| format!("ipv6 address {a}")));
        if interface.shutdown {
            lines.push("shutdown".to_string());
        }
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        check_sub_interfaces(config, problems);
        check_overlaps(config, problems);
        check_vxlan(config, problems);
        check_dhcp(config, problems);
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.interfaces, &new.interfaces) && super::same(&old.vrfs, &new.vrfs)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        generate::interfaces()
    }
}

/// The interface the current sub-mode configures.
fn current_interface<'c>(edit: &'c mut Edit<'_>) -> Result<(String, &'c mut Interface), String> {
    let name = edit.object(&INTERFACE_MODE)?;
    let interfaces = Arc::make_mut(&mut edit.config.interfaces);
    Ok((name.clone(), interfaces.entry(name).or_default()))
}

fn interface(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?.to_string();
    if edit.negated {
        check_configured(edit.config, &name)?;
        remove(edit.config, &name);
        return Ok(());
    }
    check_name(&name)?;
    create(edit.config, &name);
    edit.enter = Some(ConfigContext::Sub(&INTERFACE_MODE, name));
    Ok(())
}

/// `interface range`: every interface of the range is made as by
/// `interface NAME`, and the lines typed after it apply to each of them;
/// `no interface range` removes them all.
fn interface_range(edit: &mut Edit<'_>) -> Result<(), String> {
    let names = range_names(required(edit.args, "range")?)?;
    if edit.negated {
        for name in &names {
            check_configured(edit.config, name)?;
        }
        names.iter().for_each(|name| remove(edit.config, name));
        return Ok(());
    }
    for name in &names {
        check_name(name)?;
    }
    names.iter().for_each(|name| create(edit.config, name));
    edit.enter = Some(ConfigContext::Range(&INTERFACE_MODE, names));
    Ok(())
}

/// `default interface NAME`: the interface stays, with nothing configured
/// under it (every element forgets it, as for `no interface`).
fn default_interface(edit: &mut Edit<'_>) -> Result<(), String> {
    if edit.negated {
        return Err("% 'no default interface' is not a command: use 'no interface NAME'".into());
    }
    let name = required(edit.args, "name")?.to_string();
    check_configured(edit.config, &name)?;
    remove(edit.config, &name);
    create(edit.config, &name);
    Ok(())
}

fn check_configured(config: &Config, name: &str) -> Result<(), String> {
    match config.interfaces.contains_key(name) {
        true => Ok(()),
        false => Err(format!("% Interface {name} is not configured")),
    }
}

/// A sub-interface's number must be a VLAN id.
fn check_name(name: &str) -> Result<(), String> {
    match InterfaceKind::of(name) {
        InterfaceKind::SubInterface {
            vlan_id_in_name, ..
        } if !(1..=4094).contains(&vlan_id_in_name) => {
            Err(format!("% Sub-interface number of {name} must be 1-4094"))
        }
        _ => Ok(()),
    }
}

/// Adds an interface with nothing configured, if new.
fn create(config: &mut Config, name: &str) {
    // Entering an interface that exists must not copy the section.
    if config.interfaces.contains_key(name) {
        return;
    }
    let interfaces = Arc::make_mut(&mut config.interfaces);
    let entry = interfaces.entry(name.to_string()).or_default();
    if InterfaceKind::of(name) == InterfaceKind::Vxlan {
        entry.vxlan = Some(Vxlan::default());
    }
}

/// Removes an interface and what every element holds about it.
fn remove(config: &mut Config, name: &str) {
    Arc::make_mut(&mut config.interfaces).remove(name);
    for element in ELEMENTS {
        element.forget_interface(config, name);
    }
}

/// The most interfaces one range may name: every VLAN of a parent.
const MAX_RANGE: usize = 4094;

/// The interfaces of `eth1 - 3, eth5` (IOS's form: a blank before the
/// `-`, which interface names such as `veth-a` never have), sorted.
fn range_names(text: &str) -> Result<Vec<String>, String> {
    let mut names = BTreeSet::new();
    for item in text.split(',').map(str::trim) {
        let (first, last) = match item.rsplit_once('-') {
            Some((first, last)) if first.ends_with(char::is_whitespace) => {
                (first.trim_end(), Some(last.trim()))
            }
            _ => (item, None),
        };
        if !is_interface_name(first) {
            return Err(format!("% Invalid interface name \"{first}\" in the range"));
        }
        let Some(last) = last else {
            names.insert(first.to_string());
            continue;
        };
        let stem = first.trim_end_matches(|c: char| c.is_ascii_digit());
        let start: u32 = first[stem.len()..]
            .parse()
            .map_err(|_| format!("% {first} - {last}: a range needs a name ending in a number"))?;
        let end: u32 = match last.parse() {
            Ok(end) if end >= start && (end - start) as usize + names.len() < MAX_RANGE => end,
            _ => return Err(format!("% Bad range {first} - {last}: LAST must be from {start} and at most {MAX_RANGE} interfaces in all")),
        };
        for n in start..=end {
            let name = format!("{stem}{n}");
            if !is_interface_name(&name) {
                return Err(format!("% Invalid interface name \"{name}\" in the range"));
            }
            names.insert(name);
        }
    }
    Ok(names.into_iter().collect())
}

fn description(edit: &mut Edit<'_>) -> Result<(), String> {
    let text = description_text(edit)?;
    current_interface(edit)?.1.description = text;
    Ok(())
}

fn shutdown(edit: &mut Edit<'_>) -> Result<(), String> {
    let down = !edit.negated;
    current_interface(edit)?.1.shutdown = down;
    Ok(())
}

fn mtu(edit: &mut Edit<'_>) -> Result<(), String> {
    let mtu = set_or_clear(edit.negated, || {
        edit.args
            .number("bytes")
            .map(|b| b as u16)
            .ok_or(INCOMPLETE.to_string())
    })?;
    current_interface(edit)?.1.mtu = mtu;
    Ok(())
}

/// IOS's rules: `ip address` replaces the primary address, `secondary`
/// adds one beside it (only once there is a primary), and the primary
/// goes last; `no ip address` alone removes them all.
fn ip_address(edit: &mut Edit<'_>) -> Result<(), String> {
    let address = ipv4_network(edit.args, "address")?;
    let secondary = edit.args.has("secondary");
    let negated = edit.negated;
    if let (false, Some(a)) = (negated, address) {
        if a.prefix_len() < 31 && (a.addr() == a.network() || a.addr() == a.broadcast()) {
            return Err(format!("% {a} is not a host address in its subnet"));
        }
    }
    let (name, interface) = current_interface(edit)?;
    let primary = interface.primary_ipv4();
    let Some(a) = address else {
        return match negated {
            true => {
                interface.ipv4_addresses.clear();
                interface.ipv4_primary = None;
                interface.dhcp = false;
                Ok(())
            }
            false => Err(INCOMPLETE.to_string()),
        };
    };
    let addresses = &mut interface.ipv4_addresses;
    match (negated, secondary) {
        (_, true) if primary == Some(a) => {
            return Err(format!("% {a} is the primary address of {name}"))
        }
        (false, true) if primary.is_none() => {
            return Err(format!(
                "% {name} has no primary address: set one before adding secondaries"
            ))
        }
        (false, true) => {
            addresses.insert(a);
        }
        (false, false) => {
            if let Some(old) = primary {
                addresses.remove(&old);
            }
            addresses.insert(a);
            interface.ipv4_primary = Some(a);
            // A typed primary replaces DHCP, as on IOS.
            interface.dhcp = false;
        }
        (true, _) if !addresses.contains(&a) => {
            return Err(format!("% {a} is not an address of {name}"))
        }
        (true, _) if primary == Some(a) && addresses.len() > 1 => {
            return Err("% Must delete secondary before deleting primary".to_string())
        }
        (true, _) => {
            addresses.remove(&a);
            if primary == Some(a) {
                interface.ipv4_primary = None;
            }
        }
    }
    Ok(())
}

/// `ip address dhcp`: static addresses beside it are refused at commit
/// (`check_dhcp`), so nothing typed is silently dropped.
fn ip_address_dhcp(edit: &mut Edit<'_>) -> Result<(), String> {
    let negated = edit.negated;
    current_interface(edit)?.1.dhcp = !negated;
    Ok(())
}

fn ipv6_address(edit: &mut Edit<'_>) -> Result<(), String> {
    let address = edit.args.ipv6_prefix("address");
    let negated = edit.negated;
    let (name, interface) = current_interface(edit)?;
    edit_set(&mut interface.ipv6_addresses, negated, address, |a| {
        format!("% {a} is not an address of {name}")
    })
}

fn encapsulation(edit: &mut Edit<'_>) -> Result<(), String> {
    let vlan = set_or_clear(edit.negated, || {
        edit.args
            .number("vlan")
            .map(|v| v as u16)
            .ok_or(INCOMPLETE.to_string())
    })?;
    let name = edit.object(&INTERFACE_MODE)?;
    if !matches!(InterfaceKind::of(&name), InterfaceKind::SubInterface { .. }) {
        return Err(format!("% {name} is not a sub-interface (NAME.VLAN)"));
    }
    current_interface(edit)?.1.dot1q = vlan;
    Ok(())
}

/// The VXLAN settings of the current interface, refusing non-VXLAN ones.
fn current_vxlan<'c>(edit: &'c mut Edit<'_>) -> Result<&'c mut Vxlan, String> {
    let name = edit.object(&INTERFACE_MODE)?;
    if InterfaceKind::of(&name) != InterfaceKind::Vxlan {
        return Err(format!("% {name} is not a VXLAN interface (vxlanN)"));
    }
    let (_, interface) = current_interface(edit)?;
    Ok(interface.vxlan.get_or_insert_with(Vxlan::default))
}

fn vni(edit: &mut Edit<'_>) -> Result<(), String> {
    let vni = set_or_clear(edit.negated, || {
        edit.args
            .number("vni")
            .map(|v| v as u32)
            .ok_or(INCOMPLETE.to_string())
    })?;
    current_vxlan(edit)?.vni = vni;
    Ok(())
}

fn source_interface(edit: &mut Edit<'_>) -> Result<(), String> {
    let source = set_or_clear(edit.negated, || {
        required(edit.args, "source").map(str::to_string)
    })?;
    current_vxlan(edit)?.source_interface = source;
    Ok(())
}

fn remote(edit: &mut Edit<'_>) -> Result<(), String> {
    let peer = edit.args.ipv4("peer");
    let negated = edit.negated;
    edit_set(&mut current_vxlan(edit)?.remotes, negated, peer, |p| {
        format!("% {p} is not a remote VTEP here")
    })
}

fn udp_port(edit: &mut Edit<'_>) -> Result<(), String> {
    let port = match edit.negated {
        true => VXLAN_DEFAULT_PORT,
        false => edit.args.number("port").ok_or(INCOMPLETE)? as u16,
    };
    current_vxlan(edit)?.udp_port = port;
    Ok(())
}

fn check_sub_interfaces(config: &Config, problems: &mut Vec<String>) {
    let mut vlans: BTreeMap<(&str, u32), &str> = BTreeMap::new();
    for (name, interface) in config.interfaces.iter() {
        let InterfaceKind::SubInterface {
            parent,
            vlan_id_in_name,
        } = InterfaceKind::of(name)
        else {
            continue;
        };
        let Some((parent_name, _)) = config.interfaces.get_key_value(parent.as_str()) else {
            problems.push(format!(
                "% {name}: parent interface {parent} is not configured"
            ));
            continue;
        };
        let vlan = interface.dot1q.map_or(vlan_id_in_name, u32::from);
        if let Some(other) = vlans.insert((parent_name.as_str(), vlan), name) {
            problems.push(format!(
                "% {other} and {name} both use VLAN {vlan} on {parent}"
            ));
        }
    }
}

/// An interface takes its IPv4 address from DHCP or from the operator,
/// not both.
fn check_dhcp(config: &Config, problems: &mut Vec<String>) {
    for (name, interface) in config.interfaces.iter() {
        if interface.dhcp && !interface.ipv4_addresses.is_empty() {
            problems.push(format!(
                "% {name}: ip address dhcp excludes static IPv4 addresses"
            ));
        }
    }
}

/// Within one VRF, subnets of different addresses must not overlap (two
/// interfaces on one subnet would make forwarding ambiguous); tenants in
/// different VRFs may use the same subnets. Sorting by (VRF, first
/// address) makes this linear after the sort.
fn check_overlaps(config: &Config, problems: &mut Vec<String>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (name, interface) in config.interfaces.iter() {
        let vrf = config.vrf_of(name);
        for a in &interface.ipv4_addresses {
            let range = (u32::from(a.network()), u32::from(a.broadcast()));
            v4.push(((vrf, range.0), (vrf, range.1), a, name.as_str()));
        }
        for a in &interface.ipv6_addresses {
            let range = (u128::from(a.network()), u128::from(a.broadcast()));
            v6.push(((vrf, range.0), (vrf, range.1), a, name.as_str()));
        }
    }
    report_overlaps(v4, problems);
    report_overlaps(v6, problems);
}

/// `ranges` are (first, last, address, interface); reports each range that
/// starts inside the widest range seen before it.
fn report_overlaps<T: Ord + Copy, A: Ord + Display>(
    mut ranges: Vec<(T, T, A, &str)>,
    problems: &mut Vec<String>,
) {
    ranges.sort();
    let mut widest: Option<(T, usize)> = None;
    for (i, (lo, hi, address, name)) in ranges.iter().enumerate() {
        match widest {
            Some((end, w)) if *lo <= end => {
                let (_, _, other, other_name) = &ranges[w];
                problems.push(format!(
                    "% {address} on {name} overlaps {other} on {other_name}"
                ));
                if *hi > end {
                    widest = Some((*hi, i));
                }
            }
            _ => widest = Some((*hi, i)),
        }
    }
}

fn check_vxlan(config: &Config, problems: &mut Vec<String>) {
    let mut vnis: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, interface) in config.interfaces.iter() {
        let Some(vxlan) = &interface.vxlan else {
            continue;
        };
        match vxlan.vni {
            None => problems.push(format!("% {name}: no vni configured")),
            Some(vni) => {
                if let Some(other) = vnis.insert(vni, name) {
                    problems.push(format!("% {other} and {name} both use VNI {vni}"));
                }
            }
        }
        if let Some(source) = &vxlan.source_interface {
            match config.interfaces.get(source) {
                None => problems.push(format!(
                    "% {name}: source-interface {source} is not configured"
                )),
                Some(_) if InterfaceKind::of(source) == InterfaceKind::Vxlan => problems.push(
                    format!("% {name}: source-interface {source} cannot be a VXLAN interface"),
                ),
                Some(s) if s.ipv4_addresses.is_empty() => problems.push(format!(
                    "% {name}: source-interface {source} has no IPv4 address"
                )),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod generate {
    use super::super::tests::text;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn host_v4() -> impl Strategy<Value = ipnet::Ipv4Net> {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, len)| ipnet::Ipv4Net::new(Ipv4Addr::from(a), len).unwrap())
            .prop_filter("host address", |n| {
                n.prefix_len() >= 31 || (n.addr() != n.network() && n.addr() != n.broadcast())
            })
    }

    fn vxlan_lines() -> impl Strategy<Value = Vec<String>> {
        (
            proptest::option::of(1u32..=16_777_215),
            proptest::option::of("eth[0-3]"),
            proptest::collection::btree_set(any::<u32>().prop_map(Ipv4Addr::from), 0..3),
            1u16..,
        )
            .prop_map(|(vni, source, remotes, port)| {
                let mut lines: Vec<String> = vni.map(|v| format!("vni {v}")).into_iter().collect();
                lines.extend(source.map(|s| format!("source-interface {s}")));
                lines.extend(remotes.iter().map(|r| format!("remote {r}")));
                lines.push(format!("udp-port {port}"));
                lines
            })
    }

    fn interface(name: String) -> impl Strategy<Value = String> {
        let is_sub = name.contains('.');
        let is_vxlan = name.starts_with("vxlan");
        (
            proptest::option::of(text()),
            any::<bool>(),
            proptest::option::of(68u16..),
            // Address -> typed in the mask form; the first is the primary.
            proptest::collection::btree_map(host_v4(), any::<bool>(), 0..3),
            proptest::collection::btree_set(
                (any::<u128>(), 0u8..=128)
                    .prop_map(|(a, l)| ipnet::Ipv6Net::new(Ipv6Addr::from(a), l).unwrap()),
                0..2,
            ),
            proptest::option::of(1u16..=4094),
            vxlan_lines(),
            any::<bool>(),
        )
            .prop_map(
                move |(description, shutdown, mtu, v4, v6, dot1q, vx, dhcp)| {
                    let mut lines = vec![format!("interface {name}")];
                    lines.extend(description.map(|d| format!(" description {d}")));
                    lines.extend(mtu.map(|m| format!(" mtu {m}")));
                    for (i, (a, mask)) in v4.iter().enumerate() {
                        let form = match mask {
                            true => crate::commands::mask_form(a),
                            false => a.to_string(),
                        };
                        let secondary = if i > 0 { " secondary" } else { "" };
                        lines.push(format!(" ip address {form}{secondary}"));
                    }
                    if dhcp && v4.is_empty() {
                        lines.push(" ip address dhcp".to_string());
                    }
                    lines.extend(v6.iter().map(|a| format!(" ipv6 address {a}")));
                    if is_sub {
                        lines.extend(dot1q.map(|v| format!(" encapsulation dot1q {v}")));
                    }
                    if is_vxlan {
                        lines.extend(vx.iter().map(|l| format!(" {l}")));
                    }
                    if shutdown {
                        lines.push(" shutdown".to_string());
                    }
                    lines.join("\n") + "\n"
                },
            )
    }

    pub fn interfaces() -> BoxedStrategy<String> {
        proptest::collection::btree_set(
            prop_oneof![
                "eth[0-3]",
                "eth[0-3]\\.[1-9][0-9]{0,2}",
                "vxlan[1-9][0-9]{0,3}",
                "veth-[a-z]{1,4}"
            ],
            0..5,
        )
        .prop_flat_map(|names| names.into_iter().map(interface).collect::<Vec<_>>())
        .prop_map(|blocks| blocks.concat())
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::range_names;
    use crate::{apply_text, parse_config, render};

    /// The first error message of applying `text` to a configuration
    /// holding `base`, and whether that configuration was left as it was.
    fn refused(base: &str, text: &str) -> (String, bool) {
        let (mut config, errors) = parse_config(base);
        assert_eq!(errors, []);
        let before = config.clone();
        let errors = apply_text(&mut config, text);
        (errors[0].error.message.clone(), config == before)
    }

    #[test]
    fn addresses_take_the_mask_or_the_prefix_form_and_render_as_masks() {
        let (config, errors) = parse_config(
            "interface eth0\n ip address 10.0.0.1 255.255.255.0\n \
             ip address 10.0.1.1/24 secondary\n ip address 10.0.2.1 255.255.255.252 secondary\n",
        );
        assert_eq!(errors, []);
        let eth0 = &config.interfaces["eth0"];
        assert_eq!(eth0.primary_ipv4(), "10.0.0.1/24".parse().ok());
        assert_eq!(eth0.ipv4_addresses.len(), 3);
        assert!(render(&config).contains(
            "interface eth0\n ip address 10.0.0.1 255.255.255.0\n \
             ip address 10.0.1.1 255.255.255.0 secondary\n \
             ip address 10.0.2.1 255.255.255.252 secondary\n"
        ));
    }

    #[test]
    fn the_primary_is_rendered_first_even_when_a_secondary_sorts_lower() {
        let text = "interface eth0\n ip address 10.9.0.1 255.255.0.0\n \
                    ip address 10.1.0.1 255.255.0.0 secondary\n";
        let (config, errors) = parse_config(text);
        assert_eq!(errors, []);
        let rendered = render(&config);
        assert!(rendered.contains(text), "{rendered}");
        assert_eq!(parse_config(&rendered), (config, vec![]));
    }

    #[test]
    fn a_new_primary_replaces_the_old_one_as_on_ios() {
        let (config, errors) = parse_config(
            "interface eth0\n ip address 10.0.0.1/24\n ip address 10.0.5.1/24 secondary\n \
             ip address 10.0.0.2 255.255.255.0\n",
        );
        assert_eq!(errors, []);
        let eth0 = &config.interfaces["eth0"];
        let addresses: Vec<String> = eth0.ipv4_addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addresses, ["10.0.0.2/24", "10.0.5.1/24"]);
        assert_eq!(eth0.primary_ipv4(), "10.0.0.2/24".parse().ok());
    }

    #[test]
    fn secondaries_need_a_primary_and_go_before_it() {
        let base = "interface eth0\n ip address 10.0.0.1/24\n ip address 10.0.5.1/24 secondary\n";
        for (line, message) in [
            (
                "interface eth1\n ip address 10.1.0.1/24 secondary\n",
                "% eth1 has no primary address: set one before adding secondaries",
            ),
            (
                "interface eth0\n no ip address 10.0.0.1 255.255.255.0\n",
                "% Must delete secondary before deleting primary",
            ),
            (
                "interface eth0\n ip address 10.0.0.1/24 secondary\n",
                "% 10.0.0.1/24 is the primary address of eth0",
            ),
            (
                "interface eth0\n no ip address 10.0.9.1/24 secondary\n",
                "% 10.0.9.1/24 is not an address of eth0",
            ),
        ] {
            let (message_got, unchanged) = refused(base, line);
            assert_eq!(message_got, message, "{line}");
            assert!(unchanged || line.starts_with("interface eth1"), "{line}");
        }
        let (mut config, _) = parse_config(base);
        let errors = apply_text(
            &mut config,
            "interface eth0\n no ip address 10.0.5.1 255.255.255.0 secondary\n \
             no ip address 10.0.0.1/24\n",
        );
        assert_eq!(errors, []);
        assert_eq!(config.interfaces["eth0"], Default::default());
    }

    #[test]
    fn no_ip_address_alone_removes_every_ipv4_address() {
        let (config, errors) = parse_config(
            "interface eth0\n ip address 10.0.0.1/24\n ip address 10.0.5.1/24 secondary\n \
             ipv6 address 2001:db8::1/64\n no ip address\n",
        );
        assert_eq!(errors, []);
        let eth0 = &config.interfaces["eth0"];
        assert!(eth0.ipv4_addresses.is_empty() && eth0.primary_ipv4().is_none());
        assert_eq!(eth0.ipv6_addresses.len(), 1);
    }

    #[test]
    fn ip_address_dhcp_renders_and_a_typed_primary_replaces_it() {
        let (config, errors) = parse_config("interface eth0\n ip address dhcp\n");
        assert_eq!(errors, []);
        assert!(config.interfaces["eth0"].dhcp);
        assert!(render(&config).contains("interface eth0\n ip address dhcp\n!"));
        let mut replaced = config.clone();
        assert_eq!(
            apply_text(&mut replaced, "interface eth0\n ip address 10.0.2.15/24\n"),
            []
        );
        assert!(
            render(&replaced).contains("interface eth0\n ip address 10.0.2.15 255.255.255.0\n!")
        );
        let mut removed = config.clone();
        assert_eq!(
            apply_text(&mut removed, "interface eth0\n no ip address dhcp\n"),
            []
        );
        assert!(!removed.interfaces["eth0"].dhcp);
        let mut cleared = config;
        assert_eq!(
            apply_text(&mut cleared, "interface eth0\n no ip address\n"),
            []
        );
        assert!(!cleared.interfaces["eth0"].dhcp);
    }

    #[test]
    fn ip_address_dhcp_beside_a_static_address_is_refused_at_commit() {
        let (config, errors) =
            parse_config("interface eth0\n ip address 10.0.0.1/24\n ip address dhcp\n");
        assert_eq!(errors, []);
        let problems = crate::validate(&config);
        assert_eq!(
            problems,
            ["% eth0: ip address dhcp excludes static IPv4 addresses"]
        );
    }

    #[test]
    fn non_contiguous_masks_and_missing_masks_are_refused() {
        let base = "interface eth0\n ip address 10.0.0.1/24\n";
        let (message, unchanged) =
            refused(base, "interface eth0\n ip address 10.0.0.1 255.0.255.0\n");
        assert_eq!(
            message,
            "% Bad mask 255.0.255.0 for address 10.0.0.1: not a contiguous network mask"
        );
        assert!(unchanged);
        let (message, unchanged) = refused(base, "interface eth0\n ip address 10.0.0.7\n");
        assert_eq!(message, "% Incomplete command.");
        assert!(unchanged);
        let (message, _) = refused(base, "interface eth0\n ip address 10.0.0.0 255.255.255.0\n");
        assert_eq!(message, "% 10.0.0.0/24 is not a host address in its subnet");
    }

    #[test]
    fn ranges_are_ios_lists_of_names_and_spans() {
        let names = |text| range_names(text).unwrap();
        assert_eq!(names("eth1 - 3, eth5"), ["eth1", "eth2", "eth3", "eth5"]);
        assert_eq!(names("eth3 ,eth1"), ["eth1", "eth3"]);
        assert_eq!(names("eth0.100 -102"), ["eth0.100", "eth0.101", "eth0.102"]);
        assert_eq!(names("veth-a, veth-b"), ["veth-a", "veth-b"]);
        for bad in [
            "eth3 - 1",
            "eth - 3",
            "eth1 - x",
            "1eth",
            "eth1,",
            "eth0.1 - 5000",
            "eth1 - 99999999999",
        ] {
            assert!(range_names(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_line_typed_in_a_range_applies_to_every_interface_of_it() {
        let (config, errors) = parse_config(
            "interface range eth1 - 3, eth5
 mtu 9000
 description access ports
             interface eth2
 shutdown
",
        );
        assert_eq!(errors, []);
        let names: Vec<_> = config.interfaces.keys().cloned().collect();
        assert_eq!(names, ["eth1", "eth2", "eth3", "eth5"]);
        assert!(config.interfaces.values().all(|i| i.mtu == Some(9000)));
        assert!(config.interfaces["eth2"].shutdown && !config.interfaces["eth3"].shutdown);
    }

    #[test]
    fn no_interface_range_removes_every_interface_of_it_or_none() {
        let (mut config, _) = parse_config("interface eth1\ninterface eth2\ninterface eth3\n");
        let before = config.clone();
        let errors = apply_text(&mut config, "no interface range eth2 - 4\n");
        assert_eq!(
            errors[0].error.message,
            "% Interface eth4 is not configured"
        );
        assert_eq!(config, before);
        assert_eq!(
            apply_text(&mut config, "no interface range eth1, eth3\n"),
            []
        );
        let names: Vec<_> = config.interfaces.keys().cloned().collect();
        assert_eq!(names, ["eth2"]);
    }

    #[test]
    fn a_range_line_that_fails_on_one_interface_changes_none() {
        let (mut config, errors) = parse_config(
            "interface eth1
interface eth1.5
",
        );
        assert_eq!(errors, []);
        let before = config.clone();
        let errors = apply_text(
            &mut config,
            "interface range eth1, eth1.5
 encapsulation dot1q 7
",
        );
        assert_eq!(
            errors[0].error.message,
            "% eth1: eth1 is not a sub-interface (NAME.VLAN) (nothing was changed)"
        );
        assert_eq!(config, before);
        let errors = apply_text(
            &mut config,
            "interface range eth1.4094 - 4095
",
        );
        assert_eq!(
            errors[0].error.message,
            "% Sub-interface number of eth1.4095 must be 1-4094"
        );
        assert_eq!(config, before, "no interface of a refused range is made");
    }

    #[test]
    fn default_interface_keeps_the_interface_and_drops_everything_under_it() {
        let (mut config, errors) = parse_config(
            "vrf definition A
ip access-list extended IN
 permit ip any any
             interface eth0
 description uplink
 vrf forwarding A
 ip address 10.0.0.1 255.255.255.0
              ip access-group IN in
 mtu 9000
interface vxlan5
 vni 5
 remote 10.0.0.9
             default interface eth0
default interface vxlan5
",
        );
        assert_eq!(errors, []);
        assert_eq!(config.interfaces["eth0"], Default::default());
        assert_eq!(config.vrf_of("eth0"), None);
        let rendered = render(&config);
        assert!(
            rendered.contains("\ninterface eth0\ninterface vxlan5\n"),
            "{rendered}"
        );
        assert_eq!(config.interfaces["vxlan5"].vxlan, Some(Default::default()));
        let before = config.clone();
        let errors = apply_text(
            &mut config,
            "default interface eth9
no default interface eth0
",
        );
        assert_eq!(
            errors[0].error.message,
            "% Interface eth9 is not configured"
        );
        assert!(errors[1].error.message.contains("is not a command"));
        assert_eq!(config, before);
    }
}
