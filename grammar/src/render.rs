//! Writes a [`Config`] back as running-config text in a canonical order
//! (each element writes its own section), and compares two configurations block by block.

use crate::config::{Config, ELEMENTS};
use std::collections::HashMap;

/// A top-level line and its indented sub-mode lines. A body line that
/// starts with a blank belongs to the body line above it, one level deeper
/// (a server farm's `real` and its `weight`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub header: String,
    pub body: Vec<String>,
}

impl Block {
    /// A top-level line without sub-mode lines.
    pub fn line(header: String) -> Block {
        Block {
            header,
            body: Vec::new(),
        }
    }

    /// A sub-mode block that exists only through its lines (an empty
    /// `control-plane` or `line vty` says nothing): None without any.
    pub fn with_lines(header: &str, body: Vec<String>) -> Option<Block> {
        (!body.is_empty()).then(|| Block {
            header: header.to_string(),
            body,
        })
    }
}

/// The configuration as blocks, each element's in the registry's order.
pub fn blocks(config: &Config) -> Vec<Block> {
    let mut blocks = Vec::new();
    for element in ELEMENTS {
        element.blocks(config, &mut blocks);
    }
    blocks
}

/// Running-config text: blocks separated by `!`, ending with `end`.
pub fn render(config: &Config) -> String {
    render_blocks(&blocks(config))
}

/// Renders `blocks` in running-config form.
pub fn render_blocks(blocks: &[Block]) -> String {
    let mut out = String::new();
    let mut previous_had_body = true;
    for block in blocks {
        if previous_had_body || !block.body.is_empty() {
            out.push_str("!\n");
        }
        out.push_str(&block.header);
        out.push('\n');
        for line in &block.body {
            out.push(' ');
            out.push_str(line);
            out.push('\n');
        }
        previous_had_body = !block.body.is_empty();
    }
    out.push_str("!\nend\n");
    out
}

