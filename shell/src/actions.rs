//! What a matched line does, and the built-in shell commands of each mode,
//! declared once in [`BUILTINS`] with the same syntax strings as the
//! configuration commands.

use crate::interrupt::Interrupt;
use grammar::editor::ConfigTrees;
use grammar::{Args, CommandTree, ConfigCommand, SyntaxError};
use std::sync::Arc;

/// A show command registered by the embedder: returns the text to print.
pub type ShowFn = dyn Fn(&Args) -> String + Send + Sync;
/// An exec command registered by the embedder: output, or a `%` error;
/// a long one may watch the session's Ctrl-C.
pub type ExecFn = dyn Fn(&Args, &Interrupt) -> Result<String, String> + Send + Sync;

/// The shell's own commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Enable,
    Disable,
    Configure,
    ConfigureExclusive,
    Exit,
    End,
    Do,
    Commit,
    Abort,
    ShowVersion,
    ShowClock,
    ShowHistory,
    ShowRunning,
    ShowStartup,
    ShowCandidate,
    ShowCommitList,
    WriteMemory,
    Rollback,
    TerminalLength,
}

/// What a line matched.
#[derive(Clone)]
pub enum Action {
    Config(ConfigCommand),
    Builtin(Builtin),
    Show(Arc<ShowFn>),
    Exec(Arc<ExecFn>),
}

impl Action {
    /// Whether the command prints output that `|` filters may apply to.
    pub fn is_filterable(&self) -> bool {
        use Builtin::*;
        match self {
            Action::Show(_) | Action::Exec(_) => true,
            Action::Builtin(b) => matches!(
                b,
                ShowVersion
                    | ShowClock
                    | ShowHistory
                    | ShowRunning
                    | ShowStartup
                    | ShowCandidate
                    | ShowCommitList
            ),
            Action::Config(_) => false,
        }
    }
}

/// The modes a command may be typed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeKind {
    User,
    Privileged,
    Config,
    /// Every configuration sub-mode (`(config-if)`, `(config-vrf)`, ...).
    SubMode,
}

use ModeKind::{Config as C, Privileged as P, SubMode as I, User as U};

/// One built-in command.
pub struct BuiltinDef {
    pub syntax: &'static str,
    pub help: &'static [&'static str],
    pub action: Builtin,
    pub modes: &'static [ModeKind],
}

pub const SHOW_HELP: &str = "Show running system information";

