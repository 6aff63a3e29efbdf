//! The VRRP element: first-hop redundancy (VRRP version 3, RFC 5798,
//! IPv4 and IPv6) on interfaces and sub-interfaces, in the words of the
//! issue and IOS: `vrrp N address A.B.C.D` (the virtual router's IPv4
//! addresses), `vrrp N ipv6 X:X::X:X` (its IPv6 addresses: exactly one
//! link-local, which adverts list first as RFC 5798 wants, as IOS-XE's
//! `address FE80::1 primary`, and global ones in the interface's
//! subnets), `vrrp N priority P` (1-254, default 100), `vrrp N preempt [delay
//! minimum S]` (on by default, as RFC 5798 says; `no vrrp N preempt` turns
//! it off), `vrrp N timers advertise MS` (default 1000), `vrrp N track
//! IFNAME [decrement D]` (while that interface is down the priority is D
//! lower, default 10, as IOS's), `no vrrp N`. A group with addresses of
//! both families runs one virtual router per family (RFC 5798 keeps their
//! VRIDs apart); the two share the group's priority, preemption, timers
//! and tracking, so one line changes both.

use crate::commands::{change_if, CommandDef, Edit, Mode, INCOMPLETE};
use crate::config::{Config, INTERFACE_MODE};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

pub const DEFAULT_VRRP_PRIORITY: u8 = 100;
/// How much a tracked interface that is down takes off (IOS's default).
pub const DEFAULT_TRACK_DECREMENT: u8 = 10;
pub const DEFAULT_VRRP_ADVERTISE_MS: u32 = 1000;

/// One virtual router on one interface; settings as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpGroup {
    pub addresses: BTreeSet<Ipv4Addr>,
    pub ipv6_addresses: BTreeSet<Ipv6Addr>,
    pub priority: Option<u8>,
    pub preempt: bool,
    /// Seconds to wait before preempting.
    pub preempt_delay: Option<u16>,
    pub advertise_ms: Option<u32>,
    /// Tracked interfaces and their decrement as typed.
    pub tracks: BTreeMap<String, Option<u8>>,
}

impl Default for VrrpGroup {
    fn default() -> Self {
        VrrpGroup {
            addresses: BTreeSet::new(),
            ipv6_addresses: BTreeSet::new(),
            priority: None,
            preempt: true,
            preempt_delay: None,
            advertise_ms: None,
            tracks: BTreeMap::new(),
        }
    }
}

impl VrrpGroup {
    pub fn priority(&self) -> u8 {
        self.priority.unwrap_or(DEFAULT_VRRP_PRIORITY)
    }

    pub fn advertise_ms(&self) -> u32 {
        self.advertise_ms.unwrap_or(DEFAULT_VRRP_ADVERTISE_MS)
    }

    /// The IPv6 addresses link-local first, as adverts list them (RFC
    /// 5798 5.2.9) and the running config shows them.
    pub fn ipv6_in_advert_order(&self) -> Vec<Ipv6Addr> {
        let (mut ordered, global): (Vec<Ipv6Addr>, Vec<Ipv6Addr>) =
            (self.ipv6_addresses.iter()).partition(|a| a.is_unicast_link_local());
        ordered.extend(global);
        ordered
    }

    /// The priority while the interfaces `is_down` names are down: each
    /// tracked one down takes its decrement off, down to 1 at least. The
    /// address owner (255) is never lowered.
    pub fn tracked_priority(&self, is_down: impl Fn(&str) -> bool) -> u8 {
        let base = self.priority();
        if base == 255 {
            return base;
        }
        let off: u32 = (self.tracks.iter())
            .filter(|(interface, _)| is_down(interface))
            .map(|(_, d)| u32::from(d.unwrap_or(DEFAULT_TRACK_DECREMENT)))
            .sum();
        u32::from(base).saturating_sub(off).max(1) as u8
    }
}

