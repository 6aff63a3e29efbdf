//! The BGP element, in IOS's words: `router bgp ASN` opens
//! `(config-router)` for `bgp router-id`, `neighbor A.B.C.D remote-as
//! ASN|description|shutdown|timers KEEPALIVE HOLD|prefix-list NAME in|out|
//! route-map NAME in|out|maximum-prefix N [THRESHOLD] [warning-only]`
//! (the policy lines are written at the router's level, where IOS takes
//! them for IPv4 unicast); `address-family ipv4
//! unicast` opens `(config-router-af)` for `network PREFIX` (or `network
//! A.B.C.D mask M.M.M.M`), `neighbor A.B.C.D activate`, `redistribute
//! static|connected`, and `exit-address-family` goes back.
//!
//! A neighbour exchanges IPv4 routes only once activated in the address
//! family (as IOS with `no bgp default ipv4-unicast`). The address
//! family's mode is nested in the router's: its object is `ASN ipv4`, and
//! the router's commands are typed there too, so a running-config block
//! reads back line by line.

use crate::commands::{
    change_if, check_name, description_text, ipv4_network, required, CommandDef, ConfigContext,
    Edit, Mode, SubMode, INCOMPLETE,
};
use crate::config::Config;
use crate::render::Block;
use ipnet::Ipv4Net;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// `(config-router)#`, opened by `router bgp ASN`.
pub static ROUTER_MODE: SubMode = SubMode {
    prompt: "router",
    parent: None,
};
/// `(config-router-af)#`, opened by `address-family ipv4 unicast`.
pub static ROUTER_AF_MODE: SubMode = SubMode {
    prompt: "router-af",
    parent: Some(&ROUTER_MODE),
};

/// RFC 4271's suggested timers (IOS's defaults): keepalive 60 s, hold 180 s.
pub const DEFAULT_KEEPALIVE: u16 = 60;
pub const DEFAULT_HOLD: u16 = 180;

/// What `redistribute` takes into BGP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Redistribute {
    Connected,
    Static,
}

impl Redistribute {
    pub fn word(self) -> &'static str {
        match self {
            Redistribute::Connected => "connected",
            Redistribute::Static => "static",
        }
    }
}

/// IOS's default warning threshold of `maximum-prefix`, in percent.
pub const DEFAULT_MAX_PREFIX_THRESHOLD: u8 = 75;

/// What a neighbour's routes pass one way, in IOS's order: the prefix
/// list, then the route map. Names only: what they name may be undefined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NeighborFilter {
    pub prefix_list: Option<String>,
    pub route_map: Option<String>,
}

/// `neighbor A.B.C.D maximum-prefix N [THRESHOLD] [warning-only]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaximumPrefix {
    pub max: u32,
    /// Percent of `max` at which a warning is logged.
    pub threshold: u8,
    /// Over the limit, only log (else the session is torn down).
    pub warning_only: bool,
}

/// One neighbour, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BgpNeighbor {
    pub remote_as: Option<u32>,
    pub description: Option<String>,
    pub shutdown: bool,
    /// (keepalive, hold) in seconds.
    pub timers: Option<(u16, u16)>,
    pub inbound: NeighborFilter,
    pub outbound: NeighborFilter,
    pub maximum_prefix: Option<MaximumPrefix>,
}

impl BgpNeighbor {
    /// (keepalive, hold) in force.
    pub fn timers(&self) -> (u16, u16) {
        self.timers.unwrap_or((DEFAULT_KEEPALIVE, DEFAULT_HOLD))
    }
}

/// `address-family ipv4 unicast`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ipv4Unicast {
    /// Always stored truncated to the network address.
    pub networks: BTreeSet<Ipv4Net>,
    pub redistribute: BTreeSet<Redistribute>,
    pub activated: BTreeSet<Ipv4Addr>,
}

impl Ipv4Unicast {
    fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.redistribute.is_empty() && self.activated.is_empty()
    }
}

