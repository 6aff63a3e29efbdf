//! The high-availability pair for the tests and the benchmark: two
//! `gatehouse run` (the real binary) between an inside LAN and an outside
//! LAN, VRRP on both, their state synchronised over a link of their own.
//!
//! ```text
//!  inside 10.80.1.10 ---+--- A 10.80.1.2 (prio 200) ---+--- outside 203.0.113.10
//!  web 10.80.1.21, .22  |    B 10.80.1.3 (prio 100) ---+    routes 203.0.113.64/26
//!  gateway 10.80.1.254  +  vrrp 1: 10.80.1.254   vrrp 2: 203.0.113.1   via 203.0.113.1
//!                          sync: A 10.80.9.1 <--> B 10.80.9.2
//! ```
//! NAT pool 203.0.113.100 (overload) for the inside LAN; virtual server
//! 203.0.113.80 tcp 80 over the two web servers.
//! Include it with `#[path]`, beside `appliance.rs` and `netns.rs` as
//! `appliance` and `netns`.

use super::appliance;
use super::netns::{self, Child, Netns, Scratch, Veth};
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

/// Hang guard only.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A TCP server on ARGV1:ARGV2 that answers each line with its name
/// (ARGV3) or, without one, the address and port the connection came
/// from.
const SERVER: &str = "import socketserver,sys\n\
    class H(socketserver.StreamRequestHandler):\n\
    \x20def handle(self):\n\
    \x20 for _ in self.rfile:\n\
    \x20  name=sys.argv[3] if len(sys.argv)>3 else '%s:%d'%self.client_address\n\
    \x20  self.wfile.write((name+'\\n').encode())\n\
    socketserver.ThreadingTCPServer.allow_reuse_address=True\n\
    socketserver.ThreadingTCPServer((sys.argv[1],int(sys.argv[2])),H).serve_forever()\n";
/// One connection to ARGV1:ARGV2: a line sent for each line of stdin,
/// each answer printed.
const CLIENT: &str = "import socket,sys\n\
    s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=30)\n\
    f=s.makefile('rw')\n\
    for line in sys.stdin:\n\
    \x20f.write(line); f.flush(); print(f.readline().strip(),flush=True)\n";

/// A long-lived connection, asked a line at a time.
pub struct Connection {
    _process: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Connection {
    pub fn open(ns: &Netns, address: &str, port: &str) -> Connection {
        let mut child = (ns.command("python3").args(["-c", CLIENT, address, port]))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Connection {
            _process: Child(child),
            input,
            output,
        }
    }

    /// The server's answer to one more line on the same connection ("" if
    /// the connection is gone).
    pub fn ask(&mut self) -> String {
        let _ = writeln!(self.input, "again");
        let _ = self.input.flush();
        let mut line = String::new();
        let _ = self.output.read_line(&mut line);
        line.trim().to_string()
    }
}

/// One of the pair: its ports and its files.
pub struct Member {
    pub name: &'static str,
    pub inside: Veth,
    pub outside: Veth,
    pub sync: Veth,
    pub dir: Scratch,
    running: Option<(Child, ChildStdin)>,
}

impl Member {
    fn new(name: &'static str, inside: &Netns, outside: &Netns, sync: &Netns) -> Member {
        let join = |lan: &Netns| {
            let port = Veth::into_ns(lan);
            lan.run(&["ip", "link", "set", &port.inner, "master", "br0"]);
            lan.run(&["ip", "link", "set", &port.inner, "up"]);
            port
        };
        Member {
            name,
            inside: join(inside),
            outside: join(outside),
            sync: join(sync),
            dir: Scratch::new(name),
            running: None,
        }
    }

    /// Its configuration: `host` its address's last byte, `peer` the
    /// other box's, the VRRP priority.
    pub fn write_config(&self, host: u8, peer: u8, priority: u8) {
        self.write_config_with(host, peer, priority, "");
    }

    /// The same with `extra` lines at the end.
    pub fn write_config_with(&self, host: u8, peer: u8, priority: u8, extra: &str) {
        let (inside, outside, sync) = (&self.inside.outer, &self.outside.outer, &self.sync.outer);
        let config = format!(
            "hostname ha-{name}\n\
             interface {inside}\n ip address 10.80.1.{host}/24\n ip nat inside\n\
             \x20vrrp 1 address 10.80.1.254\n vrrp 1 priority {priority}\n vrrp 1 preempt delay minimum 4\n\
             interface {outside}\n ip address 203.0.113.{host}/24\n ip nat outside\n\
             \x20vrrp 2 address 203.0.113.1\n vrrp 2 priority {priority}\n vrrp 2 preempt delay minimum 4\n\
             interface {sync}\n ip address 10.80.9.{host}/24\n\
             ip access-list extended INSIDE\n permit ip 10.80.1.0 0.0.0.255 any\n\
             ip nat pool PUBLIC 203.0.113.100 203.0.113.100 prefix-length 24\n\
             ip nat inside source list INSIDE pool PUBLIC overload\n\
             ip slb serverfarm WEB\n real 10.80.1.21\n  inservice\n real 10.80.1.22\n  inservice\n\
             ip slb vserver SITE\n virtual 203.0.113.80 tcp 80\n serverfarm WEB\n inservice\n\
             redundancy\n peer 10.80.9.{peer}\n authentication key pair-secret\n\
             \x20group vrrp {inside} 1\n group vrrp {outside} 2\n{extra}",
            name = self.name
        );
        std::fs::write(self.dir.0.join("startup-config"), config).unwrap();
    }