/// Running-config text (or a diff of it) with every secret an element
/// declares (a WireGuard private key, an MQTT password) replaced by
/// `<set>`: what `show running-config` prints. The configuration and the
/// startup file keep them.
pub fn mask_secrets(text: &str) -> String {
    let secrets: Vec<_> = ELEMENTS.iter().flat_map(|e| e.secrets()).collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        // Indented, or marked `+`/`-` in a diff.
        let body = line.trim_start_matches([' ', '+', '-']);
        let secret = secrets.iter().find(|(start, _)| body.starts_with(start));
        match secret {
            Some((_, word)) => out.push_str(&mask_after(line, word)),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `line` with the word after the first `word` replaced by `<set>`.
fn mask_after(line: &str, word: &str) -> String {
    let mut words: Vec<&str> = line.split(' ').collect();
    if let Some(at) = words.iter().position(|w| *w == word) {
        if let Some(secret) = words.get_mut(at + 1) {
            *secret = "<set>";
        }
    }
    words.join(" ")
}

/// The changes from `old` to `new`: `+`/`-` lines, with the header of a
/// changed sub-mode block shown unmarked. Empty when they are equal.
pub fn diff(old: &Config, new: &Config) -> String {
    let old_blocks = blocks(old);
    let new_blocks = blocks(new);
    let old_by_header: HashMap<&str, &Block> =
        old_blocks.iter().map(|b| (b.header.as_str(), b)).collect();
    let new_headers: std::collections::HashSet<&str> =
        new_blocks.iter().map(|b| b.header.as_str()).collect();
    let mut out = String::new();
    for block in &new_blocks {
        match old_by_header.get(block.header.as_str()) {
            None => push_block(&mut out, '+', block),
            Some(old) if old.body != block.body => {
                out.push_str(&format!("  {}\n", block.header));
                diff_body(&mut out, 1, &old.body, &block.body);
            }
            Some(_) => {}
        }
    }
    for block in old_blocks
        .iter()
        .filter(|b| !new_headers.contains(b.header.as_str()))
    {
        push_block(&mut out, '-', block);
    }
    out
}

fn push_block(out: &mut String, mark: char, block: &Block) {
    out.push_str(&format!("{mark} {}\n", block.header));
    for line in &block.body {
        out.push_str(&format!("{mark}  {line}\n"));
    }
}

/// The lines of a body at one depth, each with the lines under it (their
/// first blank removed).
fn nested<S: AsRef<str>>(lines: &[S]) -> Vec<(&str, Vec<&str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in lines.iter().map(AsRef::as_ref) {
        match (line.strip_prefix(' '), groups.last_mut()) {
            (Some(under), Some((_, children))) => children.push(under),
            _ => groups.push((line, Vec::new())),
        }
    }
    groups
}

/// The changes between two bodies at `depth`: removed lines, then added
/// ones; a line whose own lines changed is shown unmarked above their
/// changes, so a change under one of several `real`s says which.
fn diff_body<S: AsRef<str>>(out: &mut String, depth: usize, old: &[S], new: &[S]) {
    let (old, new) = (nested(old), nested(new));
    let indent = " ".repeat(depth);
    let push = |out: &mut String, mark: char, (line, under): &(&str, Vec<&str>)| {
        out.push_str(&format!("{mark} {indent}{line}\n"));
        for u in under {
            out.push_str(&format!("{mark} {indent} {u}\n"));
        }
    };
    let old_by_line: HashMap<&str, &Vec<&str>> = old.iter().map(|(l, u)| (*l, u)).collect();
    let new_by_line: HashMap<&str, &Vec<&str>> = new.iter().map(|(l, u)| (*l, u)).collect();
    for group in old.iter().filter(|(l, _)| !new_by_line.contains_key(l)) {
        push(out, '-', group);
    }
    for group @ (line, under) in &new {
        match old_by_line.get(line) {
            None => push(out, '+', group),
            Some(old_under) if *old_under != under => {
                out.push_str(&format!("  {indent}{line}\n"));
                diff_body(out, depth + 1, old_under, under);
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_wherever_they_sit_in_their_line() {
        let text = "iot gateway\n mqtt username gw password s3cret\n mqtt broker 192.0.2.1\n+ mqtt username gw password n3w\n";
        let masked = mask_secrets(text);
        assert!(
            !masked.contains("s3cret") && !masked.contains("n3w"),
            "{masked}"
        );
        assert!(
            masked.contains(" mqtt username gw password <set>\n"),
            "{masked}"
        );
        assert!(
            masked.contains("+ mqtt username gw password <set>\n"),
            "{masked}"
        );
        assert!(masked.contains(" mqtt broker 192.0.2.1\n"), "{masked}");
    }
    use crate::editor::parse_config;

    const TEXT: &str =
        "hostname r1\ninterface eth0\n description uplink\n ip address 10.0.0.1/24\n\
        interface vxlan5\n vni 5\n source-interface eth0\n remote 10.0.0.2\n udp-port 8472\n\
        ip route 10.9.0.0/16 10.0.0.2 20\nip route 0.0.0.0/0 eth0\n\
        ipv6 route 2001:db8:9::/48 2001:db8::2 20\nipv6 route ::/0 eth0\n";

    #[test]
    fn renders_in_canonical_order() {
        let (config, errors) = parse_config(TEXT);
        assert_eq!(errors, []);
        assert_eq!(
            render(&config),
            "!\nhostname r1\n!\ninterface eth0\n description uplink\n ip address 10.0.0.1 255.255.255.0\n\
             !\ninterface vxlan5\n vni 5\n source-interface eth0\n remote 10.0.0.2\n udp-port 8472\n\
             !\nip route 0.0.0.0 0.0.0.0 eth0\nip route 10.9.0.0 255.255.0.0 10.0.0.2 20\n\
             ipv6 route ::/0 eth0\nipv6 route 2001:db8:9::/48 2001:db8::2 20\n!\nend\n"
        );
    }

    #[test]
    fn diff_shows_added_removed_and_changed_lines() {
        let (old, _) = parse_config(TEXT);
        let (new, _) = parse_config(&TEXT.replace("uplink", "wan").replace("hostname r1\n", ""));
        let mut new = new;
        std::sync::Arc::make_mut(&mut new.system).hostname = Some("r2".into());
        assert_eq!(
            diff(&old, &new),
            "+ hostname r2\n  interface eth0\n-  description uplink\n+  description wan\n- hostname r1\n"
        );
        assert_eq!(diff(&old, &old), "");
    }

    #[test]
    fn diff_shows_which_nested_line_a_change_is_under() {
        let text =
            "ip slb serverfarm WEB\n real 10.0.0.1\n  inservice\n real 10.0.0.2\n  inservice\n";
        let (old, _) = parse_config(text);
        let (new, _) = parse_config(&text.replacen("  inservice\n", "  weight 9\n", 1));
        assert_eq!(
            diff(&old, &new),
            "  ip slb serverfarm WEB\n   real 10.0.0.1\n-   inservice\n+   weight 9\n"
        );
        let (none, _) = parse_config("ip slb serverfarm WEB\n");
        assert_eq!(
            diff(&none, &new),
            "  ip slb serverfarm WEB\n+  real 10.0.0.1\n+   weight 9\n+  real 10.0.0.2\n+   inservice\n"
        );
    }
}