pub const BUILTINS: &[BuiltinDef] = &[
    BuiltinDef {
        syntax: "enable",
        help: &["Turn on privileged commands"],
        action: Builtin::Enable,
        modes: &[U],
    },
    BuiltinDef {
        syntax: "disable",
        help: &["Turn off privileged commands"],
        action: Builtin::Disable,
        modes: &[P],
    },
    BuiltinDef {
        syntax: "configure [terminal]",
        help: &[
            "Enter configuration mode",
            "Configure from the terminal, each line applied at once (as IOS)",
        ],
        action: Builtin::Configure,
        modes: &[P],
    },
    BuiltinDef {
        syntax: "configure exclusive",
        help: &[
            "Enter configuration mode",
            "Configure a candidate, applied by 'commit' (or 'commit confirmed')",
        ],
        action: Builtin::ConfigureExclusive,
        modes: &[P],
    },
    BuiltinDef {
        syntax: "exit",
        help: &["Exit the current mode (or the session)"],
        action: Builtin::Exit,
        modes: &[U, P, C, I],
    },
    BuiltinDef {
        syntax: "end",
        help: &["Exit configuration mode (also Ctrl-Z)"],
        action: Builtin::End,
        modes: &[C, I],
    },
    BuiltinDef {
        syntax: "do LINE$command",
        help: &["Run an EXEC command", "The command"],
        action: Builtin::Do,
        modes: &[C, I],
    },
    BuiltinDef {
        syntax: "commit [confirmed <1-1440>$minutes]",
        help: &[
            "Validate the candidate and make it the running configuration",
            "Revert by itself unless confirmed by another commit",
            "Minutes before reverting",
        ],
        action: Builtin::Commit,
        modes: &[C, I],
    },
    BuiltinDef {
        syntax: "abort",
        help: &["Discard the candidate and leave configuration mode"],
        action: Builtin::Abort,
        modes: &[C, I],
    },
    BuiltinDef {
        syntax: "show version",
        help: &[SHOW_HELP, "System software and uptime"],
        action: Builtin::ShowVersion,
        modes: &[U, P, C],
    },
    BuiltinDef {
        syntax: "show clock",
        help: &[SHOW_HELP, "Display the system clock"],
        action: Builtin::ShowClock,
        modes: &[U, P, C],
    },
    BuiltinDef {
        syntax: "show history",
        help: &[SHOW_HELP, "Commands typed in this session"],
        action: Builtin::ShowHistory,
        modes: &[U, P, C],
    },
    BuiltinDef {
        syntax: "show running-config [LINE$section]",
        help: &[
            SHOW_HELP,
            "Current operating configuration",
            "Only blocks starting with this text (e.g. interface eth0)",
        ],
        action: Builtin::ShowRunning,
        modes: &[P, C],
    },
    BuiltinDef {
        syntax: "show running-config interface [IFNAME$interface]",
        help: &[
            SHOW_HELP,
            "Current operating configuration",
            "Show the configuration of the interfaces",
            "Only this interface",
        ],
        action: Builtin::ShowRunning,
        modes: &[P, C],
    },
    BuiltinDef {
        syntax: "show startup-config",
        help: &[SHOW_HELP, "Contents of the startup configuration file"],
        action: Builtin::ShowStartup,
        modes: &[P, C],
    },
    BuiltinDef {
        syntax: "show configuration",
        help: &[SHOW_HELP, "Uncommitted changes of this session"],
        action: Builtin::ShowCandidate,
        modes: &[P, C],
    },
    BuiltinDef {
        syntax: "show configuration commit list",
        help: &[
            SHOW_HELP,
            "Configuration",
            "Commit history",
            "List the commits",
        ],
        action: Builtin::ShowCommitList,
        modes: &[P, C],
    },
    BuiltinDef {
        syntax: "write [memory]",
        help: &[
            "Write the running configuration (to the startup file)",
            "To the startup configuration file",
        ],
        action: Builtin::WriteMemory,
        modes: &[P],
    },
    BuiltinDef {
        syntax: "copy running-config startup-config",
        help: &[
            "Copy a configuration",
            "From the running configuration",
            "To the startup file",
        ],
        action: Builtin::WriteMemory,
        modes: &[P],
    },
    BuiltinDef {
        syntax: "rollback configuration last <1-100>$count",
        help: &[
            "Return to an earlier configuration",
            "The running configuration",
            "Undo the most recent commits",
            "How many commits to undo",
        ],
        action: Builtin::Rollback,
        modes: &[P],
    },
    BuiltinDef {
        syntax: "terminal length <0-512>$lines",
        help: &[
            "Set terminal line parameters",
            "Set number of lines on a screen",
            "Number of lines on screen (0 for no pausing)",
        ],
        action: Builtin::TerminalLength,
        modes: &[U, P],
    },
];

/// The command tree of every mode.
pub struct Trees {
    pub user: CommandTree<Action>,
    pub privileged: CommandTree<Action>,
    /// The global configuration mode and its sub-modes.
    pub config: ConfigTrees<Action>,
}

impl Trees {
    /// The trees with the built-in and configuration commands.
    pub fn with_builtins() -> Result<Trees, SyntaxError> {
        let mut trees = Trees {
            user: CommandTree::new(),
            privileged: CommandTree::new(),
            config: ConfigTrees::build(Action::Config)?,
        };
        for def in BUILTINS {
            trees.add(def.modes, def.syntax, def.help, Action::Builtin(def.action))?;
        }
        Ok(trees)
    }

    /// The trees of a kind of mode (every sub-mode's for `SubMode`).
    fn of(&mut self, mode: ModeKind) -> Vec<&mut CommandTree<Action>> {
        match mode {
            ModeKind::User => vec![&mut self.user],
            ModeKind::Privileged => vec![&mut self.privileged],
            ModeKind::Config => vec![&mut self.config.global],
            ModeKind::SubMode => self.config.sub.values_mut().collect(),
        }
    }

    /// Adds a command in each of `modes`.
    pub fn add(
        &mut self,
        modes: &[ModeKind],
        syntax: &str,
        help: &[&str],
        action: Action,
    ) -> Result<(), SyntaxError> {
        for &mode in modes {
            for tree in self.of(mode) {
                tree.add(syntax, help, action.clone())?;
            }
        }
        Ok(())
    }
}
