//! The control-plane element: policers for traffic addressed to the
//! appliance itself, one per class, in a simpler form than IOS's MQC
//! service policy: `control-plane` opens `(config-cp)`, where `police
//! CLASS rate PPS [burst PACKETS]` sets a class's packets per second.
//!
//! Every class has a default policer (see [`default_policer`]), so
//! management stays reachable under a flood with no configuration at all:
//! floods of one class cannot starve the others, and SSH keeps a share of
//! its own. Only classes set here are kept and rendered.

use crate::commands::{change_if, CommandDef, ConfigContext, Edit, Mode, SubMode, INCOMPLETE};
use crate::config::Config;
use crate::render::Block;
use crate::tree::Args;
use std::collections::BTreeMap;
use std::fmt;

/// `(config-cp)#`, opened by `control-plane`.
pub static CP_MODE: SubMode = SubMode {
    prompt: "cp",
    parent: None,
};

/// The largest burst `police` takes (the syntax's bound).
const MAX_BURST: u32 = 1_000_000;

/// A class of traffic to the appliance's own addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CpClass {
    /// ARP requests and replies, IPv6 neighbour discovery.
    ArpNd,
    /// ICMP and ICMPv6 other than neighbour discovery.
    Icmp,
    /// TCP to the SSH port.
    Ssh,
    /// Other TCP and UDP to own addresses.
    TcpUdp,
    /// The HA pair's sync: UDP from the `redundancy` peer to its port.
    Redundancy,
    /// Everything else.
    Other,
}

/// A token bucket: `pps` packets per second, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policer {
    pub pps: u32,
    pub burst: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ControlPlane {
    /// The classes set by `police`; the others use [`default_policer`].
    pub policers: BTreeMap<CpClass, Policer>,
}

impl CpClass {
    pub const ALL: [CpClass; 6] = [
        CpClass::ArpNd,
        CpClass::Icmp,
        CpClass::Ssh,
        CpClass::TcpUdp,
        CpClass::Redundancy,
        CpClass::Other,
    ];

    /// The class a `police` line names.
    fn of(args: &Args) -> CpClass {
        let named = CpClass::ALL.into_iter().find(|c| args.has(&c.to_string()));
        named.unwrap_or(CpClass::Other)
    }
}

impl fmt::Display for CpClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CpClass::ArpNd => "arp-nd",
            CpClass::Icmp => "icmp",
            CpClass::Ssh => "ssh",
            CpClass::TcpUdp => "tcp-udp",
            CpClass::Redundancy => "redundancy",
            CpClass::Other => "other",
        })
    }
}

/// The policer of a class nothing configured. The rates are far above
/// what management needs (an SSH login is tens of packets) and far below
/// what would let a flood take a core from the dataplane; ARP/ND gets the
/// most because losing it loses every neighbour.
pub const fn default_policer(class: CpClass) -> Policer {
    let (pps, burst) = match class {
        CpClass::ArpNd => (2000, 500),
        CpClass::Icmp => (1000, 200),
        // SYN floods are stopped before the policers (the dataplane's SYN
        // guard): SSH's budget carries established sessions, bulk exec
        // output's acknowledgements included. Other TCP/UDP stays well
        // under what the local stack drains while starved of CPU, since it
        // shares the stack's input queue with SSH (measured: 20,000 pps of
        // UDP flood filled it).
        CpClass::Ssh => (5000, 1000),
        CpClass::TcpUdp => (2000, 500),
        // A bulk copy keeps 32 messages of 20 entries in flight: room for
        // 200,000 entries a second.
        CpClass::Redundancy => (10_000, 2_000),
        CpClass::Other => (500, 100),
    };
    Policer { pps, burst }
}