/// `router bgp ASN` and what is under it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BgpRouter {
    pub asn: u32,
    pub router_id: Option<Ipv4Addr>,
    pub neighbors: BTreeMap<Ipv4Addr, BgpNeighbor>,
    pub ipv4: Ipv4Unicast,
}

/// The BGP section: one routing process at most, as on IOS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bgp {
    pub router: Option<BgpRouter>,
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "router bgp <1-4294967295>$asn",
        help: &[
            "Enable a routing process",
            "Border Gateway Protocol (BGP)",
            "Autonomous system number",
        ],
        handler: router_bgp,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "bgp router-id A.B.C.D$id",
        help: &[
            "BGP specific commands",
            "Override configured router identifier",
            "Manually configured router identifier",
        ],
        handler: router_id,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "neighbor A.B.C.D$peer remote-as <1-4294967295>$asn",
        help: &[
            "Specify a neighbor router",
            "Neighbor address",
            "Specify a BGP neighbor",
            "AS of remote neighbor",
        ],
        handler: remote_as,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "neighbor A.B.C.D$peer description LINE$text",
        help: &[
            "Specify a neighbor router",
            "Neighbor address",
            "Neighbor specific description",
            "Up to 240 characters describing this neighbor",
        ],
        handler: description,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "neighbor A.B.C.D$peer shutdown",
        help: &[
            "Specify a neighbor router",
            "Neighbor address",
            "Administratively shut down this neighbor",
        ],
        handler: shutdown,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "neighbor A.B.C.D$peer timers <0-65535>$keepalive <0-65535>$hold",
        help: &[
            "Specify a neighbor router",
            "Neighbor address",
            "BGP per neighbor timers",
            "Keepalive interval (seconds)",
            "Holdtime (0 or 3-65535 seconds)",
        ],
        handler: timers,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "neighbor A.B.C.D$peer prefix-list WORD$name (in|out)",
        help: &[
            "Specify a neighbor router",
            "Neighbor address",
            "Filter updates to/from this neighbor",
            "Name of a prefix list",
            "Filter incoming updates",
            "Filter outgoing updates",
        ],
        handler: prefix_list,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "neighbor A.B.C.D$peer route-map WORD$name (in|out)",
        help: &[
            "Specify a neighbor router",
            "Neighbor address",
            "Apply route map to neighbor",
            "Name of route map",
            "Apply map to incoming routes",
            "Apply map to outbound routes",
        ],
        handler: route_map,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "neighbor A.B.C.D$peer maximum-prefix <1-2147483647>$max [<1-100>$threshold] [warning-only]",
        help: &[
            "Specify a neighbor router",
            "Neighbor address",
            "Maximum number of prefixes accepted from this peer",
            "maximum no. of prefix limit",
            "Threshold value (%) at which to generate a warning msg",
            "Only give warning message when limit is exceeded",
        ],
        handler: maximum_prefix,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_MODE),
        syntax: "address-family ipv4 unicast",
        help: &[
            "Enter Address Family command mode",
            "Address family",
            "Address Family modifier",
        ],
        handler: address_family,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_AF_MODE),
        syntax: "network (A.B.C.D/M$prefix|A.B.C.D$prefix mask A.B.C.D$mask)",
        help: &[
            "Specify a network to announce via BGP",
            "Network number and length",
            "Network number",
            "Network mask",
            "Network mask",
        ],
        handler: network,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_AF_MODE),
        syntax: "neighbor A.B.C.D$peer activate",
        help: &[
            "Specify a neighbor router",
            "Neighbor address",
            "Enable the Address Family for this Neighbor",
        ],
        handler: activate,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_AF_MODE),
        syntax: "redistribute (static|connected)",
        help: &[
            "Redistribute information from another routing protocol",
            "Static routes",
            "Connected",
        ],
        handler: redistribute,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTER_AF_MODE),
        syntax: "exit-address-family",
        help: &["Exit from Address Family configuration mode"],
        handler: exit_address_family,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "bgp",
    commands: COMMANDS,
    sub_modes: &[&ROUTER_MODE, &ROUTER_AF_MODE],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    /// IOS's order: router id, each neighbour's lines, then the address
    /// family's networks, redistributions and activations.
    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let Some(router) = &config.bgp.router else {
            return;
        };
        let mut body = Vec::new();
        if let Some(id) = router.router_id {
            body.push(format!("bgp router-id {id}"));
        }
        for (peer, n) in &router.neighbors {
            if let Some(asn) = n.remote_as {
                body.push(format!("neighbor {peer} remote-as {asn}"));
            }
            if let Some(text) = &n.description {
                body.push(format!("neighbor {peer} description {text}"));
            }
            if n.shutdown {
                body.push(format!("neighbor {peer} shutdown"));
            }
            if let Some((keepalive, hold)) = n.timers {
                body.push(format!("neighbor {peer} timers {keepalive} {hold}"));
            }
            for (kind, pick) in FILTERS {
                for (filter, way) in [(&n.inbound, "in"), (&n.outbound, "out")] {
                    if let Some(name) = pick(filter) {
                        body.push(format!("neighbor {peer} {kind} {name} {way}"));
                    }
                }
            }
            if let Some(m) = n.maximum_prefix {
                let mut line = format!("neighbor {peer} maximum-prefix {}", m.max);
                if m.threshold != DEFAULT_MAX_PREFIX_THRESHOLD {
                    line += &format!(" {}", m.threshold);
                }
                if m.warning_only {
                    line += " warning-only";
                }
                body.push(line);
            }
        }
        let af = &router.ipv4;
        if !af.is_empty() {
            body.push("address-family ipv4 unicast".to_string());
            body.extend(
                (af.networks.iter()).map(|n| format!(" network {} mask {}", n.addr(), n.netmask())),
            );
            body.extend(
                af.redistribute
                    .iter()
                    .map(|r| format!(" redistribute {}", r.word())),
            );
            body.extend(
                af.activated
                    .iter()
                    .map(|p| format!(" neighbor {p} activate")),
            );
            body.push("exit-address-family".to_string());
        }
        out.push(Block {
            header: format!("router bgp {}", router.asn),
            body,
        });
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let Some(router) = &config.bgp.router else {
            return;
        };
        for (peer, n) in &router.neighbors {
            if n.remote_as.is_none() {
                problems.push(format!("% BGP neighbor {peer} has no remote-as"));
            }
            if let Some((keepalive, hold)) = n.timers {
                if hold != 0 && (hold < 3 || keepalive > hold) {
                    problems.push(format!(
                        "% BGP neighbor {peer}: hold time {hold} must be 0, or 3 or more and at least the keepalive {keepalive}"
                    ));
                }
            }
        }
        for peer in &router.ipv4.activated {
            if !router.neighbors.contains_key(peer) {
                problems.push(format!(
                    "% BGP neighbor {peer} is activated in address-family ipv4 unicast but not configured"
                ));
            }
        }
        if router.router_id.is_none() && !router.neighbors.is_empty() {
            let has_address = config
                .interfaces
                .values()
                .any(|i| !i.ipv4_addresses.is_empty());
            if !has_address {
                problems.push(
                    "% BGP needs a router id: configure bgp router-id or an IPv4 address"
                        .to_string(),
                );
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.bgp, &new.bgp) && super::same(&old.interfaces, &new.interfaces)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        generate::bgp()
    }
}

