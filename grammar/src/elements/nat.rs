//! The NAT element, in IOS's words: interfaces marked `ip nat inside` or
//! `ip nat outside`; address pools (`ip nat pool NAME START END
//! prefix-length N`); dynamic source translation of the hosts an access
//! list permits, to an interface's address (`ip nat inside source list ACL
//! interface IFNAME overload`, masquerade) or a pool (`... pool NAME
//! [overload]`), per VRF (`vrf NAME`); static translations (`ip nat inside
//! source static [tcp|udp] LOCAL [LPORT] GLOBAL [GPORT] [vrf NAME]`): a
//! one-to-one static translation is an elastic IP, which may be policed in
//! each direction (`police BITS-PER-SECOND [burst BYTES]`); and the
//! translation table's size (`ip nat translation max-entries N`).

use crate::commands::{change_if, required, CommandDef, Edit, Mode, INCOMPLETE};
use crate::config::{Config, Family, INTERFACE_MODE};
use crate::render::Block;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Which side of the translation an interface is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatSide {
    Inside,
    Outside,
}

impl NatSide {
    pub fn word(self) -> &'static str {
        match self {
            NatSide::Inside => "inside",
            NatSide::Outside => "outside",
        }
    }
}

/// `ip nat pool NAME START END prefix-length N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatPool {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub prefix_len: u8,
}

impl NatPool {
    /// The pool's addresses, first to last.
    pub fn addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        (u32::from(self.start)..=u32::from(self.end)).map(Ipv4Addr::from)
    }
}

/// What a dynamic rule translates to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NatTarget {
    /// The interface's (first) address, always with port translation.
    Interface(String),
    Pool(String),
}

/// `ip nat inside source list ACL interface|pool ... [vrf V] [overload]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicNat {
    pub target: NatTarget,
    /// Many hosts share each address by port (PAT); without it each
    /// inside host gets a pool address of its own.
    pub overload: bool,
}

/// The protocol a static translation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StaticProtocol {
    /// The whole address, every protocol (one-to-one: an elastic IP).
    Any,
    Tcp,
    Udp,
}

/// A static translation's inside end: (vrf, protocol, local address,
/// local port (0 for one-to-one)).
pub type StaticKey = (Option<String>, StaticProtocol, Ipv4Addr, u16);

/// An elastic IP's rate limit, the same in each direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatPolice {
    pub bits_per_second: u64,
    pub burst_bytes: u64,
}

/// A static translation's outside end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticNat {
    pub global: Ipv4Addr,
    /// 0 for one-to-one.
    pub global_port: u16,
    pub police: Option<NatPolice>,
}

/// The NAT section of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nat {
    pub sides: BTreeMap<String, NatSide>,
    pub pools: BTreeMap<String, NatPool>,
    /// By (vrf, access list).
    pub dynamic: BTreeMap<(Option<String>, String), DynamicNat>,
    pub statics: BTreeMap<StaticKey, StaticNat>,
    pub max_entries: Option<u32>,
}

/// Translations the table holds when `max-entries` is not set.
pub const DEFAULT_MAX_TRANSLATIONS: u32 = 1_000_000;
/// The burst of a policed elastic IP when none is typed: 500 ms at the rate
/// (TCP through a policer with a shorter one stays well under the rate).
fn default_burst(bits_per_second: u64) -> u64 {
    (bits_per_second / 16).max(1500)
}

impl Nat {
    pub fn is_empty(&self) -> bool {
        *self == Nat::default()
    }

