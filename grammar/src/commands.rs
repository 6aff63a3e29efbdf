//! The configuration commands: each is one [`CommandDef`] (syntax, help,
//! handler) in [`GLOBAL_COMMANDS`] or [`INTERFACE_COMMANDS`]; every one gets
//! a `no` form. Handlers edit the typed [`Config`].

use crate::config::{
    Config, Interface, InterfaceKind, NextHop, PasswordHash, SshKey, StaticRoute, User, Vxlan,
    STATIC_DEFAULT_DISTANCE, VXLAN_DEFAULT_PORT,
};
use crate::syntax::SyntaxError;
use crate::tree::{Args, CommandTree};
use std::collections::BTreeSet;
use std::fmt::Display;

/// Where configuration commands are typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigContext {
    Global,
    Interface(String),
}

/// What a handler works on.
pub struct Edit<'a> {
    pub config: &'a mut Config,
    pub context: &'a ConfigContext,
    pub args: &'a Args,
    /// The command was typed with `no`.
    pub negated: bool,
    /// Set by commands that enter a sub-mode (`interface`).
    pub enter: Option<ConfigContext>,
}

/// Applies one command; errors are `%` messages.
pub type Handler = fn(&mut Edit<'_>) -> Result<(), String>;

/// A matched configuration command: its handler and whether `no` was typed.
#[derive(Clone, Copy, Debug)]
pub struct ConfigCommand {
    pub handler: Handler,
    pub negated: bool,
}

/// One configuration command definition.
pub struct CommandDef {
    pub syntax: &'static str,
    pub help: &'static [&'static str],
    pub handler: Handler,
}

pub const GLOBAL_COMMANDS: &[CommandDef] = &[
    CommandDef {
        syntax: "hostname WORD$name",
        help: &[
            "Set the system's network name",
            "This system's network name",
        ],
        handler: hostname,
    },
    CommandDef {
        syntax: "banner motd LINE$text",
        help: &[
            "Define a login banner",
            "Message of the day banner",
            "Banner text",
        ],
        handler: banner_motd,
    },
    CommandDef {
        syntax: "interface IFNAME$name",
        help: &[
            "Select an interface to configure",
            "Interface name (eth0, eth0.100, vxlan10)",
        ],
        handler: interface,
    },
    CommandDef {
        syntax: "ip route A.B.C.D/M$prefix (A.B.C.D$via|IFNAME$dev) [<1-255>$distance]",
        help: &[
            "Global IP configuration",
            "Establish static routes",
            "Destination prefix",
            "Forwarding router's address",
            "Outgoing interface",
            "Administrative distance",
        ],
        handler: ip_route,
    },
    CommandDef {
        syntax: "ipv6 route X:X::X:X/M$prefix (X:X::X:X$via|IFNAME$dev) [<1-255>$distance]",
        help: &[
            "Global IPv6 configuration",
            "Establish static routes",
            "Destination prefix",
            "Forwarding router's global address",
            "Outgoing interface",
            "Administrative distance",
        ],
        handler: ipv6_route,
    },
    CommandDef {
        syntax: "username WORD$name [privilege <0-15>$level] secret LINE$secret",
        help: &[
            "Establish a user name",
            "User name",
            "Set the user's privilege level",
            "Privilege level (1 read-only, 15 full)",
            "Set the user's secret",
            "The secret (stored only as a salted hash)",
        ],
        handler: username,
    },
    CommandDef {
        syntax:
            "username WORD$name [privilege <0-15>$level] ssh-key WORD$type WORD$key [LINE$comment]",
        help: &[
            "Establish a user name",
            "User name",
            "Set the user's privilege level",
            "Privilege level (1 read-only, 15 full)",
            "Add a public key for SSH login",
            "Key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...)",
            "The key in base64, as in authorized_keys",
            "Comment (often user@host)",
        ],
        handler: username_ssh_key,
    },
];

