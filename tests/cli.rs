//! The real `gatehouse cli` and `gatehouse shell` binaries, run as a user
//! would run them.

#[path = "support/pty.rs"]
mod pty;

use pty::Screen;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// A scratch directory removed on drop, even when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("gh-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cli(args: &[&str]) -> Output {
    Command::new(BIN).arg("cli").args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn commands_from_the_command_line_configure_and_show() {
    let out = cli(&[
        "-c",
        "conf t",
        "-c",
        "hostname r1",
        "-c",
        "interface eth0",
        "-c",
        "ip address 10.0.0.1/24",
        "-c",
        "commit",
        "-c",
        "end",
        "-c",
        "show running-config",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "!\nhostname r1\n!\ninterface eth0\n ip address 10.0.0.1 255.255.255.0\n!\nend\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn failing_lines_give_one_percent_line_each_and_a_failure_status() {
    let out = cli(&[
        "-c",
        "conf t",
        "-c",
        "hostnme r1",
        "-c",
        "mtu 1500",
        "-c",
        "hostname ok",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "% line 2 \"hostnme r1\": Invalid input detected at '^' marker.",
            "% line 3 \"mtu 1500\": Invalid input detected at '^' marker.",
        ]
    );
    assert!(text(&out.stdout).contains("gatehouse(config)#hostnme r1\n                  ^\n"));
}

#[test]
fn a_script_saves_the_startup_config_that_the_next_run_loads() {
    let dir = TempDir::new("script");
    let startup = dir.0.join("startup-config");
    let script = dir.0.join("setup.txt");
    std::fs::write(
        &script,
        "! set up an uplink\nconfigure terminal\nhostname edge\ninterface eth1\n ip address 192.0.2.1/24\n\
         ip route 0.0.0.0 0.0.0.0 192.0.2.254\ncommit\nend\nwrite memory\n",
    )
    .unwrap();
    let startup_arg = startup.to_str().unwrap();
    let out = cli(&["-f", script.to_str().unwrap(), "--startup", startup_arg]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let saved = std::fs::read_to_string(&startup).unwrap();
    assert!(
        saved.contains("hostname edge\n")
            && saved.contains("ip route 0.0.0.0 0.0.0.0 192.0.2.254\n")
    );

    let out = cli(&[
        "--startup",
        startup_arg,
        "-c",
        "show running-config | include route",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ip route 0.0.0.0 0.0.0.0 192.0.2.254\n");
}

#[test]
fn the_shell_runs_on_a_plain_byte_stream_when_stdin_is_not_a_terminal() {
    let mut child = Command::new(BIN)
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"enable\nshow version\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("gatehouse>gatehouse#"), "{stdout:?}");
    assert!(
        stdout.contains("Gatehouse edge gateway, version"),
        "{stdout:?}"
    );
}

/// A child process killed on drop, so a failing test leaves nothing behind.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_shell_on_a_terminal_has_help_completion_ctrl_z_and_takes_pasted_blocks() {
    let (master, slave) = pty::open();
    let child = Command::new(BIN)
        .arg("shell")
        .env("TERM", "xterm")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let mut keyboard = master.try_clone().unwrap();
    let mut screen = Screen::start(master, std::time::Duration::from_secs(20));
    let mut type_keys = |keys: &str| keyboard.write_all(keys.as_bytes()).unwrap();

    screen.wait_for("gatehouse>");
    type_keys("en\r");
    screen.wait_for("gatehouse#");
    type_keys("sh ?");
    screen.wait_for("running-config  Current operating configuration");
    screen.wait_for("gatehouse#sh ");
    type_keys("ver\r");
    screen.wait_for("Gatehouse edge gateway, version");
    type_keys("conf t\r");
    screen.wait_for("gatehouse(config)#");
    type_keys("int\t");
    screen.wait_for("interface ");
    type_keys("eth0\r");
    screen.wait_for("gatehouse(config-if)#");
    type_keys("\x1a");
    screen.wait_for("gatehouse#");
    // A block pasted at once: every line runs, none is lost to type-ahead.
    type_keys("conf t\rhostname pasted\rcommit\rend\rshow running-config | include host\r");
    // (rustyline moves the cursor between a prompt and its line.)
    for text in ["pasted(config)#", "end", "pasted#", "| include host"] {
        screen.wait_for(text);
    }
    screen.wait_for("hostname pasted");
    screen.wait_for("pasted#");
    type_keys("exit\r");
    assert!(child.0.wait().unwrap().success());
}

/// Pastes `config` in `configure terminal` through `gatehouse cli -f`,
/// saves to `startup`; the saved running config and the refused lines.
fn paste(dir: &TempDir, config: &str, startup: &std::path::Path) -> (String, Vec<String>) {
    let script = dir.0.join("paste.txt");
    // A saved running config ends with its own `end`.
    let end = if config.ends_with("end\n") {
        ""
    } else {
        "end\n"
    };
    let script_text = format!("configure terminal\n{config}{end}write memory\n");
    std::fs::write(&script, script_text).unwrap();
    let out = cli(&[
        "-f",
        script.to_str().unwrap(),
        "--startup",
        startup.to_str().unwrap(),
    ]);
    // `% line N "LINE": MESSAGE`, one per refused line: the lines.
    let refused = text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("% line "))
        .map(|l| l.split('"').nth(1).unwrap_or(l).to_string())
        .collect();
    (
        std::fs::read_to_string(startup).unwrap_or_default(),
        refused,
    )
}

#[test]
fn an_ios_router_configuration_pastes_with_only_missing_features_refused_and_renders_back_stably() {
    let dir = TempDir::new("ios-paste");
    let fixture = include_str!("fixtures/ios-branch-router.cfg");
    let (running, refused) = paste(&dir, fixture, &dir.0.join("first"));
    // Each refused block whole: its indented lines would otherwise land in
    // the mode before it (`description` on eth3, `network` in BGP).
    assert_eq!(
        refused,
        [
            "class-map match-any VOICE",
            "description Voice traffic",
            "match dscp ef",
            "router ospf 1",
            "router-id 192.168.10.1",
            "passive-interface eth1",
            "network 192.168.10.0 0.0.0.255 area 0",
            "ip sla 10",
            "icmp-echo 203.0.113.1 source-interface eth0",
            "frequency 10",
            "ip dhcp pool LAN",
            "network 192.168.10.0 255.255.255.0",
            "default-router 192.168.10.1",
        ]
    );
    for line in [
        "hostname branch-rtr1\n",
        "interface eth1\n ip access-group LAN-IN in\n description LAN users\n ip address 192.168.10.1 255.255.255.0\n ip address 192.168.11.1 255.255.255.0 secondary\n",
        "interface eth3\n vrf forwarding CUST-B\n description Customer B\n ip address 10.1.1.1 255.255.255.0\n!\n",
        "ip route 10.30.0.0 255.255.0.0 192.168.10.253 200 name BACKUP-CORE\n",
        "ip route vrf CUST-A 10.50.0.0 255.255.255.0 10.1.1.2 name CUST-A-DC\n",
        "ip nat inside source list 101 interface eth0 overload\n",
        "  network 192.168.11.0 mask 255.255.255.0\n  neighbor 203.0.113.1 activate\n exit-address-family\n!\n",
        " 30 deny ip any host 203.0.113.2\n",
        " neighbor 203.0.113.1 route-map RM-OUT out\n",
        "ip prefix-list PL-OUT seq 5 permit 192.168.10.0/23 le 24\n",
        "route-map RM-OUT permit 10\n match ip address prefix-list PL-OUT\n set as-path prepend 65010 65010\n",
    ] {
        assert!(running.contains(line), "{line:?} missing from:\n{running}");
    }
    // Pasted again, the running config reads back to itself.
    let (again, refused) = paste(&dir, &running, &dir.0.join("second"));
    assert_eq!(refused, Vec::<String>::new());
    assert_eq!(again, running);
}
