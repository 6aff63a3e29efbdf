//! BGP against a real peer: `gatehouse run`, the real binary, and FRR's
//! bgpd (with its zebra, so FRR's routes reach its namespace's kernel) in
//! a router namespace, a host behind each.
//!
//! ```text
//!  host_a 10.64.1.2 --- 10.64.1.1 [appliance AS 65000] 10.64.2.1 --- 10.64.2.2 [FRR AS 65001] 10.64.3.1 --- host_b 10.64.3.2
//! ```
//!
//! FRR announces 10.64.3.0/24 (connected) and 10.64.99.0/24; the appliance
//! announces 10.64.1.0/24 (`network`), which is how host_b's replies find
//! their way back through FRR.

#[path = "support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, run, Child, Netns, Scratch, Veth};
use std::io::Write;
use std::process::ChildStdin;
use std::time::{Duration, Instant};

/// Hang guard only: sessions come up in seconds.
const PATIENCE: Duration = Duration::from_secs(90);

/// FRR's zebra and bgpd in `ns`, their files in a directory of their own
/// (owned by FRR's user, as the daemons drop to it); killed on drop.
struct Frr {
    ns: String,
    dir: Scratch,
    _zebra: Child,
    _bgpd: Child,
}

impl Frr {
    fn start(ns: &Netns, bgpd_conf: &str) -> Frr {
        let dir = Scratch::new("frr");
        let path = |file: &str| dir.0.join(file).display().to_string();
        std::fs::write(path("zebra.conf"), "hostname frr\n").unwrap();
        std::fs::write(path("bgpd.conf"), bgpd_conf).unwrap();
        run(&["chown", "-R", "frr:frr", &path("")]);
        let daemon = |name: &str| {
            let (conf, pid, log) = (
                path(&format!("{name}.conf")),
                path(&format!("{name}.pid")),
                format!("file:{}", path(&format!("{name}.log"))),
            );
            let (zserv, vty) = (path("zserv.api"), path(""));
            let program = format!("/usr/lib/frr/{name}");
            ns.spawn(&[
                &program,
                "-f",
                &conf,
                "-i",
                &pid,
                "-z",
                &zserv,
                "--vty_socket",
                &vty,
                "--log",
                &log,
            ])
        };
        let zebra = daemon("zebra");
        // bgpd connects to zebra's socket once it is there.
        let deadline = Instant::now() + PATIENCE;
        while !dir.0.join("zserv.api").exists() {
            assert!(Instant::now() < deadline, "zebra did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let bgpd = daemon("bgpd");
        Frr {
            ns: ns.name.clone(),
            dir,
            _zebra: zebra,
            _bgpd: bgpd,
        }
    }

    /// vtysh's output for `commands`, one `-c` each.
    fn vtysh(&self, commands: &[&str]) -> String {
        let vty = self.dir.0.display().to_string();
        let mut args = vec![
            "ip",
            "netns",
            "exec",
            &self.ns,
            "vtysh",
            "--vty_socket",
            &vty,
        ];
        for command in commands {
            args.extend(["-c", command]);
        }
        String::from_utf8_lossy(&netns::output(&args).stdout).into_owned()
    }

    /// Polls `command` until `done` holds of its output.
    fn until(&self, command: &str, done: impl Fn(&str) -> bool) -> String {
        poll(command, || self.vtysh(&[command]), done)
    }
}

/// Looks with `look` until `done` holds of what it sees.
fn poll(what: &str, mut look: impl FnMut() -> String, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = look();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}:\n{text}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The appliance's CLI: lines typed, output polled from its console.
struct Cli {
    dir: Scratch,
    stdin: ChildStdin,
}

impl Cli {
    fn type_lines(&mut self, lines: &[&str]) {
        for line in lines {
            writeln!(self.stdin, "{line}").unwrap();
        }
        self.stdin.flush().unwrap();
    }

    /// Types `command` (at the `#` prompt) again and again until its
    /// whole output satisfies `done`.
    fn until(&mut self, command: &str, done: impl Fn(&str) -> bool) -> String {
        poll(
            command,
            || {
                let before = appliance::console(&self.dir.0).len();
                self.type_lines(&[command]);
                // The whole answer: up to the next prompt.
                poll(
                    command,
                    || appliance::console(&self.dir.0)[before..].to_string(),
                    |t| t.trim_end().ends_with('#'),
                )
            },
            done,
        )
    }
}

/// FRR in AS `frr_as`, its peer the appliance in `our_as`.
fn frr_conf(frr_as: u32, our_as: u32) -> String {
    format!(
        "router bgp {frr_as}
 bgp router-id 10.64.2.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.64.2.1 remote-as {our_as}
 neighbor 10.64.2.1 timers 3 9
 address-family ipv4 unicast
  network 10.64.3.0/24
  network 10.64.99.0/24
 exit-address-family
"
    )
}

/// A summary row of the appliance's that says Established with
/// `prefixes` received.
fn established_with(text: &str, prefixes: usize) -> bool {
    text.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.first() == Some(&"10.64.2.2") && words.last() == Some(&prefixes.to_string().as_str())
    })
}

