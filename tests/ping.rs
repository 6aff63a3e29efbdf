//! `ping` and `traceroute` at the CLI of `gatehouse run`, the real binary,
//! from the appliance's own stack, to Linux hosts in namespaces: two Linux
//! routers forwarding between the appliance and a host.
//!
//! ```text
//!  [appliance] 10.63.1.1 --- r1 10.63.1.2 | 10.63.2.1 --- r2 10.63.2.2 | 10.63.3.1 --- host 10.63.3.2
//!  fd63:1::1                 fd63:1::2
//! ```

#[path = "support/appliance.rs"]
mod appliance;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "support/pty.rs"]
mod pty;

use netns::{is_root, run, Child, Netns, Scratch, Veth};
use pty::Screen;
use std::time::Duration;

/// Hang guard only.
const PATIENCE: Duration = Duration::from_secs(60);

/// A veth between two namespaces: `a`'s end, `b`'s end.
fn link(a: &Netns, b: &Netns) -> (Veth, String, String) {
    let veth = Veth::into_ns(a);
    run(&["ip", "link", "set", &veth.outer, "netns", &b.name]);
    let (a_end, b_end) = (veth.inner.clone(), veth.outer.clone());
    (veth, a_end, b_end)
}

/// `gatehouse run` on a startup config, its CLI in privileged EXEC.
struct EnabledCli {
    // Dropped in this order: the appliance stops before its folder goes.
    _appliance: Child,
    stdin: std::process::ChildStdin,
    dir: Scratch,
}

impl EnabledCli {
    fn start(name: &str, config: &str) -> EnabledCli {
        let dir = Scratch::new(name);
        std::fs::write(dir.0.join("startup-config"), config).unwrap();
        let (child, stdin) = appliance::start(&dir.0, 1);
        let mut cli = EnabledCli {
            _appliance: Child(child),
            stdin,
            dir,
        };
        cli.typed("enable", &|_| true);
        cli
    }

    /// Types `line` and waits for an answer that satisfies `done`.
    fn typed(&mut self, line: &str, done: &dyn Fn(&str) -> bool) -> String {
        appliance::answer(&self.dir.0, &mut self.stdin, line, done, PATIENCE)
            .unwrap_or_else(|text| panic!("no answer to {line}:\n{text}"))
    }
}