pub const INTERFACE_COMMANDS: &[CommandDef] = &[
    CommandDef {
        syntax: "description LINE$text",
        help: &["Interface specific description", "Up to 240 characters"],
        handler: description,
    },
    CommandDef {
        syntax: "shutdown",
        help: &["Shut down the selected interface"],
        handler: shutdown,
    },
    CommandDef {
        syntax: "mtu <68-65535>$bytes",
        help: &["Set the interface MTU", "MTU in bytes"],
        handler: mtu,
    },
    CommandDef {
        syntax: "ip address A.B.C.D/M$address",
        help: &[
            "Interface IP configuration",
            "Set an IP address",
            "Address and prefix length",
        ],
        handler: ip_address,
    },
    CommandDef {
        syntax: "ipv6 address X:X::X:X/M$address",
        help: &[
            "Interface IPv6 configuration",
            "Set an IPv6 address",
            "Address and prefix length",
        ],
        handler: ipv6_address,
    },
    CommandDef {
        syntax: "encapsulation dot1q <1-4094>$vlan",
        help: &[
            "Set the encapsulation of a sub-interface",
            "IEEE 802.1Q VLAN",
            "VLAN id",
        ],
        handler: encapsulation,
    },
    CommandDef {
        syntax: "vni <1-16777215>$vni",
        help: &["VXLAN network identifier", "VNI"],
        handler: vni,
    },
    CommandDef {
        syntax: "source-interface IFNAME$source",
        help: &[
            "Interface whose address is the VXLAN source",
            "Interface name",
        ],
        handler: source_interface,
    },
    CommandDef {
        syntax: "remote A.B.C.D$peer",
        help: &["Add a remote VTEP", "Remote VTEP address"],
        handler: remote,
    },
    CommandDef {
        syntax: "udp-port <1-65535>$port",
        help: &["VXLAN UDP destination port", "Port (default 4789)"],
        handler: udp_port,
    },
];

/// Adds `defs` (and their `no` forms) to `tree`, wrapping each matched
/// command as the tree's action type.
pub fn add_commands<A: Clone>(
    tree: &mut CommandTree<A>,
    defs: &[CommandDef],
    wrap: impl Fn(ConfigCommand) -> A,
) -> Result<(), SyntaxError> {
    for def in defs {
        tree.add_with_no(def.syntax, def.help, |negated| {
            wrap(ConfigCommand {
                handler: def.handler,
                negated,
            })
        })?;
    }
    Ok(())
}

const INCOMPLETE: &str = "% Incomplete command.";

fn required<'a>(args: &'a Args, text: &str) -> Result<&'a str, String> {
    args.text(text).ok_or_else(|| INCOMPLETE.to_string())
}

fn hostname(edit: &mut Edit<'_>) -> Result<(), String> {
    if edit.negated {
        edit.config.hostname = None;
        return Ok(());
    }
    let name = required(edit.args, "name")?;
    let valid = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !valid {
        return Err(format!(
            "% Invalid hostname \"{name}\": letters, digits and '-', starting with a letter"
        ));
    }
    edit.config.hostname = Some(name.to_string());
    Ok(())
}

fn banner_motd(edit: &mut Edit<'_>) -> Result<(), String> {
    edit.config.banner_motd = match edit.negated {
        true => None,
        false => Some(required(edit.args, "text")?.to_string()),
    };
    Ok(())
}

fn interface(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?;
    if edit.negated {
        if edit.config.interfaces.remove(name).is_none() {
            return Err(format!("% Interface {name} is not configured"));
        }
        return Ok(());
    }
    let kind = InterfaceKind::of(name);
    if let InterfaceKind::SubInterface {
        vlan_id_in_name, ..
    } = kind
    {
        if !(1..=4094).contains(&vlan_id_in_name) {
            return Err(format!("% Sub-interface number of {name} must be 1-4094"));
        }
    }
    let entry = edit.config.interfaces.entry(name.to_string()).or_default();
    if kind == InterfaceKind::Vxlan && entry.vxlan.is_none() {
        entry.vxlan = Some(Vxlan::default());
    }
    edit.enter = Some(ConfigContext::Interface(name.to_string()));
    Ok(())
}

fn ip_route(edit: &mut Edit<'_>) -> Result<(), String> {
    let prefix = edit.args.ipv4_prefix("prefix").map(|p| p.trunc());
    let via = edit.args.ipv4("via");
    let route = route_args(edit.args, prefix, via)?;
    edit_routes(&mut edit.config.routes, edit.negated, route)
}

fn ipv6_route(edit: &mut Edit<'_>) -> Result<(), String> {
    let prefix = edit.args.ipv6_prefix("prefix").map(|p| p.trunc());
    let via = edit.args.ipv6("via");
    // fe80::/10 addresses mean nothing without their link, and the syntax
    // takes an address or an interface, not both.
    if let Some(v) = via.filter(|v| v.is_unicast_link_local() || v.is_multicast()) {
        return Err(format!(
            "% {v} is not a global unicast address: give a global next hop or an interface"
        ));
    }
    let route = route_args(edit.args, prefix, via)?;
    edit_routes(&mut edit.config.ipv6_routes, edit.negated, route)
}

