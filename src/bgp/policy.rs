//! Route policy as the speaker applies it: the committed prefix lists and
//! route maps (`grammar::elements::{prefix_list, route_map}`), each entry
//! with a hit counter for `show ip prefix-list` and `show route-map`, and
//! a neighbour's filter one way (IOS's order: its prefix list, then its
//! route map), on import before best-path selection and on export.
//!
//! Names that are not defined, as IOS treats them: a prefix list that
//! does not exist (or has no entries) permits every prefix, and a route
//! map's `match ip address prefix-list` ignores lists that do not exist
//! (matching everything when none of its lists exists); a route map that
//! does not exist denies every route.

use super::message::{Attributes, Segment};
use grammar::config::{
    CommunitySet, Config, NeighborFilter, PolicyAction, PrefixEntry, PrefixList, PrefixLists,
    RouteMap, RouteMapEntry, RouteMaps,
};
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A policy object and one hit counter per entry, in sequence order.
#[derive(Debug)]
struct Counted<T> {
    value: T,
    hits: Vec<AtomicU64>,
}

impl<T> Counted<T> {
    fn new(value: T, entries: usize) -> Counted<T> {
        let hits = (0..entries).map(|_| AtomicU64::new(0)).collect();
        Counted { value, hits }
    }

    fn hit(&self, index: usize) {
        if let Some(hits) = self.hits.get(index) {
            hits.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn hits(&self, index: usize) -> u64 {
        self.hits
            .get(index)
            .map_or(0, |h| h.load(Ordering::Relaxed))
    }
}

/// Whether `entry` matches `prefix`: inside its prefix, and of its
/// length exactly, or within `ge`..=`le` when either is given.
pub fn entry_matches(entry: &PrefixEntry, prefix: Ipv4Net) -> bool {
    let (own, len) = (entry.prefix.prefix_len(), prefix.prefix_len());
    let lengths = match (entry.ge, entry.le) {
        (None, None) => own..=own,
        (ge, le) => ge.unwrap_or(own)..=le.unwrap_or(32),
    };
    entry.prefix.contains(&prefix) && lengths.contains(&len)
}

impl Counted<PrefixList> {
    /// The first matching entry's action; none matching denies, an
    /// empty list permits (IOS).
    fn permits(&self, prefix: Ipv4Net) -> bool {
        if self.value.entries.is_empty() {
            return true;
        }
        let mut entries = self.value.entries.values().enumerate();
        match entries.find(|(_, e)| entry_matches(e, prefix)) {
            Some((i, e)) => {
                self.hit(i);
                e.action == PolicyAction::Permit
            }
            None => false,
        }
    }
}

/// The committed policy objects, shared by every session.
#[derive(Debug, Default)]
pub struct Policy {
    /// The sections it was built from.
    source: (Arc<PrefixLists>, Arc<RouteMaps>),
    lists: BTreeMap<String, Counted<PrefixList>>,
    maps: BTreeMap<String, Counted<RouteMap>>,
}

impl Policy {
    pub fn new(config: &Config) -> Policy {
        let lists = (config.prefix_lists.lists.iter())
            .map(|(n, l)| (n.clone(), Counted::new(l.clone(), l.entries.len())))
            .collect();
        let maps = (config.route_maps.maps.iter())
            .map(|(n, m)| (n.clone(), Counted::new(m.clone(), m.entries.len())))
            .collect();
        Policy {
            source: (config.prefix_lists.clone(), config.route_maps.clone()),
            lists,
            maps,
        }
    }

    /// Whether it was built from `config`'s lists and maps (a commit that
    /// left them alone keeps the counters).
    pub fn is_of(&self, config: &Config) -> bool {
        Arc::ptr_eq(&self.source.0, &config.prefix_lists)
            && Arc::ptr_eq(&self.source.1, &config.route_maps)
    }

    fn list_permits(&self, name: &str, prefix: Ipv4Net) -> bool {
        self.lists.get(name).is_none_or(|l| l.permits(prefix))
    }

    fn entry_matches(&self, entry: &RouteMapEntry, prefix: Ipv4Net) -> bool {
        let mut defined = (entry.match_prefix_lists.iter())
            .filter_map(|n| self.lists.get(n))
            .peekable();
        defined.peek().is_none() || defined.any(|l| l.permits(prefix))
    }

    /// Runs route map `name` on a route: false when it denies it, else
    /// its first matching entry's `set`s are made on `attributes`.
    fn route_map(&self, name: &str, prefix: Ipv4Net, attributes: &mut Attributes) -> bool {
        let Some(map) = self.maps.get(name) else {
            return false;
        };
        let mut entries = map.value.entries.values().enumerate();
        let Some((i, entry)) = entries.find(|(_, e)| self.entry_matches(e, prefix)) else {
            return false;
        };
        map.hit(i);
        if entry.action == PolicyAction::Deny {
            return false;
        }
        set(entry, attributes);
        true
    }

    /// A route through `filter`: None when denied, else its attributes
    /// (shared with the input when nothing changed them).
    pub fn filter(
        &self,
        filter: &NeighborFilter,
        prefix: Ipv4Net,
        attributes: &Arc<Attributes>,
    ) -> Option<Arc<Attributes>> {
        if let Some(list) = &filter.prefix_list {
            if !self.list_permits(list, prefix) {
                return None;
            }
        }
        let Some(map) = &filter.route_map else {
            return Some(attributes.clone());
        };
        let mut changed = (**attributes).clone();
        if !self.route_map(map, prefix, &mut changed) {
            return None;
        }
        match changed == **attributes {
            true => Some(attributes.clone()),
            false => Some(Arc::new(changed)),
        }
    }

    /// `show ip prefix-list [NAME]`, IOS's layout with the hit counts of
    /// its `detail` form.
    pub fn show_prefix_lists(&self, only: Option<&str>) -> String {
        let mut out = String::new();
        for (name, list) in shown(&self.lists, only) {
            let entries = list.value.entries.len();
            let _ = writeln!(out, "ip prefix-list {name}: {entries} entries");
            if let Some(text) = &list.value.description {
                let _ = writeln!(out, "   Description: {text}");
            }
            for (i, (seq, entry)) in list.value.entries.iter().enumerate() {
                let hits = list.hits(i);
                let _ = writeln!(out, "   seq {seq} {} (hit count: {hits})", entry.words());
            }
        }
        out
    }

    /// `show route-map [NAME]`, IOS's layout; the last line counts the
    /// routes each entry matched (IOS's counts policy-routed packets).
    pub fn show_route_maps(&self, only: Option<&str>) -> String {
        let mut out = String::new();
        for (name, map) in shown(&self.maps, only) {
            for (i, (seq, entry)) in map.value.entries.iter().enumerate() {
                let action = entry.action.word();
                let _ = writeln!(out, "route-map {name}, {action}, sequence {seq}");
                out.push_str("  Match clauses:\n");
                if !entry.match_prefix_lists.is_empty() {
                    let names: Vec<&str> = entry
                        .match_prefix_lists
                        .iter()
                        .map(String::as_str)
                        .collect();
                    let _ = writeln!(out, "    ip address prefix-lists: {}", names.join(" "));
                }
                out.push_str("  Set clauses:\n");
                for line in entry.lines().iter().filter_map(|l| l.strip_prefix("set ")) {
                    let _ = writeln!(out, "    {line}");
                }
                let _ = writeln!(out, "  Route matches: {}", map.hits(i));
            }
        }
        out
    }
}

/// The objects `show` names: all, or the one called `only`.
fn shown<'m, T>(
    objects: &'m BTreeMap<String, T>,
    only: Option<&'m str>,
) -> impl Iterator<Item = (&'m String, &'m T)> {
    (objects.iter()).filter(move |(n, _)| only.is_none_or(|o| o == *n))
}

/// Puts `ases` in front of the path (into its first sequence).
pub fn prepend(attributes: &mut Attributes, ases: &[u32]) {
    match attributes.as_path.first_mut() {
        Some(Segment::Sequence(first)) => {
            first.splice(0..0, ases.iter().copied());
        }
        _ => (attributes.as_path).insert(0, Segment::Sequence(ases.to_vec())),
    }
}

/// A route-map entry's `set` clauses.
fn set(entry: &RouteMapEntry, attributes: &mut Attributes) {
    if let Some(pref) = entry.set_local_pref {
        attributes.local_pref = Some(pref);
    }
    if let Some(metric) = entry.set_metric {
        attributes.med = Some(metric);
    }
    if !entry.set_prepend.is_empty() {
        prepend(attributes, &entry.set_prepend);
    }
    let communities = &mut attributes.communities;
    match &entry.set_community {
        None => {}
        Some(CommunitySet::None) => communities.clear(),
        Some(CommunitySet::Values { values, additive }) => {
            if !additive {
                communities.clear();
            }
            for value in values {
                if !communities.contains(value) {
                    communities.push(*value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::message::tests::{attributes, prefix};
    use crate::bgp::message::Origin;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    fn entry(prefix: &str, ge: Option<u8>, le: Option<u8>) -> PrefixEntry {
        PrefixEntry {
            action: PolicyAction::Permit,
            prefix: net(prefix),
            ge,
            le,
        }
    }

    #[test]
    fn an_entry_without_a_range_matches_its_prefix_exactly() {
        let e = entry("10.64.0.0/16", None, None);
        assert!(entry_matches(&e, net("10.64.0.0/16")));
        assert!(!entry_matches(&e, net("10.64.3.0/24")), "longer");
        assert!(!entry_matches(&e, net("10.0.0.0/8")), "shorter");
        assert!(!entry_matches(&e, net("10.65.0.0/16")), "elsewhere");
    }

    #[test]
    fn ge_and_le_bound_the_length_inclusively_inside_the_prefix() {
        let ge = entry("10.64.0.0/16", Some(24), None);
        assert!(entry_matches(&ge, net("10.64.3.0/24")), "ge is inclusive");
        assert!(
            entry_matches(&ge, net("10.64.3.7/32")),
            "ge alone runs to 32"
        );
        assert!(!entry_matches(&ge, net("10.64.2.0/23")));
        assert!(!entry_matches(&ge, net("10.64.0.0/16")));
        let le = entry("10.64.0.0/16", None, Some(24));
        assert!(
            entry_matches(&le, net("10.64.0.0/16")),
            "le alone starts at the length"
        );
        assert!(entry_matches(&le, net("10.64.3.0/24")), "le is inclusive");
        assert!(!entry_matches(&le, net("10.64.3.0/25")));
        let both = entry("10.64.0.0/16", Some(20), Some(22));
        assert!(!entry_matches(&both, net("10.64.0.0/19")));
        assert!(entry_matches(&both, net("10.64.16.0/20")));
        assert!(entry_matches(&both, net("10.64.4.0/22")));
        assert!(!entry_matches(&both, net("10.64.4.0/23")));
        assert!(
            !entry_matches(&both, net("10.65.4.0/22")),
            "outside the prefix"
        );
        let any = entry("0.0.0.0/0", None, Some(32));
        assert!(entry_matches(&any, net("0.0.0.0/0")));
        assert!(entry_matches(&any, net("203.0.113.9/32")));
        let default_only = entry("0.0.0.0/0", None, None);
        assert!(!entry_matches(&default_only, net("10.0.0.0/8")));
    }

    fn policy(text: &str) -> Policy {
        let (config, errors) = grammar::parse_config(text);
        assert_eq!(errors, []);
        Policy::new(&config)
    }

    fn route() -> Arc<Attributes> {
        Arc::new(Attributes {
            origin: Origin::Igp,
            as_path: vec![Segment::Sequence(vec![65001])],
            next_hop: Ipv4Addr::new(10, 64, 2, 2),
            med: None,
            local_pref: None,
            communities: vec![1],
        })
    }

    fn filter(list: Option<&str>, map: Option<&str>) -> NeighborFilter {
        NeighborFilter {
            prefix_list: list.map(str::to_string),
            route_map: map.map(str::to_string),
        }
    }

    #[test]
    fn a_list_denies_what_no_entry_permits_and_counts_its_hits() {
        let p = policy(
            "ip prefix-list A deny 10.64.99.0/24\nip prefix-list A permit 10.64.0.0/16 le 24\n",
        );
        let f = filter(Some("A"), None);
        assert!(p.filter(&f, net("10.64.99.0/24"), &route()).is_none());
        assert!(p.filter(&f, net("10.64.3.0/24"), &route()).is_some());
        assert!(
            p.filter(&f, net("192.0.2.0/24"), &route()).is_none(),
            "implicit deny"
        );
        let shown = p.show_prefix_lists(Some("A"));
        assert!(
            shown.contains("seq 5 deny 10.64.99.0/24 (hit count: 1)")
                && shown.contains("seq 10 permit 10.64.0.0/16 le 24 (hit count: 1)"),
            "{shown}"
        );
    }

    #[test]
    fn undefined_names_mean_what_they_mean_on_ios() {
        let p =
            policy("route-map M permit 10\n match ip address prefix-list NOPE\n set metric 5\n");
        let any = net("192.0.2.0/24");
        assert!(p
            .filter(&filter(Some("NOPE"), None), any, &route())
            .is_some());
        assert!(p
            .filter(&filter(None, Some("NOPE")), any, &route())
            .is_none());
        let set = p.filter(&filter(None, Some("M")), any, &route()).unwrap();
        assert_eq!(
            set.med,
            Some(5),
            "a match on undefined lists only matches all"
        );
    }

    #[test]
    fn a_route_map_sets_on_its_first_match_and_denies_the_rest() {
        let p = policy(
            "ip prefix-list LOW permit 10.64.3.0/24\n\
             route-map IN deny 5\n match ip address prefix-list NONE\n\
             route-map IN permit 10\n match ip address prefix-list LOW\n\
              set local-preference 50\n set as-path prepend 65009 65009\n\
              set community 65000:1 additive\n\
             route-map IN permit 20\n match ip address prefix-list OTHER LOW\n",
        );
        let f = filter(None, Some("IN"));
        // Seq 5's only list is undefined: it matches (and denies) all.
        assert!(p.filter(&f, net("10.64.3.0/24"), &route()).is_none());
        let p = policy(
            "ip prefix-list LOW permit 10.64.3.0/24\n\
             route-map IN permit 10\n match ip address prefix-list LOW\n\
              set local-preference 50\n set as-path prepend 65009 65009\n\
              set community 65000:1 additive\n\
             route-map IN permit 20\n set community none\n\
             route-map IN deny 30\n",
        );
        let low = p.filter(&f, net("10.64.3.0/24"), &route()).unwrap();
        assert_eq!(low.local_pref, Some(50));
        assert_eq!(low.path_text(), "65009 65009 65001");
        assert_eq!(low.communities, [1, 65000 << 16 | 1]);
        let other = p.filter(&f, net("10.64.99.0/24"), &route()).unwrap();
        assert!(other.communities.is_empty() && other.local_pref.is_none());
        let shown = p.show_route_maps(None);
        assert!(shown.contains("route-map IN, permit, sequence 10\n  Match clauses:\n    ip address prefix-lists: LOW\n  Set clauses:\n    as-path prepend 65009 65009\n    community 65000:1 additive\n    local-preference 50\n  Route matches: 1\n"), "{shown}");
    }

    /// A policy configuration of random lines over a few names.
    fn policy_text() -> impl Strategy<Value = String> {
        let name = prop_oneof![Just("A"), Just("B"), Just("C")];
        let list = (name.clone(), any::<bool>(), prefix(), 0u8..=32, 0u8..=32).prop_map(
            |(name, permit, prefix, ge, le)| {
                let action = if permit { "permit" } else { "deny" };
                format!("ip prefix-list {name} {action} {prefix} ge {ge} le {le}\n")
            },
        );
        let map = (
            name.clone(),
            any::<bool>(),
            0u16..40,
            proptest::collection::vec(name, 0..3),
            proptest::option::of(any::<u32>()),
            proptest::collection::vec(1u32.., 0..3),
            proptest::option::of("(none|[0-9]{1,5}:[0-9]{1,5}( additive)?)"),
        )
            .prop_map(|(name, permit, seq, lists, pref, prepend, community)| {
                let action = if permit { "permit" } else { "deny" };
                let mut text = format!("route-map {name} {action} {seq}\n");
                if !lists.is_empty() {
                    text += &format!(" match ip address prefix-list {}\n", lists.join(" "));
                }
                if let Some(p) = pref {
                    text += &format!(" set local-preference {p}\n set metric {p}\n");
                }
                if !prepend.is_empty() {
                    let ases: Vec<String> = prepend.iter().map(u32::to_string).collect();
                    text += &format!(" set as-path prepend {}\n", ases.join(" "));
                }
                if let Some(c) = community {
                    text += &format!(" set community {c}\n");
                }
                text
            });
        proptest::collection::vec(prop_oneof![list, map], 0..8).prop_map(|l| l.concat())
    }

    proptest! {
        /// Whatever the configuration makes of random lines (some are
        /// refused), any route through any filter gives a verdict, and
        /// the shows render: never a panic.
        #[test]
        fn random_policies_and_routes_never_panic(
            text in policy_text(),
            routes in proptest::collection::vec((prefix(), attributes()), 1..10),
            list in proptest::option::of(prop_oneof![Just("A"), Just("B"), Just("Z")]),
            map in proptest::option::of(prop_oneof![Just("A"), Just("B"), Just("Z")]),
        ) {
            let (config, _) = grammar::parse_config(&text);
            let p = Policy::new(&config);
            let f = filter(list, map);
            for (prefix, attributes) in routes {
                let attributes = Arc::new(attributes);
                if let Some(out) = p.filter(&f, prefix, &attributes) {
                    prop_assert!(out.path_length() >= attributes.path_length());
                }
            }
            let _ = (p.show_prefix_lists(None), p.show_route_maps(None));
        }
    }
}