/// The virtual routers by (interface, group number).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vrrp {
    pub groups: BTreeMap<(String, u8), VrrpGroup>,
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[CommandDef {
    mode: Mode::Sub(&INTERFACE_MODE),
    syntax: "vrrp <1-255>$group (address A.B.C.D$ip|ipv6 X:X::X:X$ip6|priority <1-254>$priority|preempt [delay minimum <0-3600>$delay]|timers advertise <10-40950>$ms|track IFNAME$track [decrement <1-254>$decrement])",
    help: &[
        "Virtual Router Redundancy Protocol (version 3)",
        "Group number (virtual router identifier)",
        "An address of the virtual router",
        "IPv4 address",
        "An IPv6 address of the virtual router (one link-local, then global ones)",
        "IPv6 address",
        "Priority in the election (default 100)",
        "Priority",
        "Take over from a lower priority master (default on)",
        "Wait before taking over",
        "Minimum wait",
        "Seconds",
        "Timers",
        "Advertisement interval (default 1000)",
        "Milliseconds",
        "Lower the priority while an interface is down",
        "Interface name",
        "How much lower (default 10)",
        "Priority points",
    ],
    handler: vrrp,
}];

static DECLARATION: super::Declaration = super::Declaration {
    name: "vrrp",
    commands: COMMANDS,
    sub_modes: &[],
};

/// The lines of one group, in running-config order.
fn group_lines(id: u8, g: &VrrpGroup, out: &mut Vec<String>) {
    for a in &g.addresses {
        out.push(format!("vrrp {id} address {a}"));
    }
    for a in g.ipv6_in_advert_order() {
        out.push(format!("vrrp {id} ipv6 {a}"));
    }
    if let Some(p) = g.priority {
        out.push(format!("vrrp {id} priority {p}"));
    }
    match (g.preempt, g.preempt_delay) {
        (false, _) => out.push(format!("no vrrp {id} preempt")),
        (true, Some(d)) => out.push(format!("vrrp {id} preempt delay minimum {d}")),
        (true, None) => {}
    }
    if let Some(ms) = g.advertise_ms {
        out.push(format!("vrrp {id} timers advertise {ms}"));
    }
    for (interface, decrement) in &g.tracks {
        match decrement {
            Some(d) => out.push(format!("vrrp {id} track {interface} decrement {d}")),
            None => out.push(format!("vrrp {id} track {interface}")),
        }
    }
}

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn interface_lines(&self, config: &Config, interface: &str, out: &mut Vec<String>) {
        let first = (interface.to_string(), 0);
        let last = (interface.to_string(), u8::MAX);
        for ((_, id), g) in config.vrrp.groups.range(first..=last) {
            group_lines(*id, g, out);
        }
    }

    fn forget_interface(&self, config: &mut Config, interface: &str) {
        let needed = config.vrrp.groups.keys().any(|(i, _)| i == interface);
        change_if(&mut config.vrrp, needed, |v| {
            v.groups.retain(|(i, _), _| i != interface);
        });
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        for ((interface, id), g) in &config.vrrp.groups {
            let what = format!("% {interface}: vrrp {id}");
            if g.addresses.is_empty() && g.ipv6_addresses.is_empty() {
                problems.push(format!(
                    "{what} has no address (vrrp {id} address A.B.C.D or vrrp {id} ipv6 X:X::X:X)"
                ));
            }
            let link_locals = (g.ipv6_addresses.iter())
                .filter(|a| a.is_unicast_link_local())
                .count();
            match link_locals {
                0 if !g.ipv6_addresses.is_empty() => problems.push(format!(
                    "{what}: the first IPv6 address must be link-local (vrrp {id} ipv6 FE80::1)"
                )),
                0 | 1 => {}
                _ => problems.push(format!("{what}: more than one link-local IPv6 address")),
            }
            let Some(iface) = config.interfaces.get(interface) else {
                problems.push(format!("{what}: interface {interface} is not configured"));
                continue;
            };
            for tracked in g.tracks.keys() {
                if !config.interfaces.contains_key(tracked) {
                    problems.push(format!(
                        "{what}: tracked interface {tracked} is not configured"
                    ));
                }
            }
            let on_link = |a: &Ipv4Addr| iface.ipv4_addresses.iter().any(|n| n.contains(a));
            if let Some(a) = g.addresses.iter().find(|a| !on_link(a)) {
                problems.push(format!(
                    "{what}: address {a} is not in a subnet of the interface"
                ));
            }
            let on_link6 = |a: &Ipv6Addr| {
                a.is_unicast_link_local() || iface.ipv6_addresses.iter().any(|n| n.contains(a))
            };
            if let Some(a) = g.ipv6_addresses.iter().find(|a| !on_link6(a)) {
                problems.push(format!(
                    "{what}: address {a} is not in an IPv6 subnet of the interface"
                ));
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.vrrp, &new.vrrp) && super::same(&old.interfaces, &new.interfaces)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let group = (
            1u8..=255,
            (
                proptest::collection::btree_set(any::<[u8; 4]>(), 0..3),
                proptest::collection::btree_set((any::<bool>(), any::<u16>()), 0..3),
            ),
            proptest::option::of(1u8..=254),
            (any::<bool>(), proptest::option::of(0u16..=3600)),
            proptest::option::of(10u32..=40950),
            proptest::collection::btree_map("eth[0-3]", proptest::option::of(1u8..=254), 0..2),
        )
            .prop_map(
                |(id, (addresses, v6), priority, (preempt, delay), ms, tracks)| {
                    // Link-local or documentation addresses: unicast, as typed.
                    let ipv6 = |(link_local, low)| match link_local {
                        true => Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, low),
                        false => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, low),
                    };
                    let g = VrrpGroup {
                        addresses: addresses.into_iter().map(Ipv4Addr::from).collect(),
                        ipv6_addresses: v6.into_iter().map(ipv6).collect(),
                        priority,
                        preempt,
                        preempt_delay: delay.filter(|_| preempt),
                        advertise_ms: ms,
                        tracks,
                    };
                    let mut lines = Vec::new();
                    group_lines(id, &g, &mut lines);
                    lines.iter().map(|l| format!(" {l}\n")).collect::<String>()
                },
            );
        ("[0-3]", proptest::collection::vec(group, 0..3))
            .prop_map(|(n, groups)| match groups.is_empty() {
                true => String::new(),
                false => format!("interface eth{n}\n{}", groups.concat()),
            })
            .boxed()
    }
}