/// The router `edit` is typed under (its mode's object is the ASN).
fn router_of<'e>(edit: &'e mut Edit<'_>) -> Result<&'e mut BgpRouter, String> {
    let object = edit.object(&ROUTER_MODE)?;
    let bgp = Arc::make_mut(&mut edit.config.bgp);
    bgp.router
        .as_mut()
        .filter(|r| r.asn.to_string() == object)
        .ok_or_else(|| format!("% BGP AS {object} is not configured"))
}

fn asn(edit: &Edit<'_>) -> Result<u32, String> {
    let asn = edit.args.number("asn").ok_or(INCOMPLETE)?;
    u32::try_from(asn).map_err(|_| format!("% Invalid AS number {asn}"))
}

fn peer(edit: &Edit<'_>) -> Result<Ipv4Addr, String> {
    edit.args.ipv4("peer").ok_or_else(|| INCOMPLETE.to_string())
}

fn router_bgp(edit: &mut Edit<'_>) -> Result<(), String> {
    let asn = asn(edit)?;
    let running = edit.config.bgp.router.as_ref().map(|r| r.asn);
    if let Some(running) = running.filter(|r| *r != asn) {
        return Err(format!("% BGP is already running; AS is {running}"));
    }
    if edit.negated {
        change_if(&mut edit.config.bgp, running.is_some(), |b| b.router = None);
        return Ok(());
    }
    change_if(&mut edit.config.bgp, running.is_none(), |b| {
        b.router = Some(BgpRouter {
            asn,
            ..BgpRouter::default()
        })
    });
    edit.enter = Some(ConfigContext::Sub(&ROUTER_MODE, asn.to_string()));
    Ok(())
}

