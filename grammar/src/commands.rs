//! What a configuration command is: its definition ([`CommandDef`]: the
//! mode it is typed in, syntax, help, handler), the context it runs in, and
//! what its handler may change ([`Edit`]). The commands themselves live in
//! the network element that owns them (`crate::elements`); every one gets a
//! `no` form.

use crate::config::Config;
use crate::syntax::SyntaxError;
use crate::tree::{Args, CommandTree};
use ipnet::Ipv4Net;
use std::sync::Arc;

/// A configuration sub-mode an element opens (`interface NAME`,
/// `vrf definition NAME`): the `(config-PROMPT)#` it shows.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubMode {
    /// `if` for `(config-if)#`.
    pub prompt: &'static str,
    /// The sub-mode this one is opened from (`real` inside `ip slb
    /// serverfarm`), whose commands are typed here too: a line no mode
    /// takes falls back to the global mode only, so without them the
    /// parent's next line (another `real`) would be refused.
    pub parent: Option<&'static SubMode>,
}

impl SubMode {
    /// This mode, then the modes it is nested in, innermost first.
    pub fn lineage(&'static self) -> impl Iterator<Item = &'static SubMode> {
        std::iter::successors(Some(self), |m| m.parent)
    }
}

/// Where configuration commands are typed: the global configuration mode,
/// a sub-mode for one named object, or a sub-mode for several at once
/// (`interface range`), where each line applies to every one of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigContext {
    Global,
    Sub(&'static SubMode, String),
    Range(&'static SubMode, Vec<String>),
}

impl ConfigContext {
    /// The object a sub-mode configures, if this is `mode` or a mode
    /// nested in it: a nested mode's object starts with its parent's
    /// (which has no blank), so the parent's commands typed there (an
    /// interface's `ip address` in a WireGuard peer's mode) find theirs.
    pub fn object_of(&self, mode: &SubMode) -> Option<&str> {
        match self {
            ConfigContext::Sub(m, name) if *m == mode => Some(name),
            ConfigContext::Sub(m, name) if m.lineage().any(|p| p == mode) => name.split(' ').next(),
            _ => None,
        }
    }
}

/// The mode a command definition belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Global,
    Sub(&'static SubMode),
}

/// What a handler works on.
pub struct Edit<'a> {
    pub config: &'a mut Config,
    pub context: &'a ConfigContext,
    pub args: &'a Args,
    /// The command was typed with `no`.
    pub negated: bool,
    /// Set by commands that enter a sub-mode (`interface`).
    pub enter: Option<ConfigContext>,
    /// Lines to tell the user although the command succeeded (`%` notes,
    /// such as addresses removed by moving an interface to a VRF).
    pub notes: Vec<String>,
}

impl Edit<'_> {
    /// The object of the sub-mode `mode` the line is typed in.
    pub fn object(&self, mode: &SubMode) -> Result<String, String> {
        self.context
            .object_of(mode)
            .map(str::to_string)
            .ok_or_else(|| format!("% Not in config-{} mode", mode.prompt))
    }
}

/// Applies one command; errors are `%` messages.
pub type Handler = fn(&mut Edit<'_>) -> Result<(), String>;

/// A matched configuration command: its handler and whether `no` was typed.
#[derive(Clone, Copy, Debug)]
pub struct ConfigCommand {
    pub handler: Handler,
    pub negated: bool,
}

/// One configuration command definition.
pub struct CommandDef {
    pub mode: Mode,
    pub syntax: &'static str,
    pub help: &'static [&'static str],
    pub handler: Handler,
}

/// Adds the definitions of `defs` typed in `mode` (and their `no` forms)
/// to `tree`, wrapping each matched command as the tree's action type.
pub fn add_commands<'d, A: Clone>(
    tree: &mut CommandTree<A>,
    defs: impl IntoIterator<Item = &'d CommandDef>,
    mode: Mode,
    wrap: impl Fn(ConfigCommand) -> A,
) -> Result<(), SyntaxError> {
    for def in defs.into_iter().filter(|d| d.mode == mode) {
        tree.add_with_no(def.syntax, def.help, |negated| {
            wrap(ConfigCommand {
                handler: def.handler,
                negated,
            })
        })?;
    }
    Ok(())
}

