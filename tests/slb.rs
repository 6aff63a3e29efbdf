//! The load balancer in `gatehouse run`, the real binary, between Linux
//! hosts in network namespaces: nginx backends that answer their own name,
//! health probes on the appliance's own stack, a commit while a connection
//! is open, a UDP virtual server (and its backends' port unreachable
//! refusing the client's socket), and full NAT to backends with no route
//! back to the clients; the same over IPv6 (curl -6).
//!
//! ```text
//!  client 10.61.1.2 --- [appliance] --- web 10.61.2.11-14 (nginx), UDP 10.61.2.21-22
//!                       10.61.1.1   \-- hidden 10.61.3.11 (no route back)
//!  2001:db8:61:1::2                 --- web 2001:db8:61:2::11-13 (nginx)
//!                                   \-- hidden 2001:db8:61:3::11 (no route back)
//! ```
//! Virtual servers 198.51.100.80 tcp 80 (farm WEB, weights 1:1:2, HTTP
//! probe), udp 5353 (farm DNS), tcp 8080 (farm HIDDEN, `nat client`);
//! [2001:db8:61:80::80] tcp 80 (farm WEB6, HTTP probe) and tcp 8080 (farm
//! HIDDEN6, `nat client`).

#[path = "support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, Child, Netns, Scratch, Veth};
use std::collections::HashMap;
use std::io::Write;
use std::process::{ChildStdin, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "198.51.100.80";
const VIP6: &str = "2001:db8:61:80::80";
/// Hang guard only.
const PATIENCE: Duration = Duration::from_secs(30);

/// One keep-alive connection: a request, then on each line of stdin
/// another on the same connection; prints each answer's body.
const KEEPALIVE: &str = "import sys,http.client\n\
    h=http.client.HTTPConnection(sys.argv[1],80,timeout=5)\n\
    def ask():\n h.request('GET','/'); print(h.getresponse().read().decode().strip(),flush=True)\n\
    ask()\n\
    for _ in sys.stdin: ask()\n";
/// A UDP server answering its name.
const UDP_NAME: &str = "import socket,sys\n\
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind((sys.argv[1],5353))\n\
    while True:\n d,a=s.recvfrom(512); s.sendto(sys.argv[2].encode(),a)\n";
const UDP_ASK: &str = "import socket,sys\n\
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1)\n\
    for _ in range(5):\n s.sendto(b'who',(sys.argv[1],5353))\n try: print(s.recvfrom(512)[0].decode()); sys.exit(0)\n except socket.timeout: pass\n\
    sys.exit(1)\n";
/// A connected UDP socket asking until the answer is a refusal: the
/// backend's port unreachable, translated back to the virtual server's.
const UDP_REFUSED: &str = "import socket,sys\n\
    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(1); s.connect((sys.argv[1],5353))\n\
    for _ in range(5):\n s.send(b'who')\n try: s.recv(512)\n except ConnectionRefusedError: print('refused'); sys.exit(0)\n except socket.timeout: pass\n\
    sys.exit(1)\n";

/// An nginx answering `name` on `address`:80 in `ns`.
fn nginx(ns: &Netns, dir: &Scratch, name: &str, address: &str) -> Child {
    let conf = dir.0.join(format!("{name}.conf"));
    let text = format!(
        "master_process off;\npid {dir}/{name}.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n access_log off;\n \
         client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n \
         server {{ listen {address}:80; location / {{ return 200 \"{name}\\n\"; }} }}\n}}\n",
        dir = dir.0.display()
    );
    std::fs::write(&conf, text).unwrap();
    ns.spawn(&["nginx", "-c", &conf.to_string_lossy(), "-g", "daemon off;"])
}

struct Site {
    client: Netns,
    web: Netns,
    hidden: Netns,
    _links: Vec<Veth>,
    dir: Scratch,
    /// The appliance's CLI, once started.
    cli: std::sync::Mutex<Option<ChildStdin>>,
}

impl Site {
    fn new() -> Site {
        let (client, web, hidden) = (Netns::new(), Netns::new(), Netns::new());
        let links = vec![
            Veth::into_ns(&client),
            Veth::into_ns(&web),
            Veth::into_ns(&hidden),
        ];
        client.configure(&links[0].inner, "10.61.1.2/24", Some("10.61.1.1"));
        client.configure(
            &links[0].inner,
            "2001:db8:61:1::2/64",
            Some("2001:db8:61:1::1"),
        );
        web.configure(&links[1].inner, "10.61.2.11/24", Some("10.61.2.1"));
        web.configure(
            &links[1].inner,
            "2001:db8:61:2::11/64",
            Some("2001:db8:61:2::1"),
        );
        let more = ["12", "13", "14", "21", "22"].map(|h| format!("10.61.2.{h}/24"));
        let more6 = ["12", "13"].map(|h| format!("2001:db8:61:2::{h}/64"));
        for address in more.iter().chain(&more6) {
            web.configure(&links[1].inner, address, None);
        }
        // No gateway: the hidden backend cannot reach the clients.
        hidden.configure(&links[2].inner, "10.61.3.11/24", None);
        hidden.configure(&links[2].inner, "2001:db8:61:3::11/64", None);
        let dir = Scratch::new("slb");
        let interfaces = format!(
            "hostname lb\ninterface {}\n ip address 10.61.1.1/24\n ipv6 address 2001:db8:61:1::1/64\n\
             interface {}\n ip address 10.61.2.1/24\n ipv6 address 2001:db8:61:2::1/64\n\
             interface {}\n ip address 10.61.3.1/24\n ipv6 address 2001:db8:61:3::1/64\n",
            links[0].outer, links[1].outer, links[2].outer
        );
        let config = interfaces
            + &[
                "ip slb probe WEB-CHECK http",
                " request url /",
                " expect status 200",
                " interval 1",
                " timeout 1",
                " rise 2",
                " fall 2",
                "ip slb serverfarm WEB",
                " probe WEB-CHECK",
                " real 10.61.2.11",
                "  weight 1",
                "  inservice",
                " real 10.61.2.12",
                "  weight 1",
                "  inservice",
                " real 10.61.2.13",
                "  weight 2",
                "  inservice",
                "ip slb serverfarm DNS",
                " real 10.61.2.21",
                "  inservice",
                " real 10.61.2.22",
                "  inservice",
                "ip slb serverfarm HIDDEN",
                " nat client",
                " real 10.61.3.11 port 80",
                "  inservice",
                "ip slb serverfarm WEB6",
                " probe WEB-CHECK",
                " real 2001:db8:61:2::11",
                "  inservice",
                " real 2001:db8:61:2::12",
                "  inservice",
                " real 2001:db8:61:2::13",
                "  inservice",
                "ip slb serverfarm HIDDEN6",
                " nat client",
                " real 2001:db8:61:3::11 port 80",
                "  inservice",
                &format!("ip slb vserver SITE\n virtual {VIP} tcp 80\n serverfarm WEB\n inservice"),
                &format!("ip slb vserver NAMES\n virtual {VIP} udp 5353\n serverfarm DNS\n inservice"),
                &format!("ip slb vserver BEHIND\n virtual {VIP} tcp 8080\n serverfarm HIDDEN\n inservice"),
                &format!("ip slb vserver SITE6\n virtual {VIP6} tcp 80\n serverfarm WEB6\n inservice"),
                &format!("ip slb vserver BEHIND6\n virtual {VIP6} tcp 8080\n serverfarm HIDDEN6\n inservice\n"),
            ]
            .join("\n");
        std::fs::write(dir.0.join("startup-config"), config).unwrap();
        Site {
            client,
            web,
            hidden,
            _links: links,
            dir,
            cli: std::sync::Mutex::new(None),
        }
    }

    /// `gatehouse run` with its CLI on a pipe (`cli`).
    fn start(&mut self) -> Child {
        let (child, cli) = appliance::start(&self.dir.0, 1);
        self.cli = Some(cli).into();
        Child(child)
    }

    /// What the appliance printed on its console so far.
    fn console(&self) -> String {
        appliance::console(&self.dir.0)
    }

    /// Answers by name for `n` new connections to `url` (and "failed"),
    /// asked by one curl over the URL's address family.
    fn ask(&self, url: &str, n: usize) -> HashMap<String, usize> {
        let family = if url.contains('[') { "-6" } else { "-4" };
        let mut args = vec!["curl", family, "-s", "--max-time", "2"];
        // A new connection for each request.
        args.extend(["-H", "Connection: close"]);
        args.extend(std::iter::repeat_n(url, n));
        // Not `run`: curl fails when the last request did.
        let out = self.client.output(&args);
        let mut answers = HashMap::new();
        for name in String::from_utf8_lossy(&out.stdout).lines() {
            *answers.entry(name.to_string()).or_default() += 1;
        }
        let failed = n.saturating_sub(answers.values().sum());
        if failed > 0 {
            answers.insert("failed".to_string(), failed);
        }
        answers
    }

    /// Asks `url` until `done` holds of the answers (a hang guard, not a
    /// timing).
    fn ask_until(
        &self,
        what: &str,
        url: &str,
        n: usize,
        done: impl Fn(&HashMap<String, usize>) -> bool,
    ) -> HashMap<String, usize> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let answers = self.ask(url, n);
            if done(&answers) {
                return answers;
            }
            if Instant::now() > deadline {
                // What the appliance knows, on its console, for the message.
                let dump = [
                    "enable",
                    "show ip slb vserver",
                    "show ip slb reals",
                    "show ip slb sessions",
                    "show counters",
                    "show logging",
                ];
                typed(&mut self.cli.lock().unwrap(), &dump);
                std::thread::sleep(Duration::from_secs(1));
                let console = self.console();
                panic!("gave up waiting for {what}: last answers {answers:?}; console:\n{console}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The last console line starting with `start` once `lines`, typed
    /// at the CLI, have shown one that `done` accepts.
    fn shown(&self, lines: &[&str], start: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            typed(&mut self.cli.lock().unwrap(), lines);
            std::thread::sleep(Duration::from_millis(300));
            let console = self.console();
            let last = console.lines().rev().find(|l| l.starts_with(start));
            if let Some(line) = last.filter(|l| done(l)) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "gave up waiting for a line {start}... on the console:\n{console}"
            );
        }
    }
}

/// Types `lines` at the appliance's CLI (if started).
fn typed(cli: &mut Option<ChildStdin>, lines: &[&str]) {
    if let Some(stdin) = cli {
        for line in lines {
            let _ = writeln!(stdin, "{line}");
        }
        let _ = stdin.flush();
    }
}

#[test]
fn requests_follow_weights_and_probes_take_a_stopped_backend_out_and_back_and_udp_is_refused() {
    if !is_root() {
        return;
    }
    let mut site = Site::new();
    let _web11 = nginx(&site.web, &site.dir, "web11", "10.61.2.11");
    let mut web12 = nginx(&site.web, &site.dir, "web12", "10.61.2.12");
    let _web13 = nginx(&site.web, &site.dir, "web13", "10.61.2.13");
    let _appliance = site.start();
    let web = format!("http://{VIP}/");
    site.ask_until("the virtual server to answer", &web, 3, |a| {
        a.get("failed").is_none() && !a.is_empty()
    });

    let answers = site.ask(&web, 400);
    let share = |name: &str| answers.get(name).copied().unwrap_or(0) as f64 / 400.0;
    assert_eq!(answers.get("failed"), None, "{answers:?}");
    assert!((share("web11") - 0.25).abs() < 0.1, "{answers:?}");
    assert!((share("web12") - 0.25).abs() < 0.1, "{answers:?}");
    assert!((share("web13") - 0.5).abs() < 0.1, "{answers:?}");

    // Stopped: once its probe has failed twice, no request fails.
    let _ = web12.0.kill();
    let _ = web12.0.wait();
    site.ask_until("web12 to be taken out", &web, 50, |a| {
        a.get("failed").is_none() && a.get("web12").is_none()
    });
    let after = site.ask(&web, 200);
    assert_eq!(
        after.get("failed"),
        None,
        "no failed request once out: {after:?}"
    );
    assert_eq!(after.get("web12"), None, "{after:?}");

    // Back: after two good probes it serves again.
    let _web12 = nginx(&site.web, &site.dir, "web12", "10.61.2.12");
    site.ask_until("web12 to come back", &web, 100, |a| {
        a.get("web12").is_some()
    });

    // No UDP server listens at the DNS backends: their port unreachable
    // reaches the client's socket as the virtual server's.
    let udp = site.client.output(&["python3", "-c", UDP_REFUSED, VIP]);
    let said = String::from_utf8_lossy(&udp.stdout);
    assert_eq!(said.trim(), "refused", "{udp:?}");
}

#[test]
fn a_connection_outlives_a_new_backend_and_a_commit_and_udp_and_full_nat_balance() {
    if !is_root() {
        return;
    }
    let mut site = Site::new();
    let _web = [
        nginx(&site.web, &site.dir, "web11", "10.61.2.11"),
        nginx(&site.web, &site.dir, "web12", "10.61.2.12"),
        nginx(&site.web, &site.dir, "web13", "10.61.2.13"),
        nginx(&site.web, &site.dir, "web14", "10.61.2.14"),
        nginx(&site.hidden, &site.dir, "hidden", "10.61.3.11"),
        site.web
            .spawn(&["python3", "-c", UDP_NAME, "10.61.2.21", "dns21"]),
        site.web
            .spawn(&["python3", "-c", UDP_NAME, "10.61.2.22", "dns22"]),
    ];
    let _appliance = site.start();
    let web = format!("http://{VIP}/");
    site.ask_until("the virtual server to answer", &web, 3, |a| {
        a.get("failed").is_none() && !a.is_empty()
    });

    // A long-lived connection: its backend, then a fourth real and an
    // unrelated change committed, then the same backend again.
    let mut keepalive = site
        .client
        .command("python3")
        .args(["-c", KEEPALIVE, VIP])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = keepalive.stdin.take().unwrap();
    let mut output = std::io::BufReader::new(keepalive.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    output.read_line(&mut line).unwrap();
    let first = line.trim().to_string();
    assert!(first.starts_with("web1"), "{first:?}");
    typed(
        &mut site.cli.lock().unwrap(),
        &[
            "enable",
            "configure terminal",
            "ip slb serverfarm WEB",
            "real 10.61.2.14",
            "inservice",
            "exit",
            "hostname lb2",
            "commit",
            "end",
        ],
    );
    site.ask_until("web14 to join", &web, 100, |a| a.get("web14").is_some());
    writeln!(input, "again").unwrap();
    input.flush().unwrap();
    line.clear();
    output.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        first,
        "the open connection stays on its backend"
    );
    drop(input);
    let _ = keepalive.wait();

    // UDP, and full NAT to a backend that cannot reach the client.
    let udp = site.client.output(&["python3", "-c", UDP_ASK, VIP]);
    let name = String::from_utf8_lossy(&udp.stdout).trim().to_string();
    assert!(
        name == "dns21" || name == "dns22",
        "UDP virtual server: {name:?}"
    );
    let hidden = site.ask(&format!("http://{VIP}:8080/"), 5);
    assert_eq!(hidden.get("hidden"), Some(&5), "full NAT: {hidden:?}");
}

#[test]
fn ipv6_requests_spread_over_three_backends_probes_take_one_out_and_full_nat_needs_no_route_back() {
    if !is_root() {
        return;
    }
    let mut site = Site::new();
    let _web = [
        nginx(&site.web, &site.dir, "web6a", "[2001:db8:61:2::11]"),
        nginx(&site.web, &site.dir, "web6c", "[2001:db8:61:2::13]"),
        nginx(&site.hidden, &site.dir, "hidden6", "[2001:db8:61:3::11]"),
    ];
    let mut web6b = nginx(&site.web, &site.dir, "web6b", "[2001:db8:61:2::12]");
    let _appliance = site.start();
    let web = format!("http://[{VIP6}]/");
    site.ask_until("the IPv6 virtual server to answer", &web, 3, |a| {
        a.get("failed").is_none() && !a.is_empty()
    });

    // Equal weights: each backend about a third of new connections.
    let answers = site.ask(&web, 90);
    assert_eq!(answers.get("failed"), None, "{answers:?}");
    for name in ["web6a", "web6b", "web6c"] {
        let n = answers.get(name).copied().unwrap_or(0);
        assert!((10..=50).contains(&n), "{name}: {answers:?}");
    }
    typed(&mut site.cli.lock().unwrap(), &["enable"]);
    let vserver = site.shown(&["show ip slb vserver"], "SITE6", |_| true);
    assert!(
        vserver.contains("[2001:db8:61:80::80]:80") && vserver.contains("OPERATIONAL"),
        "{vserver}"
    );
    // Probed over IPv6 on the appliance's own stack.
    site.shown(&["show ip slb reals"], "[2001:db8:61:2::13]:80", |l| {
        l.contains("OPERATIONAL") && l.ends_with("http 200")
    });

    // Full NAT: the hidden backend has no route to the client, yet answers.
    let hidden = site.ask(&format!("http://[{VIP6}]:8080/"), 5);
    assert_eq!(hidden.get("hidden6"), Some(&5), "full NAT: {hidden:?}");

    // Stopped: its IPv6 probe fails twice, and it gets no more requests.
    let _ = web6b.0.kill();
    let _ = web6b.0.wait();
    site.ask_until("web6b to be taken out", &web, 30, |a| {
        a.get("failed").is_none() && a.get("web6b").is_none()
    });
    let after = site.ask(&web, 60);
    assert_eq!(after.get("failed"), None, "{after:?}");
    assert_eq!(after.get("web6b"), None, "{after:?}");
    site.shown(&["show ip slb reals"], "[2001:db8:61:2::12]:80", |l| {
        l.contains("FAILED")
    });
}
