//! Cisco-style command grammar for Gatehouse: commands are defined once as
//! syntax strings with help text ([`syntax`]), gathered in per-mode trees
//! ([`tree`]) that match typed lines, answer `?` and complete words.

pub mod config;
pub mod element;
pub mod syntax;
pub mod tokens;
pub mod tree;

pub use element::Value;
pub use syntax::SyntaxError;
pub use tree::{format_help, Args, CommandTree, HelpItem, Matched, ParseError};
