//! Splits a typed line into words: runs of non-blank characters, or
//! double-quoted strings (which may hold blanks) with the quotes removed.

use nom::branch::alt;
use nom::bytes::complete::{is_not, tag, take_till};
use nom::character::complete::multispace0;
use nom::sequence::delimited;
use nom::{IResult, Parser};

/// One word of a line, with its byte span in the line (quotes included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word<'a> {
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

/// A quote was opened at this byte offset and never closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnterminatedQuote(pub usize);

fn quoted(input: &str) -> IResult<&str, &str> {
    delimited(tag("\""), take_till(|c| c == '"'), tag("\"")).parse(input)
}

fn bare(input: &str) -> IResult<&str, &str> {
    is_not(" \t\r\n\"").parse(input)
}

/// Splits `line` into words.
pub fn split_words(line: &str) -> Result<Vec<Word<'_>>, UnterminatedQuote> {
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        let (after_blank, _) = multispace0::<_, ()>(rest).unwrap_or((rest, ""));
        rest = after_blank;
        if rest.is_empty() {
            return Ok(words);
        }
        let start = line.len() - rest.len();
        match alt((quoted, bare)).parse(rest) {
            Ok((after, text)) => {
                rest = after;
                words.push(Word {
                    text,
                    start,
                    end: line.len() - rest.len(),
                });
            }
            Err(_) => return Err(UnterminatedQuote(start)),
        }
    }
}

/// The column (in characters) of a byte offset, for placing a caret.
pub fn column_of(line: &str, byte_offset: usize) -> usize {
    line.get(..byte_offset)
        .map_or(byte_offset, |prefix| prefix.chars().count())
}

/// The text of a rest-of-line argument starting at byte `start`: one quoted
/// string loses its quotes, anything else is kept as typed (trimmed).
pub fn rest_of_line(line: &str, start: usize) -> String {
    let rest = line.get(start..).unwrap_or("").trim();
    match quoted(rest) {
        Ok(("", inner)) => inner.to_string(),
        _ => rest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_bare_and_quoted_words_with_spans() {
        let words = split_words("  description \"uplink to isp\" x").unwrap();
        let texts: Vec<_> = words.iter().map(|w| w.text).collect();
        assert_eq!(texts, ["description", "uplink to isp", "x"]);
        assert_eq!((words[1].start, words[1].end), (14, 29));
    }

    #[test]
    fn reports_an_unterminated_quote_where_it_opens() {
        assert_eq!(split_words("banner motd \"hi"), Err(UnterminatedQuote(12)));
    }

    #[test]
    fn rest_of_line_strips_one_enclosing_quote_pair() {
        assert_eq!(rest_of_line("banner \"a b\"", 7), "a b");
        assert_eq!(rest_of_line("banner a \"b\"", 7), "a \"b\"");
    }
}