#[test]
fn ping_and_traceroute_reach_a_host_behind_two_linux_routers() {
    if !is_root() {
        return;
    }
    let (r1, r2, host) = (Netns::new(), Netns::new(), Netns::new());
    let first = Veth::into_ns(&r1);
    let (_l2, r1_b, r2_a) = link(&r1, &r2);
    let (_l3, r2_b, host_if) = link(&r2, &host);
    r1.configure(&first.inner, "10.63.1.2/24", None);
    r1.run(&[
        "ip",
        "addr",
        "add",
        "fd63:1::2/64",
        "dev",
        &first.inner,
        "nodad",
    ]);
    r1.configure(&r1_b, "10.63.2.1/24", None);
    r1.run(&["ip", "route", "add", "default", "via", "10.63.1.1"]);
    r1.run(&["ip", "route", "add", "10.63.3.0/24", "via", "10.63.2.2"]);
    r2.configure(&r2_a, "10.63.2.2/24", Some("10.63.2.1"));
    r2.configure(&r2_b, "10.63.3.1/24", None);
    host.configure(&host_if, "10.63.3.2/24", Some("10.63.3.1"));
    for ns in [&r1, &r2, &host] {
        // Every probe answered: no ICMP rate limit in the test's hosts.
        ns.run(&["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"]);
        ns.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    }
    let config = [
        format!("interface {}", first.outer),
        " ip address 10.63.1.1/24".into(),
        " ipv6 address fd63:1::1/64".into(),
        "ip route 10.63.0.0/16 10.63.1.2".into(),
        String::new(),
    ]
    .join("\n");
    let mut cli = EnabledCli::start("ping", &config);
    let finished = |t: &str| t.contains("Success rate");

    let reached = cli.typed("ping 10.63.3.2", &finished);
    assert!(
        reached.contains("Sending 5, 100-byte ICMP Echos to 10.63.3.2"),
        "{reached}"
    );
    // The first echo may wait for ARP on the way; the others cannot fail.
    assert!(reached.contains("!!!!"), "{reached}");
    assert!(
        reached.contains("Success rate is 100 percent (5/5)")
            || reached.contains("Success rate is 80 percent (4/5)"),
        "{reached}"
    );
    assert!(reached.contains("round-trip min/avg/max"), "{reached}");

    let lost = cli.typed("ping 10.63.9.9 repeat 3 timeout 1", &finished);
    assert!(lost.lines().any(|l| l.trim_end() == "..."), "{lost}");
    assert!(lost.contains("Success rate is 0 percent (0/3)"), "{lost}");

    let six = cli.typed("ping fd63:1::2", &finished);
    assert!(six.contains("!!!!"), "{six}");

    let trace = cli.typed("traceroute 10.63.3.2", &|t| t.contains("  3 10.63.3.2"));
    let hops: Vec<_> = trace.lines().filter(|l| l.starts_with("  ")).collect();
    assert!(hops[0].starts_with("  1 10.63.1.2 "), "{trace}");
    assert!(hops[1].starts_with("  2 10.63.2.2 "), "{trace}");
    assert!(hops[2].starts_with("  3 10.63.3.2 "), "{trace}");
    assert!(hops[2].contains(" msec"), "{trace}");
}

/// The `Icmp: ... InEchos` counter of a namespace's kernel.
fn echoes_received(ns: &Netns) -> u64 {
    let snmp = ns.run(&["cat", "/proc/net/snmp"]);
    let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp: "));
    let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
    let at = names.split(' ').position(|n| n == "InEchos").unwrap();
    values.split(' ').nth(at).unwrap().parse().unwrap()
}

