//! `gatehouse run`, the real binary in hosted mode, between Linux hosts in
//! network namespaces: the config file drives the dataplane, the CLI on
//! standard input shows and changes it, and the status page answers curl.

// The namespace helpers of the dataplane tests, shared rather than copied.
#[path = "../kernel-bypass/tests/support/dataplane.rs"]
#[allow(dead_code)]
mod dataplane;
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, unique, Child, Netns, Veth};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Two hosts, each on a veth to the appliance, and the config naming them.
struct Site {
    left: Netns,
    right: Netns,
    left_link: Veth,
    right_link: Veth,
    config: ConfigFile,
}

/// A config file in a directory of its own (the appliance keeps its SSH
/// host key beside it), removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(unique("c"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = ConfigFile(dir.join("startup-config"));
        std::fs::write(&file.0, text).unwrap();
        file
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Site {
    /// `left` is 10.<net>.1.0/24, `right` 10.<net>.2.0/24; the appliance is .1 on both.
    fn new(net: u8) -> Site {
        Site::with_queues(net, 1)
    }

    /// Like `new`, on veths with `queues` receive and transmit queues.
    fn with_queues(net: u8, queues: u32) -> Site {
        let left = Netns::new();
        let right = Netns::new();
        let left_link = Veth::into_ns_with_queues(&left, queues);
        let right_link = Veth::into_ns_with_queues(&right, queues);
        left.configure(
            &left_link.inner,
            &format!("10.{net}.1.2/24"),
            Some(&format!("10.{net}.1.1")),
        );
        right.configure(
            &right_link.inner,
            &format!("10.{net}.2.2/24"),
            Some(&format!("10.{net}.2.1")),
        );
        let text = format!(
            "hostname edge-hosted\ninterface {}\n ip address 10.{net}.1.1/24\ninterface {}\n ip address 10.{net}.2.1/24\n",
            left_link.outer, right_link.outer
        );
        Site {
            left,
            right,
            left_link,
            right_link,
            config: ConfigFile::new(&text),
        }
    }

    fn run(&self, extra: &[&str], stdin: Stdio) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("run")
            .arg("--config")
            .arg(&self.config.0)
            .args(extra)
            .env("TERM", "dumb")
            .stdin(stdin);
        command
    }
}