fn router_id(edit: &mut Edit<'_>) -> Result<(), String> {
    let id = (!edit.negated).then(|| edit.args.ipv4("id")).flatten();
    router_of(edit)?.router_id = id;
    Ok(())
}

/// Changes the neighbour `peer` of the line (created if new); one left
/// with nothing configured is dropped.
fn edit_neighbor(edit: &mut Edit<'_>, change: impl FnOnce(&mut BgpNeighbor)) -> Result<(), String> {
    let peer = peer(edit)?;
    let router = router_of(edit)?;
    let neighbor = router.neighbors.entry(peer).or_default();
    change(neighbor);
    if *neighbor == BgpNeighbor::default() {
        router.neighbors.remove(&peer);
    }
    Ok(())
}

/// `neighbor A.B.C.D remote-as N`; `no neighbor A.B.C.D [remote-as N]`
/// removes the neighbour, its activation included.
fn remote_as(edit: &mut Edit<'_>) -> Result<(), String> {
    if !edit.negated {
        let asn = asn(edit)?;
        return edit_neighbor(edit, |n| n.remote_as = Some(asn));
    }
    let peer = peer(edit)?;
    let router = router_of(edit)?;
    router.ipv4.activated.remove(&peer);
    router
        .neighbors
        .remove(&peer)
        .map(drop)
        .ok_or_else(|| format!("% BGP neighbor {peer} is not configured"))
}

fn description(edit: &mut Edit<'_>) -> Result<(), String> {
    let text = description_text(edit)?;
    edit_neighbor(edit, |n| n.description = text)
}

fn shutdown(edit: &mut Edit<'_>) -> Result<(), String> {
    let down = !edit.negated;
    edit_neighbor(edit, |n| n.shutdown = down)
}

fn timers(edit: &mut Edit<'_>) -> Result<(), String> {
    let timers = match edit.negated {
        true => None,
        false => {
            let number = |name| edit.args.number(name).ok_or(INCOMPLETE);
            Some((number("keepalive")? as u16, number("hold")? as u16))
        }
    };
    edit_neighbor(edit, |n| n.timers = timers)
}

/// Which name of a [`NeighborFilter`].
type Pick = fn(&NeighborFilter) -> &Option<String>;

/// The policy kinds a neighbour names, in the running config's order.
const FILTERS: [(&str, Pick); 2] = [
    ("prefix-list", |f| &f.prefix_list),
    ("route-map", |f| &f.route_map),
];

/// `neighbor A.B.C.D prefix-list|route-map NAME in|out`: `pick` is the
/// kind's field; a `no` form without the direction clears both ways.
fn edit_filter(
    edit: &mut Edit<'_>,
    what: &str,
    pick: fn(&mut NeighborFilter) -> &mut Option<String>,
) -> Result<(), String> {
    let name = match edit.negated {
        true => None,
        false => Some(required(edit.args, "name")?.to_string()),
    };
    if let Some(name) = &name {
        check_name(what, name)?;
    }
    let (inbound, outbound) = match (edit.args.has("in"), edit.args.has("out")) {
        (false, false) => (true, true),
        ways => ways,
    };
    edit_neighbor(edit, |n| {
        for (filter, wanted) in [(&mut n.inbound, inbound), (&mut n.outbound, outbound)] {
            if wanted {
                *pick(filter) = name.clone();
            }
        }
    })
}

