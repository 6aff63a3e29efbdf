//! The access-list element: IOS extended ACLs, named (`ip access-list
//! extended NAME` opens `(config-ext-nacl)`, `ipv6 access-list NAME` opens
//! `(config-ipv6-acl)`) and numbered (`access-list 100 ...`, 100-199 and
//! 2000-2699, kept as the list named `100` and rendered as an `ip
//! access-list extended 100` block), and their bindings to interfaces
//! (`ip access-group NAME in|out`, `ipv6 traffic-filter NAME in|out`).
//! The `line vty` element (`super::line_vty`) keeps its `access-class`
//! here too, since it names these lists.
//!
//! An entry's match (`SRC [PORTS] DST [PORTS] [TYPE [CODE]] [established]
//! [log]`) is read by [`parse_match`], not spelled out in the command
//! syntax: the command tree expands every path a syntax allows, and the
//! product of the optional parts is about 78,000 paths (220 MB of tree) per
//! family. The syntax keeps the sequence, action and protocol, so `?` and
//! abbreviations work up to there; the parser accepts unique abbreviations
//! of its own keywords and says what it expected.
//!
//! Entries are stored in canonical form, so equal rules are equal in the
//! model and the running config shows each one way: an IPv4 address with
//! bits set under its wildcard is masked (IOS does the same), wildcard
//! 0.0.0.0 is `host` and 255.255.255.255 is `any`; an IPv6 prefix is
//! truncated, /128 is `host` and ::/0 is `any`; protocol numbers 6, 17 and
//! 1 (58 in IPv6 lists) are `tcp`, `udp` and `icmp`.

use super::acl_names::{icmp_number, icmp_words, port_number, port_word};
use crate::commands::{
    change_if, check_name, required, CommandDef, ConfigContext, Edit, Mode, SubMode, INCOMPLETE,
};
use crate::config::{Config, INTERFACE_MODE};
use crate::render::Block;
use crate::tree::Args;
use ipnet::Ipv6Net;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// `(config-ext-nacl)#`, opened by `ip access-list extended NAME`.
pub static EXT_NACL_MODE: SubMode = SubMode {
    prompt: "ext-nacl",
    parent: None,
};
/// `(config-ipv6-acl)#`, opened by `ipv6 access-list NAME`.
pub static IPV6_ACL_MODE: SubMode = SubMode {
    prompt: "ipv6-acl",
    parent: None,
};

/// The highest sequence number (IOS's).
pub const MAX_SEQUENCE: u32 = 2_147_483_647;
/// The gap IOS leaves between entries typed without a sequence number.
pub const SEQUENCE_STEP: u32 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    In,
    Out,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessLists {
    /// (family, name) -> list
    pub lists: BTreeMap<(Family, String), AccessList>,
    /// (interface, family, direction) -> list name
    pub bindings: BTreeMap<(String, Family, Direction), String>,
    /// `line vty` `access-class NAME in` / `ipv6 access-class NAME in`: who may open SSH sessions
    pub vty_access_class: BTreeMap<Family, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessList {
    pub entries: BTreeMap<u32, Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Remark(String),
    Rule(AclRule),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclRule {
    pub permit: bool,
    pub protocol: AclProtocol,
    pub src: AddressMatch,
    pub src_ports: PortMatch,
    pub dst: AddressMatch,
    pub dst_ports: PortMatch,
    /// ICMP/ICMPv6 type and optional code (protocol Icmp only)
    pub icmp: Option<(u8, Option<u8>)>,
    /// TCP only: ACK or RST set (IOS semantics)
    pub established: bool,
    pub log: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclProtocol {
    Ip,
    Tcp,
    Udp,
    Icmp,
    Number(u8),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressMatch {
    Any,
    Host(std::net::IpAddr),
    Wildcard(Ipv4Addr, Ipv4Addr),
    Prefix(ipnet::Ipv6Net),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortMatch {
    Any,
    Eq(u16),
    Neq(u16),
    Lt(u16),
    Gt(u16),
    Range(u16, u16),
}

impl Family {
    /// The family of a command that starts `ipv6` when it is IPv6's
    /// (`ipv6 access-list`, `ipv6 traffic-filter`, `ipv6 access-class`).
    pub fn typed(args: &Args) -> Family {
        match args.has("ipv6") {
            true => Family::Ipv6,
            false => Family::Ipv4,
        }
    }

    /// The sub-mode a list of this family is edited in.
    pub fn mode(self) -> &'static SubMode {
        match self {
            Family::Ipv4 => &EXT_NACL_MODE,
            Family::Ipv6 => &IPV6_ACL_MODE,
        }
    }

    /// The command that opens a list: `ip access-list extended`.
    pub fn list_command(self) -> &'static str {
        match self {
            Family::Ipv4 => "ip access-list extended",
            Family::Ipv6 => "ipv6 access-list",
        }
    }

    /// The interface command that binds a list: `ip access-group`.
    pub fn binding_command(self) -> &'static str {
        match self {
            Family::Ipv4 => "ip access-group",
            Family::Ipv6 => "ipv6 traffic-filter",
        }
    }

    /// `ip` or `ipv6`: the protocol word that matches every packet.
    fn any_protocol(self) -> &'static str {
        match self {
            Family::Ipv4 => "ip",
            Family::Ipv6 => "ipv6",
        }
    }

    /// What a source or destination may be, for messages.
    fn address_forms(self) -> &'static str {
        match self {
            Family::Ipv4 => "any, host A.B.C.D or A.B.C.D WILDCARD",
            Family::Ipv6 => "any, host X:X::X:X or X:X::X:X/M",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::In => "in",
            Direction::Out => "out",
        })
    }
}

impl AccessLists {
    /// The list `name` of `family`, if defined.
    pub fn list(&self, family: Family, name: &str) -> Option<&AccessList> {
        self.lists.get(&(family, name.to_string()))
    }

    /// The list bound to `interface` for `family` in `direction`.
    pub fn binding(&self, interface: &str, family: Family, direction: Direction) -> Option<&str> {
        let key = (interface.to_string(), family, direction);
        self.bindings.get(&key).map(String::as_str)
    }
}