#[test]
fn hosted_mode_with_two_workers_forwards_and_serves_its_status_page() {
    if !is_root() {
        return;
    }
    let site = Site::new(93);
    let _appliance = Child(
        site.run(&["--no-console", "--workers", "2"], Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        site.left.ping_ok("10.93.2.2"),
        "host to host through the appliance"
    );
    assert!(site.right.ping_ok("10.93.1.2"), "and back");
    assert!(
        site.left.ping_ok("10.93.1.1"),
        "the appliance's own address"
    );
    let page = site
        .left
        .stdout_until(&["curl", "-s", "-m", "3", "http://10.93.2.1/"], |text| {
            text.contains("edge-hosted")
        });
    assert!(
        page.contains("hostname edge-hosted"),
        "status page: {page:?}"
    );
}

/// `workers` workers on veths with two queues, as on a multi-queue NIC:
/// pings and four iperf3 TCP streams cross (so flows land on both queues)
/// at full speed, and `show dataplane workers` shows that every worker
/// received packets; returns what it showed.
fn workers_forward_on_two_queue_veths(backend: &str, workers: usize, net: u8) -> String {
    let site = Site::with_queues(net, 2);
    let workers_arg = workers.to_string();
    let mut appliance = Child(
        site.run(
            &["--backend", backend, "--workers", &workers_arg],
            Stdio::piped(),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let (left, right) = (format!("10.{net}.1.2"), format!("10.{net}.2.2"));
    assert!(site.left.ping_ok(&right), "{backend}: left to right");
    assert!(site.right.ping_ok(&left), "{backend}: and back");
    let _server = site.right.spawn(&["iperf3", "-s", "-B", &right, "-1"]);
    let iperf = [
        "timeout", "20", "iperf3", "-c", &right, "-P", "4", "-t", "2", "-J",
    ];
    let report = site
        .left
        .stdout_until(&iperf, |t| dataplane::received_bytes(t) > 0);
    // A path that loses one queue's frames still delivers a trickle.
    assert!(
        dataplane::received_bytes(&report) > 10_000_000,
        "{backend}: iperf3 across at speed: {report}"
    );
    let mut cli = appliance.0.stdin.take().unwrap();
    writeln!(cli, "show dataplane workers\nexit").unwrap();
    drop(cli);
    let mut text = String::new();
    let mut stdout = appliance.0.stdout.take().unwrap();
    std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
    let text = text.replace("\r\n", "\n");
    for worker in 0..workers {
        let section = text
            .split(&format!("Worker {worker}, "))
            .nth(1)
            .and_then(|rest| rest.split("\nWorker ").next())
            .unwrap_or_default();
        let received: u64 = section
            .lines()
            .filter_map(|line| line.split(" packets input").next()?.rsplit(' ').next())
            .filter_map(|n| n.parse::<u64>().ok())
            .sum();
        assert!(
            received > 0,
            "{backend}: worker {worker} received nothing:\n{text}"
        );
    }
    text
}

#[test]
fn two_af_xdp_workers_each_serve_a_queue_of_a_two_queue_veth() {
    if is_root() {
        let shown = workers_forward_on_two_queue_veths("af-xdp", 2, 91);
        assert!(shown.contains(": rx queue 1, "), "{shown}");
    }
}

#[test]
fn one_af_xdp_worker_serves_both_queues_of_a_two_queue_veth() {
    if is_root() {
        let shown = workers_forward_on_two_queue_veths("af-xdp", 1, 90);
        assert!(shown.contains(": rx queues 0, 1, "), "{shown}");
    }
}

#[test]
fn two_af_packet_workers_share_two_queue_veths_by_flow_hash() {
    if is_root() {
        let shown = workers_forward_on_two_queue_veths("af-packet", 2, 92);
        assert!(shown.contains(": fanout by flow hash, "), "{shown}");
    }
}

#[test]
fn hosted_cli_shows_the_dataplane_and_commits_a_route() {
    if !is_root() {
        return;
    }
    let site = Site::new(94);
    // A third network behind the right host, reached by a static route typed at the CLI.
    site.right
        .run(&["ip", "addr", "add", "10.94.3.1/32", "dev", "lo"]);
    let mut appliance = site
        .run(&[], Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = [
        "enable",
        "configure terminal",
        "ip route 10.94.3.0/24 10.94.2.2",
        "commit",
        "end",
        "show ip route",
        "show interfaces",
    ];
    let mut stdin = appliance.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    assert!(
        site.left.ping_ok("10.94.3.1"),
        "static route committed at the CLI"
    );
    writeln!(stdin, "exit").unwrap();
    drop(stdin);
    let out = appliance.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit status {:?}: {text}", out.status);
    assert!(
        text.contains("edge-hosted#"),
        "prompt with the config's hostname: {text}"
    );
    assert!(
        text.contains("10.94.3.0/24"),
        "show ip route lists the static route: {text}"
    );
    assert!(
        text.contains("10.94.1.0/24"),
        "and the connected one: {text}"
    );
    assert!(
        text.contains(&site.left_link.outer),
        "show interfaces: {text}"
    );
    assert!(
        text.contains(&site.right_link.outer),
        "show interfaces: {text}"
    );
}

#[test]
fn hosted_cli_shows_interfaces_arp_and_version_as_ios_does() {
    if !is_root() {
        return;
    }
    let site = Site::new(96);
    let (left, right) = (&site.left_link.outer, &site.right_link.outer);
    let mut startup = std::fs::OpenOptions::new()
        .append(true)
        .open(&site.config.0)
        .unwrap();
    // The right port shut down, and a sub-interface of it down with it.
    writeln!(
        startup,
        "interface {right}\n shutdown\ninterface {right}.7\n ip address 10.96.7.1/24\n\
         interface {left}\n ipv6 address 2001:db8:96::1/64"
    )
    .unwrap();
    drop(startup);
    let mut appliance = site
        .run(&[], Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        site.left.ping_ok("10.96.1.1"),
        "the host is in the ARP table"
    );
    let mut stdin = appliance.stdin.take().unwrap();
    for line in [
        "show ip interface brief",
        "show ipv6 interface brief",
        &format!("show interfaces {left}"),
        "show ip arp",
        "show version",
        "exit",
    ] {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = appliance.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    for line in [
        "Interface              IP-Address      OK? Method Status                Protocol\n"
            .to_string(),
        format!("{left:<22} 10.96.1.1       YES manual up                    up\n"),
        format!("{right:<22} 10.96.2.1       YES manual administratively down down\n"),
        format!(
            "{:<22} 10.96.7.1       YES manual down                  down\n",
            format!("{right}.7")
        ),
        format!("{left:<22} [up/up]\n    fe80::"),
        "    2001:db8:96::1\n".to_string(),
        format!("{right:<22} [administratively down/down]\n"),
        "Internet  10.96.1.1               -   ".to_string(),
        format!("{left} is up, line protocol is up\n"),
        "  Internet address is 10.96.1.1/24\n".to_string(),
        "  5 minute input rate ".to_string(),
        "Protocol  Address          Age (min)  Hardware Addr   Type   Interface\n".to_string(),
        "Internet  10.96.1.2               0   ".to_string(),
        "edge-hosted uptime is 0 minutes\n".to_string(),
        "System image file is \"".to_string(),
        "K bytes of memory.\n2 Ethernet interfaces\n1 802.1Q sub-interfaces\n".to_string(),
    ] {
        assert!(text.contains(&line), "{line:?} in:\n{text}");
    }
    assert!(
        !text.contains(&format!("{right} is")),
        "show interfaces NAME shows that one: {text}"
    );
    assert!(
        !text.contains("Internet  10.96.7.1"),
        "no own address of a down interface in the ARP table: {text}"
    );
}

#[test]
fn a_startup_config_naming_an_absent_nic_still_brings_up_the_rest() {
    if !is_root() {
        return;
    }
    let site = Site::new(95);
    let mut startup = std::fs::OpenOptions::new()
        .append(true)
        .open(&site.config.0)
        .unwrap();
    writeln!(startup, "interface gh-absent0\n ip address 10.95.9.1/24").unwrap();
    drop(startup);
    let mut appliance = Child(
        site.run(&["--no-console"], Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert!(
        site.left.ping_ok("10.95.2.2"),
        "the interfaces that exist forward"
    );
    let _ = appliance.0.kill();
    let mut report = String::new();
    std::io::Read::read_to_string(&mut appliance.0.stderr.take().unwrap(), &mut report).unwrap();
    assert!(
        report.contains("\"interface gh-absent0\": left out"),
        "{report}"
    );
}

#[test]
fn several_workers_on_a_backend_that_cannot_share_is_one_line_and_a_failure() {
    let site_config = ConfigFile::new("hostname edge\n");
    let out = Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(&site_config.0)
        .args(["--backend", "tap", "--workers", "2", "--no-console"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_one_line_failure(&out, "need the af-packet or af-xdp backend");
}

#[test]
fn a_missing_config_file_is_one_line_and_a_failure() {
    let out = Command::new(BIN)
        .args([
            "run",
            "--config",
            "/nonexistent/gatehouse.cfg",
            "--no-console",
        ])
        .output()
        .unwrap();
    assert_one_line_failure(&out, "no such file");
}

/// A refusal on the command line: a failure status and one line saying why.
fn assert_one_line_failure(out: &std::process::Output, why: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(why), "{err}");
}
