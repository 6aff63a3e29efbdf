//! The TCP MSS element: `ip tcp adjust-mss N` on an interface (IOS's
//! words) lowers the maximum segment size that TCP SYNs passing through
//! it announce, so that connections through a tunnel or a smaller MTU
//! further on do not depend on path-MTU discovery. `no ip tcp adjust-mss`.

use crate::commands::{change_if, CommandDef, Edit, Mode, INCOMPLETE};
use crate::config::{Config, INTERFACE_MODE};
use std::collections::BTreeMap;

/// The clamp of each interface that has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpMss {
    pub interfaces: BTreeMap<String, u16>,
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[CommandDef {
    mode: Mode::Sub(&INTERFACE_MODE),
    syntax: "ip tcp adjust-mss <500-1460>$mss",
    help: &[
        "Interface IP configuration",
        "TCP header",
        "Lower the MSS of TCP SYNs through the interface",
        "Maximum segment size in bytes",
    ],
    handler: adjust_mss,
}];

static DECLARATION: super::Declaration = super::Declaration {
    name: "tcp mss",
    commands: COMMANDS,
    sub_modes: &[],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn interface_lines(&self, config: &Config, interface: &str, out: &mut Vec<String>) {
        if let Some(mss) = config.tcp_mss.interfaces.get(interface) {
            out.push(format!("ip tcp adjust-mss {mss}"));
        }
    }

    fn forget_interface(&self, config: &mut Config, interface: &str) {
        let needed = config.tcp_mss.interfaces.contains_key(interface);
        change_if(&mut config.tcp_mss, needed, |t| {
            t.interfaces.remove(interface);
        });
    }

    fn unchanged(&self, _old: &Config, _new: &Config) -> bool {
        true // no checks: the syntax bounds the value
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        proptest::option::of(("[0-3]", 500u16..=1460))
            .prop_map(|c| {
                c.map_or(String::new(), |(n, mss)| {
                    format!("interface eth{n}\n ip tcp adjust-mss {mss}\n")
                })
            })
            .boxed()
    }
}

fn adjust_mss(edit: &mut Edit<'_>) -> Result<(), String> {
    let interface = edit.object(&INTERFACE_MODE)?;
    let mss = match edit.negated {
        true => None,
        false => Some(edit.args.number("mss").ok_or(INCOMPLETE)? as u16),
    };
    let current = edit.config.tcp_mss.interfaces.get(&interface).copied();
    change_if(&mut edit.config.tcp_mss, current != mss, |t| match mss {
        Some(mss) => {
            t.interfaces.insert(interface, mss);
        }
        None => {
            t.interfaces.remove(&interface);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{apply_text, parse_config, render};

    #[test]
    fn the_clamp_is_set_rendered_and_removed() {
        let (mut config, errors) = parse_config("interface eth0\n ip tcp adjust-mss 1360\n");
        assert_eq!(errors, []);
        assert_eq!(config.tcp_mss.interfaces["eth0"], 1360);
        assert!(render(&config).contains(" ip tcp adjust-mss 1360\n"));
        let errors = apply_text(
            &mut config,
            "interface eth0\n ip tcp adjust-mss 400\n no ip tcp adjust-mss\n",
        );
        assert_eq!(errors.len(), 1, "400 is below IOS's range");
        assert!(config.tcp_mss.interfaces.is_empty());
    }
}
