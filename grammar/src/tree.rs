//! A command tree built from syntax strings: matching a typed line with
//! IOS-style abbreviations and errors, context help for `?`, and tab
//! completion, all from the same definitions.

use crate::element::{keyword_starts_with, Element, Kind, MatchQuality, Value};
use crate::syntax::{expand, SyntaxError};
use crate::tokens::{column_of, rest_of_line, split_words, Word};
use ipnet::{Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a line does not match any command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but blanks.
    Empty,
    /// The word at this character column fits nothing.
    Invalid { column: usize },
    /// The line stops before a command is complete.
    Incomplete,
    /// An abbreviation fits several keywords.
    Ambiguous { input: String },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => f.write_str("% Empty command."),
            ParseError::Invalid { .. } => f.write_str("% Invalid input detected at '^' marker."),
            ParseError::Incomplete => f.write_str("% Incomplete command."),
            ParseError::Ambiguous { input } => write!(f, "% Ambiguous command: \"{input}\""),
        }
    }
}

/// The arguments a matched line carries, by name (keywords are present by
/// their own text, with [`Value::Keyword`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    values: Vec<(String, Value)>,
}

impl Args {
    /// The value named `name`; an argument named like the keyword before
    /// it (`vni <1-16777215>$vni`) wins over the keyword.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }
    pub fn number(&self, name: &str) -> Option<u64> {
        match self.get(name)? {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
    pub fn ipv4(&self, name: &str) -> Option<Ipv4Addr> {
        match self.get(name)? {
            Value::Ipv4(a) => Some(*a),
            _ => None,
        }
    }
    pub fn ipv4_prefix(&self, name: &str) -> Option<Ipv4Net> {
        match self.get(name)? {
            Value::Ipv4Prefix(p) => Some(*p),
            _ => None,
        }
    }
    pub fn ipv6(&self, name: &str) -> Option<Ipv6Addr> {
        match self.get(name)? {
            Value::Ipv6(a) => Some(*a),
            _ => None,
        }
    }
    pub fn ipv6_prefix(&self, name: &str) -> Option<Ipv6Net> {
        match self.get(name)? {
            Value::Ipv6Prefix(p) => Some(*p),
            _ => None,
        }
    }
}

/// A line that matched a command.
#[derive(Debug)]
pub struct Matched<'t, A> {
    pub action: &'t A,
    pub args: Args,
}

/// One line of `?` help: a possible next token and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelpItem {
    pub label: String,
    pub help: String,
}

/// The label `?` shows where the line may end.
pub const END_OF_LINE: &str = "<cr>";

struct Node<A> {
    element: Element,
    children: Vec<usize>,
    action: Option<A>,
}

/// The commands of one mode.
pub struct CommandTree<A> {
    nodes: Vec<Node<A>>,
}

const ROOT: usize = 0;

impl<A> Default for CommandTree<A> {
    fn default() -> Self {
        let root = Element {
            kind: Kind::Line,
            name: String::new(),
            label: String::new(),
            help: String::new(),
        };
        CommandTree {
            nodes: vec![Node {
                element: root,
                children: Vec::new(),
                action: None,
            }],
        }
    }
}

