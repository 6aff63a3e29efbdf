//! The WireGuard element: `wgN` tunnel interfaces, configured as `wg(8)`
//! configures one (base64 Curve25519 keys, allowed-ips as the routing and
//! source filter), in IOS-like words on the interface:
//!
//! ```text
//! interface wg0
//!  ip address 10.99.0.1 255.255.255.0
//!  wireguard private-key KEY          (or: crypto wireguard key generate wg0)
//!  wireguard listen-port 51820        (default 51820)
//!  wireguard source-interface eth0    (underlay table and source address)
//!  wireguard peer PUBLIC-KEY          opens (config-wg-peer)
//!   description branch office
//!   endpoint 192.0.2.7 51820          (none: a roaming client)
//!   allowed-ips 10.1.0.0/16           (one line per prefix)
//!   persistent-keepalive 25
//!   preshared-key KEY
//! ```
//!
//! The private and preshared keys are kept in the configuration (so the
//! startup file restores them) but `show running-config` prints them as
//! `<set>` ([`crate::render::mask_secrets`]).

use crate::commands::{
    change_if, description_text, set_or_clear, CommandDef, ConfigContext, Edit, Mode, SubMode,
    INCOMPLETE,
};
use crate::config::{Config, InterfaceKind, INTERFACE_MODE};
use base64ct::Encoding;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The port a `wgN` interface listens on until `wireguard listen-port`.
pub const DEFAULT_WG_PORT: u16 = 51820;

/// `(config-wg-peer)#`, opened by `wireguard peer KEY` on a `wgN` interface.
pub static WG_PEER_MODE: SubMode = SubMode {
    prompt: "wg-peer",
    parent: Some(&INTERFACE_MODE),
};

/// A Curve25519 key (private, public or preshared), written in base64 as
/// `wg(8)` writes it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WgKey(pub [u8; 32]);

impl WgKey {
    /// The key of 44 base64 characters, or a `%` message.
    pub fn parse(text: &str) -> Result<WgKey, String> {
        let mut key = [0u8; 32];
        match base64ct::Base64::decode(text, &mut key) {
            Ok(decoded) if decoded.len() == 32 => Ok(WgKey(key)),
            _ => Err(format!(
                "% Bad WireGuard key {text}: 32 bytes in base64 expected (as wg genkey prints)"
            )),
        }
    }

    /// A new private key from the system's random source, clamped as
    /// `wg genkey` clamps it (RFC 7748).
    pub fn generate() -> Result<WgKey, String> {
        use ring::rand::SecureRandom;
        let mut key = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| "% No random source for a key".to_string())?;
        key[0] &= 248;
        key[31] = (key[31] & 127) | 64;
        Ok(WgKey(key))
    }
}

impl fmt::Display for WgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64ct::Base64::encode_string(&self.0))
    }
}

/// Keys are secrets: debug output never shows them.
impl fmt::Debug for WgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WgKey(..)")
    }
}

/// One peer of a `wgN` interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WgPeer {
    pub description: Option<String>,
    /// None: the peer is reached where it last sent from (a roaming client).
    pub endpoint: Option<SocketAddr>,
    /// Networks the peer may send from and is routed to (trunc'd).
    pub allowed_ips: BTreeSet<IpNet>,
    pub persistent_keepalive: Option<u16>,
    pub preshared_key: Option<WgKey>,
}

/// The WireGuard settings of one `wgN` interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WgInterface {
    pub private_key: Option<WgKey>,
    pub listen_port: Option<u16>,
    pub source_interface: Option<String>,
    /// By public key.
    pub peers: BTreeMap<WgKey, WgPeer>,
}

impl WgInterface {
    pub fn port(&self) -> u16 {
        self.listen_port.unwrap_or(DEFAULT_WG_PORT)
    }
}

/// The WireGuard settings by interface name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WireGuard {
    pub interfaces: BTreeMap<String, WgInterface>,
}

pub struct Element;

