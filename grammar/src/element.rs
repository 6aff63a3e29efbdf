//! The building blocks of a command: keywords and typed arguments, how a
//! typed word matches them, and the values they produce.

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// What one position of a command accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Keyword(String),
    /// `A.B.C.D`
    Ipv4,
    /// `A.B.C.D/M`
    Ipv4Prefix,
    /// `X:X::X:X`
    Ipv6,
    /// `X:X::X:X/M`
    Ipv6Prefix,
    /// `MAC`: `aa:bb:cc:dd:ee:ff`
    Mac,
    /// `<LO-HI>`
    Range(u64, u64),
    /// `IFNAME`: `eth0`, `veth-a`, `eth0.100`, `vxlan10`
    Interface,
    /// `WORD`: any single word (or quoted string)
    Word,
    /// `LINE`: the rest of the line
    Line,
}

/// How well a word matches an element; lower is better. A keyword typed in
/// full beats an abbreviation, which beats a typed argument, which beats the
/// catch-all `IFNAME`, `WORD` and `LINE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MatchQuality {
    ExactKeyword,
    PartialKeyword,
    Typed,
    Name,
    Word,
    Line,
}

/// A value taken from the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Keyword,
    Ipv4(Ipv4Addr),
    Ipv4Prefix(Ipv4Net),
    Ipv6(Ipv6Addr),
    Ipv6Prefix(Ipv6Net),
    Mac([u8; 6]),
    Number(u64),
    Text(String),
}

/// One position of a command: what it accepts, the argument name handlers
/// read it by, the token as written in the syntax, and its help text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub kind: Kind,
    pub name: String,
    pub label: String,
    pub help: String,
}

impl Kind {
    /// Classifies one token of a syntax string.
    pub fn from_token(token: &str) -> Kind {
        match token {
            "A.B.C.D" => Kind::Ipv4,
            "A.B.C.D/M" => Kind::Ipv4Prefix,
            "X:X::X:X" => Kind::Ipv6,
            "X:X::X:X/M" => Kind::Ipv6Prefix,
            "MAC" => Kind::Mac,
            "IFNAME" => Kind::Interface,
            "WORD" => Kind::Word,
            "LINE" => Kind::Line,
            _ => parse_range(token).unwrap_or_else(|| Kind::Keyword(token.to_string())),
        }
    }

    /// Whether `word` fits this element, and how well. Keywords match in
    /// any case, as on IOS (`encapsulation dot1Q`, `Shutdown`).
    pub fn matches(&self, word: &str) -> Option<(MatchQuality, Value)> {
        let typed = |value: Option<Value>| value.map(|v| (MatchQuality::Typed, v));
        match self {
            Kind::Keyword(keyword) => {
                if keyword.eq_ignore_ascii_case(word) {
                    Some((MatchQuality::ExactKeyword, Value::Keyword))
                } else if !word.is_empty() && keyword_starts_with(keyword, word) {
                    Some((MatchQuality::PartialKeyword, Value::Keyword))
                } else {
                    None
                }
            }
            Kind::Ipv4 => typed(word.parse().ok().map(Value::Ipv4)),
            Kind::Ipv4Prefix => typed(word.parse().ok().map(Value::Ipv4Prefix)),
            Kind::Ipv6 => typed(word.parse().ok().map(Value::Ipv6)),
            Kind::Ipv6Prefix => typed(word.parse().ok().map(Value::Ipv6Prefix)),
            Kind::Mac => typed(parse_mac(word).map(Value::Mac)),
            Kind::Range(lo, hi) => typed(
                word.parse::<u64>()
                    .ok()
                    .filter(|n| (lo..=hi).contains(&n) && !word.starts_with('+'))
                    .map(Value::Number),
            ),
            Kind::Interface => {
                is_interface_name(word).then(|| (MatchQuality::Name, Value::Text(word.to_string())))
            }
            Kind::Word => Some((MatchQuality::Word, Value::Text(word.to_string()))),
            Kind::Line => Some((MatchQuality::Line, Value::Text(word.to_string()))),
        }
    }
}

fn parse_range(token: &str) -> Option<Kind> {
    let inner = token.strip_prefix('<')?.strip_suffix('>')?;
    let (lo, hi) = inner.split_once('-')?;
    Some(Kind::Range(lo.parse().ok()?, hi.parse().ok()?))
}

fn parse_mac(word: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = word.split(':');
    for byte in mac.iter_mut() {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Linux interface names: a letter first, then letters, digits, `.`, `-`,
/// `_`, at most 15 characters (IFNAMSIZ - 1).
pub fn is_interface_name(word: &str) -> bool {
    word.len() <= 15
        && word.starts_with(|c: char| c.is_ascii_alphabetic())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Whether `typed` begins `keyword`, in any case (keywords are lower case).
pub fn keyword_starts_with(keyword: &str, typed: &str) -> bool {
    keyword
        .as_bytes()
        .get(..typed.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(typed.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_syntax_tokens() {
        assert_eq!(Kind::from_token("<1-4094>"), Kind::Range(1, 4094));
        assert_eq!(Kind::from_token("A.B.C.D/M"), Kind::Ipv4Prefix);
        assert_eq!(Kind::from_token("<1-x>"), Kind::Keyword("<1-x>".into()));
    }

    #[test]
    fn typed_arguments_reject_malformed_words() {
        assert!(Kind::Range(1, 4094).matches("4095").is_none());
        assert!(Kind::Range(1, 4094).matches("+5").is_none());
        assert!(Kind::Ipv4Prefix.matches("10.0.0.1/33").is_none());
        assert!(Kind::Mac.matches("52:54:00:12:34").is_none());
        assert_eq!(
            Kind::Mac.matches("52:54:00:12:34:5f").map(|m| m.1),
            Some(Value::Mac([0x52, 0x54, 0, 0x12, 0x34, 0x5f]))
        );
        assert!(Kind::Interface.matches("1eth").is_none());
        assert!(Kind::Interface.matches("averyveryverylongname").is_none());
    }

    #[test]
    fn keywords_match_exactly_or_by_prefix() {
        let show = Kind::Keyword("show".into());
        assert_eq!(show.matches("show").unwrap().0, MatchQuality::ExactKeyword);
        assert_eq!(show.matches("sh").unwrap().0, MatchQuality::PartialKeyword);
        assert_eq!(show.matches("SHOW").unwrap().0, MatchQuality::ExactKeyword);
        assert_eq!(show.matches("Sh").unwrap().0, MatchQuality::PartialKeyword);
        assert!(show.matches("shows").is_none() && show.matches("x").is_none());
        assert!(show.matches("shows").is_none());
    }
}