pub const INCOMPLETE: &str = "% Incomplete command.";

/// The longest name of a configured object (an access list, a server farm).
pub const MAX_NAME: usize = 64;

/// A name IOS would take for a `what` (`access list`): letters, digits,
/// `-`, `_` and `.`, so that it reads back as one word.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match valid {
        true => Ok(()),
        false => Err(format!(
            "% Invalid {what} name \"{name}\": up to {MAX_NAME} letters, digits, '-', '_' and '.'"
        )),
    }
}

/// The text argument `name`, which the syntax makes present.
pub fn required<'a>(args: &'a Args, name: &str) -> Result<&'a str, String> {
    args.text(name).ok_or_else(|| INCOMPLETE.to_string())
}

/// Applies a list command to its set: `X v` adds v, `no X v` removes it
/// (`not_there` words the error when it is absent), `no X` empties the set.
pub fn edit_set<T: Ord>(
    set: &mut std::collections::BTreeSet<T>,
    negated: bool,
    value: Option<T>,
    not_there: impl FnOnce(&T) -> String,
) -> Result<(), String> {
    match (negated, value) {
        (true, None) => set.clear(),
        (true, Some(v)) => {
            if !set.remove(&v) {
                return Err(not_there(&v));
            }
        }
        (false, None) => return Err(INCOMPLETE.to_string()),
        (false, Some(v)) => {
            set.insert(v);
        }
    }
    Ok(())
}

/// An IPv4 network typed as `A.B.C.D/M$name` or, as IOS writes it,
/// `A.B.C.D$name A.B.C.D$mask`; None when the line has neither (a `no`
/// form may stop before it). A mask that is not contiguous is refused.
pub fn ipv4_network(args: &Args, name: &str) -> Result<Option<Ipv4Net>, String> {
    if let Some(network) = args.ipv4_prefix(name) {
        return Ok(Some(network));
    }
    let Some(address) = args.ipv4(name) else {
        return Ok(None);
    };
    let mask = args.ipv4("mask").ok_or(INCOMPLETE)?;
    Ipv4Net::with_netmask(address, mask).map(Some).map_err(|_| {
        format!("% Bad mask {mask} for address {address}: not a contiguous network mask")
    })
}

/// `A.B.C.D M.M.M.M`: the running configuration writes IPv4 networks in
/// IOS's mask form, which operators and their tools compare against.
pub fn mask_form(network: &Ipv4Net) -> String {
    format!("{} {}", network.addr(), network.netmask())
}

/// The longest `description` IOS takes.
pub const MAX_DESCRIPTION: usize = 240;

/// The text of `description LINE$text` (None for `no description`),
/// refused when longer than IOS allows.
pub fn description_text(edit: &Edit<'_>) -> Result<Option<String>, String> {
    let text = set_or_clear(edit.negated, || {
        required(edit.args, "text").map(str::to_string)
    })?;
    match text {
        Some(t) if t.len() > MAX_DESCRIPTION => Err(format!(
            "% Description is longer than {MAX_DESCRIPTION} characters"
        )),
        text => Ok(text),
    }
}

/// `X v` sets an optional value, `no X` clears it.
pub fn set_or_clear<T>(
    negated: bool,
    value: impl FnOnce() -> Result<T, String>,
) -> Result<Option<T>, String> {
    match negated {
        true => Ok(None),
        false => value().map(Some),
    }
}

/// Applies `change` to `section` when `needed`: a section shared with the
/// running configuration is copied only for a line that really changes
/// it, so a line that changes nothing costs nothing whatever the
/// configuration's size.
pub fn change_if<S: Clone>(section: &mut Arc<S>, needed: bool, change: impl FnOnce(&mut S)) {
    if needed {
        change(Arc::make_mut(section));
    }
}
