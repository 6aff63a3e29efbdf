//! Output filters after `|`: `include`, `exclude`, `begin`, `section`
//! (regular expressions) and `count`, defined with the same grammar as
//! commands.

use grammar::{CliError, CommandTree, ParseError};
use regex::Regex;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug)]
pub(crate) enum FilterKind {
    Include,
    Exclude,
    Begin,
    Section,
    Count,
}

/// A parsed filter, ready to apply to command output.
#[derive(Debug)]
pub enum Filter {
    Include(Regex),
    Exclude(Regex),
    Begin(Regex),
    Section(Regex),
    Count,
}

/// The filter commands, built once.
pub(crate) fn filter_tree() -> &'static CommandTree<FilterKind> {
    static TREE: OnceLock<CommandTree<FilterKind>> = OnceLock::new();
    TREE.get_or_init(|| {
        let mut tree = CommandTree::new();
        let regex = "Regular expression";
        let defs: [(&str, [&str; 2], FilterKind); 4] = [
            (
                "include LINE$regex",
                ["Show lines that match", regex],
                FilterKind::Include,
            ),
            (
                "exclude LINE$regex",
                ["Hide lines that match", regex],
                FilterKind::Exclude,
            ),
            (
                "begin LINE$regex",
                ["Show from the first line that matches", regex],
                FilterKind::Begin,
            ),
            (
                "section LINE$regex",
                ["Show the blocks with a line that matches", regex],
                FilterKind::Section,
            ),
        ];
        for (syntax, help, kind) in defs {
            tree.add(syntax, &help, kind)
                .expect("filter syntax is valid");
        }
        tree.add("count", &["Count the lines"], FilterKind::Count)
            .expect("filter syntax is valid");
        tree
    })
}

/// Splits a line at its first `|` outside double quotes: the command and,
/// if any, the byte offset of the filter text after the bar.
pub fn split_pipe(line: &str) -> (&str, Option<usize>) {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '|' if !quoted => return (&line[..i], Some(i + 1)),
            _ => {}
        }
    }
    (line, None)
}

/// Parses the filter text (what follows `|`); caret columns are relative to
/// the filter text.
pub fn parse_filter(text: &str) -> Result<Filter, CliError> {
    let matched = filter_tree().parse(text).map_err(|e| match e {
        ParseError::Empty => CliError::new("% Incomplete command."),
        other => CliError::from(other),
    })?;
    let regex = || {
        let pattern = matched.args.text("regex").unwrap_or_default();
        Regex::new(pattern).map_err(|e| {
            let reason = e.to_string().lines().last().unwrap_or("").to_string();
            CliError::new(format!(
                "% Invalid regular expression \"{pattern}\": {reason}"
            ))
        })
    };
    Ok(match matched.action {
        FilterKind::Include => Filter::Include(regex()?),
        FilterKind::Exclude => Filter::Exclude(regex()?),
        FilterKind::Begin => Filter::Begin(regex()?),
        FilterKind::Section => Filter::Section(regex()?),
        FilterKind::Count => Filter::Count,
    })
}

impl Filter {
    /// Filters command output line by line.
    pub fn apply(&self, output: &str) -> String {
        let keep = |lines: Vec<&str>| lines.iter().map(|l| format!("{l}\n")).collect();
        let lines = output.lines();
        match self {
            Filter::Include(re) => keep(lines.filter(|l| re.is_match(l)).collect()),
            Filter::Exclude(re) => keep(lines.filter(|l| !re.is_match(l)).collect()),
            Filter::Begin(re) => keep(lines.skip_while(|l| !re.is_match(l)).collect()),
            Filter::Section(re) => keep(
                sections(output)
                    .filter(|block| block.iter().any(|l| re.is_match(l)))
                    .flatten()
                    .collect(),
            ),
            Filter::Count => format!("Number of lines which match regexp = {}\n", lines.count()),
        }
    }
}

/// The output's blocks, as IOS's `section` sees them: a line that is not
/// indented and the indented lines after it.
fn sections(output: &str) -> impl Iterator<Item = Vec<&str>> {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in output.lines() {
        match blocks.last_mut() {
            Some(block) if line.starts_with(' ') => block.push(line),
            _ => blocks.push(vec![line]),
        }
    }
    blocks.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "hostname r1\ninterface eth0\n mtu 1500\ninterface eth1\n";

    #[test]
    fn splits_at_the_first_unquoted_bar() {
        assert_eq!(split_pipe("show run | inc a|b"), ("show run ", Some(10)));
        assert_eq!(
            split_pipe("banner motd \"a|b\""),
            ("banner motd \"a|b\"", None)
        );
    }

    #[test]
    fn filters_select_lines() {
        let run = |f: &str| parse_filter(f).unwrap().apply(OUTPUT);
        assert_eq!(
            run(" include ^interface"),
            "interface eth0\ninterface eth1\n"
        );
        assert_eq!(run(" ex eth"), "hostname r1\n mtu 1500\n");
        assert_eq!(run(" begin eth1|mtu"), " mtu 1500\ninterface eth1\n");
        assert_eq!(run(" count"), "Number of lines which match regexp = 4\n");
        assert_eq!(run(" section mtu"), "interface eth0\n mtu 1500\n");
        assert_eq!(
            run(" sec interface"),
            "interface eth0\n mtu 1500\ninterface eth1\n"
        );
        assert_eq!(run(" section ^hostname"), "hostname r1\n");
    }

    #[test]
    fn bad_filters_are_errors() {
        assert!(parse_filter(" include (")
            .unwrap_err()
            .message
            .contains("regular expression"));
        assert_eq!(parse_filter(" sort").unwrap_err().caret, Some(1));
        assert_eq!(
            parse_filter(" ").unwrap_err().message,
            "% Incomplete command."
        );
    }
}