impl<A: Clone> CommandTree<A> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a command: `syntax` with one `help` text per token.
    pub fn add(&mut self, syntax: &str, help: &[&str], action: A) -> Result<(), SyntaxError> {
        for path in expand(syntax, help)? {
            self.insert(ROOT, &path, path.len() - 1, &action, syntax)?;
        }
        Ok(())
    }

    /// Adds a configuration command and its `no` form. The `no` form may
    /// stop anywhere after the command's leading keywords; its handler
    /// decides what the missing arguments mean.
    pub fn add_with_no(
        &mut self,
        syntax: &str,
        help: &[&str],
        action: impl Fn(bool) -> A,
    ) -> Result<(), SyntaxError> {
        self.add(syntax, help, action(false))?;
        let no = self.child_for(
            ROOT,
            &Element {
                kind: Kind::Keyword("no".into()),
                name: "no".into(),
                label: "no".into(),
                help: "Negate a command or set its defaults".into(),
            },
        );
        let negated = action(true);
        for path in expand(syntax, help)? {
            let keywords = path
                .iter()
                .take_while(|e| matches!(e.kind, Kind::Keyword(_)))
                .count();
            self.insert(no, &path, keywords.max(1) - 1, &negated, syntax)?;
        }
        Ok(())
    }

    fn child_for(&mut self, parent: usize, element: &Element) -> usize {
        let existing = self.nodes[parent].children.iter().copied().find(|&c| {
            let e = &self.nodes[c].element;
            e.kind == element.kind && e.name == element.name
        });
        existing.unwrap_or_else(|| {
            self.nodes.push(Node {
                element: element.clone(),
                children: Vec::new(),
                action: None,
            });
            let id = self.nodes.len() - 1;
            self.nodes[parent].children.push(id);
            id
        })
    }

    /// Inserts `path` below `start`; every node from index `terminal_from`
    /// on may end the command. The full path must be new.
    fn insert(
        &mut self,
        start: usize,
        path: &[Element],
        terminal_from: usize,
        action: &A,
        syntax: &str,
    ) -> Result<(), SyntaxError> {
        let mut node = start;
        for (i, element) in path.iter().enumerate() {
            node = self.child_for(node, element);
            let last = i + 1 == path.len();
            if last && self.nodes[node].action.is_some() {
                return Err(SyntaxError(format!("{syntax:?} is already defined")));
            }
            if i >= terminal_from && self.nodes[node].action.is_none() {
                self.nodes[node].action = Some(action.clone());
            }
        }
        Ok(())
    }

    /// Matches a whole line to a command.
    pub fn parse(&self, line: &str) -> Result<Matched<'_, A>, ParseError> {
        let words = words_of(line)?;
        if words.is_empty() {
            return Err(ParseError::Empty);
        }
        let (node, args) = self.walk(line, &words)?;
        match &self.nodes[node].action {
            Some(action) => Ok(Matched { action, args }),
            None => Err(ParseError::Incomplete),
        }
    }

    /// Follows `words` from the root; returns the node reached and the
    /// arguments collected on the way.
    fn walk(&self, line: &str, words: &[Word<'_>]) -> Result<(usize, Args), ParseError> {
        let mut node = ROOT;
        let mut args = Args::default();
        for word in words {
            if self.nodes[node].element.kind == Kind::Line && node != ROOT {
                break;
            }
            let (child, value) = self.best_child(node, word, line)?;
            let element = &self.nodes[child].element;
            let value = match (&element.kind, value) {
                (Kind::Line, _) => Value::Text(rest_of_line(line, word.start)),
                (_, value) => value,
            };
            args.values.push((element.name.clone(), value));
            node = child;
        }
        Ok((node, args))
    }

    fn best_child(
        &self,
        node: usize,
        word: &Word<'_>,
        line: &str,
    ) -> Result<(usize, Value), ParseError> {
        let mut best: Option<(MatchQuality, usize, Value)> = None;
        let mut ties = 0;
        for &child in &self.nodes[node].children {
            let Some((quality, value)) = self.nodes[child].element.kind.matches(word.text) else {
                continue;
            };
            match &best {
                Some((q, _, _)) if *q < quality => {}
                Some((q, _, _)) if *q == quality => ties += 1,
                _ => {
                    best = Some((quality, child, value));
                    ties = 0;
                }
            }
        }
        match best {
            None => Err(ParseError::Invalid {
                column: column_of(line, word.start),
            }),
            Some((MatchQuality::PartialKeyword, _, _)) if ties > 0 => Err(ParseError::Ambiguous {
                input: line.trim().to_string(),
            }),
            Some((_, child, value)) => Ok((child, value)),
        }
    }

    /// What may come next, for `?` typed at the end of `line`: after a
    /// blank, every possible next token (and `<cr>` where the command may
    /// end); right after a word, the keywords that word abbreviates.
    pub fn help(&self, line: &str) -> Result<Vec<HelpItem>, ParseError> {
        let words = words_of(line)?;
        let (complete, partial) = split_partial(line, &words);
        let (node, _) = self.walk(line, complete)?;
        let mut items: Vec<HelpItem> = Vec::new();
        let mut push = |label: &str, help: &str| {
            if !items.iter().any(|i| i.label == label) {
                items.push(HelpItem {
                    label: label.to_string(),
                    help: help.to_string(),
                });
            }
        };
        let at_line_argument = node != ROOT && self.nodes[node].element.kind == Kind::Line;
        if !at_line_argument {
            for &child in &self.nodes[node].children {
                let element = &self.nodes[child].element;
                let fits = match (partial, &element.kind) {
                    (None, _) => true,
                    (Some(p), Kind::Keyword(k)) => keyword_starts_with(k, p.text),
                    (Some(p), kind) => kind.matches(p.text).is_some(),
                };
                if fits {
                    push(&element.label, &element.help);
                }
            }
        }
        if (partial.is_none() || at_line_argument) && self.nodes[node].action.is_some() {
            push(END_OF_LINE, "");
        }
        // As on IOS: keywords in alphabetical order, then arguments, then <cr>.
        items.sort_by_key(|i| {
            (
                i.label == END_OF_LINE,
                !is_keyword_label(&i.label),
                i.label.clone(),
            )
        });
        if items.is_empty() {
            let column = partial.map_or(line.len(), |p| p.start);
            return Err(ParseError::Invalid {
                column: column_of(line, column),
            });
        }
        Ok(items)
    }

    /// Tab completion: the byte offset where the word being typed starts
    /// and the keywords it may complete to.
    pub fn complete(&self, line: &str) -> (usize, Vec<String>) {
        let Ok(words) = words_of(line) else {
            return (line.len(), Vec::new());
        };
        let (complete, partial) = split_partial(line, &words);
        let Ok((node, _)) = self.walk(line, complete) else {
            return (line.len(), Vec::new());
        };
        let (start, prefix) = partial.map_or((line.len(), ""), |p| (p.start, p.text));
        let keywords = self.nodes[node]
            .children
            .iter()
            .filter_map(|&c| match &self.nodes[c].element.kind {
                Kind::Keyword(k) if keyword_starts_with(k, prefix) => Some(k.clone()),
                _ => None,
            })
            .collect();
        (start, keywords)
    }
}

