//! The system element: `hostname` and `banner motd`.

use crate::commands::{required, set_or_clear, CommandDef, Edit, Mode};
use crate::config::Config;
use crate::render::Block;
use std::sync::Arc;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct System {
    pub hostname: Option<String>,
    pub banner_motd: Option<String>,
}

pub struct Element;

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "hostname WORD$name",
        help: &[
            "Set the system's network name",
            "This system's network name",
        ],
        handler: hostname,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "banner motd LINE$text",
        help: &[
            "Define a login banner",
            "Message of the day banner",
            "Banner text",
        ],
        handler: banner_motd,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "system",
    commands: COMMANDS,
    sub_modes: &[],
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        if let Some(name) = &config.system.hostname {
            out.push(Block::line(format!("hostname {name}")));
        }
        if let Some(text) = &config.system.banner_motd {
            out.push(Block::line(format!("banner motd {text}")));
        }
    }

    fn unchanged(&self, _old: &Config, _new: &Config) -> bool {
        true // no checks
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        (
            proptest::option::of("[a-z][a-z0-9-]{0,20}"),
            proptest::option::of(super::tests::text()),
        )
            .prop_map(|(hostname, banner)| {
                let mut text = String::new();
                if let Some(h) = hostname {
                    text.push_str(&format!("hostname {h}\n"));
                }
                if let Some(b) = banner {
                    text.push_str(&format!("banner motd {b}\n"));
                }
                text
            })
            .boxed()
    }
}

fn system<'e>(edit: &'e mut Edit<'_>) -> &'e mut System {
    Arc::make_mut(&mut edit.config.system)
}

fn hostname(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = set_or_clear(edit.negated, || {
        let name = required(edit.args, "name")?;
        let valid = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        match valid {
            true => Ok(name.to_string()),
            false => Err(format!(
                "% Invalid hostname \"{name}\": letters, digits and '-', starting with a letter"
            )),
        }
    })?;
    system(edit).hostname = name;
    Ok(())
}

fn banner_motd(edit: &mut Edit<'_>) -> Result<(), String> {
    let text = set_or_clear(edit.negated, || {
        required(edit.args, "text").map(str::to_string)
    })?;
    system(edit).banner_motd = text;
    Ok(())
}
