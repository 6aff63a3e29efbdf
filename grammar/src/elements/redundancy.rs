//! The redundancy element: the high-availability pair's state
//! synchronisation. `redundancy` opens `(config-red)`, where
//! - `peer A.B.C.D [port N]` names the other box of the pair (its address
//!   on the sync link; UDP port 3780 by default, conntrackd's);
//! - `authentication key WORD` is the shared key that authenticates every
//!   sync message (HMAC-SHA256); required with a peer;
//! - `no sync sessions|nat|slb` leaves a table out of the sync (all three
//!   are synchronised by default: the firewall's sessions, NAT's
//!   translations, the load balancer's sessions);
//! - `group vrrp IFNAME N` ties VRRP group N on IFNAME to the pair's
//!   failover group: the box is active while every member is master, and
//!   a member whose interface fails takes the whole group's priority down
//!   with it, so the box fails over as one.
//!
//! `no redundancy` removes it all.

use crate::commands::{required, CommandDef, ConfigContext, Edit, Mode, SubMode, INCOMPLETE};
use crate::config::Config;
use crate::render::Block;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// The sync's UDP port when `peer` names none (conntrackd's).
pub const DEFAULT_SYNC_PORT: u16 = 3780;

/// `(config-red)#`, opened by `redundancy`.
pub static REDUNDANCY_MODE: SubMode = SubMode {
    prompt: "red",
    parent: None,
};

/// The tables the pair may keep alike, as `sync` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncedTable {
    Sessions,
    Nat,
    Slb,
}

impl SyncedTable {
    pub const ALL: [SyncedTable; 3] = [SyncedTable::Sessions, SyncedTable::Nat, SyncedTable::Slb];

    pub fn word(self) -> &'static str {
        match self {
            SyncedTable::Sessions => "sessions",
            SyncedTable::Nat => "nat",
            SyncedTable::Slb => "slb",
        }
    }
}

/// The pair's settings as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redundancy {
    /// `redundancy` was typed (its block is written even when empty).
    pub configured: bool,
    pub peer: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub key: Option<String>,
    /// Tables left out (`no sync TABLE`).
    pub unsynced: BTreeSet<SyncedTable>,
    /// (interface, VRRP group) of the failover group.
    pub group: BTreeSet<(String, u8)>,
}

impl Redundancy {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_SYNC_PORT)
    }

    pub fn syncs(&self, table: SyncedTable) -> bool {
        self.peer.is_some() && !self.unsynced.contains(&table)
    }
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "redundancy",
        help: &["High-availability pair: state synchronisation"],
        handler: redundancy,
    },
    CommandDef {
        mode: Mode::Sub(&REDUNDANCY_MODE),
        syntax: "peer A.B.C.D$peer [port <1-65535>$port]",
        help: &[
            "The other box of the pair",
            "Its address on the sync link",
            "UDP port of the sync (default 3780)",
            "Port number",
        ],
        handler: peer,
    },
    CommandDef {
        mode: Mode::Sub(&REDUNDANCY_MODE),
        syntax: "authentication key WORD$key",
        help: &[
            "Authentication of the sync messages",
            "The key the pair shares (HMAC-SHA256)",
            "The key",
        ],
        handler: key,
    },
    CommandDef {
        mode: Mode::Sub(&REDUNDANCY_MODE),
        syntax: "sync (sessions|nat|slb)",
        help: &[
            "Tables kept alike on the pair (all by default)",
            "The firewall's sessions",
            "NAT's translations",
            "The load balancer's sessions",
        ],
        handler: sync,
    },
    CommandDef {
        mode: Mode::Sub(&REDUNDANCY_MODE),
        syntax: "group vrrp WORD$interface <1-255>$group",
        help: &[
            "The failover group: VRRP groups that fail over together",
            "A VRRP group",
            "Its interface",
            "Its group number",
        ],
        handler: group,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "redundancy",
    commands: COMMANDS,
    sub_modes: &[&REDUNDANCY_MODE],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let r = &config.redundancy;
        if !r.configured {
            return;
        }
        let mut lines = Vec::new();
        if let Some(peer) = r.peer {
            lines.push(match r.port {
                Some(port) => format!("peer {peer} port {port}"),
                None => format!("peer {peer}"),
            });
        }
        lines.extend(r.key.as_ref().map(|k| format!("authentication key {k}")));
        lines.extend(r.unsynced.iter().map(|t| format!("no sync {}", t.word())));
        lines.extend(r.group.iter().map(|(i, g)| format!("group vrrp {i} {g}")));
        out.push(Block {
            header: "redundancy".to_string(),
            body: lines,
        });
    }

    fn secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[("authentication key", "key")]
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let r = &config.redundancy;
        if r.peer.is_some() && r.key.is_none() {
            problems.push("% redundancy: peer needs an authentication key".to_string());
        }
        for (interface, group) in &r.group {
            if !config
                .vrrp
                .groups
                .contains_key(&(interface.clone(), *group))
            {
                problems.push(format!(
                    "% redundancy: group vrrp {interface} {group}: no vrrp {group} on {interface}"
                ));
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.redundancy, &new.redundancy) && super::same(&old.vrrp, &new.vrrp)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        // Unicast peers: multicast and broadcast ones are refused.
        let peer =
            proptest::option::of(((1u8..224, any::<[u8; 3]>()), proptest::option::of(1u16..)));
        let key = proptest::option::of("[A-Za-z0-9]{1,16}");
        let unsynced = proptest::collection::btree_set(0..3usize, 0..3);
        let group = proptest::collection::btree_set(("eth[0-3]", 1u8..), 0..3);
        (any::<bool>(), peer, key, unsynced, group)
            .prop_map(|(configured, peer, key, unsynced, group)| {
                if !configured {
                    return String::new();
                }
                let mut text = String::from("redundancy\n");
                if let Some(((first, rest), port)) = peer {
                    let [b, c, d] = rest;
                    text += &format!(" peer {}", Ipv4Addr::new(first, b, c, d));
                    text.extend(port.map(|p| format!(" port {p}")));
                    text.push('\n');
                }
                text.extend(key.map(|k| format!(" authentication key {k}\n")));
                for t in unsynced {
                    text += &format!(" no sync {}\n", SyncedTable::ALL[t].word());
                }
                for (interface, number) in group {
                    text += &format!(" group vrrp {interface} {number}\n");
                }
                text
            })
            .boxed()
    }
}

