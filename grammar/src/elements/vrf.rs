//! The VRF element: `vrf definition NAME` (with `rd` and `description` in
//! its `(config-vrf)` sub-mode) and `vrf forwarding NAME` under an
//! interface, which puts the interface in that tenant's tables. Without it
//! an interface is in the global table.
//!
//! Moving an interface between tables removes its addresses, as IOS does
//! (they were checked against the other table's subnets), and says so.

use crate::commands::{
    description_text, required, set_or_clear, CommandDef, ConfigContext, Edit, Mode, SubMode,
};
use crate::config::{Config, INTERFACE_MODE};
use crate::render::Block;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `(config-vrf)#`, opened by `vrf definition NAME`.
pub static VRF_MODE: SubMode = SubMode {
    prompt: "vrf",
    parent: None,
};

/// The longest VRF name (IOS allows 32 characters).
const MAX_NAME: usize = 32;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vrfs {
    /// Keyed by VRF name.
    pub definitions: BTreeMap<String, VrfDefinition>,
    /// Interface name -> VRF name, for interfaces with `vrf forwarding`.
    pub members: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VrfDefinition {
    /// Route distinguisher `ASN:NN` or `A.B.C.D:NN` (for BGP, later).
    pub rd: Option<String>,
    pub description: Option<String>,
}

pub struct Element;

static SUB_MODES: &[&SubMode] = &[&VRF_MODE];

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "vrf definition WORD$name",
        help: &[
            "Configure a VRF (a tenant's routing table)",
            "Define a VRF",
            "VRF name",
        ],
        handler: vrf_definition,
    },
    CommandDef {
        mode: Mode::Sub(&VRF_MODE),
        syntax: "rd WORD$rd",
        help: &["Specify a route distinguisher", "ASN:NN or A.B.C.D:NN"],
        handler: rd,
    },
    CommandDef {
        mode: Mode::Sub(&VRF_MODE),
        syntax: "description LINE$text",
        help: &["VRF specific description", "Up to 240 characters"],
        handler: description,
    },
    CommandDef {
        mode: Mode::Sub(&INTERFACE_MODE),
        syntax: "vrf forwarding WORD$name",
        help: &[
            "VPN Routing/Forwarding parameters on the interface",
            "Configure forwarding table",
            "VRF name",
        ],
        handler: vrf_forwarding,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "vrf",
    commands: COMMANDS,
    sub_modes: SUB_MODES,
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        for (name, vrf) in &config.vrfs.definitions {
            let mut body = Vec::new();
            body.extend(vrf.description.iter().map(|d| format!("description {d}")));
            body.extend(vrf.rd.iter().map(|rd| format!("rd {rd}")));
            out.push(Block {
                header: format!("vrf definition {name}"),
                body,
            });
        }
    }

    fn interface_lines(&self, config: &Config, interface: &str, out: &mut Vec<String>) {
        if let Some(vrf) = config.vrf_of(interface) {
            out.push(format!("vrf forwarding {vrf}"));
        }
    }

    fn forget_interface(&self, config: &mut Config, interface: &str) {
        if config.vrfs.members.contains_key(interface) {
            Arc::make_mut(&mut config.vrfs).members.remove(interface);
        }
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        for (interface, vrf) in &config.vrfs.members {
            if !config.vrfs.definitions.contains_key(vrf) {
                problems.push(format!("% {interface}: VRF {vrf} is not defined"));
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.vrfs, &new.vrfs)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let definition = (
            "[A-Z][A-Z0-9_-]{0,8}",
            proptest::option::of((1u32..65536, any::<u32>())),
            proptest::option::of(super::tests::text()),
        );
        let membership = ("eth[0-3](\\.[1-9])?", 0usize..4);
        (
            proptest::collection::vec(definition, 0..3),
            proptest::collection::vec(membership, 0..3),
        )
            .prop_map(|(definitions, members)| {
                let mut text = String::new();
                for (name, rd, description) in &definitions {
                    text.push_str(&format!("vrf definition {name}\n"));
                    if let Some((asn, n)) = rd {
                        text.push_str(&format!(" rd {asn}:{n}\n"));
                    }
                    if let Some(d) = description {
                        text.push_str(&format!(" description {d}\n"));
                    }
                }
                for (interface, which) in members {
                    if let Some((vrf, _, _)) = definitions.get(which % definitions.len().max(1)) {
                        text.push_str(&format!("interface {interface}\n vrf forwarding {vrf}\n"));
                    }
                }
                text
            })
            .boxed()
    }
}