    /// The table's maximum in force.
    pub fn max_translations(&self) -> u32 {
        self.max_entries.unwrap_or(DEFAULT_MAX_TRANSLATIONS)
    }
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Sub(&INTERFACE_MODE),
        syntax: "ip nat (inside|outside)",
        help: &[
            "Interface IP configuration",
            "NAT interface commands",
            "Inside interface for address translation",
            "Outside interface for address translation",
        ],
        handler: side,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip nat pool WORD$name A.B.C.D$start A.B.C.D$end prefix-length <8-32>$len",
        help: &[
            "Global IP configuration",
            "NAT configuration commands",
            "Define pool of addresses",
            "Pool name",
            "Start IP address",
            "End IP address",
            "Specify the prefix length",
            "Prefix length",
        ],
        handler: pool,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip nat inside source list WORD$acl (interface IFNAME$iface|pool WORD$pool) [vrf WORD$vrf] [overload]",
        help: &[
            "Global IP configuration",
            "NAT configuration commands",
            "Inside address translation",
            "Source address translation",
            "Specify access list describing local addresses",
            "Access list name or number",
            "Specify interface for global address",
            "Interface name",
            "Name pool of global addresses",
            "Pool name",
            "Specify VRF",
            "VRF name",
            "Overload an address translation",
        ],
        handler: dynamic,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip nat inside source static [(tcp|udp)] A.B.C.D$local [<1-65535>$lport] A.B.C.D$global [<1-65535>$gport] [vrf WORD$vrf] [police <8000-100000000000>$rate [burst <1500-10000000000>$burst]]",
        help: &[
            "Global IP configuration",
            "NAT configuration commands",
            "Inside address translation",
            "Source address translation",
            "Specify static local->global mapping",
            "Transmission Control Protocol",
            "User Datagram Protocol",
            "Inside local IP address",
            "Local UDP/TCP port",
            "Inside global IP address",
            "Global UDP/TCP port",
            "Specify VRF",
            "VRF name",
            "Rate-limit a one-to-one translation (elastic IP) in each direction",
            "Bits per second",
            "Burst size",
            "Bytes",
        ],
        handler: static_translation,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip nat translation max-entries <1-16777216>$max",
        help: &[
            "Global IP configuration",
            "NAT configuration commands",
            "NAT translation table",
            "Most translations the table holds (default 1000000)",
            "Translations",
        ],
        handler: max_entries,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "nat",
    commands: COMMANDS,
    sub_modes: &[],
};