/// `vrrp N address|ipv6|priority|preempt|timers ...` on an interface; `no
/// vrrp N SETTING` back to its default (`no vrrp N address A` removes one
/// address, `no vrrp N ipv6` all IPv6 ones, `no vrrp N preempt` turns
/// preemption off), `no vrrp N` the whole group.
fn vrrp(edit: &mut Edit<'_>) -> Result<(), String> {
    let interface = edit.object(&INTERFACE_MODE)?;
    let args = edit.args;
    let id = args.number("group").ok_or(INCOMPLETE)? as u8;
    let key = (interface, id);
    let before = edit.config.vrrp.groups.get(&key).cloned();
    let mut group = before.clone().unwrap_or_default();
    let negated = edit.negated;
    match () {
        _ if args.has("address") => match (args.ipv4("ip"), negated) {
            (Some(ip), false) => {
                group.addresses.insert(ip);
            }
            (Some(ip), true) => {
                group.addresses.remove(&ip);
            }
            (None, true) => group.addresses.clear(),
            (None, false) => return Err(INCOMPLETE.to_string()),
        },
        _ if args.has("ipv6") => match (args.ipv6("ip6"), negated) {
            (Some(ip), false) => {
                if !is_unicast(ip) {
                    return Err(format!(
                        "% Invalid VRRP address {ip}: not a unicast address"
                    ));
                }
                group.ipv6_addresses.insert(ip);
            }
            (Some(ip), true) => {
                group.ipv6_addresses.remove(&ip);
            }
            (None, true) => group.ipv6_addresses.clear(),
            (None, false) => return Err(INCOMPLETE.to_string()),
        },
        _ if args.has("priority") => {
            group.priority = match negated {
                true => None,
                false => Some(args.number("priority").ok_or(INCOMPLETE)? as u8),
            };
        }
        _ if args.has("preempt") => {
            group.preempt = !negated;
            group.preempt_delay = match negated {
                true => None,
                false => args.number("delay").map(|d| d as u16),
            };
        }
        _ if args.has("track") => match (args.text("track"), negated) {
            (Some(interface), false) => {
                let decrement = args.number("decrement").map(|d| d as u8);
                group.tracks.insert(interface.to_string(), decrement);
            }
            (Some(interface), true) => {
                group.tracks.remove(interface);
            }
            (None, true) => group.tracks.clear(),
            (None, false) => return Err(INCOMPLETE.to_string()),
        },
        _ if args.has("timers") => {
            group.advertise_ms = match negated {
                true => None,
                false => Some(args.number("ms").ok_or(INCOMPLETE)? as u32),
            };
        }
        // `no vrrp N`: the whole group.
        _ if negated => {
            change_if(&mut edit.config.vrrp, before.is_some(), |v| {
                v.groups.remove(&key);
            });
            return Ok(());
        }
        _ => return Err(INCOMPLETE.to_string()),
    }
    change_if(
        &mut edit.config.vrrp,
        before.as_ref() != Some(&group),
        |v| {
            v.groups.insert(key, group);
        },
    );
    Ok(())
}