fn vrf_definition(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?.to_string();
    if edit.negated {
        // What still uses it is refused at commit, so nothing is lost silently.
        if Arc::make_mut(&mut edit.config.vrfs)
            .definitions
            .remove(&name)
            .is_none()
        {
            return Err(format!("% VRF {name} is not defined"));
        }
        return Ok(());
    }
    let valid = name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(format!(
            "% Invalid VRF name \"{name}\": up to {MAX_NAME} letters, digits, '-', '_' and '.'"
        ));
    }
    if !edit.config.vrfs.definitions.contains_key(&name) {
        let vrfs = Arc::make_mut(&mut edit.config.vrfs);
        vrfs.definitions
            .insert(name.clone(), VrfDefinition::default());
    }
    edit.enter = Some(ConfigContext::Sub(&VRF_MODE, name));
    Ok(())
}

fn current_vrf<'c>(edit: &'c mut Edit<'_>) -> Result<&'c mut VrfDefinition, String> {
    let name = edit.object(&VRF_MODE)?;
    let vrfs = Arc::make_mut(&mut edit.config.vrfs);
    Ok(vrfs.definitions.entry(name).or_default())
}

/// `ASN:NN` (ASN up to 32 bits, NN up to 16 bits for 4-byte ASNs, 32 for
/// 2-byte ones) or `A.B.C.D:NN` (NN up to 16 bits), as RFC 4364 4.2 lays out.
fn is_route_distinguisher(rd: &str) -> bool {
    let Some((admin, assigned)) = rd.rsplit_once(':') else {
        return false;
    };
    let (admin_ok, assigned_max) = match (admin.parse::<u32>(), admin.parse::<std::net::Ipv4Addr>())
    {
        (Ok(asn), _) if asn <= 0xffff => (true, u64::from(u32::MAX)),
        (Ok(_), _) | (_, Ok(_)) => (true, 0xffff),
        _ => (false, 0),
    };
    admin_ok && assigned.parse::<u64>().is_ok_and(|n| n <= assigned_max)
}

fn rd(edit: &mut Edit<'_>) -> Result<(), String> {
    let rd = set_or_clear(edit.negated, || {
        let rd = required(edit.args, "rd")?;
        match is_route_distinguisher(rd) {
            true => Ok(rd.to_string()),
            false => Err(format!(
                "% Invalid route distinguisher \"{rd}\": ASN:NN or A.B.C.D:NN"
            )),
        }
    })?;
    current_vrf(edit)?.rd = rd;
    Ok(())
}

fn description(edit: &mut Edit<'_>) -> Result<(), String> {
    let text = description_text(edit)?;
    current_vrf(edit)?.description = text;
    Ok(())
}

/// `vrf forwarding NAME` / `no vrf forwarding [NAME]`.
fn vrf_forwarding(edit: &mut Edit<'_>) -> Result<(), String> {
    let interface = edit.object(&INTERFACE_MODE)?;
    let wanted = set_or_clear(edit.negated, || {
        let name = required(edit.args, "name")?;
        match edit.config.vrfs.definitions.contains_key(name) {
            true => Ok(name.to_string()),
            false => Err(format!("% VRF {name} is not defined")),
        }
    })?;
    let current = edit.config.vrf_of(&interface).map(str::to_string);
    if current == wanted {
        return Ok(());
    }
    let vrfs = Arc::make_mut(&mut edit.config.vrfs);
    match &wanted {
        Some(vrf) => vrfs.members.insert(interface.clone(), vrf.clone()),
        None => vrfs.members.remove(&interface),
    };
    remove_addresses(edit, &interface, wanted.as_deref());
    Ok(())
}

/// Drops the addresses of an interface that changed tables, with IOS's note.
fn remove_addresses(edit: &mut Edit<'_>, interface: &str, vrf: Option<&str>) {
    let has_addresses = edit
        .config
        .interfaces
        .get(interface)
        .is_some_and(|i| !i.ipv4_addresses.is_empty() || !i.ipv6_addresses.is_empty());
    if !has_addresses {
        return;
    }
    let interfaces = Arc::make_mut(&mut edit.config.interfaces);
    if let Some(i) = interfaces.get_mut(interface) {
        i.clear_addresses();
    }
    let cause = match vrf {
        Some(vrf) => format!("enabling VRF {vrf}"),
        None => "disabling its VRF".to_string(),
    };
    edit.notes.push(format!(
        "% Interface {interface} IPv4 and IPv6 disabled and address(es) removed due to {cause}"
    ));
}

