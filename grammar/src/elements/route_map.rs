//! Route maps, a routing-policy object any routing protocol may name
//! (BGP's `neighbor ... route-map NAME in|out` today): `route-map NAME
//! [permit|deny] [SEQ]` opens `(config-route-map)` for `match ip address
//! prefix-list NAME...`, `set local-preference N`, `set metric N`, `set
//! as-path prepend ASN...` and `set community COMMUNITY... [additive] |
//! none`, in IOS's words. Communities are typed as `AA:NN`, a number or
//! a well-known name, and written as `AA:NN` or the name (IOS's `ip
//! bgp-community new-format`, which is what operators read).
//!
//! What a map does to a route is the speaker's business
//! (`src/bgp/policy.rs`); a map or list that is named but not defined is
//! allowed, as IOS allows it.

use super::prefix_list::PolicyAction;
use crate::commands::{
    check_name, required, CommandDef, ConfigContext, Edit, Mode, SubMode, INCOMPLETE,
};
use crate::config::Config;
use crate::render::Block;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// `(config-route-map)#`: its object is `NAME SEQ`.
pub static ROUTE_MAP_MODE: SubMode = SubMode {
    prompt: "route-map",
    parent: None,
};

/// IOS's sequence number of a map's first entry.
pub const DEFAULT_SEQ: u16 = 10;
/// The most ASes one `set as-path prepend` takes (IOS's).
pub const MAX_PREPEND: usize = 10;

/// The well-known communities of RFC 1997, by IOS's names.
pub const WELL_KNOWN_COMMUNITIES: &[(&str, u32)] = &[
    ("internet", 0),
    ("no-export", 0xffff_ff01),
    ("no-advertise", 0xffff_ff02),
    ("local-AS", 0xffff_ff03),
];

/// `set community ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommunitySet {
    /// `set community none`: the route leaves without communities.
    None,
    /// These, replacing the route's (or added to them: `additive`).
    Values {
        values: BTreeSet<u32>,
        additive: bool,
    },
}

/// One `route-map NAME permit|deny SEQ` and its clauses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMapEntry {
    pub action: PolicyAction,
    /// Matches a route any of these lists permits.
    pub match_prefix_lists: BTreeSet<String>,
    pub set_local_pref: Option<u32>,
    pub set_metric: Option<u32>,
    pub set_prepend: Vec<u32>,
    pub set_community: Option<CommunitySet>,
}

impl RouteMapEntry {
    fn new(action: PolicyAction) -> RouteMapEntry {
        RouteMapEntry {
            action,
            match_prefix_lists: BTreeSet::new(),
            set_local_pref: None,
            set_metric: None,
            set_prepend: Vec::new(),
            set_community: None,
        }
    }