/// The running-config line of a static translation.
fn static_line((vrf, protocol, local, lport): &StaticKey, s: &StaticNat) -> String {
    let mut line = String::from("ip nat inside source static ");
    match protocol {
        StaticProtocol::Any => line += &format!("{local} {}", s.global),
        StaticProtocol::Tcp | StaticProtocol::Udp => {
            let word = if *protocol == StaticProtocol::Tcp {
                "tcp"
            } else {
                "udp"
            };
            line += &format!("{word} {local} {lport} {} {}", s.global, s.global_port);
        }
    }
    if let Some(vrf) = vrf {
        line += &format!(" vrf {vrf}");
    }
    if let Some(p) = s.police {
        line += &format!(" police {} burst {}", p.bits_per_second, p.burst_bytes);
    }
    line
}

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let nat = &config.nat;
        for (name, p) in &nat.pools {
            out.push(Block::line(format!(
                "ip nat pool {name} {} {} prefix-length {}",
                p.start, p.end, p.prefix_len
            )));
        }
        for ((vrf, acl), rule) in &nat.dynamic {
            let target = match &rule.target {
                NatTarget::Interface(i) => format!("interface {i}"),
                NatTarget::Pool(p) => format!("pool {p}"),
            };
            let vrf = vrf.as_ref().map_or(String::new(), |v| format!(" vrf {v}"));
            let overload = if rule.overload { " overload" } else { "" };
            out.push(Block::line(format!(
                "ip nat inside source list {acl} {target}{vrf}{overload}"
            )));
        }
        for (key, s) in &nat.statics {
            out.push(Block::line(static_line(key, s)));
        }
        if let Some(max) = nat.max_entries {
            out.push(Block::line(format!("ip nat translation max-entries {max}")));
        }
    }

    fn interface_lines(&self, config: &Config, interface: &str, out: &mut Vec<String>) {
        if let Some(side) = config.nat.sides.get(interface) {
            out.push(format!("ip nat {}", side.word()));
        }
    }

    fn forget_interface(&self, config: &mut Config, interface: &str) {
        let needed = config.nat.sides.contains_key(interface);
        change_if(&mut config.nat, needed, |n| {
            n.sides.remove(interface);
        });
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let nat = &config.nat;
        let vrf_defined = |vrf: &Option<String>| {
            vrf.as_ref()
                .is_none_or(|v| config.vrfs.definitions.contains_key(v))
        };
        for ((vrf, acl), rule) in &nat.dynamic {
            let what = format!("ip nat inside source list {acl}");
            if config.access_lists.list(Family::Ipv4, acl).is_none() {
                problems.push(format!("% {what}: no ip access list {acl}"));
            }
            match &rule.target {
                NatTarget::Interface(i) if !config.interfaces.contains_key(i) => {
                    problems.push(format!("% {what}: interface {i} is not configured"))
                }
                NatTarget::Pool(p) if !nat.pools.contains_key(p) => {
                    problems.push(format!("% {what}: pool {p} is not defined"))
                }
                _ => {}
            }
            if !vrf_defined(vrf) {
                problems.push(format!(
                    "% {what}: VRF {} does not exist",
                    vrf.as_deref().unwrap_or("")
                ));
            }
        }
        let mut globals: BTreeMap<(StaticProtocol, Ipv4Addr, u16), &StaticKey> = BTreeMap::new();
        for (key, s) in &nat.statics {
            let line = static_line(key, s);
            if !vrf_defined(&key.0) {
                problems.push(format!("% {line}: VRF does not exist"));
            }
            let clash = [
                (key.1, s.global, s.global_port),
                (StaticProtocol::Any, s.global, 0),
            ];
            let taken = if key.1 == StaticProtocol::Any {
                globals.keys().any(|(_, g, _)| *g == s.global)
            } else {
                clash.iter().any(|c| globals.contains_key(c))
            };
            if taken {
                problems.push(format!(
                    "% {line}: global address {} is already mapped",
                    s.global
                ));
            }
            globals.insert(clash[0], key);
        }
        for (interface, side) in &nat.sides {
            if !config.interfaces.contains_key(interface) {
                problems.push(format!(
                    "% ip nat {}: interface {interface} is not configured",
                    side.word()
                ));
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.nat, &new.nat)
            && super::same(&old.access_lists, &new.access_lists)
            && super::same(&old.interfaces, &new.interfaces)
            && super::same(&old.vrfs, &new.vrfs)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let vrf = || {
            proptest::option::of("[A-C]")
                .prop_map(|v| v.map_or(String::new(), |v| format!(" vrf {v}")))
        };
        let pool =
            (any::<[u8; 3]>(), 0u8..200, 0u8..50, 0u8..8).prop_map(|([a, b, c], s, n, i)| {
                let (start, end) = (Ipv4Addr::new(a, b, c, s), Ipv4Addr::new(a, b, c, s + n));
                format!("ip nat pool P{i} {start} {end} prefix-length 24\n")
            });
        let dynamic = (
            "[A-Z][a-z]{0,4}",
            prop_oneof![
                Just("interface eth1 overload".to_string()),
                "pool P[0-7]( overload)?".prop_map(|p| p)
            ],
            vrf(),
        )
            .prop_map(
                |(acl, target, vrf)| match target.strip_suffix(" overload") {
                    Some(t) => format!("ip nat inside source list {acl} {t}{vrf} overload\n"),
                    None => format!("ip nat inside source list {acl} {target}{vrf}\n"),
                },
            );
        let statics = (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            prop_oneof![Just(""), Just("tcp"), Just("udp")],
            1u16..,
            1u16..,
            vrf(),
            proptest::option::of(8000u64..1_000_000_000),
        )
            .prop_map(|(l, g, proto, lp, gp, vrf, rate)| {
                let (l, g) = (Ipv4Addr::from(l), Ipv4Addr::from(g));
                match (proto, rate) {
                    ("", Some(rate)) => format!(
                        "ip nat inside source static {l} {g}{vrf} police {rate} burst {}\n",
                        default_burst(rate)
                    ),
                    ("", None) => format!("ip nat inside source static {l} {g}{vrf}\n"),
                    (p, _) => format!("ip nat inside source static {p} {l} {lp} {g} {gp}{vrf}\n"),
                }
            });
        let side = ("[0-3]", prop_oneof![Just("inside"), Just("outside")])
            .prop_map(|(n, s)| format!("interface eth{n}\n ip nat {s}\n"));
        (
            proptest::collection::vec(pool, 0..3),
            proptest::collection::vec(dynamic, 0..3),
            proptest::collection::vec(statics, 0..4),
            proptest::collection::vec(side, 0..3),
            proptest::option::of(1u32..=16_777_216),
        )
            .prop_map(|(pools, dynamic, statics, sides, max)| {
                let max = max.map_or(String::new(), |m| {
                    format!("ip nat translation max-entries {m}\n")
                });
                [
                    pools.concat(),
                    dynamic.concat(),
                    statics.concat(),
                    sides.concat(),
                    max,
                ]
                .concat()
            })
            .boxed()
    }
}

