//! Property test: no line (random bytes or a soup of real tokens) makes
//! the parser, help, completion, renderer or checks panic. The round trip
//! of every element's generator is in `src/elements` (the generators live
//! with their elements).

use grammar::config::Config;
use grammar::editor::config_trees;
use grammar::{apply_line, render, ConfigContext};
use proptest::prelude::*;

const SOUP: &[&str] = &[
    "interface",
    "int",
    "eth0",
    "eth0.100",
    "vxlan5",
    "ip",
    "ipv6",
    "address",
    "route",
    "no",
    "hostname",
    "host",
    "mtu",
    "1500",
    "0",
    "99999999999999999999",
    "10.0.0.1/24",
    "10.0.0.1",
    "255.255.255.0",
    "255.0.255.0",
    "secondary",
    "name",
    "default",
    "-",
    "eth3,",
    ",",
    "::1/128",
    "2001:db8::1",
    "fe80::1",
    "vni",
    "remote",
    "udp-port",
    "source-interface",
    "shutdown",
    "description",
    "\"quoted text\"",
    "\"",
    "banner",
    "motd",
    "username",
    "secret",
    "ssh-key",
    "ssh-ed25519",
    "AAAAC3NzaC1lZDI1NTE5AAAAIDSMDafHdxbQG4k09b/vKCVbGmVRGNYVty/R38Xyr3UK",
    "privilege",
    "encapsulation",
    "dot1q",
    "vrf",
    "definition",
    "forwarding",
    "rd",
    "65000:1",
    "TENANT-A",
    "access-list",
    "access-group",
    "traffic-filter",
    "access-class",
    "extended",
    "100",
    "2000",
    "permit",
    "deny",
    "remark",
    "tcp",
    "udp",
    "icmp",
    "any",
    "0.0.255.255",
    "2001:db8::/32",
    "eq",
    "neq",
    "lt",
    "gt",
    "range",
    "65535",
    "established",
    "log",
    "in",
    "out",
    "line",
    "vty",
    "4",
    "inspect",
    "max-sessions",
    "synwait-time",
    "idle-time",
    "finwait-time",
    "control-plane",
    "police",
    "arp-nd",
    "tcp-udp",
    "other",
    "rate",
    "burst",
    "slb",
    "probe",
    "http",
    "serverfarm",
    "vserver",
    "real",
    "port",
    "weight",
    "inservice",
    "virtual",
    "maglev",
    "table-size",
    "65537",
    "request",
    "url",
    "/health",
    "expect",
    "status",
    "nat",
    "client",
    "?",
    "|",
    "include",
    "-1",
    "<1-5>",
    "A.B.C.D",
    "",
    " ",
    "é",
    "\t",
];

fn soup_line() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(SOUP), 0..8).prop_map(|w| w.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_line_makes_the_parser_panic(
        lines in proptest::collection::vec(prop_oneof![soup_line(), any::<String>()], 1..10)
    ) {
        let mut config = Config::default();
        let mut context = ConfigContext::Global;
        for line in &lines {
            let _ = apply_line(&mut config, &mut context, line);
            let trees = config_trees();
            for tree in std::iter::once(&trees.global).chain(trees.sub.values()) {
                let _ = tree.help(line);
                let _ = tree.complete(line);
            }
        }
        let _ = render(&config);
        let _ = grammar::validate(&config);
        let _ = grammar::validate_change(&Config::default(), &config);
    }
}