fn prefix_list(edit: &mut Edit<'_>) -> Result<(), String> {
    edit_filter(edit, "prefix list", |f| &mut f.prefix_list)
}

fn route_map(edit: &mut Edit<'_>) -> Result<(), String> {
    edit_filter(edit, "route map", |f| &mut f.route_map)
}

fn maximum_prefix(edit: &mut Edit<'_>) -> Result<(), String> {
    let limit = match edit.negated {
        true => None,
        false => {
            let args = edit.args;
            let threshold = args.number("threshold").map(|t| t as u8);
            Some(MaximumPrefix {
                max: args.number("max").ok_or(INCOMPLETE)? as u32,
                threshold: threshold.unwrap_or(DEFAULT_MAX_PREFIX_THRESHOLD),
                warning_only: args.has("warning-only"),
            })
        }
    };
    edit_neighbor(edit, |n| n.maximum_prefix = limit)
}

fn address_family(edit: &mut Edit<'_>) -> Result<(), String> {
    let negated = edit.negated;
    let router = router_of(edit)?;
    if negated {
        router.ipv4 = Ipv4Unicast::default();
        return Ok(());
    }
    let object = format!("{} ipv4", router.asn);
    edit.enter = Some(ConfigContext::Sub(&ROUTER_AF_MODE, object));
    Ok(())
}

/// The IPv4 unicast address family of the router the line is typed under.
fn af_of<'e>(edit: &'e mut Edit<'_>) -> Result<&'e mut Ipv4Unicast, String> {
    edit.object(&ROUTER_AF_MODE)?;
    Ok(&mut router_of(edit)?.ipv4)
}

fn network(edit: &mut Edit<'_>) -> Result<(), String> {
    let prefix = ipv4_network(edit.args, "prefix")?
        .ok_or(INCOMPLETE)?
        .trunc();
    let negated = edit.negated;
    let networks = &mut af_of(edit)?.networks;
    match negated {
        false => {
            networks.insert(prefix);
        }
        true if networks.remove(&prefix) => {}
        true => return Err(format!("% Network {prefix} is not configured")),
    }
    Ok(())
}

fn activate(edit: &mut Edit<'_>) -> Result<(), String> {
    let peer = peer(edit)?;
    let negated = edit.negated;
    let activated = &mut af_of(edit)?.activated;
    match negated {
        false => activated.insert(peer),
        true => activated.remove(&peer),
    };
    Ok(())
}

fn redistribute(edit: &mut Edit<'_>) -> Result<(), String> {
    let what = match edit.args.has("static") {
        true => Redistribute::Static,
        false => Redistribute::Connected,
    };
    let negated = edit.negated;
    let set = &mut af_of(edit)?.redistribute;
    match negated {
        false => set.insert(what),
        true => set.remove(&what),
    };
    Ok(())
}

fn exit_address_family(edit: &mut Edit<'_>) -> Result<(), String> {
    let object = edit.object(&ROUTER_MODE)?;
    edit.enter = Some(ConfigContext::Sub(&ROUTER_MODE, object));
    Ok(())
}

#[cfg(test)]
mod generate {
    use crate::elements::tests::text;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// One neighbour's lines under `router bgp`.
    fn neighbor() -> impl Strategy<Value = String> {
        (
            any::<u32>().prop_map(Ipv4Addr::from),
            1u32..,
            proptest::option::of(text()),
            any::<bool>(),
            proptest::option::of((0u16..100, 100u16..1000)),
            proptest::collection::vec(policy_line(), 0..3),
        )
            .prop_map(|(peer, asn, description, shutdown, timers, policy)| {
                let mut lines = format!(" neighbor {peer} remote-as {asn}\n");
                if let Some(d) = description {
                    lines += &format!(" neighbor {peer} description {d}\n");
                }
                if shutdown {
                    lines += &format!(" neighbor {peer} shutdown\n");
                }
                if let Some((k, h)) = timers {
                    lines += &format!(" neighbor {peer} timers {k} {h}\n");
                }
                for line in policy {
                    lines += &format!(" neighbor {peer} {line}\n");
                }
                lines
            })
    }