/// The three namespaces, FRR and the appliance. Fields drop in order:
/// the processes before the links and namespaces they use.
struct Site {
    cli: Cli,
    _appliance: Child,
    frr: Frr,
    _links: [Veth; 3],
    host_a: Netns,
    router: Netns,
    _host_b: Netns,
}

impl Site {
    /// The appliance in AS `our_as`, FRR in `frr_as` (iBGP when equal),
    /// the session configured on both sides.
    fn start(our_as: u32, frr_as: u32) -> Site {
        let (host_a, router, host_b) = (Netns::new(), Netns::new(), Netns::new());
        let lan = Veth::into_ns(&host_a);
        let uplink = Veth::into_ns(&router);
        let far = Veth::into_ns(&router);
        run(&["ip", "link", "set", &far.outer, "netns", &host_b.name]);
        host_a.configure(&lan.inner, "10.64.1.2/24", Some("10.64.1.1"));
        router.configure(&uplink.inner, "10.64.2.2/24", None);
        router.configure(&far.inner, "10.64.3.1/24", None);
        router.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        host_b.configure(&far.outer, "10.64.3.2/24", Some("10.64.3.1"));
        let frr = Frr::start(&router, &frr_conf(frr_as, our_as));
        let dir = Scratch::new("bgp");
        let config = [
            format!("interface {}", lan.outer),
            " ip address 10.64.1.1/24".to_string(),
            format!("interface {}", uplink.outer),
            " ip address 10.64.2.1/24".to_string(),
            format!("router bgp {our_as}"),
            " bgp router-id 10.64.2.1".to_string(),
            format!(" neighbor 10.64.2.2 remote-as {frr_as}"),
            " neighbor 10.64.2.2 description FRR".to_string(),
            " neighbor 10.64.2.2 timers 3 9".to_string(),
            " address-family ipv4 unicast".to_string(),
            "  network 10.64.1.0/24".to_string(),
            "  neighbor 10.64.2.2 activate".to_string(),
            " exit-address-family".to_string(),
            String::new(),
        ]
        .join("\n");
        std::fs::write(dir.0.join("startup-config"), config).unwrap();
        let (child, stdin) = appliance::start(&dir.0, 1);
        let mut cli = Cli { dir, stdin };
        cli.type_lines(&["enable"]);
        Site {
            cli,
            _appliance: Child(child),
            frr,
            _links: [lan, uplink, far],
            host_a,
            router,
            _host_b: host_b,
        }
    }
}

