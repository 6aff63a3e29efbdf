//! The bridge-domain element (the physical-to-virtual gateway): one L2
//! segment made of VLANs on the appliance's ports and VXLAN segments of
//! the overlay, in IOS-XE's words:
//!
//! ```text
//! bridge-domain 10
//!  member eth1.100          (an 802.1Q sub-interface: its VLAN, tagged)
//!  member eth2              (a port: its untagged frames)
//!  member vni 5010          (through the vxlanN interface with `vni 5010`:
//!                            its source-interface and remote VTEPs)
//!  mac aging-time 300       (seconds, default 300)
//!  mac limit 65536          (learned MACs, default 65536)
//! interface bdi10           (the segment's routed interface: addresses,
//!  ip address 10.10.0.1 255.255.255.0   VRF, as any interface)
//! ```
//!
//! `member IFNAME` is the simple form of IOS-XE's `member IFNAME
//! service-instance N` with `encapsulation dot1q`: the member is the
//! interface itself, so a VLAN is a sub-interface (`eth1.100`, or any name
//! with `encapsulation dot1q 100`) and a port means its untagged frames.
//! `member vni N` reuses the VXLAN interface settings instead of IOS-XE's
//! `interface nve1`. Members are layer 2: they carry no addresses (the
//! BDI does), and each is in one domain at most.

use crate::commands::{change_if, required, CommandDef, ConfigContext, Edit, Mode, SubMode};
use crate::config::{Config, InterfaceKind};
use crate::render::Block;
use std::collections::{BTreeMap, BTreeSet};

/// `(config-bdomain)#`, opened by `bridge-domain N`.
pub static BRIDGE_DOMAIN_MODE: SubMode = SubMode {
    prompt: "bdomain",
    parent: None,
};

/// Seconds a MAC stays learned without a frame from it.
pub const DEFAULT_MAC_AGING_SECS: u32 = 300;
/// MACs a domain learns at most.
pub const DEFAULT_MAC_LIMIT: u32 = 65536;

/// One bridge domain; settings as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeDomain {
    /// Member interfaces: ports (untagged) and sub-interfaces (their VLAN).
    pub members: BTreeSet<String>,
    /// Member VNIs, each through the `vxlanN` interface with that VNI.
    pub vnis: BTreeSet<u32>,
    pub aging_secs: Option<u32>,
    pub mac_limit: Option<u32>,
}

impl BridgeDomain {
    pub fn aging_secs(&self) -> u32 {
        self.aging_secs.unwrap_or(DEFAULT_MAC_AGING_SECS)
    }

    pub fn mac_limit(&self) -> u32 {
        self.mac_limit.unwrap_or(DEFAULT_MAC_LIMIT)
    }
}

/// The bridge domains by number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeDomains {
    pub domains: BTreeMap<u32, BridgeDomain>,
}

impl BridgeDomains {
    /// The domain an interface is a member of.
    pub fn domain_of_member(&self, interface: &str) -> Option<u32> {
        (self.domains.iter())
            .find(|(_, d)| d.members.contains(interface))
            .map(|(n, _)| *n)
    }

    /// The domain a VNI is a member of.
    pub fn domain_of_vni(&self, vni: u32) -> Option<u32> {
        (self.domains.iter())
            .find(|(_, d)| d.vnis.contains(&vni))
            .map(|(n, _)| *n)
    }
}

/// The domain number of a `bdiN` name.
pub fn bdi_domain(name: &str) -> Option<u32> {
    match InterfaceKind::of(name) {
        InterfaceKind::Bdi => name.strip_prefix("bdi")?.parse().ok(),
        _ => None,
    }
}

pub struct Element;