/// Argument labels are upper case (`WORD`, `A.B.C.D`) or ranges (`<1-10>`).
fn is_keyword_label(label: &str) -> bool {
    label.starts_with(|c: char| c.is_ascii_lowercase())
}

fn words_of(line: &str) -> Result<Vec<Word<'_>>, ParseError> {
    split_words(line).map_err(|unterminated| ParseError::Invalid {
        column: column_of(line, unterminated.0),
    })
}

/// Splits the words into those already complete and the one being typed
/// (the last word when the line does not end with a blank).
fn split_partial<'w, 'a>(
    line: &str,
    words: &'w [Word<'a>],
) -> (&'w [Word<'a>], Option<&'w Word<'a>>) {
    match words.split_last() {
        Some((last, init)) if last.end == line.len() => (init, Some(last)),
        _ => (words, None),
    }
}

/// Formats help items as IOS does: labels in a column, then the help.
pub fn format_help(items: &[HelpItem]) -> String {
    let width = items.iter().map(|i| i.label.len()).max().unwrap_or(0);
    items
        .iter()
        .map(|i| {
            format!("  {:width$}  {}\n", i.label, i.help)
                .trim_end()
                .to_string()
                + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> CommandTree<&'static str> {
        let mut t = CommandTree::new();
        t.add(
            "show interfaces [IFNAME]",
            &["Show", "Interfaces", "Name"],
            "show-if",
        )
        .unwrap();
        t.add(
            "show ip interface brief",
            &["Show", "IP", "Interface", "Brief"],
            "brief",
        )
        .unwrap();
        t.add("show ip route", &["Show", "IP", "Routes"], "routes")
            .unwrap();
        t.add("save", &["Save"], "save").unwrap();
        t.add_with_no("mtu <68-9216>$bytes", &["MTU", "Bytes"], |no| {
            if no {
                "no-mtu"
            } else {
                "mtu"
            }
        })
        .unwrap();
        t.add(
            "banner motd LINE$text",
            &["Banner", "MOTD", "Text"],
            "banner",
        )
        .unwrap();
        t
    }

    #[test]
    fn abbreviations_match_like_ios() {
        let t = tree();
        assert_eq!(*t.parse("sh ip int br").unwrap().action, "brief");
        assert_eq!(*t.parse("  show   ip ro ").unwrap().action, "routes");
        let m = t.parse("sho int eth0").unwrap();
        assert_eq!(
            (*m.action, m.args.text("IFNAME")),
            ("show-if", Some("eth0"))
        );
    }

    #[test]
    fn ambiguous_incomplete_and_invalid_are_told_apart() {
        let t = tree();
        assert_eq!(
            t.parse("s ip route").unwrap_err(),
            ParseError::Ambiguous {
                input: "s ip route".into()
            }
        );
        assert_eq!(t.parse("show ip").unwrap_err(), ParseError::Incomplete);
        assert_eq!(
            t.parse("show ip rout x").unwrap_err(),
            ParseError::Invalid { column: 13 }
        );
        assert_eq!(
            t.parse("mtu 60").unwrap_err(),
            ParseError::Invalid { column: 4 }
        );
        assert_eq!(t.parse("   ").unwrap_err(), ParseError::Empty);
    }

    #[test]
    fn no_forms_may_omit_arguments() {
        let t = tree();
        assert_eq!(*t.parse("no mtu").unwrap().action, "no-mtu");
        assert_eq!(
            t.parse("no mtu 1500").unwrap().args.number("bytes"),
            Some(1500)
        );
        assert!(
            t.parse("no save").is_err(),
            "save was added without a no form"
        );
    }

    #[test]
    fn line_arguments_take_the_rest_of_the_line() {
        let t = tree();
        let m = t.parse("banner motd Authorised  use only").unwrap();
        assert_eq!(m.args.text("text"), Some("Authorised  use only"));
        let m = t.parse("banner motd \"quoted\"").unwrap();
        assert_eq!(m.args.text("text"), Some("quoted"));
    }

    #[test]
    fn help_lists_next_tokens_or_keywords_for_a_prefix() {
        let t = tree();
        let labels =
            |line| -> Vec<String> { t.help(line).unwrap().into_iter().map(|i| i.label).collect() };
        assert_eq!(labels("show "), ["interfaces", "ip"]);
        assert_eq!(labels("show interfaces "), ["IFNAME", "<cr>"]);
        assert_eq!(labels("s"), ["save", "show"]);
        assert_eq!(labels("show ip route "), ["<cr>"]);
        assert_eq!(labels("mtu "), ["<68-9216>"]);
        assert!(t.help("show bogus ").is_err());
        assert!(format_help(&t.help("show ").unwrap()).contains("  interfaces  Interfaces\n"));
    }

    #[test]
    fn completion_offers_keywords_for_the_current_word() {
        let t = tree();
        assert_eq!(t.complete("sh ip int"), (6, vec!["interface".to_string()]));
        assert_eq!(t.complete("show i").1, ["interfaces", "ip"]);
        assert_eq!(
            t.complete("show ip "),
            (8, vec!["interface".into(), "route".into()])
        );
        assert!(t.complete("zzz ").1.is_empty());
    }

    #[test]
    fn a_command_cannot_be_defined_twice() {
        let mut t = tree();
        assert!(t.add("save", &["again"], "x").is_err());
    }
}
