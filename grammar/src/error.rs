//! The error a CLI line produces: a `%` message and, for invalid input, the
//! column the caret points at.

use crate::tree::ParseError;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliError {
    /// One line starting with `%`.
    pub message: String,
    /// Character column of the offending input, for the `^` marker.
    pub caret: Option<usize>,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            caret: None,
        }
    }

    /// The caret line (if any) and the message, for a line echoed after
    /// `indent` characters (the prompt's width).
    pub fn render(&self, indent: usize) -> String {
        match self.caret {
            Some(column) => format!("{}^\n{}\n", " ".repeat(indent + column), self.message),
            None => format!("{}\n", self.message),
        }
    }
}

impl From<ParseError> for CliError {
    fn from(error: ParseError) -> CliError {
        let caret = match error {
            ParseError::Invalid { column } => Some(column),
            _ => None,
        };
        CliError {
            message: error.to_string(),
            caret,
        }
    }
}

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError::new(message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_caret_under_the_column_after_the_prompt() {
        let e = CliError::from(ParseError::Invalid { column: 3 });
        assert_eq!(
            e.render(4),
            "       ^\n% Invalid input detected at '^' marker.\n"
        );
        assert_eq!(CliError::new("% x").render(4), "% x\n");
    }
}
