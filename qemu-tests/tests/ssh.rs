//! SSH into the image booted in QEMU (TCG): a user and an address typed at
//! the console, then OpenSSH's `ssh` client in a namespace host logs in
//! over the appliance's userspace stack, reads and changes the config, and
//! the console sees the change; a key typed at the console logs in. The
//! Appliance checks its console for panics on drop.

// What the hosted SSH tests use too.
#[path = "../../tests/support/openssh.rs"]
mod openssh;

use openssh::{give_password, new_key, output_text as text, write_askpass};
use qemu_tests::netns::Host;
use qemu_tests::{Appliance, BootOptions};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "qemu-s3cret";
/// The first key exchange under TCG is slow; the deadline is generous and
/// only bounds how long a broken server can hold the test.
const SSH_READY_DEADLINE: Duration = Duration::from_secs(60);

/// A directory holding the askpass helper and key pairs, removed on drop.
struct Scratch {
    dir: PathBuf,
    askpass: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("gh{}-qemu-ssh", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // ssh asks this program for the password (there is no terminal).
        let askpass = write_askpass(&dir);
        Scratch { dir, askpass }
    }

    fn new_key(&self, name: &str) -> PathBuf {
        new_key(&self.dir, name, "")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the client proves who it is.
enum Login<'a> {
    Password(&'a str),
    /// The path of a private key, the only one offered.
    Key(&'a Path),
}

/// OpenSSH's client in `host`.
struct Client<'a> {
    host: &'a Host,
    scratch: Scratch,
    address: &'a str,
}

impl Client<'_> {
    /// `ssh user@address command` in exec mode.
    fn exec(&self, user: &str, login: Login, command: &str) -> Output {
        let mut ssh = self.host.command("setsid");
        ssh.args(["-w", "ssh"])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "ConnectTimeout=20"])
            .args(["-o", "LogLevel=ERROR"]);
        match login {
            Login::Password(password) => {
                ssh.args(["-o", "PubkeyAuthentication=no"])
                    .args(["-o", "PreferredAuthentications=password"])
                    .args(["-o", "NumberOfPasswordPrompts=1"]);
                give_password(&mut ssh, &self.scratch.askpass, password);
            }
            Login::Key(key) => {
                ssh.arg("-i")
                    .arg(key)
                    .args(["-o", "IdentitiesOnly=yes"])
                    .args(["-o", "PreferredAuthentications=publickey"])
                    .args(["-o", "BatchMode=yes"]);
            }
        }
        ssh.arg(format!("{user}@{}", self.address))
            .arg(command)
            .stdin(Stdio::null());
        ssh.output().expect("running ssh")
    }

    fn admin(&self, command: &str) -> Output {
        self.exec("admin", Login::Password(PASSWORD), command)
    }

    /// Retries a harmless command until the server answers or the
    /// deadline passes; returns the last attempt.
    fn wait_ready(&self) -> Output {
        let deadline = Instant::now() + SSH_READY_DEADLINE;
        loop {
            let out = self.admin("show running-config");
            if out.status.success() || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn ssh_from_a_host_reads_and_changes_the_console_made_config() {
    let mut appliance = Appliance::boot(BootOptions {
        hosts: 1,
        ..BootOptions::default()
    })
    .expect("starting QEMU");
    appliance.hosts[0]
        .configure("10.1.0.2/24", "10.1.0.1")
        .unwrap();
    appliance.wait_for_prompt().unwrap();
    let admin_line = format!("username admin privilege 15 secret {PASSWORD}");
    let scratch = Scratch::new();
    let key = scratch.new_key("id");
    let stranger = scratch.new_key("stranger");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let key_line = format!("username operator privilege 15 ssh-key {}", public.trim());
    for line in [
        "enable",
        "configure terminal",
        "interface eth0",
        "ip address 10.1.0.1/24",
        "exit",
        &admin_line,
        &key_line,
        "commit",
        "end",
    ] {
        let output = appliance.command(line).unwrap();
        assert!(!output.contains('%'), "`{line}` was refused: {output}");
    }

    let started = Instant::now();
    let client = Client {
        host: &appliance.hosts[0],
        scratch,
        address: "10.1.0.1",
    };
    let out = client.wait_ready();
    eprintln!(
        "SSH answered {:.2} s after the config was committed",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let config = text(&out);
    assert!(
        config.contains("ip address 10.1.0.1 255.255.255.0"),
        "{config}"
    );
    assert!(config.contains("username admin privilege 15"), "{config}");

    let out = client.admin("configure terminal\nhostname via-ssh\ncommit");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = client.exec(
        "admin",
        Login::Password("not-the-password"),
        "show running-config",
    );
    assert!(!out.status.success(), "a wrong password: {}", text(&out));
    assert!(!text(&out).contains("ip address"), "{}", text(&out));

    // The key typed at the console logs its user in; another key does not.
    let out = client.exec("operator", Login::Key(&key), "show users");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("operator"), "{}", text(&out));
    let out = client.exec("operator", Login::Key(&stranger), "show users");
    assert!(!out.status.success(), "another key: {}", text(&out));
    drop(client);

    let console_config = appliance.command("show running-config").unwrap();
    assert!(
        console_config.contains("hostname via-ssh"),
        "{console_config}"
    );
    // The prompt after that command already carries the new hostname.
    let transcript = appliance.console.transcript();
    assert!(transcript.trim_end().ends_with("via-ssh#"), "{transcript}");
}
