//! The static routes element: `ip route [vrf NAME] PREFIX NEXTHOP|IFNAME
//! [DISTANCE] [name WORD]` and the same for `ipv6 route`, one table per
//! VRF. IPv4 prefixes are typed as `A.B.C.D/M` or `A.B.C.D M.M.M.M` and
//! written in the mask form.
//!
//! A route's next-hop address is resolved in the route's own VRF; a route
//! whose next hop is an interface sends traffic out of that interface
//! whatever VRF it is in. That is how an operator leaks between tenants
//! (IOS's way): only where a route says so.

use crate::commands::{ipv4_network, mask_form, CommandDef, Edit, Mode, INCOMPLETE};
use crate::config::Config;
use crate::render::Block;
use crate::tree::Args;
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Administrative distance of a static route when none is given.
pub const STATIC_DEFAULT_DISTANCE: u8 = 1;

/// Where a static route points.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHop<A = Ipv4Addr> {
    Address(A),
    Interface(String),
}

/// One route as the dataplane consumes it.
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

/// Routes of one family: prefix -> next hop -> distance and name (one
/// route per prefix and next hop), so adding or removing one costs a lookup.
pub type Routes<P, A> = BTreeMap<P, BTreeMap<NextHop<A>, RouteDetails>>;

/// What a route says besides where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteDetails {
    pub distance: u8,
    /// IOS's `name WORD`: a label for operators, unused by forwarding.
    pub name: Option<String>,
}

/// The static routes of one VRF (or of the global table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteTable {
    pub v4: Routes<Ipv4Net, Ipv4Addr>,
    pub v6: Routes<Ipv6Net, Ipv6Addr>,
}

impl RouteTable {
    pub fn ipv4(&self) -> impl Iterator<Item = StaticRoute> + '_ {
        flatten(&self.v4)
    }

    pub fn ipv6(&self) -> impl Iterator<Item = Ipv6Route> + '_ {
        flatten(&self.v6)
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

fn flatten<P: Copy, A: Clone>(
    routes: &Routes<P, A>,
) -> impl Iterator<Item = StaticRoute<P, A>> + '_ {
    routes.iter().flat_map(|(prefix, hops)| {
        hops.iter().map(|(next_hop, hop)| StaticRoute {
            prefix: *prefix,
            next_hop: next_hop.clone(),
            distance: hop.distance,
        })
    })
}

/// The tables by VRF: `None` is the global table. Each table is shared
/// between configurations until changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticRoutes {
    pub tables: BTreeMap<Option<String>, Arc<RouteTable>>,
}

impl StaticRoutes {
    /// The routes of `vrf` (None: the global table).
    pub fn table(&self, vrf: Option<&str>) -> Option<&RouteTable> {
        self.tables.get(&vrf.map(str::to_string)).map(|t| &**t)
    }

    /// The global table's IPv4 routes.
    pub fn global_ipv4(&self) -> impl Iterator<Item = StaticRoute> + '_ {
        self.table(None).into_iter().flat_map(RouteTable::ipv4)
    }

    /// The global table's IPv6 routes.
    pub fn global_ipv6(&self) -> impl Iterator<Item = Ipv6Route> + '_ {
        self.table(None).into_iter().flat_map(RouteTable::ipv6)
    }

    /// Adds (or changes the distance of) a route of the global table.
    pub fn add_ipv4(&mut self, route: StaticRoute) {
        add(&mut self.table_mut(None).v4, route);
    }

    /// Adds (or changes the distance of) an IPv6 route of the global table.
    pub fn add_ipv6(&mut self, route: Ipv6Route) {
        add(&mut self.table_mut(None).v6, route);
    }

    /// The table of `vrf` to change, created if new.
    pub fn table_mut(&mut self, vrf: Option<&str>) -> &mut RouteTable {
        Arc::make_mut(self.tables.entry(vrf.map(str::to_string)).or_default())
    }
}