/// A route command's words: prefix, optional next hop, optional distance.
type RouteArgs<P, A> = (P, Option<NextHop<A>>, Option<u8>);

fn route_args<P, A>(
    args: &Args,
    prefix: Option<P>,
    via: Option<A>,
) -> Result<RouteArgs<P, A>, String> {
    let prefix = prefix.ok_or_else(|| INCOMPLETE.to_string())?;
    let next_hop = match (via, args.text("dev")) {
        (Some(via), _) => Some(NextHop::Address(via)),
        (None, Some(dev)) => Some(NextHop::Interface(dev.to_string())),
        (None, None) => None,
    };
    Ok((prefix, next_hop, args.number("distance").map(|d| d as u8)))
}

/// Adds a static route, or with `no` removes those matching what was typed.
fn edit_routes<P: Ord + Copy + Display, A: Ord>(
    routes: &mut BTreeSet<StaticRoute<P, A>>,
    negated: bool,
    (prefix, next_hop, distance): RouteArgs<P, A>,
) -> Result<(), String> {
    if negated {
        let before = routes.len();
        routes.retain(|r| {
            let same = r.prefix == prefix
                && next_hop.as_ref().is_none_or(|nh| *nh == r.next_hop)
                && distance.is_none_or(|d| d == r.distance);
            !same
        });
        if routes.len() == before {
            return Err(format!("% No such static route to {prefix}"));
        }
        return Ok(());
    }
    let next_hop = next_hop.ok_or_else(|| INCOMPLETE.to_string())?;
    // One route per prefix and next hop: typing it again changes its distance.
    routes.retain(|r| !(r.prefix == prefix && r.next_hop == next_hop));
    routes.insert(StaticRoute {
        prefix,
        next_hop,
        distance: distance.unwrap_or(STATIC_DEFAULT_DISTANCE),
    });
    Ok(())
}

fn username(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?;
    if edit.negated {
        if edit.config.users.remove(name).is_none() {
            return Err(format!("% User {name} does not exist"));
        }
        return Ok(());
    }
    let secret = required(edit.args, "secret")?;
    let secret = match PasswordHash::parse(secret) {
        Some(hash) => hash,
        None => PasswordHash::from_clear(secret)?,
    };
    let user = user_entry(edit, name);
    user.secret = Some(secret);
    Ok(())
}

/// The user `name`, created if new; the privilege is updated when given.
fn user_entry<'a>(edit: &'a mut Edit<'_>, name: &str) -> &'a mut User {
    let level = edit.args.number("level").map(|l| l as u8);
    let user = edit
        .config
        .users
        .entry(name.to_string())
        .or_insert_with(|| User {
            privilege: level.unwrap_or(15),
            secret: None,
            ssh_keys: BTreeSet::new(),
        });
    if let Some(level) = level {
        user.privilege = level;
    }
    user
}

fn username_ssh_key(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?;
    if edit.negated {
        return remove_ssh_keys(edit.config, name, edit.args);
    }
    let key = SshKey::parse(
        required(edit.args, "type")?,
        required(edit.args, "key")?,
        edit.args.text("comment"),
    )?;
    let user = user_entry(edit, name);
    // A key typed again with another comment replaces the old entry.
    user.ssh_keys
        .retain(|k| !k.same_key(&key.algorithm, &key.base64));
    user.ssh_keys.insert(key);
    Ok(())
}

/// `no username NAME ssh-key [TYPE BASE64]`: one key, or all of them when
/// none is named. A user left with neither password nor key is removed.
fn remove_ssh_keys(config: &mut Config, name: &str, args: &Args) -> Result<(), String> {
    let user = config
        .users
        .get_mut(name)
        .ok_or_else(|| format!("% User {name} does not exist"))?;
    match (args.text("type"), args.text("key")) {
        (Some(algorithm), Some(base64)) => {
            let before = user.ssh_keys.len();
            user.ssh_keys.retain(|k| !k.same_key(algorithm, base64));
            if user.ssh_keys.len() == before {
                return Err(format!("% User {name} has no such key"));
            }
        }
        (Some(_), None) => return Err(INCOMPLETE.to_string()),
        (None, _) => user.ssh_keys.clear(),
    }
    if user.secret.is_none() && user.ssh_keys.is_empty() {
        config.users.remove(name);
    }
    Ok(())
}