#[test]
fn an_ebgp_session_with_frr_exchanges_routes_that_carry_traffic_until_shut_down() {
    if !is_root() {
        return;
    }
    let mut site = Site::start(65000, 65001);
    let (cli, frr, host_a) = (&mut site.cli, &site.frr, &site.host_a);

    // Both sides say Established; the appliance has FRR's two prefixes.
    let summary = cli.until("show ip bgp summary", |t| established_with(t, 2));
    assert!(
        summary.contains("BGP router identifier 10.64.2.1, local AS number 65000"),
        "{summary}"
    );
    frr.until("show bgp summary json", |t| {
        t.contains("\"state\":\"Established\"")
    });
    let table = cli.until("show ip bgp", |t| t.contains("10.64.99.0/24"));
    assert!(
        table.lines().any(|l| l.contains("*>")
            && l.contains("10.64.3.0/24")
            && l.contains("10.64.2.2")
            && l.contains("65001 i")),
        "{table}"
    );
    assert!(table.contains("10.64.1.0/24"), "our network: {table}");
    let routes = cli.until("show ip route", |t| t.contains("B    10.64.3.0/24"));
    assert!(routes.contains("[20/0] via 10.64.2.2"), "{routes}");

    // The appliance's network reaches FRR's table, from AS 65000, and
    // traffic follows both directions' BGP routes.
    frr.until("show ip bgp 10.64.1.0/24", |t| {
        t.contains("65000") && t.contains("10.64.2.1")
    });
    frr.until("show ip route 10.64.1.0/24", |t| t.contains("bgp"));
    assert!(
        host_a.ping_ok("10.64.3.2"),
        "host_b is reached through the appliance's BGP route"
    );
    let neighbor = cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("BGP state = Established")
    });
    assert!(
        neighbor.contains("remote AS 65001, external link"),
        "{neighbor}"
    );
    assert!(
        neighbor.contains("Hold time is 9, keepalive interval is 3 seconds"),
        "{neighbor}"
    );

    // A prefix FRR withdraws leaves the appliance's table.
    frr.vtysh(&[
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
        "no network 10.64.99.0/24",
    ]);
    cli.until("show ip route", |t| {
        t.contains("B    10.64.3.0/24") && !t.contains("10.64.99.0/24")
    });

    // A static route of the appliance's, redistributed, reaches FRR as
    // incomplete from AS 65000.
    cli.type_lines(&[
        "configure terminal",
        "ip route 10.64.50.0/24 10.64.1.2",
        "router bgp 65000",
        "address-family ipv4 unicast",
        "redistribute static",
        "commit",
        "end",
    ]);
    frr.until("show ip bgp 10.64.50.0/24", |t| {
        t.contains("65000") && t.contains("incomplete")
    });

    // `clear ip bgp *` resets the session; it comes back by itself.
    cli.type_lines(&["clear ip bgp *"]);
    cli.until("show ip bgp neighbors 10.64.2.2", |t| {
        t.contains("Connections established 2") && t.contains("BGP state = Established")
    });

    // `neighbor ... shutdown` takes the session down and the routes out.
    cli.type_lines(&[
        "configure terminal",
        "router bgp 65000",
        "neighbor 10.64.2.2 shutdown",
        "commit",
        "end",
    ]);
    cli.until("show ip bgp summary", |t| t.contains("Idle (Admin)"));
    cli.until("show ip route", |t| {
        t.contains("Codes:") && !t.contains("10.64.3.0/24")
    });
    frr.until("show bgp summary json", |t| {
        t.contains("\"peers\"") && !t.contains("\"state\":\"Established\"")
    });
}

#[test]
fn an_ibgp_session_with_frr_installs_its_routes_at_ibgp_distance() {
    if !is_root() {
        return;
    }
    let mut site = Site::start(65001, 65001);
    // The appliance announces nothing to iBGP peers yet: FRR's way back
    // is a kernel route.
    (site.router).run(&["ip", "route", "add", "10.64.1.0/24", "via", "10.64.2.1"]);
    let cli = &mut site.cli;
    cli.until("show ip bgp summary", |t| established_with(t, 2));
    site.frr.until("show bgp summary json", |t| {
        t.contains("\"state\":\"Established\"")
    });
    let table = cli.until("show ip bgp", |t| t.contains("10.64.99.0/24"));
    assert!(
        table.lines().any(|l| l.starts_with(" *>i 10.64.3.0/24")
            && l.contains("100")
            && l.trim_end().ends_with(" i")),
        "internal, LOCAL_PREF 100, empty path: {table}"
    );
    let routes = cli.until("show ip route", |t| t.contains("B    10.64.3.0/24"));
    assert!(routes.contains("[200/0] via 10.64.2.2"), "{routes}");
    assert!(
        site.host_a.ping_ok("10.64.3.2"),
        "host_b is reached through the iBGP route"
    );
    let neighbor = cli.until("show ip bgp neighbors", |t| {
        t.contains("BGP state = Established")
    });
    assert!(
        neighbor.contains("remote AS 65001, internal link"),
        "{neighbor}"
    );
}
