//! The management element: the appliance's own monitoring, logging and
//! time services, in IOS's words where IOS has them.
//! - `ip http metrics port N`: a Prometheus endpoint (`/metrics`) on TCP
//!   port N of the appliance's own addresses; off until set. (IOS has no
//!   such command; `ip http` is where IOS keeps its HTTP server.)
//! - `ip http access-class NAME`: only sources the IPv4 access list NAME
//!   permits may scrape it (first match, implicit deny, sources only), as
//!   IOS's `ip http access-class` limits its HTTP server.
//! - `logging host A.B.C.D`: RFC 5424 syslog over UDP 514 to that host;
//!   `logging trap LEVEL`: the least severe lines sent there (default
//!   informational); `logging buffered [N] [LEVEL]`: lines kept for `show
//!   logging` (IOS counts bytes here; this counts lines) and the least
//!   severe kept (default debugging: all). Levels are IOS's names, from
//!   emergencies (0) to debugging (7).
//! - `ntp server A.B.C.D`: the SNTP client's servers.
//!
//! Each has its `no` form; `no logging host` and `no ntp server` without
//! an address remove them all.

use crate::commands::{edit_set, required, set_or_clear, CommandDef, Edit, Mode, INCOMPLETE};
use crate::config::{Config, Entry, Family};
use crate::render::Block;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Lines `show logging` keeps when `logging buffered` is not set.
pub const DEFAULT_LOG_BUFFER: u32 = 200;

/// IOS's severity levels, by number (RFC 5424's).
pub const LOG_LEVELS: [&str; 8] = [
    "emergencies",
    "alerts",
    "critical",
    "errors",
    "warnings",
    "notifications",
    "informational",
    "debugging",
];
/// IOS's defaults: every line buffered, informational and worse to syslog.
pub const DEFAULT_BUFFERED_LEVEL: u8 = 7;
pub const DEFAULT_TRAP_LEVEL: u8 = 6;

/// The management services' settings as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Management {
    /// TCP port of the metrics endpoint; None: not served.
    pub metrics_port: Option<u16>,
    /// IPv4 access list of who may scrape.
    pub http_access_class: Option<String>,
    pub logging_hosts: BTreeSet<Ipv4Addr>,
    pub logging_buffered: Option<u32>,
    /// The least severe level buffered (`logging buffered LEVEL`).
    pub logging_buffered_level: Option<u8>,
    /// The least severe level sent to the hosts (`logging trap LEVEL`).
    pub logging_trap: Option<u8>,
    pub ntp_servers: BTreeSet<Ipv4Addr>,
}

impl Management {
    /// Lines the log keeps.
    pub fn log_buffer(&self) -> u32 {
        self.logging_buffered.unwrap_or(DEFAULT_LOG_BUFFER)
    }

    /// The least severe level `show logging` keeps.
    pub fn buffered_level(&self) -> u8 {
        self.logging_buffered_level
            .unwrap_or(DEFAULT_BUFFERED_LEVEL)
    }

    /// The least severe level the syslog hosts get.
    pub fn trap_level(&self) -> u8 {
        self.logging_trap.unwrap_or(DEFAULT_TRAP_LEVEL)
    }
}