    /// A neighbour's policy words: a prefix list or route map one way, or
    /// a prefix limit.
    fn policy_line() -> impl Strategy<Value = String> {
        let filter = (
            prop_oneof![Just("prefix-list"), Just("route-map")],
            "[A-Za-z][A-Za-z0-9_-]{0,8}",
            prop_oneof![Just("in"), Just("out")],
        )
            .prop_map(|(kind, name, way)| format!("{kind} {name} {way}"));
        let limit = (
            1u32..2_147_483_647,
            proptest::option::of(1u8..=100),
            any::<bool>(),
        )
            .prop_map(|(max, threshold, warning)| {
                let mut line = format!("maximum-prefix {max}");
                if let Some(t) = threshold {
                    line += &format!(" {t}");
                }
                if warning {
                    line += " warning-only";
                }
                line
            });
        prop_oneof![filter, limit]
    }

    /// An address-family line: a network in either form, a
    /// redistribution or an activation.
    fn af_line() -> impl Strategy<Value = String> {
        let network = (any::<u32>(), 0u8..=32, any::<bool>()).prop_map(|(a, l, mask)| {
            let net = ipnet::Ipv4Net::new(Ipv4Addr::from(a), l).unwrap();
            match mask {
                true => format!("  network {} mask {}\n", net.addr(), net.netmask()),
                false => format!("  network {net}\n"),
            }
        });
        prop_oneof![
            network,
            prop_oneof![Just("static"), Just("connected")]
                .prop_map(|r| format!("  redistribute {r}\n")),
            any::<u32>().prop_map(|a| format!("  neighbor {} activate\n", Ipv4Addr::from(a))),
        ]
    }