const PEER: Mode = Mode::Sub(&WG_PEER_MODE);

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Sub(&INTERFACE_MODE),
        syntax: "wireguard (private-key WORD$key|listen-port <1-65535>$port|source-interface IFNAME$source)",
        help: &[
            "WireGuard tunnel settings (wgN interfaces)",
            "The interface's private key",
            "Base64 key, as wg genkey prints it",
            "UDP port the tunnel listens on (default 51820)",
            "Port",
            "Interface whose address and table carry the tunnel",
            "Interface name",
        ],
        handler: interface_setting,
    },
    CommandDef {
        mode: Mode::Sub(&INTERFACE_MODE),
        syntax: "wireguard peer WORD$key",
        help: &[
            "WireGuard tunnel settings (wgN interfaces)",
            "Configure a peer",
            "The peer's public key (base64)",
        ],
        handler: peer,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "crypto wireguard key generate IFNAME$name",
        help: &[
            "Encryption keys",
            "WireGuard keys",
            "The private key of a wgN interface",
            "Generate a new one (replaces the current key)",
            "Interface name",
        ],
        handler: generate_key,
    },
    CommandDef {
        mode: PEER,
        syntax: "endpoint (A.B.C.D$ip|X:X::X:X$ip) <1-65535>$port",
        help: &[
            "Where the peer is reached (none: where it last sent from)",
            "IPv4 address",
            "IPv6 address",
            "UDP port",
        ],
        handler: endpoint,
    },
    CommandDef {
        mode: PEER,
        syntax: "allowed-ips (A.B.C.D/M$net|X:X::X:X/M$net)",
        help: &[
            "A network routed to the peer and accepted from it",
            "IPv4 prefix",
            "IPv6 prefix",
        ],
        handler: allowed_ips,
    },
    CommandDef {
        mode: PEER,
        syntax: "persistent-keepalive <1-65535>$seconds",
        help: &[
            "Send a keepalive this often (keeps NAT bindings open)",
            "Seconds",
        ],
        handler: keepalive,
    },
    CommandDef {
        mode: PEER,
        syntax: "preshared-key WORD$key",
        help: &[
            "A symmetric key mixed into the handshake",
            "Base64 key, as wg genpsk prints it",
        ],
        handler: preshared_key,
    },
    CommandDef {
        mode: PEER,
        syntax: "description LINE$text",
        help: &["Describe the peer", "Up to 240 characters"],
        handler: peer_description,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "wireguard",
    commands: COMMANDS,
    sub_modes: &[&WG_PEER_MODE],
};

/// The object of `(config-wg-peer)`: `INTERFACE KEY`.
fn peer_object(interface: &str, key: &WgKey) -> String {
    format!("{interface} {key}")
}

fn parse_peer_object(object: &str) -> Option<(String, WgKey)> {
    let (interface, key) = object.split_once(' ')?;
    Some((interface.to_string(), WgKey::parse(key).ok()?))
}

/// Refuses WireGuard settings on an interface that is not `wgN`.
fn wg_interface(name: &str) -> Result<(), String> {
    match InterfaceKind::of(name) {
        InterfaceKind::WireGuard => Ok(()),
        _ => Err(format!(
            "% WireGuard settings are for wgN interfaces, not {name}"
        )),
    }
}

/// Applies `change` to the settings of `interface`, copying the section
/// only when the settings come out different; empty settings are removed.
fn change_interface(
    edit: &mut Edit<'_>,
    interface: &str,
    change: impl FnOnce(&mut WgInterface) -> Result<(), String>,
) -> Result<(), String> {
    let before = edit.config.wireguard.interfaces.get(interface);
    let mut settings = before.cloned().unwrap_or_default();
    change(&mut settings)?;
    let empty = settings == WgInterface::default();
    let needed = match before {
        Some(b) => *b != settings,
        None => !empty,
    };
    change_if(&mut edit.config.wireguard, needed, |w| {
        match empty {
            true => w.interfaces.remove(interface),
            false => w.interfaces.insert(interface.to_string(), settings),
        };
    });
    Ok(())
}

fn interface_setting(edit: &mut Edit<'_>) -> Result<(), String> {
    let interface = edit.object(&INTERFACE_MODE)?;
    wg_interface(&interface)?;
    let (args, negated) = (edit.args, edit.negated);
    if args.has("private-key") {
        let key = set_or_clear(negated, || {
            WgKey::parse(args.text("key").ok_or(INCOMPLETE)?)
        })?;
        return change_interface(edit, &interface, |w| {
            w.private_key = key;
            Ok(())
        });
    }
    if args.has("listen-port") {
        let port = set_or_clear(negated, || {
            args.number("port")
                .map(|p| p as u16)
                .ok_or(INCOMPLETE.into())
        })?;
        return change_interface(edit, &interface, |w| {
            w.listen_port = port;
            Ok(())
        });
    }
    let source = set_or_clear(negated, || {
        args.text("source")
            .map(str::to_string)
            .ok_or(INCOMPLETE.into())
    })?;
    change_interface(edit, &interface, |w| {
        w.source_interface = source;
        Ok(())
    })
}