static SUB_MODES: &[&SubMode] = &[&BRIDGE_DOMAIN_MODE];

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "bridge-domain <1-16000>$domain",
        help: &[
            "Configure a bridge domain (VLANs and VNIs as one L2 segment)",
            "Bridge domain number",
        ],
        handler: bridge_domain,
    },
    CommandDef {
        mode: Mode::Sub(&BRIDGE_DOMAIN_MODE),
        syntax: "member (vni <1-16777215>$vni|IFNAME$name)",
        help: &[
            "Add a member to the bridge domain",
            "A VXLAN segment (through the vxlanN interface with this VNI)",
            "VXLAN network identifier",
            "A port (untagged) or 802.1Q sub-interface (its VLAN)",
        ],
        handler: member,
    },
    CommandDef {
        mode: Mode::Sub(&BRIDGE_DOMAIN_MODE),
        syntax: "mac (aging-time <10-1000000>$secs|limit <1-1000000>$max)",
        help: &[
            "MAC address table settings",
            "How long a silent MAC stays learned (default 300)",
            "Seconds",
            "MACs learned at most (default 65536)",
            "MAC addresses",
        ],
        handler: mac,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "bridge domain",
    commands: COMMANDS,
    sub_modes: SUB_MODES,
};

/// The lines of one domain, in running-config order.
fn domain_lines(d: &BridgeDomain) -> Vec<String> {
    let mut body: Vec<String> = d.members.iter().map(|m| format!("member {m}")).collect();
    body.extend(d.vnis.iter().map(|v| format!("member vni {v}")));
    body.extend(d.aging_secs.map(|s| format!("mac aging-time {s}")));
    body.extend(d.mac_limit.map(|n| format!("mac limit {n}")));
    body
}

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        for (n, d) in &config.bridge_domains.domains {
            out.push(Block {
                header: format!("bridge-domain {n}"),
                body: domain_lines(d),
            });
        }
    }

    fn forget_interface(&self, config: &mut Config, interface: &str) {
        let needed = config.bridge_domains.domain_of_member(interface).is_some();
        change_if(&mut config.bridge_domains, needed, |b| {
            b.domains.values_mut().for_each(|d| {
                d.members.remove(interface);
            });
        });
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
        let mut vnis: BTreeMap<u32, u32> = BTreeMap::new();
        for (n, d) in &config.bridge_domains.domains {
            for m in &d.members {
                check_member(config, *n, m, problems);
                if let Some(other) = seen.insert(m, *n) {
                    problems.push(format!(
                        "% {m} is a member of bridge-domain {other} and {n}"
                    ));
                }
            }
            for vni in &d.vnis {
                if let Some(other) = vnis.insert(*vni, *n) {
                    problems.push(format!(
                        "% vni {vni} is a member of bridge-domain {other} and {n}"
                    ));
                }
                let tunnel = (config.interfaces.iter())
                    .find(|(_, i)| i.vxlan.as_ref().is_some_and(|v| v.vni == Some(*vni)));
                match tunnel {
                    None => problems.push(format!(
                        "% bridge-domain {n}: member vni {vni}: no vxlanN interface has vni {vni}"
                    )),
                    Some((name, i)) if !i.ipv4_addresses.is_empty() => {
                        problems.push(layer2_only(*n, name))
                    }
                    Some(_) => {}
                }
            }
        }
        for name in config.interfaces.keys() {
            match bdi_domain(name) {
                Some(n) if config.bridge_domains.domains.contains_key(&n) => {}
                Some(n) => problems.push(format!("% {name}: bridge-domain {n} is not configured")),
                None => {}
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.bridge_domains, &new.bridge_domains)
            && super::same(&old.interfaces, &new.interfaces)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let domain = (
            1u32..=16000,
            proptest::collection::btree_set("eth[0-3](\\.[1-9])?", 0..3),
            proptest::collection::btree_set(1u32..=16_777_215, 0..3),
            proptest::option::of(10u32..=1_000_000),
            proptest::option::of(1u32..=1_000_000),
        )
            .prop_map(|(n, members, vnis, aging_secs, mac_limit)| {
                let d = BridgeDomain {
                    members,
                    vnis,
                    aging_secs,
                    mac_limit,
                };
                let body: String = domain_lines(&d).iter().map(|l| format!(" {l}\n")).collect();
                format!("bridge-domain {n}\n{body}")
            });
        proptest::collection::vec(domain, 0..3)
            .prop_map(|domains| domains.concat())
            .boxed()
    }
}