/// `ip nat inside|outside` on an interface; `no ip nat inside|outside`.
fn side(edit: &mut Edit<'_>) -> Result<(), String> {
    let interface = edit.object(&INTERFACE_MODE)?;
    let side = if edit.args.has("outside") {
        NatSide::Outside
    } else {
        NatSide::Inside
    };
    let current = edit.config.nat.sides.get(&interface).copied();
    if edit.negated {
        let typed = edit.args.has("inside") || edit.args.has("outside");
        let needed = current.is_some_and(|c| !typed || c == side);
        change_if(&mut edit.config.nat, needed, |n| {
            n.sides.remove(&interface);
        });
        return Ok(());
    }
    change_if(&mut edit.config.nat, current != Some(side), |n| {
        n.sides.insert(interface, side);
    });
    Ok(())
}

/// `ip nat pool NAME START END prefix-length N`: both ends in one network
/// of that length, start first; `no ip nat pool NAME`.
fn pool(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = required(edit.args, "name")?.to_string();
    if edit.negated {
        let needed = edit.config.nat.pools.contains_key(&name);
        change_if(&mut edit.config.nat, needed, |n| {
            n.pools.remove(&name);
        });
        return Ok(());
    }
    let (Some(start), Some(end), Some(len)) = (
        edit.args.ipv4("start"),
        edit.args.ipv4("end"),
        edit.args.number("len"),
    ) else {
        return Err(INCOMPLETE.to_string());
    };
    let len = len as u8;
    let network =
        |a: Ipv4Addr| u32::from(a) & (!0u32).checked_shl(32 - u32::from(len)).unwrap_or(0);
    if u32::from(start) > u32::from(end) {
        return Err(format!(
            "% End address {end} is less than start address {start}"
        ));
    }
    if network(start) != network(end) {
        return Err(format!(
            "% Start and end addresses {start} and {end} are on different /{len} networks"
        ));
    }
    let new = NatPool {
        start,
        end,
        prefix_len: len,
    };
    let needed = edit.config.nat.pools.get(&name) != Some(&new);
    change_if(&mut edit.config.nat, needed, |n| {
        n.pools.insert(name, new);
    });
    Ok(())
}

/// `ip nat inside source list ACL interface IFNAME|pool NAME [vrf V]
/// [overload]`: an interface's address is always overloaded (masquerade).
/// `no ...` removes the rule of that list and VRF.
fn dynamic(edit: &mut Edit<'_>) -> Result<(), String> {
    let key = (
        edit.args.text("vrf").map(str::to_string),
        required(edit.args, "acl")?.to_string(),
    );
    if edit.negated {
        let needed = edit.config.nat.dynamic.contains_key(&key);
        change_if(&mut edit.config.nat, needed, |n| {
            n.dynamic.remove(&key);
        });
        return Ok(());
    }
    let rule = match (edit.args.text("iface"), edit.args.text("pool")) {
        (Some(i), _) => DynamicNat {
            target: NatTarget::Interface(i.to_string()),
            overload: true,
        },
        (_, Some(p)) => DynamicNat {
            target: NatTarget::Pool(p.to_string()),
            overload: edit.args.has("overload"),
        },
        _ => return Err(INCOMPLETE.to_string()),
    };
    let needed = edit.config.nat.dynamic.get(&key) != Some(&rule);
    change_if(&mut edit.config.nat, needed, |n| {
        n.dynamic.insert(key, rule);
    });
    Ok(())
}

