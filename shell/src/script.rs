//! Non-interactive runs: a list of lines (from `-c` options or a script
//! file), printing what a terminal would show, and collecting the failures.

use crate::session::Session;
use std::io::{self, Write};

/// A line that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// 1-based position in the input.
    pub number: usize,
    pub line: String,
    /// The `%` message (its first line if it has several).
    pub message: String,
}

impl Failure {
    /// One `%` line naming the input line.
    pub fn summary(&self) -> String {
        let message = self.message.lines().next().unwrap_or("");
        let message = message.strip_prefix("% ").unwrap_or(message);
        format!("% line {} \"{}\": {message}", self.number, self.line.trim())
    }
}

/// Runs `lines` in `session`, writing outputs to `out`. A failing line is
/// echoed after its prompt with the caret and message, as on a terminal.
/// Stops at `exit` from EXEC mode.
pub fn run_lines<I, S>(
    session: &mut Session,
    lines: I,
    out: &mut dyn Write,
) -> io::Result<Vec<Failure>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut failures = Vec::new();
    for (index, line) in lines.into_iter().enumerate() {
        let line = line.as_ref();
        let prompt = session.prompt();
        let reply = if line.contains('\u{1a}') {
            session.ctrl_z()
        } else {
            session.execute(line)
        };
        out.write_all(reply.output.as_bytes())?;
        if let Some(error) = reply.error {
            write!(
                out,
                "{prompt}{line}\n{}",
                error.render(prompt.chars().count())
            )?;
            failures.push(Failure {
                number: index + 1,
                line: line.to_string(),
                message: error.message,
            });
        }
        if reply.quit {
            break;
        }
    }
    Ok(failures)
}