fn add<P: Ord, A: Ord>(routes: &mut Routes<P, A>, route: StaticRoute<P, A>) {
    let hops = routes.entry(route.prefix).or_default();
    let hop = RouteDetails {
        distance: route.distance,
        name: None,
    };
    hops.insert(route.next_hop, hop);
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "ip route [vrf WORD$vrf] (A.B.C.D/M$prefix|A.B.C.D$prefix A.B.C.D$mask) (A.B.C.D$via|IFNAME$dev) [<1-255>$distance] [name WORD$name]",
        help: &[
            "Global IP configuration",
            "Establish static routes",
            "Configure static route for a VPN Routing/Forwarding instance",
            "VRF name",
            "Destination prefix",
            "Destination prefix",
            "Destination prefix mask",
            "Forwarding router's address",
            "Outgoing interface",
            "Administrative distance",
            "Specify name of the next hop",
            "Name of the next hop",
        ],
        handler: ip_route,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ipv6 route [vrf WORD$vrf] X:X::X:X/M$prefix (X:X::X:X$via|IFNAME$dev) [<1-255>$distance] [name WORD$name]",
        help: &[
            "Global IPv6 configuration",
            "Establish static routes",
            "Configure static route for a VPN Routing/Forwarding instance",
            "VRF name",
            "Destination prefix",
            "Forwarding router's global address",
            "Outgoing interface",
            "Administrative distance",
            "Specify name of the next hop",
            "Name of the next hop",
        ],
        handler: ipv6_route,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "static routes",
    commands: COMMANDS,
    sub_modes: &[],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    /// Every IPv4 route (global table first, then by VRF), then every IPv6 one.
    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let tables = &config.routes.tables;
        for (vrf, table) in tables {
            let family = family_words("ip", vrf.as_deref());
            route_lines(&family, &table.v4, mask_form, out);
        }
        for (vrf, table) in tables {
            let family = family_words("ipv6", vrf.as_deref());
            route_lines(&family, &table.v6, ToString::to_string, out);
        }
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        for (vrf, table) in &config.routes.tables {
            if let Some(name) = vrf.as_deref() {
                if !table.is_empty() && !config.vrfs.definitions.contains_key(name) {
                    problems.push(format!("% VRF {name} of static routes is not defined"));
                }
            }
            let words = |family| family_words(family, vrf.as_deref());
            check_interfaces(config, &words("ip"), &table.v4, problems);
            check_interfaces(config, &words("ipv6"), &table.v6, problems);
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.routes, &new.routes)
            && super::same(&old.interfaces, &new.interfaces)
            && super::same(&old.vrfs, &new.vrfs)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        generate::routes()
    }
}

/// `ip route` or `ip route vrf NAME` (`family` is `ip` or `ipv6`).
fn family_words(family: &str, vrf: Option<&str>) -> String {
    match vrf {
        Some(vrf) => format!("{family} route vrf {vrf}"),
        None => format!("{family} route"),
    }
}

/// One line a route, the prefix written by `prefix_form`.
fn route_lines<P, A: Display>(
    words: &str,
    routes: &Routes<P, A>,
    prefix_form: impl Fn(&P) -> String,
    out: &mut Vec<Block>,
) {
    for (prefix, hops) in routes {
        let prefix = prefix_form(prefix);
        for (next_hop, hop) in hops {
            let mut line = match next_hop {
                NextHop::Address(a) => format!("{words} {prefix} {a}"),
                NextHop::Interface(name) => format!("{words} {prefix} {name}"),
            };
            if hop.distance != STATIC_DEFAULT_DISTANCE {
                line.push_str(&format!(" {}", hop.distance));
            }
            if let Some(name) = &hop.name {
                line.push_str(&format!(" name {name}"));
            }
            out.push(Block::line(line));
        }
    }
}

/// A route through an interface needs that interface configured.
fn check_interfaces<P: Display, A>(
    config: &Config,
    words: &str,
    routes: &Routes<P, A>,
    problems: &mut Vec<String>,
) {
    for (prefix, hops) in routes {
        for next_hop in hops.keys() {
            if let NextHop::Interface(name) = next_hop {
                if !config.interfaces.contains_key(name) {
                    problems.push(format!(
                        "% {words} {prefix}: interface {name} is not configured"
                    ));
                }
            }
        }
    }
}