/// An address a host may use as its gateway.
fn is_unicast(ip: Ipv6Addr) -> bool {
    !(ip.is_multicast() || ip.is_unspecified() || ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use crate::{apply_text, parse_config, render, validate};

    const TEXT: &str = "interface eth0\n ip address 10.70.1.2/24\n\
        vrrp 51 address 10.70.1.254\n vrrp 51 priority 200\n vrrp 51 preempt delay minimum 5\n\
        vrrp 51 timers advertise 500\n vrrp 52 address 10.70.1.253\n no vrrp 52 preempt\n";

    #[test]
    fn groups_are_configured_rendered_and_removed() {
        let (mut config, errors) = parse_config(TEXT);
        assert_eq!(errors, []);
        let g = &config.vrrp.groups[&("eth0".to_string(), 51)];
        assert_eq!(
            (g.priority(), g.advertise_ms(), g.preempt_delay),
            (200, 500, Some(5))
        );
        assert!(!config.vrrp.groups[&("eth0".to_string(), 52)].preempt);
        assert_eq!(validate(&config), Vec::<String>::new());
        let text = render(&config);
        assert!(
            text.contains(" vrrp 51 address 10.70.1.254\n vrrp 51 priority 200\n vrrp 51 preempt delay minimum 5\n vrrp 51 timers advertise 500\n vrrp 52 address 10.70.1.253\n no vrrp 52 preempt\n"),
            "{text}"
        );
        assert_eq!(parse_config(&text).0, config);
        let errors = apply_text(&mut config, "interface eth0\n no vrrp 51\n no vrrp 52\n");
        assert_eq!(errors, []);
        assert!(config.vrrp.groups.is_empty());
    }

    #[test]
    fn tracked_interfaces_lower_the_priority_while_down() {
        let text = "interface eth0\n ip address 10.70.1.2/24\n vrrp 5 address 10.70.1.254\n vrrp 5 priority 200\n vrrp 5 track eth1 decrement 150\n vrrp 5 track eth2\ninterface eth1\ninterface eth2\n";
        let (mut config, errors) = parse_config(text);
        assert_eq!(errors, []);
        assert_eq!(validate(&config), Vec::<String>::new());
        let g = config.vrrp.groups[&("eth0".to_string(), 5)].clone();
        assert_eq!(g.tracked_priority(|_| false), 200);
        assert_eq!(g.tracked_priority(|i| i == "eth1"), 50);
        assert_eq!(g.tracked_priority(|_| true), 40);
        let rendered = render(&config);
        assert!(
            rendered.contains(" vrrp 5 track eth1 decrement 150\n vrrp 5 track eth2\n"),
            "{rendered}"
        );
        assert_eq!(parse_config(&rendered).0, config);
        assert_eq!(
            apply_text(&mut config, "interface eth0\n no vrrp 5 track eth1\n"),
            []
        );
        let g = &config.vrrp.groups[&("eth0".to_string(), 5)];
        assert_eq!(g.tracks.len(), 1);
        assert_eq!(apply_text(&mut config, "no interface eth2\n"), []);
        assert!(validate(&config)
            .join("")
            .contains("tracked interface eth2 is not configured"));
    }

    #[test]
    fn an_address_off_the_interface_is_refused_at_commit_and_bad_lines_at_once() {
        let (config, errors) = parse_config("interface eth0\n ip address 10.70.1.2/24\n vrrp 1 address 10.9.9.9\n vrrp 2 priority 50\n");
        assert_eq!(errors, []);
        let problems = validate(&config).join("\n");
        assert!(
            problems.contains("10.9.9.9 is not in a subnet"),
            "{problems}"
        );
        assert!(problems.contains("vrrp 2 has no address"), "{problems}");
        let (mut config, _) = parse_config("interface eth0\n");
        for line in [
            "vrrp 0 address 10.0.0.1",
            "vrrp 1 priority 255",
            "vrrp 1 timers advertise 5",
            "vrrp 1",
        ] {
            let errors = apply_text(&mut config, &format!("interface eth0\n {line}\n"));
            assert_eq!(errors.len(), 1, "{line}");
        }
        assert!(config.vrrp.groups.is_empty());
    }

    #[test]
    fn ipv6_groups_list_the_link_local_first_and_share_the_group_settings() {
        let text = "interface eth0\n ip address 10.70.1.2/24\n ipv6 address 2001:db8:70::2/64\n\
            vrrp 51 address 10.70.1.254\n vrrp 51 ipv6 2001:DB8:70::254\n vrrp 51 ipv6 FE80::1\n\
            vrrp 51 priority 200\n";
        let (mut config, errors) = parse_config(text);
        assert_eq!(errors, []);
        assert_eq!(validate(&config), Vec::<String>::new());
        let g = &config.vrrp.groups[&("eth0".to_string(), 51)];
        let order: Vec<String> = g
            .ipv6_in_advert_order()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(order, ["fe80::1", "2001:db8:70::254"]);
        assert_eq!(g.priority(), 200, "one priority for both families");
        let text = render(&config);
        assert!(
            text.contains(" vrrp 51 address 10.70.1.254\n vrrp 51 ipv6 fe80::1\n vrrp 51 ipv6 2001:db8:70::254\n vrrp 51 priority 200\n"),
            "{text}"
        );
        assert_eq!(parse_config(&text).0, config);
        let errors = apply_text(&mut config, "interface eth0\n no vrrp 51 ipv6 fe80::1\n");
        assert_eq!(errors, []);
        let g = &config.vrrp.groups[&("eth0".to_string(), 51)];
        assert_eq!(g.ipv6_addresses.len(), 1);
        let errors = apply_text(&mut config, "interface eth0\n no vrrp 51 ipv6\n");
        assert_eq!(errors, []);
        let g = &config.vrrp.groups[&("eth0".to_string(), 51)];
        assert!(g.ipv6_addresses.is_empty() && !g.addresses.is_empty());
    }

    #[test]
    fn bad_ipv6_groups_are_refused_with_cisco_errors() {
        let base = "interface eth0\n ipv6 address 2001:db8:70::2/64\n";
        let problems = |lines: &str| {
            let (config, errors) = parse_config(&format!("{base}{lines}"));
            assert_eq!(errors, [], "{lines}");
            validate(&config).join("\n")
        };
        let p = problems(" vrrp 1 ipv6 2001:db8:70::254\n");
        assert!(
            p.contains("% eth0: vrrp 1: the first IPv6 address must be link-local"),
            "{p}"
        );
        let p = problems(" vrrp 1 ipv6 fe80::1\n vrrp 1 ipv6 fe80::2\n");
        assert!(p.contains("more than one link-local IPv6 address"), "{p}");
        let p = problems(" vrrp 1 ipv6 fe80::1\n vrrp 1 ipv6 2001:db8:99::1\n");
        assert!(p.contains("2001:db8:99::1 is not in an IPv6 subnet"), "{p}");
        assert_eq!(
            problems(" vrrp 1 ipv6 fe80::1\n"),
            "",
            "a link-local alone is fine"
        );
        let (mut config, _) = parse_config(base);
        for line in [
            "vrrp 1 ipv6 ff02::12",
            "vrrp 1 ipv6 ::",
            "vrrp 1 ipv6 ::1",
            "vrrp 1 ipv6 10.0.0.1",
        ] {
            let errors = apply_text(&mut config, &format!("interface eth0\n {line}\n"));
            assert_eq!(errors.len(), 1, "{line}");
            assert!(errors[0].error.message.starts_with('%'), "{errors:?}");
        }
        assert!(config.vrrp.groups.is_empty());
    }
}