    pub fn bgp() -> BoxedStrategy<String> {
        let router = (
            1u32..,
            proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
            proptest::collection::vec(neighbor(), 0..3),
            proptest::collection::vec(af_line(), 0..4),
        )
            .prop_map(|(asn, id, neighbors, af)| {
                let mut text = format!("router bgp {asn}\n");
                if let Some(id) = id {
                    text += &format!(" bgp router-id {id}\n");
                }
                text += &neighbors.concat();
                if !af.is_empty() {
                    text += " address-family ipv4 unicast\n";
                    text += &af.concat();
                    text += " exit-address-family\n";
                }
                text
            });
        proptest::option::of(router)
            .prop_map(Option::unwrap_or_default)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use crate::{apply_text, parse_config, render, validate};

    const TEXT: &str = "router bgp 4200000001\n\
         bgp router-id 192.0.2.1\n\
         neighbor 10.0.0.2 remote-as 65001\n\
         neighbor 10.0.0.2 description ISP uplink\n\
         neighbor 10.0.0.2 timers 10 30\n\
         neighbor 10.0.0.2 route-map FROM-ISP in\n\
         neighbor 10.0.0.2 prefix-list BOGONS in\n\
         neighbor 10.0.0.2 route-map TO-ISP out\n\
         neighbor 10.0.0.2 maximum-prefix 1000 90 warning-only\n\
         neighbor 10.0.0.3 remote-as 4200000001\n\
         neighbor 10.0.0.3 maximum-prefix 5\n\
         neighbor 10.0.0.3 shutdown\n\
         address-family ipv4 unicast\n\
          network 198.51.100.0 mask 255.255.255.0\n\
          network 203.0.113.7/16\n\
          redistribute static\n\
          neighbor 10.0.0.2 activate\n\
         exit-address-family\n\
         bgp router-id 192.0.2.9\n";

    #[test]
    fn a_bgp_router_renders_in_ios_order_and_reads_back() {
        let (config, errors) = parse_config(TEXT);
        assert_eq!(errors, []);
        let rendered = render(&config);
        assert!(
            rendered.contains(concat!(
                "!\nrouter bgp 4200000001\n",
                " bgp router-id 192.0.2.9\n",
                " neighbor 10.0.0.2 remote-as 65001\n",
                " neighbor 10.0.0.2 description ISP uplink\n",
                " neighbor 10.0.0.2 timers 10 30\n",
                " neighbor 10.0.0.2 prefix-list BOGONS in\n",
                " neighbor 10.0.0.2 route-map FROM-ISP in\n",
                " neighbor 10.0.0.2 route-map TO-ISP out\n",
                " neighbor 10.0.0.2 maximum-prefix 1000 90 warning-only\n",
                " neighbor 10.0.0.3 remote-as 4200000001\n",
                " neighbor 10.0.0.3 shutdown\n",
                " neighbor 10.0.0.3 maximum-prefix 5\n",
                " address-family ipv4 unicast\n",
                "  network 198.51.100.0 mask 255.255.255.0\n",
                "  network 203.0.0.0 mask 255.255.0.0\n",
                "  redistribute static\n",
                "  neighbor 10.0.0.2 activate\n",
                " exit-address-family\n",
            )),
            "{rendered}"
        );
        assert_eq!(parse_config(&rendered), (config, vec![]));
    }

    #[test]
    fn a_second_router_bgp_with_another_as_is_refused() {
        let (mut config, _) = parse_config("router bgp 65000\n");
        let errors = apply_text(&mut config, "router bgp 65001\n");
        assert_eq!(
            errors[0].error.message,
            "% BGP is already running; AS is 65000"
        );
        assert_eq!(apply_text(&mut config, "router bgp 65000\n"), []);
        assert_eq!(apply_text(&mut config, "no router bgp 65000\n"), []);
        assert_eq!(config.bgp.router, None);
    }

    #[test]
    fn commit_checks_name_neighbors_without_remote_as_and_unknown_activations() {
        let (config, errors) = parse_config(
            "router bgp 65000\n bgp router-id 192.0.2.1\n neighbor 10.0.0.2 description x\n\
             address-family ipv4 unicast\n  neighbor 10.0.0.9 activate\n",
        );
        assert_eq!(errors, []);
        let problems = validate(&config);
        assert!(
            problems.contains(&"% BGP neighbor 10.0.0.2 has no remote-as".to_string()),
            "{problems:?}"
        );
        assert!(
            problems.contains(
                &"% BGP neighbor 10.0.0.9 is activated in address-family ipv4 unicast but not configured"
                    .to_string()
            ),
            "{problems:?}"
        );
    }

    #[test]
    fn no_forms_remove_what_they_name() {
        let (mut config, _) = parse_config(TEXT);
        let errors = apply_text(
            &mut config,
            "router bgp 4200000001\n no neighbor 10.0.0.2 description\n no neighbor 10.0.0.2 timers\n\
             no neighbor 10.0.0.2 route-map FROM-ISP in\n no neighbor 10.0.0.2 prefix-list\n\
             no neighbor 10.0.0.2 maximum-prefix\n\
             no neighbor 10.0.0.3\n address-family ipv4 unicast\n no network 203.0.0.0/16\n\
             no redistribute static\n no neighbor 10.0.0.2 activate\n",
        );
        assert_eq!(errors, []);
        let router = config.bgp.router.as_ref().unwrap();
        assert_eq!(router.neighbors.len(), 1);
        let neighbor = router.neighbors.values().next().unwrap();
        assert_eq!(neighbor.description, None);
        assert_eq!(neighbor.inbound, Default::default());
        assert_eq!(neighbor.outbound.route_map.as_deref(), Some("TO-ISP"));
        assert_eq!(neighbor.maximum_prefix, None);
        assert_eq!(router.ipv4.networks.len(), 1);
        assert!(router.ipv4.redistribute.is_empty() && router.ipv4.activated.is_empty());
        let errors = apply_text(
            &mut config,
            "router bgp 4200000001\n no neighbor 10.0.0.3\n",
        );
        assert_eq!(
            errors[0].error.message,
            "% BGP neighbor 10.0.0.3 is not configured"
        );
    }
}
