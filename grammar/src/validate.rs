//! Whole-configuration checks run at commit: things no single line can
//! know, such as overlapping subnets, unknown interfaces, duplicate VNIs.

use crate::config::{Config, InterfaceKind, NextHop};
use std::collections::BTreeMap;
use std::fmt::Display;

/// Every problem of `config`, one `%` message each; empty when it is valid.
pub fn validate(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    check_sub_interfaces(config, &mut problems);
    check_overlaps(config, &mut problems);
    check_vxlan(config, &mut problems);
    for r in &config.routes {
        check_route_interface(config, "ip", &r.prefix, &r.next_hop, &mut problems);
    }
    for r in &config.ipv6_routes {
        check_route_interface(config, "ipv6", &r.prefix, &r.next_hop, &mut problems);
    }
    problems
}

/// A route through an interface needs that interface configured.
fn check_route_interface<A>(
    config: &Config,
    family: &str,
    prefix: &dyn Display,
    next_hop: &NextHop<A>,
    problems: &mut Vec<String>,
) {
    if let NextHop::Interface(name) = next_hop {
        if !config.interfaces.contains_key(name) {
            problems.push(format!(
                "% {family} route {prefix}: interface {name} is not configured"
            ));
        }
    }
}

fn check_sub_interfaces(config: &Config, problems: &mut Vec<String>) {
    let mut vlans: BTreeMap<(&str, u32), &str> = BTreeMap::new();
    for (name, interface) in &config.interfaces {
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

/// Subnets of different addresses must not overlap (two interfaces on one
/// subnet would make forwarding ambiguous). Sorting by first address makes
/// this linear after the sort.
fn check_overlaps(config: &Config, problems: &mut Vec<String>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (name, interface) in &config.interfaces {
        for a in &interface.ipv4_addresses {
            v4.push((
                u32::from(a.network()),
                u32::from(a.broadcast()),
                a,
                name.as_str(),
            ));
        }
        for a in &interface.ipv6_addresses {
            v6.push((
                u128::from(a.network()),
                u128::from(a.broadcast()),
                a,
                name.as_str(),
            ));
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
    for (name, interface) in &config.interfaces {
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
mod tests {
    use super::*;
    use crate::editor::parse_config;

    fn problems(text: &str) -> Vec<String> {
        let (config, errors) = parse_config(text);
        assert_eq!(errors, []);
        validate(&config)
    }

    #[test]
    fn a_sound_configuration_passes() {
        let text = "interface eth0\n ip address 10.0.0.1/24\ninterface eth0.10\n \
                    encapsulation dot1q 10\n ip address 10.0.1.1/24\ninterface vxlan1\n vni 1\n \
                    source-interface eth0\nip route 0.0.0.0/0 eth0\n";
        assert_eq!(problems(text), Vec::<String>::new());
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let p = problems(
            "interface eth0\n ip address 10.0.0.1/16\ninterface eth1\n ip address 10.1.0.1/24\n \
             ip address 10.0.9.1/24\n ipv6 address 2001:db8::1/64\ninterface eth2\n \
             ipv6 address 2001:db8::2/64\n",
        );
        assert_eq!(
            p,
            [
                "% 10.0.9.1/24 on eth1 overlaps 10.0.0.1/16 on eth0",
                "% 2001:db8::2/64 on eth2 overlaps 2001:db8::1/64 on eth1"
            ]
        );
    }

    #[test]
    fn unknown_interfaces_and_duplicates_are_refused() {
        let p = problems(
            "interface eth0.5\ninterface eth1\ninterface eth1.5\ninterface eth1.6\n \
             encapsulation dot1q 5\ninterface vxlan1\n vni 9\n source-interface eth9\n\
             interface vxlan2\n vni 9\n source-interface eth1\ninterface vxlan3\n\
             ip route 10.0.0.0/8 eth7\nipv6 route 2001:db8::/32 eth8\n",
        );
        assert_eq!(
            p,
            [
                "% eth0.5: parent interface eth0 is not configured",
                "% eth1.5 and eth1.6 both use VLAN 5 on eth1",
                "% vxlan1: source-interface eth9 is not configured",
                "% vxlan1 and vxlan2 both use VNI 9",
                "% vxlan2: source-interface eth1 has no IPv4 address",
                "% vxlan3: no vni configured",
                "% ip route 10.0.0.0/8: interface eth7 is not configured",
                "% ipv6 route 2001:db8::/32: interface eth8 is not configured",
            ]
        );
    }
}