impl AccessList {
    /// The sequence number an entry typed without one gets: the last one
    /// plus 10, as IOS does.
    fn next_sequence(&self) -> Result<u32, String> {
        let last = self.entries.keys().next_back().copied().unwrap_or(0);
        match last.checked_add(SEQUENCE_STEP) {
            Some(next) if next <= MAX_SEQUENCE => Ok(next),
            _ => Err(format!(
                "% Sequence number {last} is the last one: give a free sequence number"
            )),
        }
    }
}

impl AclProtocol {
    /// Protocol number `n` in a `family` list, by name where it has one
    /// (IOS shows `permit 6 any any` as `permit tcp any any`).
    pub fn from_number(n: u8, family: Family) -> AclProtocol {
        match (n, family) {
            (6, _) => AclProtocol::Tcp,
            (17, _) => AclProtocol::Udp,
            (1, Family::Ipv4) | (58, Family::Ipv6) => AclProtocol::Icmp,
            _ => AclProtocol::Number(n),
        }
    }

    fn word(self, family: Family) -> String {
        match self {
            AclProtocol::Ip => family.any_protocol().to_string(),
            AclProtocol::Tcp => "tcp".to_string(),
            AclProtocol::Udp => "udp".to_string(),
            AclProtocol::Icmp => "icmp".to_string(),
            AclProtocol::Number(n) => n.to_string(),
        }
    }
}

impl AddressMatch {
    /// `ADDRESS WILDCARD` in canonical form: bits under the wildcard
    /// cleared, an all-zero wildcard as `host`, all-ones as `any`.
    pub fn wildcard(address: Ipv4Addr, wildcard: Ipv4Addr) -> AddressMatch {
        match u32::from(wildcard) {
            0 => AddressMatch::Host(IpAddr::V4(address)),
            u32::MAX => AddressMatch::Any,
            w => AddressMatch::Wildcard(Ipv4Addr::from(u32::from(address) & !w), wildcard),
        }
    }

    /// Whether `ip` is one of the addresses this matches.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (AddressMatch::Any, _) => true,
            (AddressMatch::Host(host), ip) => host == ip,
            (AddressMatch::Wildcard(address, wildcard), IpAddr::V4(ip)) => {
                u32::from(ip) & !u32::from(wildcard) == u32::from(address)
            }
            (AddressMatch::Prefix(prefix), IpAddr::V6(ip)) => prefix.contains(&ip),
            _ => false,
        }
    }

    /// `X:X::X:X/M` in canonical form: truncated, /128 as `host`, /0 as `any`.
    pub fn prefix(prefix: Ipv6Net) -> AddressMatch {
        match prefix.prefix_len() {
            0 => AddressMatch::Any,
            128 => AddressMatch::Host(IpAddr::V6(prefix.addr())),
            _ => AddressMatch::Prefix(prefix.trunc()),
        }
    }
}

impl fmt::Display for AddressMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressMatch::Any => f.write_str("any"),
            AddressMatch::Host(a) => write!(f, "host {a}"),
            AddressMatch::Wildcard(a, w) => write!(f, "{a} {w}"),
            AddressMatch::Prefix(p) => write!(f, "{p}"),
        }
    }
}

impl PortMatch {
    /// Its words in an entry (ports by name where `protocol` has one);
    /// None for `Any`, which has none.
    fn words(self, protocol: AclProtocol) -> Option<String> {
        let port = |p| port_word(protocol, p);
        match self {
            PortMatch::Any => None,
            PortMatch::Eq(p) => Some(format!("eq {}", port(p))),
            PortMatch::Neq(p) => Some(format!("neq {}", port(p))),
            PortMatch::Lt(p) => Some(format!("lt {}", port(p))),
            PortMatch::Gt(p) => Some(format!("gt {}", port(p))),
            PortMatch::Range(lo, hi) => Some(format!("range {} {}", port(lo), port(hi))),
        }
    }
}

impl AclRule {
    /// The entry as typed, without its sequence number.
    pub fn text(&self, family: Family) -> String {
        let action = if self.permit { "permit" } else { "deny" };
        let mut words = vec![action.to_string(), self.protocol.word(family)];
        words.push(self.src.to_string());
        words.extend(self.src_ports.words(self.protocol));
        words.push(self.dst.to_string());
        words.extend(self.dst_ports.words(self.protocol));
        if let Some(icmp) = self.icmp {
            words.push(icmp_words(family, icmp));
        }
        if self.established {
            words.push("established".to_string());
        }
        if self.log {
            words.push("log".to_string());
        }
        words.join(" ")
    }
}

/// `SEQ remark TEXT` or `SEQ permit|deny ...`.
fn entry_line(sequence: u32, entry: &Entry, family: Family) -> String {
    match entry {
        Entry::Remark(text) => format!("{sequence} remark {text}"),
        Entry::Rule(rule) => format!("{sequence} {}", rule.text(family)),
    }
}

pub struct Element;

static SUB_MODES: &[&SubMode] = &[&EXT_NACL_MODE, &IPV6_ACL_MODE];

/// Help for the part of an entry [`parse_match`] reads.
const MATCH_HELP: &str =
    "SRC [PORTS] DST [PORTS] [TYPE [CODE]] [established] [log]; SRC/DST: any, host ADDRESS or \
     ADDRESS WILDCARD (IPv6: PREFIX); PORTS: eq|lt|gt|neq N or range N N";

/// The help of `(permit|deny) PROTOCOL MATCH` after `$prefix`'s words,
/// with the words that differ by family.
macro_rules! entry_help {
    ([$($prefix:expr),*], $any:expr, $icmp:expr, $number:expr) => {
        &[
            $($prefix,)*
            "Specify packets to forward",
            "Specify packets to reject",
            $any,
            "Transmission Control Protocol",
            "User Datagram Protocol",
            $icmp,
            $number,
            MATCH_HELP,
        ]
    };
}

/// [`entry_help`] in IPv4 lists, named or numbered.
macro_rules! ipv4_entry_help {
    ($($prefix:expr),*) => {
        entry_help!(
            [$($prefix),*],
            "Any Internet Protocol",
            "Internet Control Message Protocol",
            "An IP protocol number"
        )
    };
}