/// `ip nat inside source static [tcp|udp] LOCAL [LPORT] GLOBAL [GPORT]
/// [vrf V] [police BPS [burst BYTES]]`: ports go with a protocol, and only
/// a one-to-one translation (an elastic IP) is policed. `no ...` removes
/// the translation of that local end.
fn static_translation(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let protocol = match () {
        _ if args.has("tcp") => StaticProtocol::Tcp,
        _ if args.has("udp") => StaticProtocol::Udp,
        _ => StaticProtocol::Any,
    };
    let local = args.ipv4("local").ok_or(INCOMPLETE)?;
    let port = |name| args.number(name).map(|p| p as u16);
    let with_ports = protocol != StaticProtocol::Any;
    if with_ports != port("lport").is_some()
        || (!edit.negated && with_ports != port("gport").is_some())
    {
        return Err(match with_ports {
            true => "% A tcp or udp translation needs the local and the global port".to_string(),
            false => "% Ports need tcp or udp".to_string(),
        });
    }
    let key = (
        args.text("vrf").map(str::to_string),
        protocol,
        local,
        port("lport").unwrap_or(0),
    );
    if edit.negated {
        let needed = edit.config.nat.statics.contains_key(&key);
        change_if(&mut edit.config.nat, needed, |n| {
            n.statics.remove(&key);
        });
        return Ok(());
    }
    let rate = args.number("rate");
    if rate.is_some() && with_ports {
        return Err("% police applies to a one-to-one translation (an elastic IP)".to_string());
    }
    let new = StaticNat {
        global: args.ipv4("global").ok_or(INCOMPLETE)?,
        global_port: port("gport").unwrap_or(0),
        police: rate.map(|bits_per_second| NatPolice {
            bits_per_second,
            burst_bytes: args
                .number("burst")
                .unwrap_or_else(|| default_burst(bits_per_second)),
        }),
    };
    let needed = edit.config.nat.statics.get(&key) != Some(&new);
    change_if(&mut edit.config.nat, needed, |n| {
        n.statics.insert(key, new);
    });
    Ok(())
}

/// `ip nat translation max-entries N`; `no ...` restores the default.
fn max_entries(edit: &mut Edit<'_>) -> Result<(), String> {
    let max = match edit.negated {
        true => None,
        false => Some(edit.args.number("max").ok_or(INCOMPLETE)? as u32),
    };
    let needed = edit.config.nat.max_entries != max;
    change_if(&mut edit.config.nat, needed, |n| n.max_entries = max);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_text, parse_config, render, validate};

    const TEXT: &str = "\
ip access-list extended INSIDE
 permit ip 10.0.0.0 0.0.0.255 any
interface eth0
 ip address 203.0.113.1/24
 ip nat outside
interface eth1
 ip address 10.0.0.1/24
 ip nat inside