/// `wireguard peer KEY` adds the peer if new and enters its mode; `no
/// wireguard peer KEY` removes it.
fn peer(edit: &mut Edit<'_>) -> Result<(), String> {
    let interface = edit.object(&INTERFACE_MODE)?;
    wg_interface(&interface)?;
    let key = WgKey::parse(edit.args.text("key").ok_or(INCOMPLETE)?)?;
    let negated = edit.negated;
    change_interface(edit, &interface, |w| match negated {
        true => (w.peers.remove(&key).map(drop)).ok_or_else(|| no_peer(&interface, &key)),
        false => {
            w.peers.entry(key).or_default();
            Ok(())
        }
    })?;
    if !negated {
        let object = peer_object(&interface, &key);
        edit.enter = Some(ConfigContext::Sub(&WG_PEER_MODE, object));
    }
    Ok(())
}

fn no_peer(interface: &str, key: &WgKey) -> String {
    format!("% No peer {key} on {interface}")
}

/// Applies `change` to the peer of the current `(config-wg-peer)` mode.
fn change_peer(edit: &mut Edit<'_>, change: impl FnOnce(&mut WgPeer)) -> Result<(), String> {
    let object = edit.object(&WG_PEER_MODE)?;
    let (interface, key) = parse_peer_object(&object)
        .ok_or_else(|| format!("% Not in config-{} mode", WG_PEER_MODE.prompt))?;
    change_interface(edit, &interface, |w| {
        let peer = w
            .peers
            .get_mut(&key)
            .ok_or_else(|| no_peer(&interface, &key))?;
        change(peer);
        Ok(())
    })
}

/// The address typed as `$ip`, IPv4 or IPv6.
fn address(edit: &Edit<'_>, name: &str) -> Option<IpAddr> {
    (edit.args.ipv4(name).map(IpAddr::V4)).or(edit.args.ipv6(name).map(IpAddr::V6))
}

fn endpoint(edit: &mut Edit<'_>) -> Result<(), String> {
    let endpoint = set_or_clear(edit.negated, || {
        let ip = address(edit, "ip").ok_or(INCOMPLETE)?;
        let port = edit.args.number("port").ok_or(INCOMPLETE)? as u16;
        Ok(SocketAddr::new(ip, port))
    })?;
    change_peer(edit, |p| p.endpoint = endpoint)
}

/// `allowed-ips P` adds a prefix; `no allowed-ips P` removes it, `no
/// allowed-ips` all of them.
fn allowed_ips(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let net = (args.ipv4_prefix("net").map(IpNet::V4))
        .or(args.ipv6_prefix("net").map(IpNet::V6))
        .map(|n| n.trunc());
    let negated = edit.negated;
    let mut missing = None;
    change_peer(edit, |p| match (negated, net) {
        (true, None) => p.allowed_ips.clear(),
        (true, Some(n)) => {
            if !p.allowed_ips.remove(&n) {
                missing = Some(format!("% allowed-ips {n} is not configured"));
            }
        }
        (false, Some(n)) => {
            p.allowed_ips.insert(n);
        }
        (false, None) => missing = Some(INCOMPLETE.to_string()),
    })?;
    missing.map_or(Ok(()), Err)
}

fn keepalive(edit: &mut Edit<'_>) -> Result<(), String> {
    let seconds = set_or_clear(edit.negated, || {
        (edit.args.number("seconds").map(|s| s as u16)).ok_or(INCOMPLETE.into())
    })?;
    change_peer(edit, |p| p.persistent_keepalive = seconds)
}

fn preshared_key(edit: &mut Edit<'_>) -> Result<(), String> {
    let key = set_or_clear(edit.negated, || {
        WgKey::parse(edit.args.text("key").ok_or(INCOMPLETE)?)
    })?;
    change_peer(edit, |p| p.preshared_key = key)
}

fn peer_description(edit: &mut Edit<'_>) -> Result<(), String> {
    let text = description_text(edit)?;
    change_peer(edit, |p| p.description = text)
}

/// `crypto wireguard key generate wgN`: a new private key for the interface.
fn generate_key(edit: &mut Edit<'_>) -> Result<(), String> {
    let interface = edit.args.text("name").ok_or(INCOMPLETE)?.to_string();
    wg_interface(&interface)?;
    if edit.negated {
        return Err("% Remove the key with 'no wireguard private-key' on the interface".into());
    }
    let key = WgKey::generate()?;
    change_interface(edit, &interface, |w| {
        w.private_key = Some(key);
        Ok(())
    })
}