fn layer2_only(domain: u32, name: &str) -> String {
    format!(
        "% bridge-domain {domain}: member {name} has IP addresses (members are layer 2: address interface bdi{domain})"
    )
}

/// A member must be a configured port or sub-interface without addresses.
fn check_member(config: &Config, domain: u32, name: &str, problems: &mut Vec<String>) {
    let Some(interface) = config.interfaces.get(name) else {
        problems.push(format!(
            "% bridge-domain {domain}: member {name} is not configured"
        ));
        return;
    };
    match InterfaceKind::of(name) {
        InterfaceKind::Physical | InterfaceKind::SubInterface { .. } => {}
        _ => problems.push(format!(
            "% bridge-domain {domain}: member {name} is not a port or sub-interface (VXLAN segments are `member vni N`)"
        )),
    }
    if !interface.ipv4_addresses.is_empty() || !interface.ipv6_addresses.is_empty() {
        problems.push(layer2_only(domain, name));
    }
}

/// `bridge-domain N` opens its mode; `no bridge-domain N` removes it.
fn bridge_domain(edit: &mut Edit<'_>) -> Result<(), String> {
    let n = edit
        .args
        .number("domain")
        .ok_or(crate::commands::INCOMPLETE)? as u32;
    let exists = edit.config.bridge_domains.domains.contains_key(&n);
    if edit.negated {
        if !exists {
            return Err(format!("% bridge-domain {n} is not configured"));
        }
        change_if(&mut edit.config.bridge_domains, true, |b| {
            b.domains.remove(&n);
        });
        return Ok(());
    }
    change_if(&mut edit.config.bridge_domains, !exists, |b| {
        b.domains.insert(n, BridgeDomain::default());
    });
    edit.enter = Some(ConfigContext::Sub(&BRIDGE_DOMAIN_MODE, n.to_string()));
    Ok(())
}

/// The domain of the mode the line is typed in, as it is now.
fn current(edit: &Edit<'_>) -> Result<(u32, BridgeDomain), String> {
    let object = edit.object(&BRIDGE_DOMAIN_MODE)?;
    let n: u32 = object
        .parse()
        .map_err(|_| format!("% Bad bridge domain {object}"))?;
    let d = edit.config.bridge_domains.domains.get(&n).cloned();
    Ok((n, d.unwrap_or_default()))
}

/// Stores the domain when the line changed it.
fn store(edit: &mut Edit<'_>, n: u32, d: BridgeDomain) {
    let changed = edit.config.bridge_domains.domains.get(&n) != Some(&d);
    change_if(&mut edit.config.bridge_domains, changed, |b| {
        b.domains.insert(n, d);
    });
}

/// `member IFNAME` / `member vni N` and their `no` forms.
fn member(edit: &mut Edit<'_>) -> Result<(), String> {
    let (n, mut d) = current(edit)?;
    let changed = match edit.args.number("vni") {
        Some(vni) if edit.negated => d.vnis.remove(&(vni as u32)),
        Some(vni) => d.vnis.insert(vni as u32),
        None => {
            let name = required(edit.args, "name")?.to_string();
            match edit.negated {
                true => d.members.remove(&name),
                false => d.members.insert(name),
            }
        }
    };
    if !changed && edit.negated {
        return Err(format!("% Not a member of bridge-domain {n}"));
    }
    store(edit, n, d);
    Ok(())
}

