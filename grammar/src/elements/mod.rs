//! The network elements of the configuration. Each module owns one
//! element's part of the typed model, its commands (global and sub-mode
//! ones, `no` forms included), its running-config lines, its commit checks
//! and its round-trip generator; `crate::config` lists them.
//!
//! Adding an element: a module here implementing [`NetworkElement`], and
//! one line in the registry of `crate::config`.

pub mod access_lists;
mod acl_names;
pub mod bgp;
pub mod bridge_domain;
pub mod control_plane;
pub mod inspect;
pub mod interfaces;
pub mod iot;
pub mod line_vty;
pub mod management;
pub mod nat;
pub mod prefix_list;
pub mod redundancy;
pub mod route_map;
pub mod slb;
pub mod static_routes;
pub mod system;
pub mod tcp_mss;
pub mod users;
pub mod vrf;
pub mod vrrp;
pub mod wireguard;

use crate::commands::{CommandDef, SubMode};
use crate::config::Config;
use crate::render::Block;
use std::sync::Arc;

/// What an element declares to the CLI.
pub struct Declaration {
    /// Its name in messages and documentation.
    pub name: &'static str,
    /// Its configuration commands, in every mode.
    pub commands: &'static [CommandDef],
    /// The sub-modes its commands open.
    pub sub_modes: &'static [&'static SubMode],
}

/// One network element of the configuration, as the CLI, the renderer and
/// the commit checks see it.
pub trait NetworkElement: Sync {
    /// Its name, commands and sub-modes.
    fn declaration(&self) -> &'static Declaration;

    /// Its top-level running-config blocks; the registry's order is the
    /// canonical order of the sections.
    fn blocks(&self, _config: &Config, _out: &mut Vec<Block>) {}

    /// The lines it adds under `interface NAME` (registry order).
    fn interface_lines(&self, _config: &Config, _interface: &str, _out: &mut Vec<String>) {}

    /// Removes what it holds about an interface that `no interface` removes.
    fn forget_interface(&self, _config: &mut Config, _interface: &str) {}

    /// Its secrets in running-config lines: (how the line starts, the
    /// word the secret follows). `show running-config` prints `<set>` in
    /// their place ([`crate::render::mask_secrets`]).
    fn secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Its commit checks: one `%` message per problem.
    fn check(&self, _config: &Config, _problems: &mut Vec<String>) {}

    /// True when nothing its checks read differs between `old` (which
    /// passed them) and `new`, so a commit need not run them again.
    fn unchanged(&self, old: &Config, new: &Config) -> bool;

    /// Configuration text of this element for the round-trip property
    /// test: lines that parse without error (interfaces `eth0`-`eth3` may
    /// be named).
    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String>;
}

/// Whether two sections are the same one (the candidate shares every
/// section it did not change with the configuration it started from).
pub fn same<T>(a: &Arc<T>, b: &Arc<T>) -> bool {
    Arc::ptr_eq(a, b)
}

#[cfg(test)]
pub(crate) mod tests {
    //! The round-trip property over every element's generator, and the
    //! strategies elements share.

    use crate::config::ELEMENTS;
    use crate::{parse_config, render};
    use proptest::prelude::*;

    /// A description or banner: printable, no leading or trailing blank.
    pub fn text() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9 ,.:!/-]{0,30}[A-Za-z0-9.]"
    }

    /// `TYPE BASE64 [COMMENT]` of a well-formed ed25519 key.
    pub fn ssh_key_line() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(any::<u8>(), 32),
            proptest::option::of("[a-z]{1,8}@[a-z]{1,8}"),
        )
            .prop_map(|(point, comment)| {
                use base64ct::Encoding;
                let mut blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20".to_vec();
                blob.extend_from_slice(&point);
                let key = base64ct::Base64::encode_string(&blob);
                match comment {
                    Some(c) => format!("ssh-ed25519 {key} {c}"),
                    None => format!("ssh-ed25519 {key}"),
                }
            })
    }

    /// Every element's text, in registry order.
    fn configuration_text() -> impl Strategy<Value = String> {
        let parts: Vec<_> = ELEMENTS.iter().map(|e| e.arbitrary_text()).collect();
        parts.prop_map(|texts| texts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// What any element's commands build survives render -> parse.
        #[test]
        fn every_element_round_trips_through_its_running_config(text in configuration_text()) {
            let (model, errors) = parse_config(&text);
            prop_assert_eq!(errors, vec![], "generated text:\n{}", text);
            let rendered = render(&model);
            let (back, errors) = parse_config(&rendered);
            prop_assert_eq!(errors, vec![], "rendered:\n{}", rendered);
            prop_assert_eq!(render(&back), rendered.clone());
            prop_assert_eq!(back, model, "rendered:\n{}", rendered);
        }
    }

    #[test]
    fn every_element_is_generated_by_the_round_trip() {
        let names: Vec<_> = ELEMENTS.iter().map(|e| e.declaration().name).collect();
        assert_eq!(
            names,
            [
                "system",
                "users",
                "vrf",
                "access lists",
                "inspect",
                "interfaces",
                "bridge domain",
                "nat",
                "slb",
                "vrrp",
                "redundancy",
                "tcp mss",
                "wireguard",
                "static routes",
                "bgp",
                "prefix lists",
                "route maps",
                "control plane",
                "management",
                "line vty",
                "iot"
            ]
        );
    }
}
