//! The inspect element: the stateful session table's limits, in IOS's
//! `ip inspect` words: `ip inspect max-sessions N`, `ip inspect tcp
//! synwait-time|idle-time|finwait-time SECONDS`, `ip inspect udp idle-time
//! SECONDS`, `ip inspect icmp idle-time SECONDS`, each with its `no` form
//! back to the default. Only what was typed is kept, so a default changed
//! in a later release reaches configurations that never set it.

use crate::commands::{set_or_clear, CommandDef, Edit, Mode, INCOMPLETE};
use crate::config::Config;
use crate::render::Block;
use crate::tree::Args;
use std::sync::Arc;

/// Sessions the table holds when `max-sessions` is not set.
pub const DEFAULT_MAX_SESSIONS: u32 = 1_000_000;
/// Seconds a TCP session may wait for its handshake to complete.
pub const DEFAULT_TCP_SYNWAIT: u32 = 30;
/// Seconds an established TCP session may be idle.
pub const DEFAULT_TCP_IDLE: u32 = 3600;
/// Seconds a TCP session is kept after FIN or RST.
pub const DEFAULT_TCP_FINWAIT: u32 = 5;
/// Seconds a UDP session may be idle.
pub const DEFAULT_UDP_IDLE: u32 = 30;
/// Seconds an ICMP (echo) session may be idle.
pub const DEFAULT_ICMP_IDLE: u32 = 10;

/// Session table settings as typed (seconds; None = default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inspect {
    pub max_sessions: Option<u32>,
    pub tcp_synwait: Option<u32>,
    pub tcp_idle: Option<u32>,
    pub tcp_finwait: Option<u32>,
    pub udp_idle: Option<u32>,
    pub icmp_idle: Option<u32>,
}

/// The settings in force: what was typed, else the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    pub max_sessions: u32,
    pub tcp_synwait: u32,
    pub tcp_idle: u32,
    pub tcp_finwait: u32,
    pub udp_idle: u32,
    pub icmp_idle: u32,
}

impl Inspect {
    /// The values in force.
    pub fn effective(&self) -> SessionLimits {
        SessionLimits {
            max_sessions: self.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS),
            tcp_synwait: self.tcp_synwait.unwrap_or(DEFAULT_TCP_SYNWAIT),
            tcp_idle: self.tcp_idle.unwrap_or(DEFAULT_TCP_IDLE),
            tcp_finwait: self.tcp_finwait.unwrap_or(DEFAULT_TCP_FINWAIT),
            udp_idle: self.udp_idle.unwrap_or(DEFAULT_UDP_IDLE),
            icmp_idle: self.icmp_idle.unwrap_or(DEFAULT_ICMP_IDLE),
        }
    }

    /// Each setting with the words that set it, in running-config order.
    fn settings(&self) -> [(&'static str, Option<u32>); 6] {
        [
            ("max-sessions", self.max_sessions),
            ("tcp synwait-time", self.tcp_synwait),
            ("tcp idle-time", self.tcp_idle),
            ("tcp finwait-time", self.tcp_finwait),
            ("udp idle-time", self.udp_idle),
            ("icmp idle-time", self.icmp_idle),
        ]
    }

    /// The setting a line names.
    fn setting_mut(&mut self, args: &Args) -> &mut Option<u32> {
        if args.has("max-sessions") {
            &mut self.max_sessions
        } else if args.has("udp") {
            &mut self.udp_idle
        } else if args.has("icmp") {
            &mut self.icmp_idle
        } else if args.has("synwait-time") {
            &mut self.tcp_synwait
        } else if args.has("finwait-time") {
            &mut self.tcp_finwait
        } else {
            &mut self.tcp_idle
        }
    }
}

pub struct Element;

/// One definition for all six settings: they share the handler, and
/// the syntax gives each its own range.
const COMMANDS: &[CommandDef] = &[CommandDef {
    mode: Mode::Global,
    syntax: "ip inspect (max-sessions <1-16777216>$value|tcp (synwait-time|idle-time|finwait-time) <1-2147483>$value|udp idle-time <1-2147483>$value|icmp idle-time <1-2147483>$value)",
    help: &[
        "Global IP configuration",
        "Stateful session table",
        "Most sessions the table holds (default 1000000)",
        "Sessions",
        "TCP sessions",
        "Seconds to wait for the handshake (default 30)",
        "Seconds an established session may be idle (default 3600)",
        "Seconds to keep a session after FIN or RST (default 5)",
        "Seconds",
        "UDP sessions",
        "Seconds a session may be idle (default 30)",
        "Seconds",
        "ICMP sessions",
        "Seconds a session may be idle (default 10)",
        "Seconds",
    ],
    handler: ip_inspect,
}];