    /// Its `match` and `set` lines, IOS's order.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.match_prefix_lists.is_empty() {
            let names: Vec<&str> = self.match_prefix_lists.iter().map(String::as_str).collect();
            lines.push(format!("match ip address prefix-list {}", names.join(" ")));
        }
        if !self.set_prepend.is_empty() {
            let ases: Vec<String> = self.set_prepend.iter().map(u32::to_string).collect();
            lines.push(format!("set as-path prepend {}", ases.join(" ")));
        }
        match &self.set_community {
            Some(CommunitySet::None) => lines.push("set community none".to_string()),
            Some(CommunitySet::Values { values, additive }) => {
                let mut words: Vec<String> = values.iter().map(|c| community_word(*c)).collect();
                if *additive {
                    words.push("additive".to_string());
                }
                lines.push(format!("set community {}", words.join(" ")));
            }
            None => {}
        }
        if let Some(pref) = self.set_local_pref {
            lines.push(format!("set local-preference {pref}"));
        }
        if let Some(metric) = self.set_metric {
            lines.push(format!("set metric {metric}"));
        }
        lines
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMap {
    /// By sequence number.
    pub entries: BTreeMap<u16, RouteMapEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteMaps {
    pub maps: BTreeMap<String, RouteMap>,
}

/// A community as the running config writes it: its well-known name, else
/// `AA:NN`.
pub fn community_word(community: u32) -> String {
    match WELL_KNOWN_COMMUNITIES.iter().find(|(_, c)| *c == community) {
        Some((name, _)) => name.to_string(),
        None => format!("{}:{}", community >> 16, community & 0xffff),
    }
}

/// A community typed as `AA:NN`, a number or a well-known name.
pub fn parse_community(word: &str) -> Option<u32> {
    if let Some((_, c)) = WELL_KNOWN_COMMUNITIES.iter().find(|(n, _)| *n == word) {
        return Some(*c);
    }
    match word.split_once(':') {
        Some((high, low)) => {
            let (high, low): (u16, u16) = (high.parse().ok()?, low.parse().ok()?);
            Some(u32::from(high) << 16 | u32::from(low))
        }
        None => word.parse().ok(),
    }
}

pub struct Element;

const SET_HELP: &str = "Set values in destination routing protocol";

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "route-map WORD$name [permit|deny] [<0-65535>$seq]",
        help: &[
            "Create route-map or enter route-map command mode",
            "Route map tag",
            "Route map permits set operations",
            "Route map denies set operations",
            "Sequence to insert to/delete from existing route-map entry",
        ],
        handler: route_map,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTE_MAP_MODE),
        syntax: "match ip address prefix-list LINE$names",
        help: &[
            "Match values from routing table",
            "IP specific information",
            "Match address of route or match packet",
            "Match entries of prefix-lists",
            "IP prefix-list name(s)",
        ],
        handler: match_prefix_list,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTE_MAP_MODE),
        syntax: "set local-preference <0-4294967295>$value",
        help: &[
            SET_HELP,
            "BGP local preference path attribute",
            "Preference value",
        ],
        handler: set_local_pref,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTE_MAP_MODE),
        syntax: "set metric <0-4294967295>$value",
        help: &[
            SET_HELP,
            "Metric value for destination routing protocol",
            "Metric value",
        ],
        handler: set_metric,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTE_MAP_MODE),
        syntax: "set as-path prepend LINE$ases",
        help: &[
            SET_HELP,
            "Prepend string for a BGP AS-path attribute",
            "Prepend to the as-path",
            "AS number(s) to prepend",
        ],
        handler: set_prepend,
    },
    CommandDef {
        mode: Mode::Sub(&ROUTE_MAP_MODE),
        syntax: "set community LINE$communities",
        help: &[
            SET_HELP,
            "BGP community attribute",
            "aa:nn, a number, internet, no-export, no-advertise, local-AS; additive; or none",
        ],
        handler: set_community,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "route maps",
    commands: COMMANDS,
    sub_modes: &[&ROUTE_MAP_MODE],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    /// One block per entry, maps by name, entries by sequence number.
    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        for (name, map) in &config.route_maps.maps {
            out.extend(map.entries.iter().map(|(seq, entry)| Block {
                header: format!("route-map {name} {} {seq}", entry.action.word()),
                body: entry.lines(),
            }));
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.route_maps, &new.route_maps)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        generate::route_maps()
    }
}

/// `route-map NAME [permit|deny] [SEQ]`: without a number, the map's only
/// entry or, for a new map, 10 (IOS's rule); `no route-map NAME` removes
/// the map, `no route-map NAME ... SEQ` one entry.
fn route_map(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?.to_string();
    check_name("route map", &name)?;
    let action = match edit.args.has("deny") {
        true => PolicyAction::Deny,
        false => PolicyAction::Permit,
    };
    let seq = edit.args.number("seq").map(|s| s as u16);
    let maps = &mut Arc::make_mut(&mut edit.config.route_maps).maps;
    if edit.negated {
        let map = maps.get_mut(&name);
        let Some(map) = map else {
            return Err(format!("% Route map {name} is not defined"));
        };
        match seq {
            None => {
                maps.remove(&name);
            }
            Some(seq) => {
                map.entries
                    .remove(&seq)
                    .ok_or_else(|| format!("% Route map {name} has no entry {seq}"))?;
                if map.entries.is_empty() {
                    maps.remove(&name);
                }
            }
        }
        return Ok(());
    }
    let map = maps.entry(name.clone()).or_default();
    let seq = match (seq, map.entries.len()) {
        (Some(seq), _) => seq,
        (None, 0) => DEFAULT_SEQ,
        (None, 1) => map.entries.keys().next().copied().unwrap_or(DEFAULT_SEQ),
        (None, _) => return Err("% Please specify the entry by its sequence".to_string()),
    };
    map.entries
        .entry(seq)
        .or_insert_with(|| RouteMapEntry::new(action))
        .action = action;
    edit.enter = Some(ConfigContext::Sub(&ROUTE_MAP_MODE, format!("{name} {seq}")));
    Ok(())
}

