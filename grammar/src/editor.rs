//! Applying configuration lines to a [`Config`]: the global and sub-mode
//! command trees (built from every element's definitions), the fallback
//! from a sub-mode to the global mode, and parsing a whole configuration
//! text (a startup file, a pasted block).

use crate::commands::{add_commands, ConfigCommand, ConfigContext, Edit, Mode, SubMode};
use crate::config::{sub_modes, Config, ELEMENTS};
use crate::error::CliError;
use crate::syntax::SyntaxError;
use crate::tree::{Args, CommandTree, Matched, ParseError};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The configuration commands of each mode.
pub struct ConfigTrees<A> {
    pub global: CommandTree<A>,
    /// Keyed by the sub-mode's prompt.
    pub sub: BTreeMap<&'static str, CommandTree<A>>,
}

impl<A: Clone> ConfigTrees<A> {
    /// Every element's commands, wrapped as the trees' action type.
    pub fn build(wrap: impl Fn(ConfigCommand) -> A + Copy) -> Result<Self, SyntaxError> {
        let commands = || ELEMENTS.iter().flat_map(|e| e.declaration().commands);
        let mut global = CommandTree::new();
        add_commands(&mut global, commands(), Mode::Global, wrap)?;
        let mut sub = BTreeMap::new();
        for mode in sub_modes() {
            let mut tree = CommandTree::new();
            // A mode's own command hides its parent's of the same syntax
            // (a WireGuard peer's `description` is not the interface's).
            let mut taken = Vec::new();
            for own_or_parent in mode.lineage() {
                let defs: Vec<_> = commands()
                    .filter(|d| d.mode == Mode::Sub(own_or_parent) && !taken.contains(&d.syntax))
                    .collect();
                taken.extend(defs.iter().map(|d| d.syntax));
                add_commands(&mut tree, defs, Mode::Sub(own_or_parent), wrap)?;
            }
            sub.insert(mode.prompt, tree);
        }
        Ok(ConfigTrees { global, sub })
    }

    /// The trees searched in `context`, innermost first.
    pub fn for_context(&self, context: &ConfigContext) -> Vec<&CommandTree<A>> {
        match context {
            ConfigContext::Global => vec![&self.global],
            ConfigContext::Sub(mode, _) | ConfigContext::Range(mode, _) => {
                self.sub_then_global(mode)
            }
        }
    }

    fn sub_then_global(&self, mode: &SubMode) -> Vec<&CommandTree<A>> {
        self.sub
            .get(mode.prompt)
            .into_iter()
            .chain([&self.global])
            .collect()
    }
}

/// The trees, built once from the command definitions.
pub fn config_trees() -> &'static ConfigTrees<ConfigCommand> {
    static TREES: OnceLock<ConfigTrees<ConfigCommand>> = OnceLock::new();
    // The definitions are constants checked by the tests below.
    TREES.get_or_init(|| ConfigTrees::build(|c| c).expect("configuration commands are valid"))
}

/// Matches `line` in the first tree that accepts it (a sub-mode, then its
/// parents); returns the match and the index of the tree. On failure the
/// error that got furthest into the line is reported.
pub fn parse_in_modes<'t, A: Clone>(
    trees: &[&'t CommandTree<A>],
    line: &str,
) -> Result<(Matched<'t, A>, usize), ParseError> {
    let mut best: Option<ParseError> = None;
    for (level, tree) in trees.iter().enumerate() {
        match tree.parse(line) {
            Ok(matched) => return Ok((matched, level)),
            Err(error) => {
                if best.as_ref().is_none_or(|b| progress(&error) > progress(b)) {
                    best = Some(error);
                }
            }
        }
    }
    Err(best.unwrap_or(ParseError::Empty))
}

fn progress(error: &ParseError) -> usize {
    match error {
        ParseError::Empty => 0,
        ParseError::Invalid { column } => *column,
        ParseError::Incomplete | ParseError::Ambiguous { .. } => usize::MAX,
    }
}

/// What a configuration command did besides changing the configuration.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The sub-mode it entered, if any.
    pub enter: Option<ConfigContext>,
    /// `%` notes for the user.
    pub notes: Vec<String>,
}

