//! The real `gatehouse cli` and `gatehouse shell` binaries, run as a user
//! would run them.

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
        "!\nhostname r1\n!\ninterface eth0\n ip address 10.0.0.1/24\n!\nend\n"
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
         ip route 0.0.0.0/0 192.0.2.254\ncommit\nend\nwrite memory\n",
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
        saved.contains("hostname edge\n") && saved.contains("ip route 0.0.0.0/0 192.0.2.254\n")
    );

    let out = cli(&[
        "--startup",
        startup_arg,
        "-c",
        "show running-config | include route",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ip route 0.0.0.0/0 192.0.2.254\n");
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