/// The interface the current sub-mode configures.
fn current_interface<'c>(edit: &'c mut Edit<'_>) -> Result<(&'c str, &'c mut Interface), String> {
    match edit.context {
        ConfigContext::Interface(name) => Ok((
            name.as_str(),
            edit.config.interfaces.entry(name.clone()).or_default(),
        )),
        ConfigContext::Global => Err("% Not in interface configuration mode".to_string()),
    }
}

fn description(edit: &mut Edit<'_>) -> Result<(), String> {
    let text = match edit.negated {
        true => None,
        false => Some(required(edit.args, "text")?.to_string()),
    };
    if text.as_ref().is_some_and(|t| t.len() > 240) {
        return Err("% Description is longer than 240 characters".to_string());
    }
    current_interface(edit)?.1.description = text;
    Ok(())
}

fn shutdown(edit: &mut Edit<'_>) -> Result<(), String> {
    let down = !edit.negated;
    current_interface(edit)?.1.shutdown = down;
    Ok(())
}

fn mtu(edit: &mut Edit<'_>) -> Result<(), String> {
    let mtu = match edit.negated {
        true => None,
        false => Some(edit.args.number("bytes").ok_or(INCOMPLETE)? as u16),
    };
    current_interface(edit)?.1.mtu = mtu;
    Ok(())
}

fn ip_address(edit: &mut Edit<'_>) -> Result<(), String> {
    let address = edit.args.ipv4_prefix("address");
    let negated = edit.negated;
    let (name, interface) = current_interface(edit)?;
    if let (false, Some(a)) = (negated, address) {
        if a.prefix_len() < 31 && (a.addr() == a.network() || a.addr() == a.broadcast()) {
            return Err(format!("% {a} is not a host address in its subnet"));
        }
    }
    edit_set(&mut interface.ipv4_addresses, negated, address, |a| {
        format!("% {a} is not an address of {name}")
    })
}

fn ipv6_address(edit: &mut Edit<'_>) -> Result<(), String> {
    let address = edit.args.ipv6_prefix("address");
    let negated = edit.negated;
    let (name, interface) = current_interface(edit)?;
    edit_set(&mut interface.ipv6_addresses, negated, address, |a| {
        format!("% {a} is not an address of {name}")
    })
}

/// Applies a list command to its set: `X v` adds v, `no X v` removes it
/// (`not_there` words the error when it is absent), `no X` empties the set.
fn edit_set<T: Ord>(
    set: &mut BTreeSet<T>,
    negated: bool,
    value: Option<T>,
    not_there: impl FnOnce(&T) -> String,
) -> Result<(), String> {
    match (negated, value) {
        (true, None) => set.clear(),
        (true, Some(v)) => {
            if !set.remove(&v) {
                return Err(not_there(&v));
            }
        }
        (false, None) => return Err(INCOMPLETE.to_string()),
        (false, Some(v)) => {
            set.insert(v);
        }
    }
    Ok(())
}

fn encapsulation(edit: &mut Edit<'_>) -> Result<(), String> {
    let vlan = match edit.negated {
        true => None,
        false => Some(edit.args.number("vlan").ok_or(INCOMPLETE)? as u16),
    };
    let (name, interface) = current_interface(edit)?;
    if !matches!(InterfaceKind::of(name), InterfaceKind::SubInterface { .. }) {
        return Err(format!("% {name} is not a sub-interface (NAME.VLAN)"));
    }
    interface.dot1q = vlan;
    Ok(())
}

/// The VXLAN settings of the current interface, refusing non-VXLAN ones.
fn current_vxlan<'c>(edit: &'c mut Edit<'_>) -> Result<&'c mut Vxlan, String> {
    let (name, interface) = current_interface(edit)?;
    if InterfaceKind::of(name) != InterfaceKind::Vxlan {
        return Err(format!("% {name} is not a VXLAN interface (vxlanN)"));
    }
    Ok(interface.vxlan.get_or_insert_with(Vxlan::default))
}

fn vni(edit: &mut Edit<'_>) -> Result<(), String> {
    let vni = match edit.negated {
        true => None,
        false => Some(edit.args.number("vni").ok_or(INCOMPLETE)? as u32),
    };
    current_vxlan(edit)?.vni = vni;
    Ok(())
}

fn source_interface(edit: &mut Edit<'_>) -> Result<(), String> {
    let source = match edit.negated {
        true => None,
        false => Some(required(edit.args, "source")?.to_string()),
    };
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