/// Runs a matched configuration command; in a range, once for each object
/// of the range, on all of them or (on any error) on none.
pub fn run_command(
    config: &mut Config,
    context: &ConfigContext,
    command: ConfigCommand,
    args: &Args,
) -> Result<Outcome, CliError> {
    let ConfigContext::Range(mode, objects) = context else {
        return run_once(config, context, command, args);
    };
    let mut trial = config.clone();
    let mut outcome = Outcome::default();
    for object in objects {
        let one = ConfigContext::Sub(mode, object.clone());
        let done = run_once(&mut trial, &one, command, args).map_err(|e| {
            let reason = e.message.strip_prefix("% ").unwrap_or(&e.message);
            CliError::new(format!("% {object}: {reason} (nothing was changed)"))
        })?;
        outcome.notes.extend(done.notes);
        outcome.enter = done.enter.or(outcome.enter);
    }
    *config = trial;
    Ok(outcome)
}

fn run_once(
    config: &mut Config,
    context: &ConfigContext,
    command: ConfigCommand,
    args: &Args,
) -> Result<Outcome, CliError> {
    let mut edit = Edit {
        config,
        context,
        args,
        negated: command.negated,
        enter: None,
        notes: Vec::new(),
    };
    (command.handler)(&mut edit)?;
    Ok(Outcome {
        enter: edit.enter,
        notes: edit.notes,
    })
}

/// Applies one configuration line in `context`, moving `context` to the
/// sub-mode a command enters or to the parent mode a fallback matched in.
pub fn apply_line(
    config: &mut Config,
    context: &mut ConfigContext,
    line: &str,
) -> Result<(), CliError> {
    let (matched, level) = parse_in_modes(&config_trees().for_context(context), line)?;
    let effective = if level == 0 {
        context.clone()
    } else {
        ConfigContext::Global
    };
    let outcome = run_command(config, &effective, *matched.action, &matched.args)?;
    *context = outcome.enter.unwrap_or(effective);
    Ok(())
}

/// An error on one line of a configuration text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based.
    pub line_number: usize,
    pub line: String,
    pub error: CliError,
}

/// Parses a configuration text (running-config format). Blank lines, `!`
/// comments and `end` are skipped; bad lines are reported and the good ones
/// still applied.
pub fn parse_config(text: &str) -> (Config, Vec<LineError>) {
    let mut config = Config::default();
    let errors = apply_text(&mut config, text);
    (config, errors)
}