/// The help of `remark LINE` after `$prefix`'s words.
macro_rules! remark_help {
    ($($prefix:expr),*) => {
        &[$($prefix,)* "Access list entry comment", "Comment, up to 100 characters"]
    };
}

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "ip access-list extended WORD$name",
        help: &[
            "Global IP configuration",
            "Named access list",
            "Extended access list",
            "Access list name",
        ],
        handler: access_list,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ipv6 access-list WORD$name",
        help: &[
            "Global IPv6 configuration",
            "Configure an IPv6 access list",
            "Access list name",
        ],
        handler: access_list,
    },
    CommandDef {
        mode: Mode::Sub(&EXT_NACL_MODE),
        syntax: "[<1-2147483647>$seq] (permit|deny) (ip|tcp|udp|icmp|<0-255>$proto) LINE$match",
        help: ipv4_entry_help!("Sequence number"),
        handler: list_entry,
    },
    CommandDef {
        mode: Mode::Sub(&EXT_NACL_MODE),
        syntax: "[<1-2147483647>$seq] remark LINE$text",
        help: remark_help!("Sequence number"),
        handler: list_remark,
    },
    CommandDef {
        mode: Mode::Sub(&IPV6_ACL_MODE),
        syntax: "[<1-2147483647>$seq] (permit|deny) (ipv6|tcp|udp|icmp|<0-255>$proto) LINE$match",
        help: entry_help!(
            ["Sequence number"],
            "Any IPv6 protocol",
            "Internet Control Message Protocol for IPv6",
            "An IPv6 next header number"
        ),
        handler: list_entry,
    },
    CommandDef {
        mode: Mode::Sub(&IPV6_ACL_MODE),
        syntax: "[<1-2147483647>$seq] remark LINE$text",
        help: remark_help!("Sequence number"),
        handler: list_remark,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "access-list (<100-199>$number|<2000-2699>$number) (permit|deny) (ip|tcp|udp|icmp|<0-255>$proto) LINE$match",
        help: ipv4_entry_help!(
            "Add a numbered access list entry",
            "IP extended access list",
            "IP extended access list (expanded range)"
        ),
        handler: numbered_entry,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "access-list (<100-199>$number|<2000-2699>$number) remark LINE$text",
        help: remark_help!(
            "Add a numbered access list entry",
            "IP extended access list",
            "IP extended access list (expanded range)"
        ),
        handler: numbered_remark,
    },
    CommandDef {
        mode: Mode::Sub(&INTERFACE_MODE),
        syntax: "ip access-group WORD$name (in|out)",
        help: &[
            "Interface IP configuration",
            "Specify an access list for the interface",
            "Access list name or number",
            "Inbound packets",
            "Outbound packets",
        ],
        handler: bind,
    },
    CommandDef {
        mode: Mode::Sub(&INTERFACE_MODE),
        syntax: "ipv6 traffic-filter WORD$name (in|out)",
        help: &[
            "Interface IPv6 configuration",
            "Access control list for packets",
            "Access list name",
            "Inbound packets",
            "Outbound packets",
        ],
        handler: bind,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "access lists",
    commands: COMMANDS,
    sub_modes: SUB_MODES,
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    /// Every IPv4 list, then every IPv6 one, by name; numbered lists too.
    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        for ((family, name), list) in &config.access_lists.lists {
            let body = list.entries.iter();
            out.push(Block {
                header: format!("{} {name}", family.list_command()),
                body: body.map(|(s, e)| entry_line(*s, e, *family)).collect(),
            });
        }
    }

    fn interface_lines(&self, config: &Config, interface: &str, out: &mut Vec<String>) {
        for family in [Family::Ipv4, Family::Ipv6] {
            for direction in [Direction::In, Direction::Out] {
                if let Some(name) = config.access_lists.binding(interface, family, direction) {
                    out.push(format!("{} {name} {direction}", family.binding_command()));
                }
            }
        }
    }

    fn forget_interface(&self, config: &mut Config, interface: &str) {
        let keys: Vec<_> = bindings_of(&config.access_lists, interface).collect();
        if keys.is_empty() {
            return;
        }
        let lists = Arc::make_mut(&mut config.access_lists);
        for key in keys {
            lists.bindings.remove(&key);
        }
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let lists = &config.access_lists;
        for ((interface, family, direction), name) in &lists.bindings {
            let what = format!("{} {name} {direction}", family.binding_command());
            if !config.interfaces.contains_key(interface) {
                problems.push(format!("% {what}: interface {interface} is not configured"));
            }
            if lists.list(*family, name).is_none() {
                problems.push(format!(
                    "% {interface}: {what}: no {family} access list {name}"
                ));
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.access_lists, &new.access_lists)
            && super::same(&old.interfaces, &new.interfaces)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        generate::access_lists()
    }
}

/// The binding keys of `interface` (at most four).
fn bindings_of<'a>(
    lists: &'a AccessLists,
    interface: &str,
) -> impl Iterator<Item = (String, Family, Direction)> + 'a {
    let first = (interface.to_string(), Family::Ipv4, Direction::In);
    let last = (interface.to_string(), Family::Ipv6, Direction::Out);
    lists.bindings.range(first..=last).map(|(k, _)| k.clone())
}

/// `ip access-list extended NAME` creates the list if new and enters it;
/// `no ...` removes it (what still names it is refused at commit).
fn access_list(edit: &mut Edit<'_>) -> Result<(), String> {
    let family = Family::typed(edit.args);
    let name = required(edit.args, "name")?.to_string();
    if edit.negated {
        return remove_list(edit.config, family, name);
    }
    check_name("access list", &name)?;
    let key = (family, name);
    let lists = &mut edit.config.access_lists;
    change_if(lists, !lists.lists.contains_key(&key), |l| {
        l.lists.insert(key.clone(), AccessList::default());
    });
    edit.enter = Some(ConfigContext::Sub(family.mode(), key.1));
    Ok(())
}

fn remove_list(config: &mut Config, family: Family, name: String) -> Result<(), String> {
    let key = (family, name);
    if !config.access_lists.lists.contains_key(&key) {
        return Err(format!("% No {family} access list {}", key.1));
    }
    Arc::make_mut(&mut config.access_lists).lists.remove(&key);
    Ok(())
}