/// The entry the line is typed under.
fn entry_of<'e>(edit: &'e mut Edit<'_>) -> Result<&'e mut RouteMapEntry, String> {
    let object = edit.object(&ROUTE_MAP_MODE)?;
    let gone = || format!("% Route map entry {object} is not configured");
    let (name, seq) = object.rsplit_once(' ').ok_or_else(gone)?;
    let seq: u16 = seq.parse().map_err(|_| gone())?;
    let maps = &mut Arc::make_mut(&mut edit.config.route_maps).maps;
    let entry = maps.get_mut(name).and_then(|m| m.entries.get_mut(&seq));
    entry.ok_or_else(gone)
}

/// The words of `LINE$name`, none for a `no` form that stops before it.
fn words(edit: &Edit<'_>, name: &str) -> Vec<String> {
    let line = edit.args.text(name).unwrap_or_default();
    line.split_whitespace().map(str::to_string).collect()
}

fn match_prefix_list(edit: &mut Edit<'_>) -> Result<(), String> {
    let names = words(edit, "names");
    for name in &names {
        check_name("prefix list", name)?;
    }
    let negated = edit.negated;
    let set = &mut entry_of(edit)?.match_prefix_lists;
    match (negated, names.is_empty()) {
        (false, true) => return Err(INCOMPLETE.to_string()),
        (false, false) => set.extend(names),
        (true, true) => set.clear(),
        (true, false) => set.retain(|n| !names.contains(n)),
    }
    Ok(())
}

/// `<0-4294967295>$value` of a `set` line; None for its `no` form.
fn value(edit: &Edit<'_>) -> Result<Option<u32>, String> {
    match edit.negated {
        true => Ok(None),
        false => Ok(Some(edit.args.number("value").ok_or(INCOMPLETE)? as u32)),
    }
}

fn set_local_pref(edit: &mut Edit<'_>) -> Result<(), String> {
    let value = value(edit)?;
    entry_of(edit)?.set_local_pref = value;
    Ok(())
}

fn set_metric(edit: &mut Edit<'_>) -> Result<(), String> {
    let value = value(edit)?;
    entry_of(edit)?.set_metric = value;
    Ok(())
}

fn set_prepend(edit: &mut Edit<'_>) -> Result<(), String> {
    let ases: Vec<u32> = match edit.negated {
        true => Vec::new(),
        false => {
            let words = words(edit, "ases");
            let ases: Option<Vec<u32>> = (words.iter())
                .map(|w| w.parse().ok().filter(|a| *a != 0))
                .collect();
            match ases {
                Some(a) if !a.is_empty() && a.len() <= MAX_PREPEND => a,
                _ => {
                    return Err(format!(
                        "% Expected 1 to {MAX_PREPEND} AS numbers (1-4294967295)"
                    ))
                }
            }
        }
    };
    entry_of(edit)?.set_prepend = ases;
    Ok(())
}

fn set_community(edit: &mut Edit<'_>) -> Result<(), String> {
    let set = match edit.negated {
        true => None,
        false => Some(community_set(&words(edit, "communities"))?),
    };
    entry_of(edit)?.set_community = set;
    Ok(())
}

/// The words of `set community`.
fn community_set(words: &[String]) -> Result<CommunitySet, String> {
    if words == ["none"] {
        return Ok(CommunitySet::None);
    }
    let additive = words.last().is_some_and(|w| w == "additive");
    let values = &words[..words.len() - usize::from(additive)];
    let values: BTreeSet<u32> = (values.iter())
        .map(|w| parse_community(w).ok_or_else(|| format!("% Bad community \"{w}\"")))
        .collect::<Result<_, _>>()?;
    if values.is_empty() {
        return Err(INCOMPLETE.to_string());
    }
    Ok(CommunitySet::Values { values, additive })
}

#[cfg(test)]
mod generate {
    use proptest::prelude::*;