fn ip_route(edit: &mut Edit<'_>) -> Result<(), String> {
    let prefix = ipv4_network(edit.args, "prefix")?.map(|p| p.trunc());
    let via = edit.args.ipv4("via");
    let route = route_args(edit.args, prefix, via)?;
    let negated = edit.negated;
    edit_routes(routes_of(edit), negated, route, |t| &mut t.v4)
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
    let negated = edit.negated;
    edit_routes(routes_of(edit), negated, route, |t| &mut t.v6)
}

/// The routes section and the VRF the line names.
fn routes_of<'e>(edit: &'e mut Edit<'_>) -> (&'e mut StaticRoutes, Option<&'e str>) {
    let vrf = edit.args.text("vrf");
    (Arc::make_mut(&mut edit.config.routes), vrf)
}

/// A route command's words: prefix, optional next hop, optional distance,
/// optional name.
type RouteArgs<P, A> = (P, Option<NextHop<A>>, Option<u8>, Option<String>);

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
    let distance = args.number("distance").map(|d| d as u8);
    Ok((
        prefix,
        next_hop,
        distance,
        args.text("name").map(str::to_string),
    ))
}

/// Adds a static route, or with `no` removes those matching what was
/// typed; a table left empty is dropped.
fn edit_routes<P: Ord + Copy + Display, A: Ord>(
    (routes, vrf): (&mut StaticRoutes, Option<&str>),
    negated: bool,
    route: RouteArgs<P, A>,
    family: impl Fn(&mut RouteTable) -> &mut Routes<P, A>,
) -> Result<(), String> {
    let table = routes.table_mut(vrf);
    let result = edit_family(family(table), negated, route);
    if table.is_empty() {
        routes.tables.remove(&vrf.map(str::to_string));
    }
    result
}

fn edit_family<P: Ord + Copy + Display, A: Ord>(
    routes: &mut Routes<P, A>,
    negated: bool,
    (prefix, next_hop, distance, name): RouteArgs<P, A>,
) -> Result<(), String> {
    if !negated {
        let next_hop = next_hop.ok_or_else(|| INCOMPLETE.to_string())?;
        // One route per prefix and next hop: typing it again changes its
        // distance and name, as on IOS.
        let distance = distance.unwrap_or(STATIC_DEFAULT_DISTANCE);
        let hop = RouteDetails { distance, name };
        routes.entry(prefix).or_default().insert(next_hop, hop);
        return Ok(());
    }
    let no_such = || format!("% No such static route to {prefix}");
    let hops = routes.get_mut(&prefix).ok_or_else(no_such)?;
    let before = hops.len();
    // The name is a label: `no` matches a route whatever name it has.
    hops.retain(|hop, h| {
        let same = next_hop.as_ref().is_none_or(|nh| nh == hop)
            && distance.is_none_or(|x| x == h.distance);
        !same
    });
    let removed = hops.len() < before;
    if hops.is_empty() {
        routes.remove(&prefix);
    }
    removed.then_some(()).ok_or_else(no_such)
}

#[cfg(test)]
mod generate {
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn next_hop<A: std::fmt::Display>(
        via: impl Strategy<Value = A>,
    ) -> impl Strategy<Value = String> {
        prop_oneof![
            via.prop_map(|a| a.to_string()),
            "[a-z][a-z0-9]{0,6}".prop_filter("not a keyword", |n| n != "vrf"),
        ]
    }

