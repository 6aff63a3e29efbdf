//! Writes a [`Config`] back as running-config text in a canonical order
//! (each element writes its own section), and compares two configurations block by block.

use crate::config::{Config, ELEMENTS};
use std::collections::HashMap;

/// A top-level line and its indented sub-mode lines.
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
                for line in old.body.iter().filter(|l| !block.body.contains(l)) {
                    out.push_str(&format!("-  {line}\n"));
                }
                for line in block.body.iter().filter(|l| !old.body.contains(l)) {
                    out.push_str(&format!("+  {line}\n"));
                }
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

#[cfg(test)]
mod tests {
    use super::*;
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
}