/// `mac aging-time S` / `mac limit N`; `no` restores the default.
fn mac(edit: &mut Edit<'_>) -> Result<(), String> {
    let (n, mut d) = current(edit)?;
    let value = |name| match edit.negated {
        true => Ok(None),
        false => (edit.args.number(name).map(|v| Some(v as u32)))
            .ok_or_else(|| crate::commands::INCOMPLETE.to_string()),
    };
    if edit.args.has("aging-time") {
        d.aging_secs = value("secs")?;
    } else {
        d.mac_limit = value("max")?;
    }
    store(edit, n, d);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{apply_text, parse_config, render, validate};

    fn text(lines: &[&str]) -> String {
        lines.join("\n") + "\n"
    }

    #[test]
    fn domains_with_vlan_and_vni_members_and_a_bdi_render_and_read_back() {
        let config_text = text(&[
            "interface eth0",
            " ip address 192.0.2.1 255.255.255.0",
            "interface eth1",
            "interface eth1.100",
            "interface vxlan1",
            " vni 5010",
            " source-interface eth0",
            " remote 192.0.2.7",
            "interface bdi10",
            " ip address 10.10.0.1 255.255.255.0",
            "bridge-domain 10",
            " member eth1.100",
            " member vni 5010",
            " mac aging-time 600",
            " mac limit 1000",
        ]);
        let (mut config, errors) = parse_config(&config_text);
        assert_eq!(errors, []);
        assert_eq!(validate(&config), Vec::<String>::new());
        let d = &config.bridge_domains.domains[&10];
        assert_eq!((d.aging_secs(), d.mac_limit()), (600, 1000));
        let rendered = render(&config);
        assert!(
            rendered.contains("bridge-domain 10\n member eth1.100\n member vni 5010\n mac aging-time 600\n mac limit 1000\n"),
            "{rendered}"
        );
        assert_eq!(parse_config(&rendered).0, config);
        let errors = apply_text(
            &mut config,
            "bridge-domain 10\n no member vni 5010\n no mac limit\n",
        );
        assert_eq!(errors, []);
        let d = &config.bridge_domains.domains[&10];
        assert!(d.vnis.is_empty());
        assert_eq!(d.mac_limit(), super::DEFAULT_MAC_LIMIT);
        assert_eq!(apply_text(&mut config, "no interface eth1.100\n"), []);
        assert!(config.bridge_domains.domains[&10].members.is_empty());
    }

    #[test]
    fn commit_refuses_shared_unknown_and_addressed_members_and_a_bdi_without_domain() {
        let (config, errors) = parse_config(&text(&[
            "interface eth1",
            " ip address 10.1.0.1 255.255.255.0",
            "interface eth2",
            "interface bdi7",
            "interface vxlan3",
            " vni 33",
            "bridge-domain 1",
            " member eth1",
            " member eth2",
            " member eth9",
            " member vni 44",
            " member vxlan3",
            "bridge-domain 2",
            " member eth2",
            " member vni 33",
        ]));
        assert_eq!(errors, []);
        let problems = validate(&config).join("\n");
        for wanted in [
            "member eth1 has IP addresses",
            "eth2 is a member of bridge-domain 1 and 2",
            "member eth9 is not configured",
            "no vxlanN interface has vni 44",
            "member vxlan3 is not a port or sub-interface",
            "bdi7: bridge-domain 7 is not configured",
        ] {
            assert!(problems.contains(wanted), "{wanted}:\n{problems}");
        }
    }

    #[test]
    fn bad_lines_are_refused_at_once() {
        let (mut config, _) = parse_config("bridge-domain 1\n");
        for line in [
            "mac aging-time 5",
            "mac limit 0",
            "member vni 0",
            "no member eth5",
        ] {
            let errors = apply_text(&mut config, &format!("bridge-domain 1\n {line}\n"));
            assert_eq!(errors.len(), 1, "{line}");
        }
        assert_eq!(apply_text(&mut config, "bridge-domain 0\n").len(), 1);
        assert_eq!(apply_text(&mut config, "no bridge-domain 1\n"), []);
        assert!(config.bridge_domains.domains.is_empty());
    }
}