#[cfg(test)]
mod tests {
    use super::is_route_distinguisher;
    use crate::commands::ConfigContext;
    use crate::config::Config;
    use crate::editor::{config_trees, run_command};
    use crate::{parse_config, validate};

    /// Runs one line in `interface NAME` mode; returns its notes.
    fn in_interface(config: &mut Config, name: &str, line: &str) -> Vec<String> {
        let context = ConfigContext::Sub(&crate::config::INTERFACE_MODE, name.to_string());
        let (matched, _) = config_trees().sub["if"]
            .parse(line)
            .map(|m| (m, 0))
            .unwrap();
        run_command(config, &context, *matched.action, &matched.args)
            .unwrap()
            .notes
    }

    #[test]
    fn tenants_may_reuse_subnets_that_one_table_may_not() {
        let two_tenants = "vrf definition A\nvrf definition B\n\
            interface eth1\n vrf forwarding A\n ip address 10.1.1.1/24\n\
            interface eth2\n vrf forwarding B\n ip address 10.1.1.1/24\n\
            ip route vrf A 10.9.0.0/16 10.1.1.2\nip route vrf B 10.9.0.0/16 10.1.1.2\n";
        let (config, errors) = parse_config(two_tenants);
        assert_eq!(errors, []);
        assert_eq!(validate(&config), Vec::<String>::new());
        let (config, _) = parse_config(&two_tenants.replace("forwarding B", "forwarding A"));
        assert_eq!(
            validate(&config),
            ["% 10.1.1.1/24 on eth2 overlaps 10.1.1.1/24 on eth1"]
        );
    }

    #[test]
    fn what_names_an_undefined_vrf_is_refused() {
        let (_, errors) = parse_config("interface eth1\n vrf forwarding NOPE\n");
        assert_eq!(errors[0].error.message, "% VRF NOPE is not defined");
        let (config, errors) = parse_config(
            "vrf definition A\ninterface eth1\n vrf forwarding A\nip route vrf C 0.0.0.0/0 eth1\n\
             no vrf definition A\n",
        );
        assert_eq!(errors, []);
        assert_eq!(
            validate(&config),
            [
                "% eth1: VRF A is not defined",
                "% VRF C of static routes is not defined"
            ]
        );
    }

    #[test]
    fn moving_an_interface_between_tables_removes_its_addresses_and_says_so() {
        let (mut config, errors) = parse_config(
            "vrf definition A\ninterface eth1\n ip address 10.0.0.1/24\n ipv6 address 2001:db8::1/64\n",
        );
        assert_eq!(errors, []);
        let notes = in_interface(&mut config, "eth1", "vrf forwarding A");
        assert_eq!(
            notes,
            ["% Interface eth1 IPv4 and IPv6 disabled and address(es) removed due to enabling VRF A"]
        );
        assert!(config.interfaces["eth1"].ipv4_addresses.is_empty());
        assert_eq!(config.vrf_of("eth1"), Some("A"));
        assert_eq!(
            in_interface(&mut config, "eth1", "vrf forwarding A"),
            Vec::<String>::new()
        );
        in_interface(&mut config, "eth1", "ip address 10.0.0.1/24");
        let notes = in_interface(&mut config, "eth1", "no vrf forwarding");
        assert!(notes[0].ends_with("due to disabling its VRF"), "{notes:?}");
        assert_eq!(config.vrf_of("eth1"), None);
    }

    #[test]
    fn removing_an_interface_removes_its_membership() {
        let (config, errors) = parse_config(
            "vrf definition A\n rd 65000:1\n description tenant a\ninterface eth1\n vrf forwarding A\n\
             no interface eth1\n",
        );
        assert_eq!(errors, []);
        assert!(config.vrfs.members.is_empty());
        assert_eq!(
            crate::render(&config),
            "!\nvrf definition A\n description tenant a\n rd 65000:1\n!\nend\n"
        );
    }

    #[test]
    fn route_distinguishers_follow_rfc_4364() {
        for good in ["65000:1", "4200000000:65535", "192.0.2.1:7", "1:4294967295"] {
            assert!(is_route_distinguisher(good), "{good}");
        }
        for bad in [
            "65000",
            "4200000000:65536",
            "192.0.2.1:70000",
            "x:1",
            ":1",
            "1:",
        ] {
            assert!(!is_route_distinguisher(bad), "{bad}");
        }
    }
}
