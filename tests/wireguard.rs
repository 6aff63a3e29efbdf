//! WireGuard in `gatehouse run`, the real binary, against wireguard-go
//! (Debian's, the userspace WireGuard; this host kernel has none) in
//! network namespaces: a site-to-site tunnel with hosts behind each side,
//! IPv4 and IPv6 inside, IPv4 and IPv6 outside; iperf3 TCP through it; a
//! roaming peer; a peer with a key the appliance does not know; and the
//! client configuration the appliance prints, used by wireguard-go as is.
//!
//! ```text
//!  lan 10.62.1.2 ---- [appliance] ---- wan ---- remote: wireguard-go
//!  fd61::2            10.62.1.1     192.0.2.1   192.0.2.2, 2001:db8:62::2
//!                     wg0 10.99.0.1, fd99::1     tunnel 10.99.0.2, fd99::2
//!                                               its LAN: 10.62.9.1, fd62::1
//! ```

#[path = "support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, Child, Netns, Scratch, Veth};
use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Hang guard only.
const PATIENCE: Duration = Duration::from_secs(30);

/// A key pair from `wg genkey` / `wg pubkey`: (private, public).
fn key_pair() -> (String, String) {
    let private = netns::run(&["wg", "genkey"]).trim().to_string();
    let mut pubkey = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(pubkey.stdin.take().unwrap(), "{private}").unwrap();
    let public = String::from_utf8(pubkey.wait_with_output().unwrap().stdout).unwrap();
    (private, public.trim().to_string())
}