fn section<'e>(edit: &'e mut Edit<'_>) -> &'e mut Redundancy {
    Arc::make_mut(&mut edit.config.redundancy)
}

/// Enters `(config-red)`; `no redundancy` removes the pair's settings.
fn redundancy(edit: &mut Edit<'_>) -> Result<(), String> {
    if edit.negated {
        if edit.config.redundancy.configured {
            *section(edit) = Redundancy::default();
        }
        return Ok(());
    }
    if !edit.config.redundancy.configured {
        section(edit).configured = true;
    }
    edit.enter = Some(ConfigContext::Sub(&REDUNDANCY_MODE, "pair".to_string()));
    Ok(())
}

fn peer(edit: &mut Edit<'_>) -> Result<(), String> {
    edit.object(&REDUNDANCY_MODE)?;
    if edit.negated {
        let r = section(edit);
        (r.peer, r.port) = (None, None);
        return Ok(());
    }
    let peer = edit.args.ipv4("peer").ok_or(INCOMPLETE)?;
    if peer.is_unspecified() || peer.is_multicast() || peer.is_broadcast() {
        return Err(format!("% {peer} cannot be a peer's address"));
    }
    let port = edit.args.number("port").map(|p| p as u16);
    let r = section(edit);
    (r.peer, r.port) = (Some(peer), port);
    Ok(())
}

fn key(edit: &mut Edit<'_>) -> Result<(), String> {
    edit.object(&REDUNDANCY_MODE)?;
    let key = match edit.negated {
        true => None,
        false => Some(required(edit.args, "key")?.to_string()),
    };
    section(edit).key = key;
    Ok(())
}

/// `sync TABLE` puts a table back (they are all synchronised by default);
/// `no sync TABLE` leaves it out.
fn sync(edit: &mut Edit<'_>) -> Result<(), String> {
    edit.object(&REDUNDANCY_MODE)?;
    let table = (SyncedTable::ALL.into_iter())
        .find(|t| edit.args.has(t.word()))
        .ok_or(INCOMPLETE)?;
    let negated = edit.negated;
    let unsynced = &mut section(edit).unsynced;
    match negated {
        true => unsynced.insert(table),
        false => unsynced.remove(&table),
    };
    Ok(())
}

fn group(edit: &mut Edit<'_>) -> Result<(), String> {
    edit.object(&REDUNDANCY_MODE)?;
    let interface = required(edit.args, "interface")?.to_string();
    let number = edit.args.number("group").ok_or(INCOMPLETE)? as u8;
    let negated = edit.negated;
    let members = &mut section(edit).group;
    match negated {
        true if !members.remove(&(interface.clone(), number)) => {
            return Err(format!(
                "% group vrrp {interface} {number} is not in the group"
            ))
        }
        true => {}
        false => {
            members.insert((interface, number));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{parse_config, render, validate};

    #[test]
    fn the_block_round_trips_and_a_peer_needs_a_key() {
        let text =
            "redundancy\n peer 10.9.0.2 port 4000\n authentication key s3cret\n no sync slb\n";
        let (config, errors) = parse_config(text);
        assert_eq!(errors, []);
        assert!(config.redundancy.syncs(super::SyncedTable::Nat));
        assert!(!config.redundancy.syncs(super::SyncedTable::Slb));
        assert!(render(&config).contains(text), "{}", render(&config));
        let (keyless, _) = parse_config("redundancy\n peer 10.9.0.2\n");
        let problems = validate(&keyless);
        assert!(
            problems.iter().any(|p| p.contains("authentication key")),
            "{problems:?}"
        );
    }
}