/// Whether `ip http access-class` lets `source` connect: its list's first
/// entry whose source matches decides, none denies; no class permits all.
pub fn http_client_permitted(config: &Config, source: IpAddr) -> bool {
    let Some(name) = &config.management.http_access_class else {
        return true;
    };
    let Some(list) = config.access_lists.list(Family::Ipv4, name) else {
        return false;
    };
    let rules = list.entries.values().filter_map(|e| match e {
        Entry::Rule(rule) => Some(rule),
        Entry::Remark(_) => None,
    });
    (rules.into_iter().find(|r| r.src.contains(source))).is_some_and(|r| r.permit)
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "ip http metrics port <1-65535>$port",
        help: &[
            "Global IP configuration",
            "HTTP server",
            "Prometheus metrics at /metrics",
            "TCP port of the metrics endpoint",
            "Port number",
        ],
        handler: metrics_port,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip http access-class WORD$name",
        help: &[
            "Global IP configuration",
            "HTTP server",
            "Sources that may connect, by IPv4 access list",
            "Access list name or number",
        ],
        handler: http_access_class,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "logging host A.B.C.D$host",
        help: &[
            "Logging",
            "Send RFC 5424 syslog over UDP to a host",
            "Syslog server address",
        ],
        handler: logging_host,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "logging buffered [<10-100000>$lines] [(emergencies|alerts|critical|errors|warnings|notifications|informational|debugging)]",
        help: &[
            "Logging",
            "What show logging keeps",
            "Lines (default 200)",
            "System is unusable (0)",
            "Immediate action needed (1)",
            "Critical conditions (2)",
            "Error conditions (3)",
            "Warning conditions (4)",
            "Normal but significant conditions (5)",
            "Informational messages (6)",
            "Debugging messages (7, the default: all)",
        ],
        handler: logging_buffered,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "logging trap [(emergencies|alerts|critical|errors|warnings|notifications|informational|debugging)]",
        help: &[
            "Logging",
            "The least severe lines sent to the syslog hosts",
            "System is unusable (0)",
            "Immediate action needed (1)",
            "Critical conditions (2)",
            "Error conditions (3)",
            "Warning conditions (4)",
            "Normal but significant conditions (5)",
            "Informational messages (6, the default)",
            "Debugging messages (7)",
        ],
        handler: logging_trap,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ntp server A.B.C.D$server",
        help: &[
            "Network time",
            "Synchronise with an (S)NTP server",
            "Server address",
        ],
        handler: ntp_server,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "management",
    commands: COMMANDS,
    sub_modes: &[],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let m = &config.management;
        let level = |l: Option<u8>| l.map(|l| LOG_LEVELS[usize::from(l)]);
        let buffered = match (m.logging_buffered, level(m.logging_buffered_level)) {
            (None, None) => None,
            (Some(n), None) => Some(format!("logging buffered {n}")),
            (None, Some(l)) => Some(format!("logging buffered {l}")),
            (Some(n), Some(l)) => Some(format!("logging buffered {n} {l}")),
        };
        let trap = level(m.logging_trap).map(|l| format!("logging trap {l}"));
        let lines = (buffered.into_iter())
            .chain(trap)
            .chain(m.logging_hosts.iter().map(|h| format!("logging host {h}")))
            .chain(m.metrics_port.map(|p| format!("ip http metrics port {p}")))
            .chain((m.http_access_class.iter()).map(|n| format!("ip http access-class {n}")))
            .chain(m.ntp_servers.iter().map(|s| format!("ntp server {s}")));
        out.extend(lines.map(Block::line));
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        if let Some(name) = &config.management.http_access_class {
            if config.access_lists.list(Family::Ipv4, name).is_none() {
                problems.push(format!(
                    "% ip http access-class {name}: no IPv4 access list {name}"
                ));
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.management, &new.management)
            && super::same(&old.access_lists, &new.access_lists)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let addresses =
            || proptest::collection::btree_set(any::<u32>().prop_map(Ipv4Addr::from), 0..3);
        (
            proptest::option::of(1u16..),
            proptest::option::of("[A-Za-z0-9][A-Za-z0-9_-]{0,8}"),
            addresses(),
            (
                proptest::option::of(10u32..=100_000),
                proptest::option::of(0usize..8),
                proptest::option::of(0usize..8),
            ),
            addresses(),
        )
            .prop_map(|(port, class, hosts, (buffered, level, trap), servers)| {
                let mut text = String::new();
                text.extend(port.map(|p| format!("ip http metrics port {p}\n")));
                text.extend(class.map(|n| format!("ip http access-class {n}\n")));
                text.extend(hosts.iter().map(|h| format!("logging host {h}\n")));
                text.extend(buffered.map(|n| format!("logging buffered {n}\n")));
                text.extend(level.map(|l| format!("logging buffered {}\n", LOG_LEVELS[l])));
                text.extend(trap.map(|l| format!("logging trap {}\n", LOG_LEVELS[l])));
                text.extend(servers.iter().map(|s| format!("ntp server {s}\n")));
                text
            })
            .boxed()
    }
}