/// A wireguard-go interface `name` in `ns`, with `private` as its key,
/// listening on `port`, with `addresses` on it (gone with the process).
fn wireguard_go(
    ns: &Netns,
    dir: &Scratch,
    (name, port): (&str, &str),
    private: &str,
    addresses: &[&str],
) -> Child {
    let child = ns
        .command("wireguard-go")
        .args(["-f", name])
        .env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !ns.output(&["ip", "link", "show", name]).status.success() {
        assert!(Instant::now() < deadline, "wireguard-go made no {name}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let key = dir.0.join(format!("{name}.key"));
    std::fs::write(&key, private).unwrap();
    let key = key.to_string_lossy();
    ns.run(&["wg", "set", name, "private-key", &key, "listen-port", port]);
    for a in addresses {
        ns.run(&["ip", "addr", "add", a, "dev", name]);
    }
    ns.run(&["ip", "link", "set", name, "up"]);
    Child(child)
}

struct Site {
    lan: Netns,
    remote: Netns,
    _links: Vec<Veth>,
    dir: Scratch,
    /// The remote's wireguard-go interface: wireguard-go's control socket
    /// (/var/run/wireguard/NAME.sock) is global, so names must differ.
    wgr: String,
    appliance_public: String,
    remote_keys: (String, String),
    cli: Option<ChildStdin>,
}

impl Site {
    fn new() -> Site {
        let (lan, remote) = (Netns::new(), Netns::new());
        let links = vec![Veth::into_ns(&lan), Veth::into_ns(&remote)];
        lan.configure(&links[0].inner, "10.62.1.2/24", Some("10.62.1.1"));
        lan.run(&[
            "ip",
            "addr",
            "add",
            "fd61::2/64",
            "dev",
            &links[0].inner,
            "nodad",
        ]);
        lan.run(&["ip", "-6", "route", "add", "default", "via", "fd61::1"]);
        remote.configure(&links[1].inner, "192.0.2.2/24", None);
        remote.run(&[
            "ip",
            "addr",
            "add",
            "2001:db8:62::2/64",
            "dev",
            &links[1].inner,
            "nodad",
        ]);
        // The remote site's LAN: addresses behind its tunnel end.
        remote.run(&["ip", "addr", "add", "10.62.9.1/32", "dev", "lo"]);
        remote.run(&["ip", "addr", "add", "fd62::1/128", "dev", "lo"]);
        let dir = Scratch::new("wg");
        let (private, public) = key_pair();
        let remote_keys = key_pair();
        let config = [
            "hostname wgsite".to_string(),
            format!("interface {}", links[0].outer),
            " ip address 10.62.1.1/24".into(),
            " ipv6 address fd61::1/64".into(),
            format!("interface {}", links[1].outer),
            " ip address 192.0.2.1/24".into(),
            " ipv6 address 2001:db8:62::1/64".into(),
            "interface wg0".into(),
            " ip address 10.99.0.1/24".into(),
            " ipv6 address fd99::1/64".into(),
            format!(" wireguard private-key {private}"),
            format!(" wireguard peer {}", remote_keys.1),
            "  description remote site".into(),
            "  endpoint 192.0.2.2 51820".into(),
            "  allowed-ips 10.99.0.2/32".into(),
            "  allowed-ips 10.62.9.0/24".into(),
            "  allowed-ips fd99::2/128".into(),
            "  allowed-ips fd62::/64".into(),
            "ip route 10.62.9.0/24 wg0".into(),
            "ipv6 route fd62::/64 wg0".into(),
            String::new(),
        ]
        .join("\n");
        std::fs::write(dir.0.join("startup-config"), config).unwrap();
        Site {
            lan,
            remote,
            _links: links,
            dir,
            wgr: netns::unique("r"),
            appliance_public: public,
            remote_keys,
            cli: None,
        }
    }

    /// The remote side: wireguard-go with the appliance as its peer at `endpoint`.
    fn remote_tunnel(&self, endpoint: &str) -> Child {
        let wg = wireguard_go(
            &self.remote,
            &self.dir,
            (&self.wgr, "51820"),
            &self.remote_keys.0,
            &["10.99.0.2/24", "fd99::2/64"],
        );
        self.remote.run(&[
            "wg",
            "set",
            &self.wgr,
            "peer",
            &self.appliance_public,
            "endpoint",
            endpoint,
            "allowed-ips",
            "10.99.0.1/32,10.62.1.0/24,fd99::1/128,fd61::/64",
        ]);
        self.remote
            .run(&["ip", "route", "add", "10.62.1.0/24", "dev", &self.wgr]);
        self.remote
            .run(&["ip", "-6", "route", "add", "fd61::/64", "dev", &self.wgr]);
        wg
    }

    fn start(&mut self) -> Child {
        let (child, cli) = appliance::start(&self.dir.0);
        self.cli = Some(cli);
        child
    }

    fn console(&self) -> String {
        appliance::console(&self.dir.0)
    }

    /// Types `lines` at the CLI and returns what the console printed after
    /// the last one, once `done` holds of it (a hang guard, not a timing).
    fn cli(&mut self, lines: &[&str], done: impl Fn(&str) -> bool) -> String {
        let before = self.console().len();
        let stdin = self.cli.as_mut().expect("started");
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
        stdin.flush().unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.console()[before..].to_string();
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "no answer to {lines:?}:\n{text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Pings until one answer comes (the first needs a handshake).
    fn reaches(&self, from: &Netns, target: &str) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if from.ping_ok(target) {
                return true;
            }
        }
        false
    }
}

#[test]
fn a_site_to_site_tunnel_with_wireguard_go_carries_ipv4_ipv6_and_tcp() {
    if !is_root() {
        return;
    }
    let mut site = Site::new();
    let _appliance = site.start();
    let _wg = site.remote_tunnel("192.0.2.1:51820");
    assert!(
        site.reaches(&site.lan, "10.62.9.1"),
        "IPv4 through the tunnel\n{}",
        site.console()
    );
    assert!(
        site.reaches(&site.lan, "fd62::1"),
        "IPv6 through the tunnel\n{}",
        site.console()
    );
    assert!(
        site.reaches(&site.remote, "10.62.1.2"),
        "and from the other side"
    );

    // TCP: iperf3 from the LAN to the remote site's host.
    let _server = site
        .remote
        .spawn(&["iperf3", "-s", "-1", "-B", "10.62.9.1"]);
    std::thread::sleep(Duration::from_millis(500));
    let report = site
        .lan
        .run(&["iperf3", "-c", "10.62.9.1", "-t", "2", "-J"]);
    let bits = report
        .split("\"sum_received\"")
        .nth(1)
        .and_then(|s| s.split("\"bits_per_second\":").nth(1))
        .and_then(|s| s.split([',', '\n', '}']).next())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        bits > 1e6,
        "iperf3 through the tunnel: {bits} bit/s\n{report}"
    );

    let shown = site.cli(&["enable", "show wireguard wg0"], |t| {
        t.contains("transfer:")
    });
    assert!(
        shown.contains(&format!("public key: {}", site.appliance_public)),
        "{shown}"
    );
    assert!(shown.contains("endpoint: 192.0.2.2:51820"), "{shown}");
    assert!(
        shown.contains("seconds ago"),
        "a handshake happened: {shown}"
    );
    let running = site.cli(&["show running-config interface wg0"], |t| {
        t.contains("end")
    });
    assert!(
        running.contains(" wireguard private-key <set>"),
        "{running}"
    );
}