impl ControlPlane {
    /// The policer in force for `class`.
    pub fn effective(&self, class: CpClass) -> Policer {
        (self.policers.get(&class).copied()).unwrap_or(default_policer(class))
    }
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "control-plane",
        help: &["Configure the policers of traffic to the appliance itself"],
        handler: control_plane,
    },
    CommandDef {
        mode: Mode::Sub(&CP_MODE),
        // The rate is optional in the syntax only so that `no police CLASS`
        // is complete; without `no` the handler asks for it.
        syntax: "police (arp-nd|icmp|ssh|tcp-udp|redundancy|other) [rate <1-10000000>$pps [burst <1-1000000>$burst]]",
        help: &[
            "Police a class of traffic to the appliance",
            "ARP and IPv6 neighbour discovery (default 2000 pps, burst 500)",
            "ICMP and ICMPv6 (default 1000 pps, burst 200)",
            "SSH (default 5000 pps, burst 1000)",
            "Other TCP and UDP (default 2000 pps, burst 500)",
            "The HA pair's sync from its peer (default 10000 pps, burst 2000)",
            "Everything else (default 500 pps, burst 100)",
            "Packets per second",
            "Packets per second",
            "Packets let through at once (default: a fifth of a second's worth)",
            "Packets",
        ],
        handler: police,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "control plane",
    commands: COMMANDS,
    sub_modes: &[&CP_MODE],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let policers = config.control_plane.policers.iter();
        let lines = policers.map(|(c, p)| format!("police {c} rate {} burst {}", p.pps, p.burst));
        out.extend(Block::with_lines("control-plane", lines.collect()));
    }

    fn unchanged(&self, _old: &Config, _new: &Config) -> bool {
        true // no checks: the syntax bounds every value
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let policer = (
            proptest::sample::select(CpClass::ALL.to_vec()),
            1u32..=10_000_000,
            proptest::option::of(1u32..=1_000_000),
        );
        proptest::collection::vec(policer, 0..4)
            .prop_map(|policers| {
                let mut text = String::from("control-plane\n");
                for (class, pps, burst) in policers {
                    text.push_str(&format!(" police {class} rate {pps}"));
                    text.extend(burst.map(|b| format!(" burst {b}")));
                    text.push('\n');
                }
                text
            })
            .boxed()
    }
}

/// Enters `(config-cp)`; `no control-plane` restores every default.
fn control_plane(edit: &mut Edit<'_>) -> Result<(), String> {
    if edit.negated {
        let cp = &mut edit.config.control_plane;
        change_if(cp, !cp.policers.is_empty(), |c| c.policers.clear());
        return Ok(());
    }
    edit.enter = Some(ConfigContext::Sub(&CP_MODE, String::new()));
    Ok(())
}

/// `police CLASS rate PPS [burst N]`; without a burst, a fifth of a
/// second's worth (the defaults' ratio, at most the largest burst), so a rate alone behaves like the
/// defaults do. `no police CLASS` restores the class's default.
fn police(edit: &mut Edit<'_>) -> Result<(), String> {
    edit.object(&CP_MODE)?;
    let class = CpClass::of(edit.args);
    let wanted = match edit.negated {
        true => None,
        false => {
            let pps = edit.args.number("pps").ok_or(INCOMPLETE)? as u32;
            let burst =
                (edit.args.number("burst")).map_or((pps / 5).clamp(1, MAX_BURST), |b| b as u32);
            Some(Policer { pps, burst })
        }
    };
    let cp = &mut edit.config.control_plane;
    change_if(cp, cp.policers.get(&class).copied() != wanted, |c| {
        match wanted {
            Some(p) => c.policers.insert(class, p),
            None => c.policers.remove(&class),
        };
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_text, parse_config, render};

    #[test]
    fn policers_are_set_rendered_with_their_burst_and_defaulted_by_no() {
        let (mut config, errors) = parse_config(
            "control-plane\n police ssh rate 300\n police arp-nd rate 5000 burst 800\n",
        );
        assert_eq!(errors, []);
        let cp = &config.control_plane;
        assert_eq!(
            cp.effective(CpClass::Ssh),
            Policer {
                pps: 300,
                burst: 60
            }
        );
        assert_eq!(cp.effective(CpClass::Icmp), default_policer(CpClass::Icmp));
        assert_eq!(
            render(&config),
            "!\ncontrol-plane\n police arp-nd rate 5000 burst 800\n police ssh rate 300 burst 60\n!\nend\n"
        );
        assert_eq!(
            apply_text(&mut config, "control-plane\n no police ssh\n"),
            []
        );
        assert_eq!(config.control_plane.policers.len(), 1);
        assert_eq!(apply_text(&mut config, "no control-plane\n"), []);
        assert_eq!(render(&config), "!\nend\n");
    }

    #[test]
    fn defaults_keep_every_class_policed() {
        let cp = ControlPlane::default();
        for class in CpClass::ALL {
            let p = cp.effective(class);
            assert!(p.pps >= 500 && p.burst >= 100 && p.burst < p.pps, "{class}");
        }
        let (_, errors) = parse_config("control-plane\n police ssh rate 0\n police bgp rate 5\n");
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn a_rate_is_required_and_the_default_burst_stays_in_range() {
        let (config, errors) =
            parse_config("control-plane\n police ssh\n police other rate 10000000\n");
        let messages: Vec<_> = errors.iter().map(|e| e.error.message.as_str()).collect();
        assert_eq!(messages, ["% Incomplete command."]);
        let other = config.control_plane.effective(CpClass::Other);
        assert_eq!((other.pps, other.burst), (10_000_000, MAX_BURST));
    }
}
