//! CLI sessions for Gatehouse.
//!
//! A [`Shell`] (built with [`ShellBuilder`]) holds what all sessions share:
//! the running configuration, the commit history, the startup file, the
//! embedder's [`CommitHook`] and its extra commands. Each [`Session`] has a
//! mode, a prompt and its own candidate configuration. Front ends run a
//! session on a terminal ([`terminal`]), a byte stream ([`stream`]) or a list
//! of lines ([`script`]).

pub mod actions;
pub mod clock;
pub mod engine;
pub mod filter;
pub mod interrupt;
pub mod pager;
pub mod script;
pub mod session;
pub mod startup;
pub mod stream;
pub mod terminal;

pub use engine::{CommitHook, CommitNotice, CommitRecord, Shell, ShellBuilder};
pub use grammar::{Args, CliError};
pub use interrupt::Interrupt;
pub use script::{run_lines, Failure};
pub use session::{Mode, Reply, Session};
pub use stream::{run_stream, run_stream_with, StreamOptions};
pub use terminal::run_terminal;
