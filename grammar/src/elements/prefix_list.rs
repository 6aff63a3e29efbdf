//! IPv4 prefix lists, a routing-policy object any routing protocol may
//! name (BGP's `neighbor ... prefix-list` and route maps' `match ip
//! address prefix-list` today): `ip prefix-list NAME [seq N]
//! permit|deny PREFIX [ge N] [le N]` and `ip prefix-list NAME description
//! TEXT`, in IOS's words and IOS's running-config form (`seq` always
//! written; entries typed without one get the highest so far plus 5).
//!
//! What a list means is the speaker's business (`src/bgp/policy.rs`); a
//! list that is named but not defined is allowed, as IOS allows it.

use crate::commands::{check_name, description_text, required, CommandDef, Edit, Mode, INCOMPLETE};
use crate::config::Config;
use crate::render::Block;
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The step IOS numbers entries by, and the highest number.
pub const SEQ_STEP: u32 = 5;
pub const MAX_SEQ: u32 = 4_294_967_294;

/// What an entry (or a route-map entry) does with what it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyAction {
    Permit,
    Deny,
}

impl PolicyAction {
    pub fn word(self) -> &'static str {
        match self {
            PolicyAction::Permit => "permit",
            PolicyAction::Deny => "deny",
        }
    }
}

/// One `seq N permit|deny PREFIX [ge N] [le N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixEntry {
    pub action: PolicyAction,
    /// Always stored truncated to the network address.
    pub prefix: Ipv4Net,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl PrefixEntry {
    /// The entry's words after `seq N`.
    pub fn words(&self) -> String {
        let mut text = format!("{} {}", self.action.word(), self.prefix);
        if let Some(ge) = self.ge {
            text += &format!(" ge {ge}");
        }
        if let Some(le) = self.le {
            text += &format!(" le {le}");
        }
        text
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixList {
    pub description: Option<String>,
    /// By sequence number.
    pub entries: BTreeMap<u32, PrefixEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixLists {
    pub lists: BTreeMap<String, PrefixList>,
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "ip prefix-list WORD$name [seq <1-4294967294>$seq] (permit|deny) A.B.C.D/M$prefix [ge <1-32>$ge] [le <1-32>$le]",
        help: &[
            "Global IP configuration",
            "Build a prefix list",
            "Name of a prefix list",
            "sequence number of an entry",
            "Sequence number",
            "Specify packets to forward",
            "Specify packets to reject",
            "IP prefix <network>/<length>, e.g., 35.0.0.0/8",
            "Minimum prefix length to be matched",
            "Minimum prefix length",
            "Maximum prefix length to be matched",
            "Maximum prefix length",
        ],
        handler: entry,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip prefix-list WORD$name description LINE$text",
        help: &[
            "Global IP configuration",
            "Build a prefix list",
            "Name of a prefix list",
            "Prefix-list specific description",
            "Up to 80 characters describing this prefix-list",
        ],
        handler: description,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "prefix lists",
    commands: COMMANDS,
    sub_modes: &[],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    /// Each list's description, then its entries by sequence number.
    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        for (name, list) in &config.prefix_lists.lists {
            if let Some(text) = &list.description {
                out.push(Block::line(format!(
                    "ip prefix-list {name} description {text}"
                )));
            }
            out.extend(list.entries.iter().map(|(seq, e)| {
                Block::line(format!("ip prefix-list {name} seq {seq} {}", e.words()))
            }));
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.prefix_lists, &new.prefix_lists)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        generate::prefix_lists()
    }
}

/// Applies `change` to the list the line names (created if new); a list
/// left with neither entries nor description is gone, as it would not
/// render.
fn edit_list(
    edit: &mut Edit<'_>,
    change: impl FnOnce(&str, &mut PrefixList) -> Result<(), String>,
) -> Result<(), String> {
    let name = required(edit.args, "name")?.to_string();
    check_name("prefix list", &name)?;
    let lists = &mut Arc::make_mut(&mut edit.config.prefix_lists).lists;
    let mut list = lists.remove(&name).unwrap_or_default();
    let result = change(&name, &mut list);
    if list != PrefixList::default() {
        lists.insert(name, list);
    }
    result
}

/// `len < ge <= le <= 32`, as IOS requires of a range.
fn check_range(prefix: Ipv4Net, ge: Option<u8>, le: Option<u8>) -> Result<(), String> {
    let len = prefix.prefix_len();
    let valid = ge.is_none_or(|ge| ge > len)
        && le.is_none_or(|le| le > len)
        && ge.zip(le).is_none_or(|(ge, le)| ge <= le);
    match valid {
        true => Ok(()),
        false => Err(format!(
            "% Invalid prefix range for {prefix}, make sure: len < ge-value <= le-value"
        )),
    }
}

/// `ip prefix-list NAME [seq N] permit|deny PREFIX ...`; `no ip
/// prefix-list NAME` removes the list, `no ip prefix-list NAME seq N` or
/// `no ip prefix-list NAME permit|deny PREFIX ...` one entry.
fn entry(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let seq = args.number("seq").map(|s| s as u32);
    let action = match (args.has("permit"), args.has("deny")) {
        (true, _) => Some(PolicyAction::Permit),
        (_, true) => Some(PolicyAction::Deny),
        _ => None,
    };
    let number = |name| args.number(name).map(|n| n as u8);
    let (ge, le) = (number("ge"), number("le"));
    let prefix = args.ipv4_prefix("prefix").map(|p| p.trunc());
    let negated = edit.negated;
    edit_list(edit, |name, list| {
        if !negated {
            let (action, prefix) = action.zip(prefix).ok_or(INCOMPLETE)?;
            return add_entry(
                name,
                list,
                seq,
                PrefixEntry {
                    action,
                    prefix,
                    ge,
                    le,
                },
            );
        }
        let found = match (seq, action, prefix) {
            (None, None, _) => {
                *list = PrefixList::default();
                return Ok(());
            }
            (Some(seq), _, _) => Some(seq).filter(|s| list.entries.contains_key(s)),
            (None, Some(action), Some(prefix)) => {
                let wanted = PrefixEntry {
                    action,
                    prefix,
                    ge,
                    le,
                };
                let mut entries = list.entries.iter();
                entries.find(|(_, e)| **e == wanted).map(|(s, _)| *s)
            }
            (None, Some(_), None) => return Err(INCOMPLETE.to_string()),
        };
        let seq = found.ok_or_else(|| format!("% Prefix list {name}: no such entry"))?;
        list.entries.remove(&seq);
        Ok(())
    })
}

/// Adds `entry` at `seq` (else after the last one, IOS's way).
fn add_entry(
    name: &str,
    list: &mut PrefixList,
    seq: Option<u32>,
    entry: PrefixEntry,
) -> Result<(), String> {
    check_range(entry.prefix, entry.ge, entry.le)?;
    let last = list.entries.keys().next_back().copied().unwrap_or(0);
    let seq = match seq {
        Some(seq) => seq,
        None => (last.checked_add(SEQ_STEP))
            .filter(|s| *s <= MAX_SEQ)
            .ok_or_else(|| format!("% Prefix list {name}: no sequence number left after {last}"))?,
    };
    if list.entries.iter().any(|(s, e)| *s != seq && *e == entry) {
        return Err(format!("% Duplicated prefix list entry in {name}"));
    }
    list.entries.insert(seq, entry);
    Ok(())
}

fn description(edit: &mut Edit<'_>) -> Result<(), String> {
    let text = description_text(edit)?;
    edit_list(edit, |_, list| {
        list.description = text;
        Ok(())
    })
}
#[cfg(test)]
mod generate {
    use crate::elements::tests::text;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// An entry line of list `name`: a prefix with a valid range.
    fn entry(name: String) -> impl Strategy<Value = String> {
        (
            1u32..1000,
            any::<bool>(),
            any::<u32>(),
            0u8..=31,
            proptest::option::of(1u8..=32),
            proptest::option::of(1u8..=32),
        )
            .prop_map(move |(seq, permit, address, len, ge, le)| {
                let net = ipnet::Ipv4Net::new(Ipv4Addr::from(address), len).unwrap();
                let action = if permit { "permit" } else { "deny" };
                let mut line = format!("ip prefix-list {name} seq {seq} {action} {net}");
                let ge = ge.filter(|g| *g > len);
                if let Some(ge) = ge {
                    line += &format!(" ge {ge}");
                }
                if let Some(le) = le.filter(|l| *l > len && ge.is_none_or(|g| g <= *l)) {
                    line += &format!(" le {le}");
                }
                line + "\n"
            })
    }

    fn list() -> impl Strategy<Value = String> {
        ("[A-Za-z][A-Za-z0-9_-]{0,8}", proptest::option::of(text())).prop_flat_map(
            |(name, description)| {
                let head = description
                    .map(|d| format!("ip prefix-list {name} description {d}\n"))
                    .unwrap_or_default();
                proptest::collection::vec(entry(name), 0..4)
                    .prop_map(move |entries| head.clone() + &entries.concat())
            },
        )
    }

    pub fn prefix_lists() -> BoxedStrategy<String> {
        proptest::collection::vec(list(), 0..3)
            .prop_map(|lists| lists.concat())
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use crate::{apply_text, parse_config, render};

    #[test]
    fn entries_get_ios_sequence_numbers_and_render_in_order() {
        let (config, errors) = parse_config(
            "ip prefix-list FRR permit 10.64.3.0/24\n\
             ip prefix-list FRR deny 10.64.0.0/16 ge 17 le 32\n\
             ip prefix-list FRR seq 3 permit 10.64.99.7/24 le 25\n\
             ip prefix-list FRR description from the uplink\n",
        );
        assert_eq!(errors, []);
        let rendered = render(&config);
        assert!(
            rendered.contains(concat!(
                "ip prefix-list FRR description from the uplink\n",
                "ip prefix-list FRR seq 3 permit 10.64.99.0/24 le 25\n",
                "ip prefix-list FRR seq 5 permit 10.64.3.0/24\n",
                "ip prefix-list FRR seq 10 deny 10.64.0.0/16 ge 17 le 32\n",
            )),
            "{rendered}"
        );
        assert_eq!(parse_config(&rendered), (config, vec![]));
    }

    #[test]
    fn a_bad_range_and_a_duplicate_are_refused() {
        let (mut config, _) = parse_config("ip prefix-list A permit 10.0.0.0/8\n");
        for (line, message) in [
            (
                "ip prefix-list A permit 10.0.0.0/16 ge 16\n",
                "% Invalid prefix range for 10.0.0.0/16, make sure: len < ge-value <= le-value",
            ),
            (
                "ip prefix-list A permit 10.0.0.0/16 ge 24 le 20\n",
                "% Invalid prefix range for 10.0.0.0/16, make sure: len < ge-value <= le-value",
            ),
            (
                "ip prefix-list A seq 7 permit 10.0.0.0/8\n",
                "% Duplicated prefix list entry in A",
            ),
            ("ip prefix-list A;B permit 10.0.0.0/8\n", ""),
        ] {
            let errors = apply_text(&mut config, line);
            assert!(
                errors[0].error.message.starts_with(message),
                "{line}: {errors:?}"
            );
        }
    }

    #[test]
    fn no_forms_remove_an_entry_by_number_or_by_words_and_the_whole_list() {
        let (mut config, _) = parse_config(
            "ip prefix-list A permit 10.0.0.0/8\nip prefix-list A deny 10.1.0.0/16 le 24\n\
             ip prefix-list A permit 0.0.0.0/0 le 32\nip prefix-list B description b\n",
        );
        let errors = apply_text(
            &mut config,
            "no ip prefix-list A seq 5\nno ip prefix-list A deny 10.1.0.0/16 le 24\n\
             no ip prefix-list B description\n",
        );
        assert_eq!(errors, []);
        let a = &config.prefix_lists.lists["A"];
        assert_eq!(a.entries.keys().collect::<Vec<_>>(), [&15]);
        assert!(!config.prefix_lists.lists.contains_key("B"), "nothing left");
        let errors = apply_text(&mut config, "no ip prefix-list A seq 99\n");
        assert_eq!(errors[0].error.message, "% Prefix list A: no such entry");
        assert_eq!(apply_text(&mut config, "no ip prefix-list A\n"), []);
        assert!(!config.prefix_lists.lists.contains_key("A"));
    }
}