    fn vrf() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[A-C]".prop_map(|v| format!("vrf {v} "))
        ]
    }

    /// ` name WORD` or nothing.
    fn name() -> impl Strategy<Value = String> {
        proptest::option::of("[A-Za-z][A-Za-z0-9_-]{0,10}")
            .prop_map(|n| n.map(|n| format!(" name {n}")).unwrap_or_default())
    }

    pub fn routes() -> BoxedStrategy<String> {
        let v4 = (
            vrf(),
            any::<u32>(),
            0u8..=32,
            any::<bool>(),
            next_hop(any::<u32>().prop_map(Ipv4Addr::from)),
            1u8..=255,
            name(),
        )
            .prop_map(|(vrf, a, l, mask, hop, d, name)| {
                let prefix = ipnet::Ipv4Net::new(Ipv4Addr::from(a), l).unwrap();
                let prefix = match mask {
                    true => crate::commands::mask_form(&prefix),
                    false => prefix.to_string(),
                };
                format!("ip route {vrf}{prefix} {hop} {d}{name}\n")
            });
        // Next hops are never link-local or multicast (the command refuses those).
        let global = any::<u128>()
            .prop_map(Ipv6Addr::from)
            .prop_filter("global next hop", |a| {
                !a.is_unicast_link_local() && !a.is_multicast()
            });
        let v6 = (
            vrf(),
            any::<u128>(),
            0u8..=128,
            next_hop(global),
            1u8..=255,
            name(),
        )
            .prop_map(|(vrf, a, l, hop, d, name)| {
                let prefix = ipnet::Ipv6Net::new(Ipv6Addr::from(a), l).unwrap();
                format!("ipv6 route {vrf}{prefix} {hop} {d}{name}\n")
            });
        (
            proptest::collection::vec(v4, 0..4),
            proptest::collection::vec(v6, 0..3),
        )
            .prop_map(|(v4, v6)| v4.concat() + &v6.concat())
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use crate::{apply_text, parse_config, render};

    #[test]
    fn routes_take_masks_names_and_vrfs_and_render_as_masks() {
        let (config, errors) = parse_config(
            "ip route 0.0.0.0 0.0.0.0 192.0.2.254\n\
             ip route 10.1.0.0 255.255.0.0 eth1 20 name BRANCH-1\n\
             ip route vrf A 172.16.0.0 255.240.0.0 10.0.0.2 name idc\n\
             ip route 10.2.3.4/16 10.0.0.3 name to-dc2\n\
             ipv6 route 2001:db8:1::/48 2001:db8::2 name v6-dc\n",
        );
        assert_eq!(errors, []);
        let rendered = render(&config);
        assert!(
            rendered.contains(
                "ip route 0.0.0.0 0.0.0.0 192.0.2.254\n\
                 ip route 10.1.0.0 255.255.0.0 eth1 20 name BRANCH-1\n\
                 ip route 10.2.0.0 255.255.0.0 10.0.0.3 name to-dc2\n\
                 ip route vrf A 172.16.0.0 255.240.0.0 10.0.0.2 name idc\n\
                 ipv6 route 2001:db8:1::/48 2001:db8::2 name v6-dc\n"
            ),
            "{rendered}"
        );
        assert_eq!(parse_config(&rendered), (config, vec![]));
    }

    #[test]
    fn typing_a_route_again_changes_its_name_and_no_ignores_the_name() {
        let (mut config, errors) = parse_config(
            "ip route 10.1.0.0 255.255.0.0 10.0.0.2 name old\n\
             ip route 10.1.0.0/16 10.0.0.2 name new\n",
        );
        assert_eq!(errors, []);
        assert!(render(&config).contains("ip route 10.1.0.0 255.255.0.0 10.0.0.2 name new\n"));
        let errors = apply_text(&mut config, "no ip route 10.1.0.0 255.255.0.0 10.0.0.2\n");
        assert_eq!(errors, []);
        assert!(config.routes.tables.is_empty());
    }

    #[test]
    fn a_non_contiguous_route_mask_is_refused_and_changes_nothing() {
        let (mut config, _) = parse_config("ip route 10.1.0.0/16 10.0.0.2\n");
        let before = config.clone();
        let errors = apply_text(&mut config, "ip route 10.0.0.0 255.0.0.255 10.0.0.1\n");
        assert_eq!(
            errors[0].error.message,
            "% Bad mask 255.0.0.255 for address 10.0.0.0: not a contiguous network mask"
        );
        let errors = apply_text(&mut config, "no ip route 10.1.0.0 255.0.255.0\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(config, before);
    }
}