#[test]
fn a_roaming_peer_an_ipv6_outer_path_and_an_unknown_key() {
    if !is_root() {
        return;
    }
    let mut site = Site::new();
    let _appliance = site.start();
    // The remote reaches the appliance over IPv6 this time.
    let _wg = site.remote_tunnel("[2001:db8:62::1]:51820");
    assert!(
        site.reaches(&site.remote, "10.62.1.2"),
        "over an IPv6 outer path\n{}",
        site.console()
    );
    let shown = site.cli(&["enable", "show wireguard"], |t| t.contains("transfer:"));
    assert!(
        shown.contains("endpoint: [2001:db8:62::2]:51820"),
        "{shown}"
    );

    // Roaming: the remote comes from another family and port (a NAT
    // rebinding); the appliance follows where its packets come from.
    site.remote
        .run(&["wg", "set", &site.wgr, "listen-port", "51999"]);
    site.remote.run(&[
        "wg",
        "set",
        &site.wgr,
        "peer",
        &site.appliance_public,
        "endpoint",
        "192.0.2.1:51820",
    ]);
    assert!(site.reaches(&site.remote, "10.62.1.2"), "after the move");
    assert!(
        site.reaches(&site.lan, "10.62.9.1"),
        "the appliance sends to the new address"
    );
    let shown = site.cli(&["show wireguard wg0"], |t| t.contains("transfer:"));
    assert!(shown.contains("endpoint: 192.0.2.2:51999"), "{shown}");

    // A stranger with a key the appliance does not know gets nowhere.
    let (private, _) = key_pair();
    let stranger_if = netns::unique("x");
    let _stranger = wireguard_go(
        &site.remote,
        &site.dir,
        (&stranger_if, "51821"),
        &private,
        &["10.99.0.9/32"],
    );
    site.remote.run(&[
        "wg",
        "set",
        &stranger_if,
        "peer",
        &site.appliance_public,
        "endpoint",
        "192.0.2.1:51820",
        "allowed-ips",
        "10.99.0.1/32",
    ]);
    let mut ping = site.remote.command("ping");
    ping.args(["-c", "3", "-W", "1", "-I", &stranger_if, "10.99.0.1"]);
    assert!(
        !ping.output().unwrap().status.success(),
        "an unknown key is answered"
    );
    let shown = site.cli(&["show wireguard wg0"], |t| t.contains("rejected:"));
    assert!(shown.contains("unknown-peer"), "{shown}");
}

#[test]
fn the_client_config_the_appliance_prints_works_in_wireguard_go() {
    if !is_root() {
        return;
    }
    let mut site = Site::new();
    let _appliance = site.start();
    let (client_private, client_public) = key_pair();
    // A roaming client: no endpoint, its address in the tunnel's subnet.
    let client_config = site.cli(
        &[
            "enable",
            "configure terminal",
            "interface wg0",
            &format!("wireguard peer {client_public}"),
            "allowed-ips 10.99.0.50/32",
            "persistent-keepalive 5",
            "end",
            &format!("show wireguard peer {client_public} client-config"),
        ],
        |t| t.contains("PersistentKeepalive"),
    );
    let start = client_config.find("[Interface]").expect("a wg-quick file");
    let end = client_config.find("PersistentKeepalive").unwrap();
    let text = &client_config[start..end + "PersistentKeepalive = 5".len()];
    assert!(
        text.contains("Endpoint = 10.62.1.1:51820") || text.contains("Endpoint = 192.0.2.1:51820"),
        "{text}"
    );
    // As a client would use it: its own key in, wg-quick's own lines out.
    let file = text
        .lines()
        .map(|l| match l.starts_with("PrivateKey") {
            true => format!("PrivateKey = {client_private}"),
            false => l.to_string(),
        })
        .filter(|l| !l.starts_with("Address"))
        .collect::<Vec<_>>()
        .join("\n");
    let conf = site.dir.0.join("client.conf");
    let client_if = netns::unique("c");
    std::fs::write(&conf, file + "\n").unwrap();
    let _client = wireguard_go(
        &site.lan,
        &site.dir,
        (&client_if, "51820"),
        &client_private,
        &["10.99.0.50/24"],
    );
    site.lan
        .run(&["wg", "setconf", &client_if, &conf.to_string_lossy()]);
    assert!(
        site.reaches(&site.lan, "10.99.0.1"),
        "the client reaches the appliance\n{}",
        site.console()
    );
}