/// Applies a configuration text on top of `config`.
pub fn apply_text(config: &mut Config, text: &str) -> Vec<LineError> {
    let mut context = ConfigContext::Global;
    let mut errors = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('!') || trimmed == "end" {
            continue;
        }
        if let Err(error) = apply_line(config, &mut context, line) {
            errors.push(LineError {
                line_number: index + 1,
                line: line.to_string(),
                error,
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{InterfaceKind, NextHop};

    #[test]
    fn command_definitions_build() {
        let trees = config_trees();
        assert!(trees.global.parse("hostname r1").is_ok());
        assert!(trees.sub["if"].parse("no shutdown").is_ok());
        assert!(trees.sub["vrf"].parse("rd 65000:1").is_ok());
    }

    #[test]
    fn parses_a_configuration_with_sub_modes_and_fallback() {
        let (config, errors) = parse_config(
            "hostname edge1\ninterface eth0\n ip address 10.0.0.1/24\n mtu 9000\n\
             ip route 0.0.0.0/0 10.0.0.254\ninterface eth0.100\n encapsulation dot1q 100\n\
             interface vxlan7\n vni 7\n remote 10.0.0.9\n",
        );
        assert_eq!(errors, []);
        assert_eq!(config.system.hostname.as_deref(), Some("edge1"));
        assert_eq!(config.interfaces["eth0"].mtu, Some(9000));
        assert_eq!(config.interfaces["eth0.100"].dot1q, Some(100));
        let route = config.routes.global_ipv4().next().unwrap();
        assert_eq!(
            route.next_hop,
            NextHop::Address("10.0.0.254".parse().unwrap())
        );
        assert_eq!(InterfaceKind::of("vxlan7"), InterfaceKind::Vxlan);
        assert_eq!(
            config.interfaces["vxlan7"].vxlan.as_ref().unwrap().vni,
            Some(7)
        );
    }

    #[test]
    fn bad_lines_are_reported_and_good_lines_kept() {
        let (config, errors) =
            parse_config("hostname r1\nhostnme r2\ninterface eth1\n mtu 10\n shutdown\n");
        assert_eq!(errors.len(), 2);
        assert_eq!((errors[0].line_number, errors[0].error.caret), (2, Some(0)));
        assert_eq!((errors[1].line_number, errors[1].error.caret), (4, Some(5)));
        assert_eq!(config.system.hostname.as_deref(), Some("r1"));
        assert!(config.interfaces["eth1"].shutdown);
    }

    #[test]
    fn sub_mode_commands_are_refused_on_the_wrong_interface_kind() {
        let (_, errors) = parse_config("interface eth0\n vni 5\n encapsulation dot1q 5\n");
        assert_eq!(errors.len(), 2);
        assert!(errors[0].error.message.contains("not a VXLAN interface"));
        assert!(errors[1].error.message.contains("not a sub-interface"));
    }

    #[test]
    fn no_forms_undo_commands() {
        let mut config = Config::default();
        let errors = apply_text(
            &mut config,
            "hostname r1\nno hostname\ninterface eth0\n ip address 10.0.0.1/24\n \
             no ip address 10.0.0.1/24\n shutdown\n no shutdown\n\
             ip route 10.1.0.0/16 eth0\nno ip route 10.1.0.0/16\n\
             ipv6 route 2001:db8:1::/48 eth0\nipv6 route 2001:db8:1::1/48 2001:db8::2 5\n\
             no ipv6 route 2001:db8:1::/48 eth0\n",
        );
        assert_eq!(errors, []);
        assert_eq!(config.system.hostname, None);
        assert!(config.interfaces["eth0"].ipv4_addresses.is_empty());
        assert!(!config.interfaces["eth0"].shutdown);
        assert!(config.routes.global_ipv4().next().is_none());
        let left: Vec<_> = config.routes.global_ipv6().map(|r| r.next_hop).collect();
        assert_eq!(left, [NextHop::Address("2001:db8::2".parse().unwrap())]);
    }

    #[test]
    fn ipv6_routes_refuse_link_local_next_hops() {
        let (config, errors) = parse_config(
            "ipv6 route ::/0 fe80::1
",
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].error.message,
            "% fe80::1 is not a global unicast address: give a global next hop or an interface"
        );
        assert!(config.routes.global_ipv6().next().is_none());
    }

    #[test]
    fn usernames_store_only_a_hash() {
        let (config, errors) = parse_config("username admin secret hunter2\n");
        assert_eq!(errors, []);
        let user = &config.users["admin"];
        assert_eq!(user.privilege, 15);
        let secret = user.secret.as_ref().unwrap();
        assert!(!secret.0.contains("hunter2") && secret.verify("hunter2"));
    }

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDSMDafHdxbQG4k09b/vKCVbGmVRGNYVty/R38Xyr3UK";

    #[test]
    fn ssh_keys_are_added_rendered_and_removed_one_at_a_time() {
        let other = KEY.replace("VbGmV", "VbGmW");
        let text = format!(
            "username ops privilege 1 ssh-key ssh-ed25519 {KEY} ops@laptop\n\
             username ops ssh-key ssh-ed25519 {other}\n"
        );
        let (mut config, errors) = parse_config(&text);
        assert_eq!(errors, []);
        let user = &config.users["ops"];
        assert_eq!((user.privilege, user.secret.is_none()), (1, true));
        assert_eq!(user.ssh_keys.len(), 2);
        let rendered = crate::render(&config);
        assert!(
            rendered.contains(&format!(
                "username ops privilege 1 ssh-key ssh-ed25519 {KEY} ops@laptop\n"
            )),
            "{rendered}"
        );
        assert_eq!(parse_config(&rendered), (config.clone(), vec![]));

        let no_key = |key: &str| format!("no username ops ssh-key ssh-ed25519 {key}\n");
        assert_eq!(apply_text(&mut config, &no_key(KEY)), []);
        let keys = &config.users["ops"].ssh_keys;
        assert_eq!(keys.iter().map(|k| &k.base64).collect::<Vec<_>>(), [&other]);
        assert_eq!(apply_text(&mut config, &no_key(&other)), []);
        assert!(
            config.users.is_empty(),
            "a user with no way to log in is gone"
        );
    }

    #[test]
    fn a_key_that_is_not_base64_of_its_type_is_refused() {
        let (config, errors) = parse_config("username ops ssh-key ssh-ed25519 AAAA%%%%\n");
        assert!(config.users.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(
            format!("{errors:?}").contains("% The key is not valid base64"),
            "{errors:?}"
        );
        let (_, errors) = parse_config(&format!("username ops ssh-key ssh-rsa {KEY}\n"));
        assert!(
            format!("{errors:?}").contains("not a well-formed ssh-rsa key"),
            "{errors:?}"
        );
    }
}
