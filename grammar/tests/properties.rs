//! Property tests: generated models survive render -> parse unchanged, and
//! no line (random bytes or a soup of real tokens) makes the parser panic.

use grammar::config::{
    Config, Interface, Ipv6Route, NextHop, PasswordHash, SshKey, StaticRoute, User, Vxlan,
};
use grammar::editor::config_trees;
use grammar::{apply_line, parse_config, render, ConfigContext};
use ipnet::{Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 ,.:!/-]{0,30}[A-Za-z0-9.]".prop_map(|s| s)
}

fn host_v4() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, len)| Ipv4Net::new(Ipv4Addr::from(a), len).unwrap())
        .prop_filter("host address", |n| {
            n.prefix_len() >= 31 || (n.addr() != n.network() && n.addr() != n.broadcast())
        })
}

fn vxlan() -> impl Strategy<Value = Vxlan> {
    (
        proptest::option::of(1u32..=16_777_215),
        proptest::option::of("eth[0-3]"),
        proptest::collection::btree_set(any::<u32>().prop_map(Ipv4Addr::from), 0..3),
        1u16..,
    )
        .prop_map(|(vni, source_interface, remotes, udp_port)| Vxlan {
            vni,
            source_interface,
            remotes,
            udp_port,
        })
}

fn interface(name: &str) -> impl Strategy<Value = Interface> {
    let is_sub = name.contains('.');
    let is_vxlan = name.starts_with("vxlan");
    (
        proptest::option::of(text()),
        any::<bool>(),
        proptest::option::of(68u16..),
        proptest::collection::btree_set(host_v4(), 0..3),
        proptest::collection::btree_set(
            (any::<u128>(), 0u8..=128)
                .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap()),
            0..2,
        ),
        proptest::option::of(1u16..=4094),
        vxlan(),
    )
        .prop_map(
            move |(description, shutdown, mtu, v4, v6, dot1q, vx)| Interface {
                description,
                shutdown,
                mtu,
                ipv4_addresses: v4,
                ipv6_addresses: v6,
                dot1q: dot1q.filter(|_| is_sub),
                vxlan: is_vxlan.then_some(vx),
            },
        )
}

fn interfaces() -> impl Strategy<Value = Vec<(String, Interface)>> {
    proptest::collection::btree_set(
        prop_oneof![
            "eth[0-3]",
            "eth[0-3]\\.[1-9][0-9]{0,2}",
            "vxlan[1-9][0-9]{0,3}",
            "veth-[a-z]{1,4}"
        ],
        0..5,
    )
    .prop_flat_map(|names| {
        names
            .into_iter()
            .map(|name| interface(&name).prop_map(move |i| (name.clone(), i)))
            .collect::<Vec<_>>()
    })
}

/// A static route of either family from its prefix and address strategies.
fn static_route<P: std::fmt::Debug, A: std::fmt::Debug + Clone + 'static>(
    prefix: impl Strategy<Value = P>,
    via: impl Strategy<Value = A> + 'static,
) -> impl Strategy<Value = StaticRoute<P, A>> {
    let next_hop = prop_oneof![
        via.prop_map(NextHop::Address),
        "[a-z][a-z0-9]{0,6}".prop_map(NextHop::Interface),
    ];
    (prefix, next_hop, 1u8..=255).prop_map(|(prefix, next_hop, distance)| StaticRoute {
        prefix,
        next_hop,
        distance,
    })
}

fn route() -> impl Strategy<Value = StaticRoute> {
    static_route(
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()),
        any::<u32>().prop_map(Ipv4Addr::from),
    )
}

/// Next hops are never link-local or multicast (the command refuses those).
fn ipv6_route() -> impl Strategy<Value = Ipv6Route> {
    static_route(
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()),
        any::<u128>()
            .prop_map(Ipv6Addr::from)
            .prop_filter("global next hop", |a| {
                !a.is_unicast_link_local() && !a.is_multicast()
            }),
    )
}

/// Well-formed ed25519 key blobs in base64: the type prefix plus 32 key bytes.
fn ssh_key() -> impl Strategy<Value = SshKey> {
    (
        proptest::collection::vec(any::<u8>(), 32),
        proptest::option::of("[a-z]{1,8}@[a-z]{1,8}"),
    )
        .prop_map(|(point, comment)| {
            let mut blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20".to_vec();
            blob.extend_from_slice(&point);
            SshKey {
                algorithm: "ssh-ed25519".to_string(),
                base64: base64(&blob),
                comment,
            }
        })
}

fn base64(bytes: &[u8]) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from_be_bytes([0, group[0], group[1], group[2]]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                DIGITS[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A user has a password, keys, or both.
fn user() -> impl Strategy<Value = User> {
    (
        0u8..=15,
        proptest::option::of(("[0-9a-f]{32}", "[0-9a-f]{64}")),
        proptest::collection::btree_set(ssh_key(), 0..3),
    )
        .prop_filter("a user needs a way to log in", |(_, secret, keys)| {
            secret.is_some() || !keys.is_empty()
        })
        .prop_map(|(privilege, secret, ssh_keys)| User {
            privilege,
            secret: secret
                .map(|(salt, hash)| PasswordHash(format!("$pbkdf2-sha256$1000${salt}${hash}"))),
            ssh_keys,
        })
}

fn config() -> impl Strategy<Value = Config> {
    (
        proptest::option::of("[a-z][a-z0-9-]{0,20}"),
        proptest::option::of(text()),
        interfaces(),
        proptest::collection::btree_set(route(), 0..4),
        proptest::collection::btree_set(ipv6_route(), 0..4),
        proptest::collection::btree_map("[a-z][a-z0-9]{0,8}", user(), 0..3),
    )
        .prop_map(
            |(hostname, banner_motd, interfaces, routes, ipv6_routes, users)| Config {
                hostname,
                banner_motd,
                interfaces: interfaces.into_iter().collect(),
                routes,
                ipv6_routes,
                users,
            },
        )
}

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
    fn render_then_parse_gives_back_the_model(model in config()) {
        let text = render(&model);
        let (parsed, errors) = parse_config(&text);
        prop_assert_eq!(errors, vec![], "text:\n{}", text);
        prop_assert_eq!(render(&parsed), text);
        prop_assert_eq!(parsed, model);
    }

    #[test]
    fn no_line_makes_the_parser_panic(
        lines in proptest::collection::vec(prop_oneof![soup_line(), any::<String>()], 1..10)
    ) {
        let mut config = Config::default();
        let mut context = ConfigContext::Global;
        for line in &lines {
            let _ = apply_line(&mut config, &mut context, line);
            for tree in [&config_trees().global, &config_trees().interface] {
                let _ = tree.help(line);
                let _ = tree.complete(line);
            }
        }
        let _ = render(&config);
        let _ = grammar::validate(&config);
    }
}