/// The list the current sub-mode edits.
fn current_list(edit: &Edit<'_>) -> Result<(Family, String), String> {
    let in_mode = |f: Family| edit.context.object_of(f.mode()).map(|n| (f, n.to_string()));
    (in_mode(Family::Ipv4).or_else(|| in_mode(Family::Ipv6)))
        .ok_or_else(|| "% Not in an access list's mode".to_string())
}

/// `[SEQ] permit|deny ...` and `no` forms in a named list.
fn list_entry(edit: &mut Edit<'_>) -> Result<(), String> {
    let key = current_list(edit)?;
    let entry = rule_of(edit.args, key.0)?;
    change_entries(edit, key, entry)
}

/// `[SEQ] remark TEXT` and `no` forms in a named list.
fn list_remark(edit: &mut Edit<'_>) -> Result<(), String> {
    let key = current_list(edit)?;
    change_entries(edit, key, remark_of(edit.args)?)
}

/// `access-list N permit|deny ...`; `no access-list N` removes the list.
fn numbered_entry(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = numbered_name(edit.args)?;
    match rule_of(edit.args, Family::Ipv4)? {
        None if edit.negated => remove_list(edit.config, Family::Ipv4, name),
        entry => change_entries(edit, (Family::Ipv4, name), entry),
    }
}

fn numbered_remark(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = numbered_name(edit.args)?;
    change_entries(edit, (Family::Ipv4, name), remark_of(edit.args)?)
}

fn numbered_name(args: &Args) -> Result<String, String> {
    let number = args.number("number").ok_or(INCOMPLETE)?;
    Ok(number.to_string())
}

/// The remark typed, if any (a `no` form may stop before it).
fn remark_of(args: &Args) -> Result<Option<Entry>, String> {
    let Some(text) = args.text("text") else {
        return Ok(None);
    };
    // IOS's limit, which also keeps one entry on one terminal line.
    if text.len() > 100 {
        return Err("% Remark is longer than 100 characters".to_string());
    }
    Ok(Some(Entry::Remark(text.to_string())))
}

/// The rule typed, if the line names an action (`no 10` does not).
fn rule_of(args: &Args, family: Family) -> Result<Option<Entry>, String> {
    let permit = args.has("permit");
    if !permit && !args.has("deny") {
        return Ok(None);
    }
    let text = required(args, "match")?;
    let protocol = match args.number("proto") {
        Some(n) => AclProtocol::from_number(n as u8, family),
        None if args.has("tcp") => AclProtocol::Tcp,
        None if args.has("udp") => AclProtocol::Udp,
        None if args.has("icmp") => AclProtocol::Icmp,
        None => AclProtocol::Ip,
    };
    let rule = parse_match(text, family, protocol, permit)?;
    Ok(Some(Entry::Rule(rule)))
}

/// Adds `entry` to the list `key` (creating a numbered list), at the
/// sequence typed or after the last one; with `no`, removes the sequence
/// typed or every entry equal to `entry`. Adding costs a lookup whatever
/// the list's length; removing by content reads the list once.
fn change_entries(
    edit: &mut Edit<'_>,
    key: (Family, String),
    entry: Option<Entry>,
) -> Result<(), String> {
    let sequence = edit.args.number("seq").map(|s| s as u32);
    let name = &key.1;
    let list = edit.config.access_lists.lists.get(&key);
    if edit.negated {
        let doomed: Vec<u32> = match (sequence, &entry) {
            (Some(s), _) => list
                .filter(|l| l.entries.contains_key(&s))
                .map(|_| s)
                .into_iter()
                .collect(),
            (None, Some(e)) => (list.into_iter().flat_map(|l| &l.entries))
                .filter(|(_, x)| *x == e)
                .map(|(s, _)| *s)
                .collect(),
            (None, None) => return Err(INCOMPLETE.to_string()),
        };
        if doomed.is_empty() {
            return Err(format!("% No such entry in access list {name}"));
        }
        let lists = Arc::make_mut(&mut edit.config.access_lists);
        if let Some(list) = lists.lists.get_mut(&key) {
            for s in doomed {
                list.entries.remove(&s);
            }
        }
        return Ok(());
    }
    let entry = entry.ok_or(INCOMPLETE)?;
    let sequence = match (sequence, list) {
        (Some(s), Some(l)) if l.entries.contains_key(&s) => {
            return Err(format!(
                "% Duplicate sequence number {s} in access list {name}"
            ))
        }
        (Some(s), _) => s,
        (None, Some(l)) => l.next_sequence()?,
        (None, None) => SEQUENCE_STEP,
    };
    let lists = Arc::make_mut(&mut edit.config.access_lists);
    let list = lists.lists.entry(key).or_default();
    list.entries.insert(sequence, entry);
    Ok(())
}

/// Keywords of an entry's match, which may be abbreviated to any prefix
/// that names one of them only.
const MATCH_KEYWORDS: &[&str] = &[
    "any",
    "host",
    "eq",
    "lt",
    "gt",
    "neq",
    "range",
    "established",
    "log",
];

/// The keyword `word` abbreviates, or `word` itself when it abbreviates
/// none (an address or a number).
fn expand_keyword(word: &str) -> Result<&str, String> {
    if MATCH_KEYWORDS.contains(&word) {
        return Ok(word);
    }
    let mut candidates = MATCH_KEYWORDS.iter().filter(|k| k.starts_with(word));
    match (candidates.next(), candidates.next()) {
        (None, _) => Ok(word),
        (Some(k), None) => Ok(k),
        (Some(a), Some(b)) => Err(format!("% Ambiguous \"{word}\": {a} or {b}")),
    }
}

/// A decimal number without sign (Rust's parsers would take `+5`).
fn number<T: std::str::FromStr>(word: &str) -> Option<T> {
    word.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| word.parse().ok())
        .flatten()
}

type Words<'a> = std::iter::Peekable<std::vec::IntoIter<&'a str>>;