/// ```text
///  global: [appliance] A 10.64.1.1 --- r1 10.64.1.2 | 10.64.2.1 ==(MTU 1300)== host 10.64.2.2
///                      S 10.64.9.1 (an interface with a host-less veth: a source only)
///  VRF T:  [appliance] D 10.64.1.1 --- t1 10.64.1.2 | 10.65.2.1 --- thost 10.65.2.2
/// ```
/// The host routes back to 10.64.9.0/24 only, so only echoes sent from S's
/// address are answered; VRF T reuses the global subnet, so only its
/// table reaches t1 and thost.
#[test]
fn ping_source_df_bit_and_vrf_and_traceroute_in_a_vrf_reach_real_hosts() {
    if !is_root() {
        return;
    }
    let (r1, host, t1, thost, side) = (
        Netns::new(),
        Netns::new(),
        Netns::new(),
        Netns::new(),
        Netns::new(),
    );
    let a = Veth::into_ns(&r1);
    let (_l2, r1_b, host_if) = link(&r1, &host);
    let s = Veth::into_ns(&side);
    let d = Veth::into_ns(&t1);
    let (_l3, t1_b, thost_if) = link(&t1, &thost);
    r1.configure(&a.inner, "10.64.1.2/24", None);
    r1.configure(&r1_b, "10.64.2.1/24", None);
    r1.run(&["ip", "link", "set", &r1_b, "mtu", "1300"]);
    r1.run(&["ip", "route", "add", "10.64.9.0/24", "via", "10.64.1.1"]);
    host.configure(&host_if, "10.64.2.2/24", None);
    host.run(&["ip", "link", "set", &host_if, "mtu", "1300"]);
    host.run(&["ip", "route", "add", "10.64.9.0/24", "via", "10.64.2.1"]);
    side.run(&["ip", "link", "set", &s.inner, "up"]);
    t1.configure(&d.inner, "10.64.1.2/24", Some("10.64.1.1"));
    t1.configure(&d.inner, "fd64:1::2/64", None);
    t1.configure(&t1_b, "10.65.2.1/24", None);
    thost.configure(&thost_if, "10.65.2.2/24", Some("10.65.2.1"));
    for ns in [&r1, &host, &t1, &thost] {
        ns.run(&["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0"]);
        ns.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    }
    let config = [
        "vrf definition T".to_string(),
        format!("interface {}", a.outer),
        " ip address 10.64.1.1 255.255.255.0".into(),
        format!("interface {}", s.outer),
        " ip address 10.64.9.1 255.255.255.0".into(),
        format!("interface {}", d.outer),
        " vrf forwarding T".into(),
        " ip address 10.64.1.1 255.255.255.0".into(),
        " ipv6 address fd64:1::1/64".into(),
        "ip route 10.64.2.0 255.255.255.0 10.64.1.2".into(),
        "ip route vrf T 10.65.2.0 255.255.255.0 10.64.1.2".into(),
        String::new(),
    ]
    .join("\n");
    let mut cli = EnabledCli::start("pvrf", &config);
    let finished = |t: &str| t.contains("Success rate") || t.contains("% ");
    let mostly = |t: &str| {
        t.contains("Success rate is 100 percent (5/5)")
            || t.contains("Success rate is 80 percent (4/5)")
    };

    // From A's address the host cannot answer; from S's it can.
    let plain = cli.typed("ping 10.64.2.2 repeat 2 timeout 1", &finished);
    assert!(plain.contains("Success rate is 0 percent (0/2)"), "{plain}");
    let by_name = cli.typed(&format!("ping 10.64.2.2 source {}", s.outer), &finished);
    assert!(
        by_name.contains("Packet sent with a source address of 10.64.9.1"),
        "{by_name}"
    );
    assert!(mostly(&by_name), "{by_name}");
    let by_address = cli.typed("ping 10.64.2.2 source 10.64.9.1", &finished);
    assert!(
        by_address.contains("Success rate is 100 percent (5/5)"),
        "{by_address}"
    );
    // The host answers traceroute's probes only when they come from S.
    let trace = cli.typed("traceroute 10.64.2.2 source 10.64.9.1", &|t| {
        t.contains("  2 10.64.2.2") || t.contains("% ")
    });
    assert!(trace.contains("  1 10.64.1.2 "), "{trace}");
    let foreign = cli.typed("ping 10.64.2.2 source 10.99.9.9", &finished);
    assert!(foreign.contains("% Cannot ping"), "{foreign}");

    // 1400 bytes over the 1300-byte link: with DF r1 refuses them (and
    // says so), without it r1 fragments them and the host receives every
    // echo (its fragmented replies are not reassembled by the appliance).
    let fits = cli.typed(
        "ping 10.64.2.2 size 1300 source 10.64.9.1 df-bit",
        &finished,
    );
    assert!(fits.contains("Packet sent with the DF bit set"), "{fits}");
    assert!(fits.contains("Success rate is 100 percent (5/5)"), "{fits}");
    let before = echoes_received(&host);
    let refused = cli.typed(
        "ping 10.64.2.2 repeat 3 size 1400 source 10.64.9.1 df-bit timeout 1",
        &finished,
    );
    assert!(
        refused.contains("Success rate is 0 percent (0/3)"),
        "{refused}"
    );
    // r1's "fragmentation needed" for each: IOS's `M`.
    assert!(refused.lines().any(|l| l.trim_end() == "MMM"), "{refused}");
    assert_eq!(
        echoes_received(&host),
        before,
        "DF set: r1 must not forward"
    );
    cli.typed(
        "ping 10.64.2.2 repeat 3 size 1400 source 10.64.9.1 timeout 1",
        &finished,
    );
    assert_eq!(echoes_received(&host), before + 3, "DF clear: fragmented");

    // VRF T: its hosts answer, the global table has no way to them.
    let in_t = cli.typed("ping vrf T 10.65.2.2", &finished);
    assert!(mostly(&in_t), "{in_t}");
    let global = cli.typed("ping 10.65.2.2 repeat 2 timeout 1", &finished);
    assert!(
        global.contains("Success rate is 0 percent (0/2)"),
        "{global}"
    );
    let t1_before = echoes_received(&t1);
    let same_subnet = cli.typed("ping vrf T 10.64.1.2", &finished);
    assert!(mostly(&same_subnet), "{same_subnet}");
    assert!(
        echoes_received(&t1) >= t1_before + 4,
        "VRF T's 10.64.1.2 is t1"
    );
    let wrong_table = cli.typed(
        &format!("ping vrf T 10.64.1.2 source {}", a.outer),
        &finished,
    );
    assert!(
        wrong_table.contains("another routing table"),
        "{wrong_table}"
    );
    let six = cli.typed("ping vrf T fd64:1::2", &finished);
    assert!(mostly(&six), "{six}");
    let no_six = cli.typed("ping fd64:1::2 repeat 2 timeout 1", &finished);
    assert!(
        no_six.contains("% Cannot"),
        "no IPv6 address in the global table: {no_six}"
    );
    let unknown = cli.typed("ping vrf NOPE 10.65.2.2", &finished);
    assert!(unknown.contains("VRF NOPE does not exist"), "{unknown}");

    let trace = cli.typed("traceroute vrf T 10.65.2.2", &|t| {
        t.contains("  2 10.65.2.2") || t.contains("% ")
    });
    let hops: Vec<_> = trace.lines().filter(|l| l.starts_with("  ")).collect();
    assert!(hops[0].starts_with("  1 10.64.1.2 "), "{trace}");
    assert!(hops[1].starts_with("  2 10.65.2.2 "), "{trace}");
}