static DECLARATION: super::Declaration = super::Declaration {
    name: "inspect",
    commands: COMMANDS,
    sub_modes: &[],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        for (words, value) in config.inspect.settings() {
            if let Some(value) = value {
                out.push(Block::line(format!("ip inspect {words} {value}")));
            }
        }
    }

    fn unchanged(&self, _old: &Config, _new: &Config) -> bool {
        true // no checks: the syntax bounds every value
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let seconds = || proptest::option::of(1u32..=2_147_483);
        (
            proptest::option::of(1u32..=16_777_216),
            [seconds(), seconds(), seconds(), seconds(), seconds()],
        )
            .prop_map(|(max, timeouts)| {
                let [tcp_synwait, tcp_idle, tcp_finwait, udp_idle, icmp_idle] = timeouts;
                let inspect = Inspect {
                    max_sessions: max,
                    tcp_synwait,
                    tcp_idle,
                    tcp_finwait,
                    udp_idle,
                    icmp_idle,
                };
                (inspect.settings().iter())
                    .filter_map(|(words, v)| v.map(|v| format!("ip inspect {words} {v}\n")))
                    .collect()
            })
            .boxed()
    }
}

/// `ip inspect SETTING VALUE`; `no ip inspect SETTING` restores its default.
fn ip_inspect(edit: &mut Edit<'_>) -> Result<(), String> {
    let value = set_or_clear(edit.negated, || {
        let value = edit.args.number("value").ok_or(INCOMPLETE)?;
        Ok(value as u32)
    })?;
    let mut inspect = (*edit.config.inspect).clone();
    let setting = inspect.setting_mut(edit.args);
    if *setting != value {
        *setting = value;
        edit.config.inspect = Arc::new(inspect);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_text, parse_config, render};

    #[test]
    fn each_setting_is_set_rendered_and_defaulted_by_no() {
        let (mut config, errors) = parse_config(
            "ip inspect max-sessions 2000000\nip inspect tcp synwait-time 10\n\
             ip inspect tcp idle-time 600\nip inspect tcp finwait-time 2\n\
             ip inspect udp idle-time 60\nip inspect icmp idle-time 5\n",
        );
        assert_eq!(errors, []);
        assert_eq!(
            config.inspect.effective(),
            SessionLimits {
                max_sessions: 2_000_000,
                tcp_synwait: 10,
                tcp_idle: 600,
                tcp_finwait: 2,
                udp_idle: 60,
                icmp_idle: 5
            }
        );
        assert_eq!(
            render(&config),
            "!\nip inspect max-sessions 2000000\nip inspect tcp synwait-time 10\n\
             ip inspect tcp idle-time 600\nip inspect tcp finwait-time 2\n\
             ip inspect udp idle-time 60\nip inspect icmp idle-time 5\n!\nend\n"
        );
        let errors = apply_text(
            &mut config,
            "no ip inspect max-sessions\nno ip inspect tcp synwait-time\nno ip inspect tcp idle-time 600\n\
             no ip inspect tcp finwait-time\nno ip inspect udp idle-time\nno ip inspect icmp idle-time\n",
        );
        assert_eq!(errors, []);
        assert_eq!(*config.inspect, Inspect::default());
        assert_eq!(Inspect::default().effective().tcp_idle, DEFAULT_TCP_IDLE);
    }

    #[test]
    fn out_of_range_values_are_refused_and_unchanged_settings_stay_shared() {
        let (mut config, errors) =
            parse_config("ip inspect max-sessions 0\nip inspect udp idle-time 2147484\n");
        assert_eq!(errors.len(), 2);
        assert!(errors[0].error.message.starts_with("% Invalid input"));
        let before = config.inspect.clone();
        assert_eq!(apply_text(&mut config, "no ip inspect udp idle-time\n"), []);
        assert!(Arc::ptr_eq(&before, &config.inspect));
    }
}