/// The lines of one interface's settings, peers one level deeper.
fn settings_lines(w: &WgInterface, out: &mut Vec<String>) {
    if let Some(key) = &w.private_key {
        out.push(format!("wireguard private-key {key}"));
    }
    if let Some(port) = w.listen_port {
        out.push(format!("wireguard listen-port {port}"));
    }
    if let Some(source) = &w.source_interface {
        out.push(format!("wireguard source-interface {source}"));
    }
    for (key, p) in &w.peers {
        out.push(format!("wireguard peer {key}"));
        if let Some(text) = &p.description {
            out.push(format!(" description {text}"));
        }
        if let Some(e) = p.endpoint {
            out.push(format!(" endpoint {} {}", e.ip(), e.port()));
        }
        out.extend(p.allowed_ips.iter().map(|n| format!(" allowed-ips {n}")));
        if let Some(s) = p.persistent_keepalive {
            out.push(format!(" persistent-keepalive {s}"));
        }
        if let Some(k) = &p.preshared_key {
            out.push(format!(" preshared-key {k}"));
        }
    }
}

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("wireguard private-key", "private-key"),
            ("preshared-key", "preshared-key"),
        ]
    }

    fn interface_lines(&self, config: &Config, interface: &str, out: &mut Vec<String>) {
        if let Some(w) = config.wireguard.interfaces.get(interface) {
            settings_lines(w, out);
        }
    }

    fn forget_interface(&self, config: &mut Config, interface: &str) {
        let needed = config.wireguard.interfaces.contains_key(interface);
        change_if(&mut config.wireguard, needed, |w| {
            w.interfaces.remove(interface);
        });
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let mut ports: BTreeMap<u16, &str> = BTreeMap::new();
        for (name, w) in &config.wireguard.interfaces {
            if !config.interfaces.contains_key(name) {
                problems.push(format!("% {name}: interface is not configured"));
            }
            if w.private_key.is_none() {
                problems.push(format!(
                    "% {name}: no private key (crypto wireguard key generate {name})"
                ));
            }
            if let Some(other) = ports.insert(w.port(), name) {
                problems.push(format!(
                    "% {name}: listen port {} is already {other}'s",
                    w.port()
                ));
            }
            let vxlan_port = |i: &crate::config::Interface| i.vxlan.as_ref().map(|v| v.udp_port);
            if config
                .interfaces
                .values()
                .any(|i| vxlan_port(i) == Some(w.port()))
            {
                problems.push(format!(
                    "% {name}: listen port {} is a VXLAN port",
                    w.port()
                ));
            }
            if let Some(source) = &w.source_interface {
                if !config.interfaces.contains_key(source) {
                    problems.push(format!(
                        "% {name}: source interface {source} is not configured"
                    ));
                }
            }
            // Cryptokey routing: a network belongs to one peer (wg(8)
            // moves it; a commit says so instead).
            let mut owners: BTreeMap<IpNet, &WgKey> = BTreeMap::new();
            for (key, p) in &w.peers {
                for net in &p.allowed_ips {
                    if let Some(other) = owners.insert(*net, key) {
                        problems.push(format!(
                            "% {name}: allowed-ips {net} is on peers {other} and {key}"
                        ));
                    }
                }
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.wireguard, &new.wireguard) && super::same(&old.interfaces, &new.interfaces)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        use proptest::prelude::*;
        let key = any::<[u8; 32]>().prop_map(WgKey);
        let net = prop_oneof![
            (any::<[u8; 4]>(), 0u8..=32)
                .prop_map(|(a, l)| { IpNet::new(IpAddr::from(a), l).map(|n| n.trunc()).ok() }),
            (any::<[u8; 16]>(), 0u8..=128)
                .prop_map(|(a, l)| { IpNet::new(IpAddr::from(a), l).map(|n| n.trunc()).ok() }),
        ];
        let peer = (
            proptest::option::of(super::tests::text()),
            proptest::option::of((any::<[u8; 4]>(), 1u16..)),
            proptest::collection::vec(net, 0..3),
            proptest::option::of(1u16..),
            proptest::option::of(key.clone()),
        )
            .prop_map(|(description, endpoint, nets, keepalive, psk)| WgPeer {
                description,
                endpoint: endpoint.map(|(a, p)| SocketAddr::new(IpAddr::from(a), p)),
                allowed_ips: nets.into_iter().flatten().collect(),
                persistent_keepalive: keepalive,
                preshared_key: psk,
            });
        let settings = (
            proptest::option::of(key.clone()),
            proptest::option::of(1u16..),
            proptest::collection::btree_map(key, peer, 0..3),
        )
            .prop_map(|(private_key, listen_port, peers)| WgInterface {
                private_key,
                listen_port,
                source_interface: None,
                peers,
            });
        ("[0-3]", settings)
            .prop_map(|(n, w)| {
                let mut lines = Vec::new();
                settings_lines(&w, &mut lines);
                let body: String = lines.iter().map(|l| format!(" {l}\n")).collect();
                format!("interface wg{n}\n{body}")
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::mask_secrets;
    use crate::{apply_text, parse_config, render, validate};

    const KEY_A: &str = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    const KEY_B: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    const KEY_C: &str = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

    fn text() -> String {
        [
            "interface wg0",
            " ip address 10.99.0.1 255.255.255.0",
            &format!(" wireguard private-key {KEY_A}"),
            " wireguard listen-port 51000",
            &format!(" wireguard peer {KEY_C}"),
            "  allowed-ips 10.2.0.0/16",
            &format!(" wireguard peer {KEY_B}"),
            "  description branch",
            "  endpoint 192.0.2.7 51820",
            "  allowed-ips 10.1.0.0/16",
            "  allowed-ips fd00:1::/64",
            "  persistent-keepalive 25",
            &format!("  preshared-key {KEY_C}"),
            "",
        ]
        .join("\n")
    }

    #[test]
    fn settings_and_peers_are_configured_rendered_and_read_back() {
        let (config, errors) = parse_config(&text());
        assert_eq!(errors, []);
        let w = &config.wireguard.interfaces["wg0"];
        assert_eq!(w.port(), 51000);
        let b = &w.peers[&WgKey::parse(KEY_B).unwrap()];
        assert_eq!(b.endpoint, Some("192.0.2.7:51820".parse().unwrap()));
        assert_eq!(b.allowed_ips.len(), 2);
        assert_eq!(b.persistent_keepalive, Some(25));
        assert_eq!(validate(&config), Vec::<String>::new());
        let rendered = render(&config);
        assert!(
            rendered.contains(&text()["interface wg0\n".len()..]),
            "{rendered}"
        );
        assert_eq!(parse_config(&rendered).0, config);
    }

    #[test]
    fn show_running_config_masks_the_secrets() {
        let (config, _) = parse_config(&text());
        let masked = mask_secrets(&render(&config));
        let preshared = format!("preshared-key {KEY_C}");
        assert!(
            !masked.contains(KEY_A) && !masked.contains(&preshared),
            "{masked}"
        );
        assert!(
            masked.contains(" wireguard private-key <set>\n"),
            "{masked}"
        );
        assert!(masked.contains("  preshared-key <set>\n"), "{masked}");
        assert!(
            masked.contains(&format!(" wireguard peer {KEY_B}\n")),
            "{masked}"
        );
    }

    #[test]
    fn a_generated_key_is_clamped_and_replaced_on_the_next_generation() {
        let (mut config, _) = parse_config("interface wg1\n");
        assert_eq!(
            apply_text(&mut config, "crypto wireguard key generate wg1\n"),
            []
        );
        let first = config.wireguard.interfaces["wg1"].private_key.unwrap();
        assert_eq!((first.0[0] & 7, first.0[31] & 0xc0), (0, 0x40));
        assert_eq!(
            apply_text(&mut config, "crypto wireguard key generate wg1\n"),
            []
        );
        assert_ne!(config.wireguard.interfaces["wg1"].private_key, Some(first));
    }

    #[test]
    fn bad_keys_other_interfaces_and_conflicts_are_refused() {
        let (mut config, _) = parse_config("interface eth0\ninterface wg0\n");
        for line in [
            "interface wg0\n wireguard private-key short",
            "interface eth0\n wireguard listen-port 5",
            "crypto wireguard key generate eth0",
            "interface wg0\n wireguard peer notbase64!",
        ] {
            let errors = apply_text(&mut config, &format!("{line}\n"));
            assert_eq!(errors.len(), 1, "{line}");
        }
        assert!(config.wireguard.interfaces.is_empty());
        let both = format!(
            "interface wg0\n wireguard peer {KEY_B}\n  allowed-ips 10.1.0.0/16\n wireguard peer {KEY_C}\n  allowed-ips 10.1.0.0/16\ninterface wg1\n wireguard listen-port 51820\n"
        );
        assert_eq!(apply_text(&mut config, &both), []);
        let problems = validate(&config).join("\n");
        for wanted in [
            "wg0: no private key",
            "10.1.0.0/16 is on peers",
            "wg1: listen port 51820 is already wg0's",
        ] {
            assert!(problems.contains(wanted), "{wanted}: {problems}");
        }
        assert_eq!(
            apply_text(
                &mut config,
                &format!("interface wg0\n no wireguard peer {KEY_B}\n")
            ),
            []
        );
        assert_eq!(config.wireguard.interfaces["wg0"].peers.len(), 1);
    }
}