    pub fn start(&mut self) {
        let (child, cli) = appliance::start(&self.dir.0, 1);
        self.running = Some((Child(child), cli));
    }

    /// SIGKILL: nothing of it is left to say goodbye.
    pub fn kill(&mut self) {
        if let Some((mut child, _)) = self.running.take() {
            let _ = child.0.kill();
            let _ = child.0.wait();
        }
    }

    /// `show redundancy` once it satisfies `done` (a hang guard).
    pub fn redundancy_until(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.show_until("redundancy", what, done)
    }

    /// `show COMMAND` once its output satisfies `done` (a hang guard).
    pub fn show_until(&mut self, command: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let (_, cli) = self.running.as_mut().expect("started");
        let prompt = format!("ha-{}>", self.name);
        loop {
            let shown = appliance::answer(
                &self.dir.0,
                cli,
                &format!("show {command}"),
                &|t| t.contains(&prompt),
                Duration::from_secs(5),
            );
            let shown = shown.unwrap_or_else(|t| t);
            if done(&shown) {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "{}: gave up waiting for {what}; last:\n{shown}\nconsole:\n{}\nerrors:\n{}",
                self.name,
                appliance::console(&self.dir.0),
                std::fs::read_to_string(self.dir.0.join("errors")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The dynamic translations `member` holds once the count has settled
/// (two readings alike) above `above`: datagrams lost on a loaded machine
/// make fewer than were sent.
pub fn settled_translations(member: &mut Member, above: u64) -> u64 {
    let mut last = None;
    loop {
        let shown = member.show_until("ip nat statistics", "translations above a figure", |t| {
            dynamic(t) > above
        });
        let now = dynamic(&shown);
        if last == Some(now) {
            return now;
        }
        last = Some(now);
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The figure after `label` in `text` ("Received: 3 records (2 adopted").
pub fn figure(text: &str, label: &str) -> u64 {
    let after = text.split(label).nth(1).unwrap_or("");
    let digits: String = after
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

/// An interface `name` of `host` on `lan`'s bridge; the name of its
/// LAN end.
pub fn lan_port(lan: &Netns, host: &Netns, name: &str) -> String {
    let outer = netns::unique("l");
    netns::run(&[
        "ip", "link", "add", &outer, "type", "veth", "peer", "name", name, "netns", &host.name,
    ]);
    netns::run(&["ip", "link", "set", &outer, "netns", &lan.name]);
    lan.run(&["ip", "link", "set", &outer, "master", "br0"]);
    lan.run(&["ip", "link", "set", &outer, "up"]);
    outer
}

/// The three LANs (inside, outside, sync: each a bridge in a namespace
/// of its own), the two hosts with their servers, and the pair.
pub struct Site {
    pub lans: [Netns; 3],
    pub inside: Netns,
    pub outside: Netns,
    _servers: [Child; 3],
    pub a: Member,
    pub b: Member,
}

impl Site {
    pub fn new() -> Site {
        let lans = [Netns::new(), Netns::new(), Netns::new()];
        for lan in &lans {
            lan.run(&["ip", "link", "add", "br0", "type", "bridge"]);
            lan.run(&["ip", "link", "set", "br0", "up"]);
        }
        let [inside_lan, outside_lan, sync_lan] = &lans;
        let (inside, outside) = (Netns::new(), Netns::new());
        lan_port(inside_lan, &inside, "in0");
        inside.configure("in0", "10.80.1.10/24", Some("10.80.1.254"));
        for web in ["10.80.1.21/24", "10.80.1.22/24"] {
            inside.configure("in0", web, None);
        }
        lan_port(outside_lan, &outside, "out0");
        outside.configure("out0", "203.0.113.10/24", None);
        outside.run(&[
            "ip",
            "route",
            "add",
            "203.0.113.64/26",
            "via",
            "203.0.113.1",
        ]);
        let servers = [
            outside.spawn(&["python3", "-c", SERVER, "203.0.113.10", "7000"]),
            inside.spawn(&["python3", "-c", SERVER, "10.80.1.21", "80", "web21"]),
            inside.spawn(&["python3", "-c", SERVER, "10.80.1.22", "80", "web22"]),
        ];
        let a = Member::new("a", inside_lan, outside_lan, sync_lan);
        let b = Member::new("b", inside_lan, outside_lan, sync_lan);
        Site {
            lans,
            inside,
            outside,
            _servers: servers,
            a,
            b,
        }
    }

    /// Takes a box's port off its LAN (its link stays up, as when a
    /// switch between the boxes fails), or puts it back.
    pub fn plug(&self, lan: usize, port: &Veth, on: bool) {
        let how: &[&str] = if on {
            &["master", "br0"]
        } else {
            &["nomaster"]
        };
        let args = [&["ip", "link", "set", port.inner.as_str()][..], how].concat();
        self.lans[lan].run(&args);
    }
}

/// Opens `n` UDP flows from the inside host to the outside host's
/// `port`, one source port each.
pub fn udp_flows(inside: &Netns, n: usize, port: u16) {
    let script = format!(
        "import socket\nss=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in range({n})]\n\
         for s in ss: s.sendto(b'x',('203.0.113.10',{port}))\n"
    );
    inside.run(&["python3", "-c", &script]);
}

/// The dynamic translations `show ip nat statistics` counts.
pub fn dynamic(statistics: &str) -> u64 {
    figure(statistics, "static,")
}