#[test]
fn ctrl_c_on_the_console_stops_a_ping_with_its_summary_and_the_console_goes_on() {
    use std::io::Write;
    if !is_root() {
        return;
    }
    let host = Netns::new();
    let a = Veth::into_ns(&host);
    host.configure(&a.inner, "10.66.1.2/24", None);
    let dir = Scratch::new("pctrlc");
    let config = format!("interface {}\n ip address 10.66.1.1/24\n", a.outer);
    std::fs::write(dir.0.join("startup-config"), config).unwrap();
    let (master, slave) = pty::open();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("run")
        .arg("--config")
        .arg(dir.0.join("startup-config"))
        .arg("--workers")
        .arg("1")
        .env("TERM", "xterm")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let _appliance = Child(child);
    let mut keyboard = master.try_clone().unwrap();
    let mut screen = Screen::start(master, PATIENCE);
    let mut type_keys = |keys: &str| keyboard.write_all(keys.as_bytes()).unwrap();

    screen.wait_for("gatehouse>");
    type_keys("enable\r");
    screen.wait_for("gatehouse#");
    // Nobody answers: 1000 echoes would take 1000 seconds. Each timeout
    // shows at once.
    type_keys("ping 10.66.1.99 repeat 1000 timeout 1\r");
    screen.wait_for("...");
    type_keys("\x03");
    let stopped = screen.wait_for("gatehouse#");
    let rate = stopped
        .split("Success rate is 0 percent (0/")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary after Ctrl-C:\n{stopped}"));
    let sent: u64 = rate.split(')').next().unwrap().parse().unwrap();
    assert!(
        (3..=5).contains(&sent),
        "stopped after {sent} echoes:\n{stopped}"
    );
    // The console reads lines again, in its usual mode.
    type_keys("ping 10.66.1.2 repeat 2\r");
    let again = screen.wait_for("gatehouse#");
    assert!(
        again.contains("Success rate is 100 percent (2/2)"),
        "{again}"
    );
    type_keys("exit\r");
}