    /// A `match` or `set` line of an entry.
    fn line() -> impl Strategy<Value = String> {
        let name = "[A-Za-z][A-Za-z0-9_-]{0,8}";
        prop_oneof![
            proptest::collection::vec(name, 1..3)
                .prop_map(|n| format!(" match ip address prefix-list {}\n", n.join(" "))),
            any::<u32>().prop_map(|v| format!(" set local-preference {v}\n")),
            any::<u32>().prop_map(|v| format!(" set metric {v}\n")),
            proptest::collection::vec(1u32.., 1..4).prop_map(|a| {
                let a: Vec<String> = a.iter().map(u32::to_string).collect();
                format!(" set as-path prepend {}\n", a.join(" "))
            }),
            (
                proptest::collection::vec((any::<u16>(), any::<u16>()), 1..3),
                any::<bool>()
            )
                .prop_map(|(c, additive)| {
                    let mut w: Vec<String> = c.iter().map(|(a, n)| format!("{a}:{n}")).collect();
                    if additive {
                        w.push("additive".into());
                    }
                    format!(" set community {}\n", w.join(" "))
                }),
            Just(" set community no-export internet\n".to_string()),
            Just(" set community none\n".to_string()),
        ]
    }

    fn entry() -> impl Strategy<Value = String> {
        (
            "[A-Za-z][A-Za-z0-9_-]{0,8}",
            any::<bool>(),
            any::<u16>(),
            proptest::collection::vec(line(), 0..4),
        )
            .prop_map(|(name, permit, seq, lines)| {
                let action = if permit { "permit" } else { "deny" };
                format!("route-map {name} {action} {seq}\n{}", lines.concat())
            })
    }

    pub fn route_maps() -> BoxedStrategy<String> {
        proptest::collection::vec(entry(), 0..3)
            .prop_map(|e| e.concat())
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use crate::{apply_text, parse_config, render};

    const TEXT: &str = "route-map FROM-ISP permit 20\n\
         match ip address prefix-list CUSTOMERS PEERS\n\
         set local-preference 200\n\
         set metric 7\n\
        route-map FROM-ISP deny 30\n\
        route-map TO-ISP\n\
         set as-path prepend 65000 65000\n\
         set community 65000:42 no-export 4259840101 additive\n";

    #[test]
    fn a_route_map_renders_one_block_an_entry_and_reads_back() {
        let (config, errors) = parse_config(TEXT);
        assert_eq!(errors, []);
        let rendered = render(&config);
        assert!(
            rendered.contains(concat!(
                "!\nroute-map FROM-ISP permit 20\n",
                " match ip address prefix-list CUSTOMERS PEERS\n",
                " set local-preference 200\n",
                " set metric 7\n",
                "!\nroute-map FROM-ISP deny 30\n",
                "!\nroute-map TO-ISP permit 10\n",
                " set as-path prepend 65000 65000\n",
                " set community 65000:42 65000:101 no-export additive\n",
            )),
            "{rendered}"
        );
        assert_eq!(parse_config(&rendered), (config, vec![]));
    }

    #[test]
    fn bad_set_values_are_refused_and_no_forms_clear_them() {
        let (mut config, _) = parse_config(TEXT);
        for (line, message) in [
            (" set community 70000:1\n", "% Bad community \"70000:1\""),
            (" set as-path prepend 0\n", "% Expected 1 to 10 AS numbers"),
            (
                " set as-path prepend 1 2 3 4 5 6 7 8 9 10 11\n",
                "% Expected 1 to 10",
            ),
        ] {
            let errors = apply_text(&mut config, &format!("route-map TO-ISP\n{line}"));
            assert!(errors[0].error.message.starts_with(message), "{errors:?}");
        }
        let errors = apply_text(&mut config, "route-map FROM-ISP\n");
        assert_eq!(
            errors[0].error.message,
            "% Please specify the entry by its sequence"
        );
        let errors = apply_text(
            &mut config,
            "route-map FROM-ISP permit 20\n no match ip address prefix-list PEERS\n\
             no set metric\nroute-map TO-ISP\n no set community\nno route-map FROM-ISP deny 30\n",
        );
        assert_eq!(errors, []);
        let entry = &config.route_maps.maps["FROM-ISP"].entries[&20];
        assert_eq!(entry.match_prefix_lists.len(), 1);
        assert_eq!(entry.set_metric, None);
        assert_eq!(config.route_maps.maps["FROM-ISP"].entries.len(), 1);
        assert_eq!(
            config.route_maps.maps["TO-ISP"].entries[&10].set_community,
            None
        );
        assert_eq!(apply_text(&mut config, "no route-map TO-ISP\n"), []);
        assert!(!config.route_maps.maps.contains_key("TO-ISP"));
    }
}
