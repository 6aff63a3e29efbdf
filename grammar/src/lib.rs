//! Cisco-style command grammar for Gatehouse.
//!
//! Commands are defined once as syntax strings with help text ([`syntax`]),
//! gathered in per-mode trees ([`tree`]) that match typed lines, answer `?`
//! and complete words. Each network element ([`elements`]) owns its part of
//! the typed model, its configuration commands ([`commands`]), its
//! running-config lines and its commit checks; [`config`] is the registry
//! that puts them together, which [`render`] writes back as running-config
//! text and [`validate`] checks as a whole.

pub mod commands;
pub mod config;
pub mod editor;
pub mod element;
pub mod elements;
pub mod error;
pub mod password;
pub mod render;
pub mod ssh_key;
pub mod syntax;
pub mod tokens;
pub mod tree;
pub mod validate;

pub use commands::{CommandDef, ConfigCommand, ConfigContext};
pub use editor::{apply_line, apply_text, parse_config, parse_in_modes, LineError};
pub use element::Value;
pub use error::CliError;
pub use render::{diff, render};
pub use syntax::SyntaxError;
pub use tree::{format_help, Args, CommandTree, HelpItem, Matched, ParseError};
pub use validate::{validate, validate_change};