/// Reads `SRC [PORTS] DST [PORTS] [TYPE [CODE]] [established] [log]`, the
/// part of an entry after its protocol, refusing what the protocol cannot
/// carry (ports without tcp or udp, a type without icmp, `established`
/// without tcp) with a message that says so.
pub fn parse_match(
    text: &str,
    family: Family,
    protocol: AclProtocol,
    permit: bool,
) -> Result<AclRule, String> {
    let words: Vec<&str> = text
        .split_whitespace()
        .map(expand_keyword)
        .collect::<Result<_, _>>()?;
    let mut words = words.into_iter().peekable();
    let src = address(&mut words, family)?;
    let src_ports = ports(&mut words, protocol)?;
    let dst = address(&mut words, family)?;
    let dst_ports = ports(&mut words, protocol)?;
    let icmp = icmp_type(&mut words, family, protocol)?;
    let established = words.next_if_eq(&"established").is_some();
    if established && protocol != AclProtocol::Tcp {
        return Err("% established applies only to tcp".to_string());
    }
    let log = words.next_if_eq(&"log").is_some();
    if let Some(extra) = words.next() {
        return Err(format!(
            "% Invalid input \"{extra}\": only [established] [log] may follow the destination"
        ));
    }
    Ok(AclRule {
        permit,
        protocol,
        src,
        src_ports,
        dst,
        dst_ports,
        icmp,
        established,
        log,
    })
}

/// `any`, `host ADDRESS`, `A.B.C.D WILDCARD` (IPv4) or `X:X::X:X/M` (IPv6).
fn address(words: &mut Words<'_>, family: Family) -> Result<AddressMatch, String> {
    let word = words.next().ok_or(INCOMPLETE)?;
    let invalid = |what: &str, w: &str| {
        format!(
            "% Invalid {what} \"{w}\": expected {}",
            family.address_forms()
        )
    };
    match (word, family) {
        ("any", _) => Ok(AddressMatch::Any),
        ("host", _) => {
            let host = words.next().ok_or(INCOMPLETE)?;
            let address = match family {
                Family::Ipv4 => host.parse::<Ipv4Addr>().map(IpAddr::V4).ok(),
                Family::Ipv6 => host.parse::<std::net::Ipv6Addr>().map(IpAddr::V6).ok(),
            };
            let address = address.ok_or_else(|| invalid("host address", host))?;
            Ok(AddressMatch::Host(address))
        }
        (_, Family::Ipv4) => {
            let address: Ipv4Addr = word.parse().map_err(|_| invalid("address", word))?;
            let wildcard = words.next().ok_or(INCOMPLETE)?;
            let wildcard = wildcard
                .parse()
                .map_err(|_| invalid("wildcard", wildcard))?;
            Ok(AddressMatch::wildcard(address, wildcard))
        }
        (_, Family::Ipv6) => {
            let prefix = word.parse().map_err(|_| invalid("prefix", word))?;
            Ok(AddressMatch::prefix(prefix))
        }
    }
}

/// `eq|lt|gt|neq PORT` or `range LOW HIGH`, if the next word starts one.
fn ports(words: &mut Words<'_>, protocol: AclProtocol) -> Result<PortMatch, String> {
    let Some(operator) = words.next_if(|w| ["eq", "lt", "gt", "neq", "range"].contains(w)) else {
        return Ok(PortMatch::Any);
    };
    if !matches!(protocol, AclProtocol::Tcp | AclProtocol::Udp) {
        return Err(format!(
            "% Port matches ({operator}) apply only to tcp and udp"
        ));
    }
    let mut port = || -> Result<u16, String> {
        let word = words.next().ok_or(INCOMPLETE)?;
        number(word)
            .or_else(|| port_number(protocol, word))
            .ok_or_else(|| {
                format!(
                    "% Invalid port \"{word}\": 0-65535 or a {} port name",
                    protocol.word(Family::Ipv4)
                )
            })
    };
    Ok(match operator {
        "eq" => PortMatch::Eq(port()?),
        "neq" => PortMatch::Neq(port()?),
        "lt" => PortMatch::Lt(port()?),
        "gt" => PortMatch::Gt(port()?),
        _ => {
            let (low, high) = (port()?, port()?);
            if low > high {
                return Err(format!("% Invalid port range {low} {high}: low first"));
            }
            PortMatch::Range(low, high)
        }
    })
}

/// `TYPE [CODE]` (0-255 each) or a message name (`echo`,
/// `packet-too-big`), if the next word is one.
fn icmp_type(
    words: &mut Words<'_>,
    family: Family,
    protocol: AclProtocol,
) -> Result<Option<(u8, Option<u8>)>, String> {
    let named = words.peek().and_then(|w| icmp_number(family, w));
    if named.is_some() && protocol != AclProtocol::Icmp {
        return Err("% An ICMP type applies only to icmp".to_string());
    }
    if let Some(named) = named {
        words.next();
        return Ok(Some(named));
    }
    let Some(kind) = words.peek().and_then(|w| number::<u8>(w)) else {
        return Ok(None);
    };
    if protocol != AclProtocol::Icmp {
        return Err("% An ICMP type applies only to icmp".to_string());
    }
    words.next();
    let code = words.peek().and_then(|w| number::<u8>(w));
    if code.is_some() {
        words.next();
    }
    Ok(Some((kind, code)))
}

/// `ip access-group NAME in|out` binds the list to the interface (the
/// list may be defined later: commit checks that it is); `no ip
/// access-group [NAME] [in|out]` removes the bindings that fit.
fn bind(edit: &mut Edit<'_>) -> Result<(), String> {
    let family = Family::typed(edit.args);
    let interface = edit.object(&INTERFACE_MODE)?;
    let name = edit.args.text("name");
    let directions: &[Direction] = match (edit.args.has("in"), edit.args.has("out")) {
        (true, _) => &[Direction::In],
        (_, true) => &[Direction::Out],
        _ => &[Direction::In, Direction::Out],
    };
    let lists = &edit.config.access_lists;
    if !edit.negated {
        let name = name.ok_or(INCOMPLETE)?;
        let key = (interface, family, directions[0]);
        let needed = lists.bindings.get(&key).is_none_or(|n| n != name);
        change_if(&mut edit.config.access_lists, needed, |l| {
            l.bindings.insert(key, name.to_string());
        });
        return Ok(());
    }
    let doomed: Vec<_> = directions
        .iter()
        .map(|d| (interface.clone(), family, *d))
        .filter(|k| {
            lists
                .bindings
                .get(k)
                .is_some_and(|n| name.is_none_or(|x| x == n))
        })
        .collect();
    if doomed.is_empty() {
        let what = [family.binding_command(), name.unwrap_or_default()].join(" ");
        return Err(format!("% No {} on {interface}", what.trim_end()));
    }
    let lists = Arc::make_mut(&mut edit.config.access_lists);
    for key in doomed {
        lists.bindings.remove(&key);
    }
    Ok(())
}

