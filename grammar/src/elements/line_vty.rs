//! The `line vty` element: `line vty 0 4` opens `(config-line)`, where
//! `access-class NAME in` and `ipv6 access-class NAME in` say which sources
//! may open SSH sessions (the lists are the access-list element's, and so
//! is the model: `AccessLists::vty_access_class`).
//!
//! It is an element of its own so that its block comes last in the
//! running config, where IOS puts it. Every vty line is the same SSH
//! listener here, so any `line vty FIRST LAST` edits the one setting, and
//! the block is always written `line vty 0 4`.

use super::access_lists::Family;
use crate::commands::{change_if, required, CommandDef, ConfigContext, Edit, Mode, SubMode};
use crate::config::Config;
use crate::render::Block;
use std::sync::Arc;

/// `(config-line)#`, opened by `line vty FIRST LAST`.
pub static LINE_MODE: SubMode = SubMode {
    prompt: "line",
    parent: None,
};

/// The object of `(config-line)`: the one kind of line there is.
const VTY: &str = "vty";

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "line vty <0-15>$first <0-15>$last",
        help: &[
            "Configure a terminal line",
            "Virtual terminal (SSH sessions)",
            "First line number",
            "Last line number",
        ],
        handler: line_vty,
    },
    CommandDef {
        mode: Mode::Sub(&LINE_MODE),
        syntax: "access-class WORD$name in",
        help: &[
            "Filter the sources of sessions with an IPv4 access list",
            "Access list name or number",
            "Filter incoming connections",
        ],
        handler: access_class,
    },
    CommandDef {
        mode: Mode::Sub(&LINE_MODE),
        syntax: "ipv6 access-class WORD$name in",
        help: &[
            "IPv6 options",
            "Filter the sources of sessions with an IPv6 access list",
            "Access list name",
            "Filter incoming connections",
        ],
        handler: access_class,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "line vty",
    commands: COMMANDS,
    sub_modes: &[&LINE_MODE],
};

/// `access-class` or `ipv6 access-class`.
fn class_command(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "access-class",
        Family::Ipv6 => "ipv6 access-class",
    }
}

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let classes = config.access_lists.vty_access_class.iter();
        let lines = classes.map(|(family, name)| format!("{} {name} in", class_command(*family)));
        out.extend(Block::with_lines("line vty 0 4", lines.collect()));
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let lists = &config.access_lists;
        for (family, name) in &lists.vty_access_class {
            if lists.list(*family, name).is_none() {
                problems.push(format!(
                    "% line vty: {} {name} in: no {family} access list {name}",
                    class_command(*family)
                ));
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.access_lists, &new.access_lists)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let name = || proptest::option::of("[A-Za-z0-9][A-Za-z0-9_-]{0,8}");
        (name(), name())
            .prop_map(|(v4, v6)| {
                let mut text = String::from("line vty 0 4\n");
                text.extend(v4.map(|n| format!(" access-class {n} in\n")));
                text.extend(v6.map(|n| format!(" ipv6 access-class {n} in\n")));
                text
            })
            .boxed()
    }
}

/// Enters `(config-line)`; `no line vty ...` removes its settings.
fn line_vty(edit: &mut Edit<'_>) -> Result<(), String> {
    if edit.negated {
        let lists = &mut edit.config.access_lists;
        change_if(lists, !lists.vty_access_class.is_empty(), |l| {
            l.vty_access_class.clear()
        });
        return Ok(());
    }
    let (first, last) = (edit.args.number("first"), edit.args.number("last"));
    if first > last {
        return Err("% The first line number must not be above the last".to_string());
    }
    edit.enter = Some(ConfigContext::Sub(&LINE_MODE, VTY.to_string()));
    Ok(())
}

/// `[ipv6] access-class NAME in` sets the list (which may be defined
/// later: commit checks that it is); `no [ipv6] access-class [NAME]`
/// removes it.
fn access_class(edit: &mut Edit<'_>) -> Result<(), String> {
    edit.object(&LINE_MODE)?;
    let family = Family::typed(edit.args);
    let current = edit.config.access_lists.vty_access_class.get(&family);
    if edit.negated {
        let typed = edit.args.text("name");
        if current.is_none_or(|c| typed.is_some_and(|t| t != c)) {
            return Err(format!(
                "% No {} {}",
                class_command(family),
                typed.unwrap_or("set")
            ));
        }
        Arc::make_mut(&mut edit.config.access_lists)
            .vty_access_class
            .remove(&family);
        return Ok(());
    }
    let name = required(edit.args, "name")?;
    let needed = current.is_none_or(|c| c != name);
    change_if(&mut edit.config.access_lists, needed, |l| {
        l.vty_access_class.insert(family, name.to_string());
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{parse_config, render, validate};

    #[test]
    fn access_classes_render_under_line_vty_0_4_and_name_existing_lists() {
        let (config, errors) = parse_config(
            "ip access-list extended MGMT\n permit tcp 192.0.2.0 0.0.0.255 any eq 22\n\
             line vty 0 15\n access-class MGMT in\n ipv6 access-class MGMT6 in\n",
        );
        assert_eq!(errors, []);
        let text = render(&config);
        assert!(
            text.ends_with(
                "!\nline vty 0 4\n access-class MGMT in\n ipv6 access-class MGMT6 in\n!\nend\n"
            ),
            "{text}"
        );
        assert_eq!(
            validate(&config),
            ["% line vty: ipv6 access-class MGMT6 in: no IPv6 access list MGMT6"]
        );
    }

    #[test]
    fn no_forms_remove_the_class_and_wrong_ones_say_why() {
        let (config, errors) = parse_config(
            "line vty 0 4\n access-class A in\n ipv6 access-class B in\n no access-class A\n",
        );
        assert_eq!(errors, []);
        assert_eq!(config.access_lists.vty_access_class.len(), 1);
        let (config, errors) = parse_config(
            "line vty 0 4\n access-class A in\n no access-class B in\n no ipv6 access-class\n\
             line vty 4 0\nno line vty 0 4\n",
        );
        let messages: Vec<_> = errors.iter().map(|e| e.error.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "% No access-class B",
                "% No ipv6 access-class set",
                "% The first line number must not be above the last"
            ]
        );
        assert!(config.access_lists.vty_access_class.is_empty());
    }
}
