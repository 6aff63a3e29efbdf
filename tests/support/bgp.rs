//! BGP's test site, shared by tests/bgp.rs and the `bgp` bench:
//! `gatehouse run`, the real binary, and FRR's bgpd (with its zebra, so
//! FRR's routes reach its namespace's kernel) in a router namespace, a host
//! behind each.
//!
//! ```text
//!  host_a 10.64.1.2 --- 10.64.1.1 [appliance] 10.64.2.1 --- 10.64.2.2 [FRR] 10.64.3.1 --- host_b 10.64.3.2
//! ```
//!
//! FRR announces 10.64.3.0/24 (connected), 10.64.99.0/24 and any others
//! asked for; the appliance announces 10.64.1.0/24 (`network`).

use crate::appliance;
use crate::netns::{self, run, Child, Netns, Scratch, Veth};
use std::io::Write;
use std::process::ChildStdin;
use std::time::{Duration, Instant};

/// Hang guard only: sessions come up in seconds.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// FRR's zebra and bgpd in `ns`, their files in a directory of their own
/// (owned by FRR's user, as the daemons drop to it); killed on drop.
pub struct Frr {
    ns: String,
    dir: Scratch,
    zebra: Child,
    bgpd: Child,
}

impl Frr {
    pub fn start(ns: &Netns, bgpd_conf: &str) -> Frr {
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
            zebra,
            bgpd,
        }
    }

    /// (bgpd, zebra) process ids.
    pub fn pids(&self) -> (u32, u32) {
        (self.bgpd.0.id(), self.zebra.0.id())
    }

    /// vtysh's output for `commands`, one `-c` each.
    pub fn vtysh(&self, commands: &[&str]) -> String {
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
    pub fn until(&self, command: &str, done: impl Fn(&str) -> bool) -> String {
        poll(command, || self.vtysh(&[command]), done)
    }
}

/// Looks with `look` until `done` holds of what it sees.
pub fn poll(what: &str, mut look: impl FnMut() -> String, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = look();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The appliance's CLI: lines typed, output polled from its console.
pub struct Cli {
    dir: Scratch,
    stdin: ChildStdin,
}

impl Cli {
    pub fn type_lines(&mut self, lines: &[&str]) {
        for line in lines {
            writeln!(self.stdin, "{line}").unwrap();
        }
        self.stdin.flush().unwrap();
    }

    /// Types `lines` in `configure terminal` (each applied at once), then
    /// `end`.
    pub fn configure(&mut self, lines: &[&str]) {
        self.type_lines(&["configure terminal"]);
        self.type_lines(lines);
        self.type_lines(&["end"]);
    }

    /// Types `command` (at the `#` prompt) again and again until its
    /// whole output satisfies `done`.
    pub fn until(&mut self, command: &str, done: impl Fn(&str) -> bool) -> String {
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

/// FRR in AS `frr_as`, its peer the appliance in `our_as`, announcing
/// `extra` networks too.
fn frr_conf(frr_as: u32, our_as: u32, extra: &[String]) -> String {
    let extra: String = extra.iter().map(|n| format!("  network {n}\n")).collect();
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
{extra} exit-address-family
"
    )
}

/// A summary row of the appliance's that says Established with
/// `prefixes` received.
pub fn established_with(text: &str, prefixes: usize) -> bool {
    text.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.first() == Some(&"10.64.2.2") && words.last() == Some(&prefixes.to_string().as_str())
    })
}

/// The three namespaces, FRR and the appliance. Fields drop in order:
/// the processes before the links and namespaces they use.
pub struct Site {
    pub cli: Cli,
    _appliance: Child,
    pub frr: Frr,
    _links: [Veth; 3],
    pub host_a: Netns,
    pub router: Netns,
    _host_b: Netns,
}

impl Site {
    /// The appliance in AS `our_as`, FRR in `frr_as` (iBGP when equal),
    /// the session configured on both sides.
    pub fn start(our_as: u32, frr_as: u32) -> Site {
        Site::start_with(our_as, frr_as, &[], |_| ())
    }

    /// The same with FRR announcing `extra` networks too, and `ready`
    /// run between FRR's start and the appliance's.
    pub fn start_with(
        our_as: u32,
        frr_as: u32,
        extra: &[String],
        ready: impl FnOnce(&Frr),
    ) -> Site {
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
        let frr = Frr::start(&router, &frr_conf(frr_as, our_as, extra));
        ready(&frr);
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