/// Applies `change` to a copy of the section and keeps it only if it differs.
fn edit(
    edit: &mut Edit<'_>,
    change: impl FnOnce(&mut Management, &mut Edit<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut management = (*edit.config.management).clone();
    change(&mut management, edit)?;
    if management != *edit.config.management {
        edit.config.management = Arc::new(management);
    }
    Ok(())
}

/// `WORDS N` sets a number (the syntax bounds it), `no WORDS` clears it.
fn number<T: TryFrom<u64>>(
    e: &mut Edit<'_>,
    arg: &str,
    field: fn(&mut Management) -> &mut Option<T>,
) -> Result<(), String> {
    edit(e, |m, e| {
        *field(m) = set_or_clear(e.negated, || {
            let n = e.args.number(arg).ok_or(INCOMPLETE)?;
            T::try_from(n).map_err(|_| INCOMPLETE.to_string())
        })?;
        Ok(())
    })
}

/// `WORDS A.B.C.D` adds an address, `no WORDS [A.B.C.D]` removes it (all).
fn addresses(
    e: &mut Edit<'_>,
    arg: &str,
    words: &str,
    field: fn(&mut Management) -> &mut BTreeSet<Ipv4Addr>,
) -> Result<(), String> {
    edit(e, |m, e| {
        edit_set(field(m), e.negated, e.args.ipv4(arg), |a| {
            format!("% No {words} {a}")
        })
    })
}

/// `ip http metrics port N`; `no ip http metrics` stops serving.
fn metrics_port(e: &mut Edit<'_>) -> Result<(), String> {
    number(e, "port", |m| &mut m.metrics_port)
}

/// `ip http access-class NAME` (the list may be defined later: commit
/// checks that it is); `no ip http access-class` lets everyone scrape.
fn http_access_class(e: &mut Edit<'_>) -> Result<(), String> {
    edit(e, |m, e| {
        m.http_access_class = set_or_clear(e.negated, || {
            let name = required(e.args, "name")?;
            crate::commands::check_name("access list", name)?;
            Ok(name.to_string())
        })?;
        Ok(())
    })
}

fn logging_host(e: &mut Edit<'_>) -> Result<(), String> {
    addresses(e, "host", "logging host", |m| &mut m.logging_hosts)
}

/// The level named on the line, if any.
fn typed_level(e: &Edit<'_>) -> Option<u8> {
    (LOG_LEVELS.iter().position(|l| e.args.has(l))).map(|l| l as u8)
}

/// `logging buffered [N] [LEVEL]` sets what is typed; `no logging
/// buffered` restores both defaults.
fn logging_buffered(e: &mut Edit<'_>) -> Result<(), String> {
    let (lines, level) = (e.args.number("lines"), typed_level(e));
    if !e.negated && lines.is_none() && level.is_none() {
        return Err(INCOMPLETE.to_string());
    }
    edit(e, |m, e| {
        if e.negated {
            m.logging_buffered = None;
            m.logging_buffered_level = None;
            return Ok(());
        }
        if let Some(n) = lines {
            m.logging_buffered = Some(n as u32);
        }
        if level.is_some() {
            m.logging_buffered_level = level;
        }
        Ok(())
    })
}

/// `logging trap LEVEL`; `no logging trap` restores informational.
fn logging_trap(e: &mut Edit<'_>) -> Result<(), String> {
    let level = typed_level(e);
    edit(e, |m, e| {
        m.logging_trap = set_or_clear(e.negated, || level.ok_or(INCOMPLETE.to_string()))?;
        Ok(())
    })
}

fn ntp_server(e: &mut Edit<'_>) -> Result<(), String> {
    addresses(e, "server", "ntp server", |m| &mut m.ntp_servers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_text, parse_config, render, validate};

    #[test]
    fn settings_render_in_ios_order_and_the_access_class_must_exist() {
        let (config, errors) = parse_config(
            "ntp server 192.0.2.123\nip http metrics port 9100\nip http access-class SCRAPERS\n\
             logging host 192.0.2.9\nlogging host 192.0.2.8\nlogging buffered 500\n",
        );
        assert_eq!(errors, []);
        let text = render(&config);
        assert!(
            text.contains(
                "logging buffered 500\nlogging host 192.0.2.8\nlogging host 192.0.2.9\n\
                 ip http metrics port 9100\nip http access-class SCRAPERS\nntp server 192.0.2.123\n"
            ),
            "{text}"
        );
        assert_eq!(config.management.log_buffer(), 500);
        assert_eq!(
            validate(&config),
            ["% ip http access-class SCRAPERS: no IPv4 access list SCRAPERS"]
        );
    }

    #[test]
    fn levels_are_ios_names_kept_with_the_buffer_size_and_defaulted_by_no() {
        let (mut config, errors) =
            parse_config("logging buffered 500\nlogging buffered warnings\nlogging trap errors\n");
        assert_eq!(errors, []);
        let m = &config.management;
        assert_eq!(
            (m.log_buffer(), m.buffered_level(), m.trap_level()),
            (500, 4, 3)
        );
        let text = render(&config);
        assert!(
            text.contains("logging buffered 500 warnings\nlogging trap errors\n"),
            "{text}"
        );
        assert_eq!(parse_config(&text).0, config);
        let errors = apply_text(
            &mut config,
            "no logging buffered\nno logging trap\nlogging buffered\n",
        );
        assert_eq!(errors.len(), 1, "a level or a size is needed");
        let m = &config.management;
        assert_eq!(
            (m.log_buffer(), m.buffered_level(), m.trap_level()),
            (200, 7, 6)
        );
    }

    #[test]
    fn no_forms_remove_one_or_all_and_say_what_is_not_there() {
        let (mut config, _) = parse_config(
            "logging host 192.0.2.9\nlogging host 192.0.2.8\nntp server 192.0.2.1\n\
             ip http metrics port 9100\nlogging buffered 50\nip http access-class A\n",
        );
        let errors = apply_text(
            &mut config,
            "no logging host 192.0.2.9\nno logging host 192.0.2.7\nno ntp server\n\
             no ip http metrics port\nno logging buffered\nno ip http access-class\n",
        );
        let messages: Vec<_> = errors.iter().map(|e| e.error.message.as_str()).collect();
        assert_eq!(messages, ["% No logging host 192.0.2.7"]);
        let expected = Management {
            logging_hosts: ["192.0.2.8".parse().unwrap()].into(),
            ..Management::default()
        };
        assert_eq!(*config.management, expected);
        assert_eq!(config.management.log_buffer(), DEFAULT_LOG_BUFFER);
        let (_, errors) = parse_config("logging buffered 5\nip http metrics port 0\n");
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn the_access_class_permits_by_source_first_match_and_denies_the_rest() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (mut config, _) = parse_config(
            "ip access-list extended SCRAPERS\n deny ip host 192.0.2.7 any\n              permit tcp 192.0.2.0 0.0.0.255 any eq 80\n",
        );
        assert!(
            http_client_permitted(&config, ip("198.51.100.1")),
            "no class"
        );
        apply_text(&mut config, "ip http access-class SCRAPERS\n");
        assert!(http_client_permitted(&config, ip("192.0.2.8")));
        assert!(!http_client_permitted(&config, ip("192.0.2.7")));
        assert!(!http_client_permitted(&config, ip("198.51.100.1")));
        assert!(!http_client_permitted(&config, ip("2001:db8::1")));
        apply_text(&mut config, "ip http access-class MISSING\n");
        assert!(!http_client_permitted(&config, ip("192.0.2.8")));
    }
}
