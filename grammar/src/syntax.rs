//! Command syntax strings in the spirit of FRR's DEFUNs:
//! `ip route A.B.C.D/M$prefix (A.B.C.D$via|IFNAME$dev) [<1-255>$distance]`.
//!
//! Words are keywords or typed arguments (see [`Kind::from_token`]),
//! `(a|b)` chooses one, `[a]` is optional, `TOKEN$name` names an argument.
//! Help texts are given one per token, in the order tokens are written.
//! A syntax expands into every linear path it allows.

use crate::element::{Element, Kind};
use nom::branch::alt;
use nom::bytes::complete::is_not;
use nom::character::complete::{char, multispace0};
use nom::combinator::map;
use nom::multi::{many1, separated_list1};
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};

/// A syntax string that cannot be used, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

enum Ast<'a> {
    Token(&'a str),
    Sequence(Vec<Ast<'a>>),
    Choice(Vec<Ast<'a>>),
    Optional(Box<Ast<'a>>),
}

fn token(input: &str) -> IResult<&str, Ast<'_>> {
    map(is_not(" \t()[]|"), Ast::Token).parse(input)
}

fn item(input: &str) -> IResult<&str, Ast<'_>> {
    preceded(
        multispace0,
        alt((
            delimited(char('('), choice, char(')')),
            map(delimited(char('['), choice, char(']')), |a| {
                Ast::Optional(Box::new(a))
            }),
            token,
        )),
    )
    .parse(input)
}

fn sequence(input: &str) -> IResult<&str, Ast<'_>> {
    map(terminated(many1(item), multispace0), Ast::Sequence).parse(input)
}

fn choice(input: &str) -> IResult<&str, Ast<'_>> {
    map(separated_list1(char('|'), sequence), Ast::Choice).parse(input)
}

/// Parses `syntax` with `help` (one text per token) into all the paths it
/// allows, each a list of elements.
pub fn expand(syntax: &str, help: &[&str]) -> Result<Vec<Vec<Element>>, SyntaxError> {
    let ast = match sequence(syntax) {
        Ok(("", ast)) => ast,
        Ok((rest, _)) => return Err(SyntaxError(format!("bad syntax near {rest:?}"))),
        Err(_) => return Err(SyntaxError(format!("bad syntax {syntax:?}"))),
    };
    let mut elements = Vec::new();
    let paths = paths_of(&ast, &mut elements);
    if elements.len() != help.len() {
        return Err(SyntaxError(format!(
            "{syntax:?} has {} tokens but {} help texts",
            elements.len(),
            help.len()
        )));
    }
    for (element, text) in elements.iter_mut().zip(help) {
        element.help = text.to_string();
    }
    // `*` is IOS's "all" (`clear ip nat translation *`).
    let unknown = elements.iter().find(|e| match &e.kind {
        Kind::Keyword(k) => {
            k != "*"
                && !k
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }
        _ => false,
    });
    if let Some(element) = unknown {
        return Err(SyntaxError(format!(
            "{syntax:?}: {:?} is neither a lower-case keyword nor an argument type",
            element.label
        )));
    }
    if paths.iter().any(Vec::is_empty) {
        return Err(SyntaxError(format!("{syntax:?} allows an empty command")));
    }
    Ok(paths
        .into_iter()
        .map(|path| path.into_iter().map(|i| elements[i].clone()).collect())
        .collect())
}

/// Numbers the tokens in source order (into `elements`) and returns the
/// paths as lists of token numbers.
fn paths_of(ast: &Ast<'_>, elements: &mut Vec<Element>) -> Vec<Vec<usize>> {
    match ast {
        Ast::Token(text) => {
            let (label, name) = text.split_once('$').unwrap_or((text, text));
            elements.push(Element {
                kind: Kind::from_token(label),
                name: name.to_string(),
                label: label.to_string(),
                help: String::new(),
            });
            vec![vec![elements.len() - 1]]
        }
        Ast::Sequence(items) => items.iter().fold(vec![Vec::new()], |heads, item| {
            let tails = paths_of(item, elements);
            heads
                .iter()
                .flat_map(|head| {
                    tails.iter().map(move |tail| {
                        let mut path = head.clone();
                        path.extend(tail);
                        path
                    })
                })
                .collect()
        }),
        Ast::Choice(options) => options
            .iter()
            .flat_map(|option| paths_of(option, elements))
            .collect(),
        Ast::Optional(inner) => {
            let mut paths = vec![Vec::new()];
            paths.extend(paths_of(inner, elements));
            paths
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(paths: &[Vec<Element>]) -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                p.iter()
                    .map(|e| e.label.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn expands_choices_and_optionals_in_order() {
        let paths = expand(
            "ip route A.B.C.D/M (A.B.C.D|IFNAME) [<1-255>]",
            &["ip", "route", "prefix", "gw", "dev", "distance"],
        )
        .unwrap();
        assert_eq!(
            labels(&paths),
            [
                "ip route A.B.C.D/M A.B.C.D",
                "ip route A.B.C.D/M A.B.C.D <1-255>",
                "ip route A.B.C.D/M IFNAME",
                "ip route A.B.C.D/M IFNAME <1-255>",
            ]
        );
        assert_eq!(paths[1][4].help, "distance");
        assert_eq!(paths[2][3].help, "dev");
    }

    #[test]
    fn names_arguments_with_a_dollar_suffix() {
        let paths = expand("remote A.B.C.D$peer", &["r", "p"]).unwrap();
        assert_eq!(paths[0][1].name, "peer");
        assert_eq!(paths[0][1].kind, Kind::Ipv4);
        assert_eq!(paths[0][0].name, "remote");
    }

    #[test]
    fn rejects_bad_syntax_and_help_count_mismatch() {
        assert!(expand("ip (route", &["a", "b"]).is_err());
        assert!(expand("ip route", &["a"]).is_err());
        assert!(expand("[ip]", &["a"]).is_err());
        assert!(expand("username NAME", &["a", "b"]).is_err());
        assert!(expand("mtu <1-x>", &["a", "b"]).is_err());
        assert!(expand("clear *all", &["a", "b"]).is_err());
        assert!(
            expand("clear ip bgp *", &["a", "b", "c", "d"]).is_ok(),
            "IOS's all"
        );
    }
}