ip nat pool PUB 198.51.100.10 198.51.100.12 prefix-length 24
ip nat inside source list INSIDE interface eth0 overload
ip nat inside source list INSIDE pool PUB vrf A
ip nat inside source static tcp 10.0.0.2 80 203.0.113.1 8080
ip nat inside source static 10.0.0.3 203.0.113.5 police 10000000
ip nat translation max-entries 5000
";

    #[test]
    fn ios_nat_lines_build_the_model_and_render_back() {
        let (config, errors) = parse_config(TEXT);
        assert_eq!(errors, []);
        let nat = &config.nat;
        assert_eq!(nat.sides.get("eth0"), Some(&NatSide::Outside));
        assert_eq!(nat.pools["PUB"].addresses().count(), 3);
        let masquerade = &nat.dynamic[&(None, "INSIDE".to_string())];
        assert_eq!(masquerade.target, NatTarget::Interface("eth0".into()));
        assert!(masquerade.overload);
        assert!(!nat.dynamic[&(Some("A".into()), "INSIDE".into())].overload);
        let eip = &nat.statics[&(None, StaticProtocol::Any, "10.0.0.3".parse().unwrap(), 0)];
        assert_eq!(
            eip.police,
            Some(NatPolice {
                bits_per_second: 10_000_000,
                burst_bytes: 625_000
            })
        );
        assert_eq!(nat.max_translations(), 5000);
        let text = render(&config);
        assert!(text.contains("\n ip nat outside\n"), "{text}");
        assert!(text.contains(
            "ip nat inside source static 10.0.0.3 203.0.113.5 police 10000000 burst 625000\n"
        ));
        assert!(text.contains("ip nat inside source static tcp 10.0.0.2 80 203.0.113.1 8080\n"));
        assert_eq!(parse_config(&text).0, config);
    }

    #[test]
    fn bad_lines_are_refused_and_change_nothing() {
        let (mut config, errors) = parse_config(TEXT);
        assert_eq!(errors, []);
        let before = config.clone();
        for (line, message) in [
            (
                "ip nat pool X 10.0.0.9 10.0.0.1 prefix-length 24",
                "less than start",
            ),
            (
                "ip nat pool X 10.0.0.1 10.0.1.1 prefix-length 24",
                "different /24",
            ),
            (
                "ip nat inside source static tcp 10.0.0.2 203.0.113.1",
                "needs the local and the global port",
            ),
            (
                "ip nat inside source static 10.0.0.2 80 203.0.113.1 80",
                "need tcp or udp",
            ),
            (
                "ip nat inside source static tcp 10.0.0.2 80 203.0.113.1 81 police 9000",
                "one-to-one",
            ),
        ] {
            let errors = apply_text(&mut config, &format!("{line}\n"));
            assert_eq!(errors.len(), 1, "{line}");
            assert!(
                errors[0].error.message.contains(message),
                "{line}: {:?}",
                errors[0]
            );
        }
        assert_eq!(config, before);
    }

    #[test]
    fn commit_checks_name_what_is_missing_or_mapped_twice() {
        let (config, errors) = parse_config(
            "ip nat inside source list NOPE pool NOPOOL vrf NOVRF\n\
             ip nat inside source static 10.0.0.3 203.0.113.5\n\
             ip nat inside source static tcp 10.0.0.4 22 203.0.113.5 22\n\
             interface eth0\n ip nat outside\nno interface eth0\n",
        );
        assert_eq!(errors, []);
        let problems = validate(&config);
        let all = problems.join("\n");
        assert!(all.contains("no ip access list NOPE"), "{all}");
        assert!(all.contains("pool NOPOOL is not defined"), "{all}");
        assert!(all.contains("VRF NOVRF does not exist"), "{all}");
        assert!(all.contains("203.0.113.5 is already mapped"), "{all}");
        assert!(config.nat.sides.is_empty(), "no interface forgets its side");
    }

    #[test]
    fn no_forms_remove_what_they_name() {
        let (mut config, errors) = parse_config(TEXT);
        assert_eq!(errors, []);
        let errors = apply_text(
            &mut config,
            "interface eth0\n no ip nat outside\n\
             no ip nat pool PUB\n\
             no ip nat inside source list INSIDE interface eth0 overload\n\
             no ip nat inside source list INSIDE pool PUB vrf A\n\
             no ip nat inside source static tcp 10.0.0.2 80 203.0.113.1 8080\n\
             no ip nat inside source static 10.0.0.3 203.0.113.5\n\
             no ip nat translation max-entries\n\
             interface eth1\n no ip nat inside\n",
        );
        assert_eq!(errors, []);
        assert!(config.nat.is_empty(), "{:?}", config.nat);
    }
}