#[cfg(test)]
mod generate {
    use super::super::tests::text;
    use super::Family;
    use proptest::prelude::*;
    use proptest::sample::select;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9_-]{0,8}"
    }

    /// A source or destination, canonical or not (masked bits, `/128`).
    fn address(family: Family) -> BoxedStrategy<String> {
        match family {
            Family::Ipv4 => prop_oneof![
                Just("any".to_string()),
                any::<u32>().prop_map(|a| format!("host {}", Ipv4Addr::from(a))),
                (any::<u32>(), any::<u32>()).prop_map(|(a, w)| format!(
                    "{} {}",
                    Ipv4Addr::from(a),
                    Ipv4Addr::from(w)
                )),
            ]
            .boxed(),
            Family::Ipv6 => prop_oneof![
                Just("any".to_string()),
                any::<u128>().prop_map(|a| format!("host {}", Ipv6Addr::from(a))),
                (any::<u128>(), 0u8..=128).prop_map(|(a, l)| format!("{}/{l}", Ipv6Addr::from(a))),
            ]
            .boxed(),
        }
    }

    fn ports() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            (select(&["eq", "lt", "gt", "neq"][..]), any::<u16>())
                .prop_map(|(op, p)| format!(" {op} {p}")),
            (any::<u16>(), any::<u16>()).prop_map(|(a, b)| format!(
                " range {} {}",
                a.min(b),
                a.max(b)
            )),
        ]
    }

    /// One entry of a `family` list, without its sequence number: a rule
    /// with only the options its protocol may carry, or a remark.
    fn entry(family: Family) -> BoxedStrategy<String> {
        let any_protocol = family.any_protocol();
        let protocols = vec![any_protocol, "tcp", "udp", "icmp", "number"];
        let rule = (
            select(&["permit", "deny"][..]),
            (select(protocols), any::<u8>()),
            (address(family), ports()),
            (address(family), ports()),
            proptest::option::of((any::<u8>(), proptest::option::of(any::<u8>()))),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(action, (protocol, number), src, dst, icmp, established, log)| {
                    let ported = matches!(protocol, "tcp" | "udp");
                    let ports = |p: String| if ported { p } else { String::new() };
                    let mut words = match protocol {
                        "number" => format!("{action} {number}"),
                        named => format!("{action} {named}"),
                    };
                    words += &format!(" {}{} {}{}", src.0, ports(src.1), dst.0, ports(dst.1));
                    if let (Some((kind, code)), "icmp") = (icmp, protocol) {
                        words += &format!(" {kind}");
                        words.extend(code.map(|c| format!(" {c}")));
                    }
                    if established && protocol == "tcp" {
                        words += " established";
                    }
                    if log {
                        words += " log";
                    }
                    words
                },
            );
        prop_oneof![4 => rule, 1 => text().prop_map(|t| format!("remark {t}"))].boxed()
    }

    /// Named lists of `family`; entries with and without sequence numbers.
    fn lists(family: Family) -> impl Strategy<Value = String> {
        let entries =
            proptest::collection::vec((proptest::option::of(1u32..30), entry(family)), 0..5);
        proptest::collection::btree_map(name(), entries, 0..3).prop_map(move |lists| {
            let mut text = String::new();
            for (name, entries) in lists {
                text += &format!("{} {name}\n", family.list_command());
                let mut last = 0;
                for (gap, entry) in entries {
                    last += gap.unwrap_or(super::SEQUENCE_STEP);
                    text += &match gap {
                        Some(_) => format!(" {last} {entry}\n"),
                        None => format!(" {entry}\n"),
                    };
                }
            }
            text
        })
    }

    pub fn access_lists() -> BoxedStrategy<String> {
        let numbered = (prop_oneof![100u32..200, 2000u32..2700], entry(Family::Ipv4))
            .prop_map(|(n, entry)| format!("access-list {n} {entry}\n"));
        let binding = (
            "eth[0-3]",
            select(&[Family::Ipv4, Family::Ipv6][..]),
            name(),
            select(&["in", "out"][..]),
        )
            .prop_map(|(interface, family, name, direction)| {
                let command = family.binding_command();
                format!("interface {interface}\n {command} {name} {direction}\n")
            });
        (
            lists(Family::Ipv4),
            lists(Family::Ipv6),
            proptest::collection::vec(numbered, 0..3),
            proptest::collection::vec(binding, 0..3),
        )
            .prop_map(|(v4, v6, numbered, bindings)| {
                v4 + &v6 + &numbered.concat() + &bindings.concat()
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_text, parse_config, render, validate};

    fn rule(text: &str, family: Family) -> Result<AclRule, String> {
        let config = format!("{} L\n {text}\n", family.list_command());
        let (config, errors) = parse_config(&config);
        if let Some(e) = errors.first() {
            return Err(e.error.message.clone());
        }
        match config
            .access_lists
            .list(family, "L")
            .unwrap()
            .entries
            .values()
            .next()
        {
            Some(Entry::Rule(r)) => Ok(r.clone()),
            other => panic!("{other:?}"),
        }
    }

    fn v4(text: &str) -> Result<AclRule, String> {
        rule(text, Family::Ipv4)
    }

    #[test]
    fn every_part_of_an_ipv4_entry_is_read() {
        let r = v4(
            "deny tcp 10.1.0.0 0.0.255.255 range 1024 65535 host 192.0.2.1 eq 443 established log",
        )
        .unwrap();
        assert_eq!(
            r,
            AclRule {
                permit: false,
                protocol: AclProtocol::Tcp,
                src: AddressMatch::Wildcard(
                    Ipv4Addr::new(10, 1, 0, 0),
                    Ipv4Addr::new(0, 0, 255, 255)
                ),
                src_ports: PortMatch::Range(1024, 65535),
                dst: AddressMatch::Host("192.0.2.1".parse().unwrap()),
                dst_ports: PortMatch::Eq(443),
                icmp: None,
                established: true,
                log: true,
            }
        );
        let r = v4("permit icmp any any 8 0").unwrap();
        assert_eq!(
            (r.protocol, r.icmp),
            (AclProtocol::Icmp, Some((8, Some(0))))
        );
        let r = v4("permit udp any lt 1024 any neq 53").unwrap();
        assert_eq!(
            (r.src_ports, r.dst_ports),
            (PortMatch::Lt(1024), PortMatch::Neq(53))
        );
        let r = v4("permit 47 any any").unwrap();
        assert_eq!(r.protocol, AclProtocol::Number(47));
        let r = v4("per tcp a h 10.0.0.1 gt 1023 est lo").unwrap();
        assert_eq!(
            (r.src, r.dst_ports, r.established, r.log),
            (AddressMatch::Any, PortMatch::Gt(1023), true, true)
        );
    }

    #[test]
    fn ipv6_entries_take_prefixes_and_icmpv6() {
        let r = rule("permit icmp 2001:db8::1/64 any 135", Family::Ipv6).unwrap();
        assert_eq!(
            r.src,
            AddressMatch::Prefix("2001:db8::/64".parse().unwrap())
        );
        assert_eq!(r.icmp, Some((135, None)));
        let r = rule("deny 58 host 2001:db8::9 ::/0", Family::Ipv6).unwrap();
        assert_eq!((r.protocol, r.dst), (AclProtocol::Icmp, AddressMatch::Any));
        assert_eq!(
            rule("permit ipv6 any 10.0.0.1 0.0.0.255", Family::Ipv6).unwrap_err(),
            "% Invalid prefix \"10.0.0.1\": expected any, host X:X::X:X or X:X::X:X/M"
        );
    }

    #[test]
    fn wildcards_are_normalised_when_typed() {
        let r = v4("permit ip 10.1.2.3 0.0.255.255 10.9.9.9 0.0.0.0").unwrap();
        assert_eq!(
            r.src,
            AddressMatch::Wildcard(Ipv4Addr::new(10, 1, 0, 0), Ipv4Addr::new(0, 0, 255, 255))
        );
        assert_eq!(r.dst, AddressMatch::Host("10.9.9.9".parse().unwrap()));
        let r = v4("permit 6 1.2.3.4 255.255.255.255 any").unwrap();
        assert_eq!((r.protocol, r.src), (AclProtocol::Tcp, AddressMatch::Any));
        assert_eq!(r.text(Family::Ipv4), "permit tcp any any");
    }

    #[test]
    fn options_the_protocol_cannot_carry_are_refused_with_a_reason() {
        let cases = [
            ("permit ip any eq 80 any", "% Port matches (eq) apply only to tcp and udp"),
            ("permit icmp any any range 1 2", "% Port matches (range) apply only to tcp and udp"),
            ("permit udp any any established", "% established applies only to tcp"),
            ("permit tcp any any 8", "% An ICMP type applies only to icmp"),
            ("permit tcp any any eq 65536", "% Invalid port \"65536\": 0-65535 or a tcp port name"),
            ("permit tcp any range 9 8 any", "% Invalid port range 9 8: low first"),
            ("permit tcp any any e", "% Ambiguous \"e\": eq or established"),
            ("permit tcp any", "% Incomplete command."),
            ("permit tcp any any log extra", "% Invalid input \"extra\": only [established] [log] may follow the destination"),
            ("permit ip 10.0.0.1 any", "% Invalid wildcard \"any\": expected any, host A.B.C.D or A.B.C.D WILDCARD"),
            ("permit ip host 2001:db8::1 any", "% Invalid host address \"2001:db8::1\": expected any, host A.B.C.D or A.B.C.D WILDCARD"),
        ];
        for (line, message) in cases {
            assert_eq!(v4(line).unwrap_err(), message, "{line}");
        }
    }

    #[test]
    fn ports_and_icmp_messages_are_typed_and_written_by_name() {
        let (config, errors) = parse_config(
            "ip access-list extended N\n permit tcp any any eq www\n permit udp any range bootps bootpc any\n \
             permit icmp any any packet-too-big\n permit icmp any any 3 9\n\
             ipv6 access-list N6\n permit icmp any any echo-request\n",
        );
        assert_eq!(errors, []);
        let text = render(&config);
        for line in [
            " 10 permit tcp any any eq www\n",
            " 20 permit udp any range bootps bootpc any\n",
            " 30 permit icmp any any packet-too-big\n",
            " 40 permit icmp any any 3 9\n",
            " 10 permit icmp any any echo-request\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        let rule = |list: &str, family| match config
            .access_lists
            .list(family, list)
            .unwrap()
            .entries
            .values()
            .next()
        {
            Some(Entry::Rule(r)) => r.clone(),
            _ => panic!("no rule"),
        };
        assert_eq!(rule("N", Family::Ipv4).dst_ports, PortMatch::Eq(80));
        assert_eq!(rule("N6", Family::Ipv6).icmp, Some((128, None)));
        let (_, errors) = parse_config(
            "ip access-list extended M\n permit udp any any eq www\n permit tcp any any echo\n",
        );
        assert_eq!(errors.len(), 2, "www is tcp's, echo is icmp's: {errors:?}");
    }

    #[test]
    fn sequence_numbers_follow_ios() {
        let (mut config, errors) = parse_config(
            "ip access-list extended WEB\n permit tcp any any eq 80\n 15 permit tcp any any eq 443\n\
             remark the rest\n 5 deny ip host 10.0.0.66 any\n",
        );
        assert_eq!(errors, []);
        let text = render(&config);
        assert_eq!(
            text,
            "!\nip access-list extended WEB\n 5 deny ip host 10.0.0.66 any\n 10 permit tcp any any eq www\n \
             15 permit tcp any any eq 443\n 25 remark the rest\n!\nend\n"
        );
        let errors = apply_text(
            &mut config,
            "ip access-list extended WEB\n 10 permit ip any any\n",
        );
        assert_eq!(
            errors[0].error.message,
            "% Duplicate sequence number 10 in access list WEB"
        );
        let errors = apply_text(
            &mut config,
            "ip access-list extended WEB\n 2147483647 remark last\n permit ip any any\n",
        );
        assert_eq!(
            errors[0].error.message,
            "% Sequence number 2147483647 is the last one: give a free sequence number"
        );
    }

    #[test]
    fn no_removes_by_sequence_or_by_content() {
        let (mut config, errors) = parse_config(
            "ip access-list extended A\n permit tcp any any eq 22\n permit udp any any\n remark x\n \
             permit tcp any any eq 22\n",
        );
        assert_eq!(errors, []);
        let errors = apply_text(
            &mut config,
            "ip access-list extended A\n no 20\n no permit tcp any any eq 22\n no remark x\n",
        );
        assert_eq!(errors, []);
        assert!(config
            .access_lists
            .list(Family::Ipv4, "A")
            .unwrap()
            .entries
            .is_empty());
        let errors = apply_text(
            &mut config,
            "ip access-list extended A\n no 20\n no deny ip any any\n no permit\n\
             no ip access-list extended A\nno ip access-list extended A\n",
        );
        let messages: Vec<_> = errors.iter().map(|e| e.error.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "% No such entry in access list A",
                "% No such entry in access list A",
                "% Incomplete command.",
                "% No IPv4 access list A"
            ]
        );
        assert!(config.access_lists.lists.is_empty());
    }

    #[test]
    fn numbered_lists_are_extended_lists_named_by_their_number() {
        let (mut config, errors) = parse_config(
            "access-list 101 remark web\naccess-list 101 permit tcp any host 192.0.2.80 eq 80\n\
             access-list 2001 deny ip any any log\n",
        );
        assert_eq!(errors, []);
        let text = render(&config);
        assert_eq!(
            text,
            "!\nip access-list extended 101\n 10 remark web\n 20 permit tcp any host 192.0.2.80 eq www\n\
             !\nip access-list extended 2001\n 10 deny ip any any log\n!\nend\n"
        );
        assert_eq!(parse_config(&text), (config.clone(), vec![]));
        let errors = apply_text(&mut config, "no access-list 101 remark web\nno access-list 2001\naccess-list 99 permit ip any any\n");
        assert_eq!(errors.len(), 1, "standard lists are not supported");
        assert_eq!(config.access_lists.lists.len(), 1);
        assert_eq!(
            config
                .access_lists
                .list(Family::Ipv4, "101")
                .unwrap()
                .entries
                .len(),
            1
        );
    }

    #[test]
    fn bindings_render_under_their_interface_and_go_with_it() {
        let (mut config, errors) = parse_config(
            "ipv6 access-list V6\n permit ipv6 any any\ninterface eth0\n ip access-group 101 in\n \
             ip access-group OUT out\n ipv6 traffic-filter V6 in\n",
        );
        assert_eq!(errors, []);
        assert_eq!(
            config
                .access_lists
                .binding("eth0", Family::Ipv4, Direction::In),
            Some("101")
        );
        assert!(render(&config).contains(
            "interface eth0\n ip access-group 101 in\n ip access-group OUT out\n ipv6 traffic-filter V6 in\n"
        ));
        assert_eq!(
            validate(&config),
            [
                "% eth0: ip access-group 101 in: no IPv4 access list 101",
                "% eth0: ip access-group OUT out: no IPv4 access list OUT"
            ]
        );
        let errors = apply_text(
            &mut config,
            "interface eth0\n no ip access-group OTHER\n no ip access-group 101\n no ipv6 traffic-filter V6 out\n",
        );
        let messages: Vec<_> = errors.iter().map(|e| e.error.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "% No ip access-group OTHER on eth0",
                "% No ipv6 traffic-filter V6 on eth0"
            ]
        );
        assert_eq!(config.access_lists.bindings.len(), 2);
        assert_eq!(apply_text(&mut config, "no interface eth0\n"), []);
        assert!(config.access_lists.bindings.is_empty());
    }

    #[test]
    fn a_binding_to_an_unconfigured_interface_is_refused_at_commit() {
        let mut config = Config::default();
        Arc::make_mut(&mut config.access_lists).bindings.insert(
            ("eth7".to_string(), Family::Ipv6, Direction::Out),
            "V6".to_string(),
        );
        assert_eq!(
            validate(&config),
            [
                "% ipv6 traffic-filter V6 out: interface eth7 is not configured",
                "% eth7: ipv6 traffic-filter V6 out: no IPv6 access list V6"
            ]
        );
    }

    #[test]
    fn entering_a_list_or_repeating_a_binding_keeps_the_section_shared() {
        let (mut config, errors) =
            parse_config("ip access-list extended A\ninterface eth0\n ip access-group A in\n");
        assert_eq!(errors, []);
        let before = config.access_lists.clone();
        assert_eq!(
            apply_text(
                &mut config,
                "ip access-list extended A\ninterface eth0\n ip access-group A in\n"
            ),
            []
        );
        assert!(Arc::ptr_eq(&before, &config.access_lists));
    }

    #[test]
    fn help_offers_the_protocols_and_commit_rechecks_bindings_when_a_list_goes() {
        let trees = crate::editor::config_trees();
        let labels: Vec<_> = (trees.sub["ext-nacl"].help("permit ").unwrap())
            .into_iter()
            .map(|i| i.label)
            .collect();
        assert_eq!(labels, ["icmp", "ip", "tcp", "udp", "<0-255>"]);
        let (old, errors) =
            parse_config("ip access-list extended A\ninterface eth0\n ip access-group A in\n");
        assert_eq!(errors, []);
        assert_eq!(validate(&old), Vec::<String>::new());
        let mut new = old.clone();
        assert_eq!(apply_text(&mut new, "no ip access-list extended A\n"), []);
        assert_eq!(
            crate::validate_change(&old, &new),
            ["% eth0: ip access-group A in: no IPv4 access list A"]
        );
    }

    #[test]
    fn bad_names_and_long_remarks_are_refused() {
        let (_, errors) = parse_config(&format!(
            "ip access-list extended a/b\nip access-list extended A\n remark {}\n",
            "x".repeat(101)
        ));
        let messages: Vec<_> = errors.iter().map(|e| e.error.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "% Invalid access list name \"a/b\": up to 64 letters, digits, '-', '_' and '.'",
                "% Remark is longer than 100 characters"
            ]
        );
    }
}
