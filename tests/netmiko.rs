//! Netmiko, the automation client IOS operators drive routers with, against
//! `gatehouse run --no-console` over SSH on the appliance's own stack: its
//! `cisco_ios` driver pushes a configuration as IOS takes it (`configure
//! terminal`, lines, `end`, never `commit`), reads it back and saves it;
//! its `cisco_xr` driver does the same with `commit`, in `configure
//! terminal` and in `configure exclusive`. Netmiko comes from PyPI into
//! target/netmiko-venv (scripts/install-deps.sh); without it, or without
//! root, there is nothing to run.

// The namespace helpers of the dataplane tests, shared rather than copied.
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, unique, Child, Netns, Veth};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const PYTHON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/netmiko-venv/bin/python"
);
const PASSWORD: &str = "netmiko-s3cret";

/// What the Python side does with a driver: connect as admin, push the
/// lines (in the configuration mode given, `commit` when asked), save
/// (`save`: the driver's save_config, `write`: `write memory`), and print
/// each output after a `=== NAME` line.
const SCRIPT: &str = r#"
import sys
from netmiko import ConnectHandler

driver, host, password, mode, commit, save = sys.argv[1:7]
lines = sys.argv[7:]
device = ConnectHandler(device_type=driver, host=host, username="admin",
                        password=password, conn_timeout=20)
outputs = {"prompt": device.find_prompt()}
outputs["push"] = device.send_config_set(lines, config_mode_command=mode)
if commit == "commit":
    outputs["commit"] = device.commit()
    outputs["end"] = device.exit_config_mode()
if save == "save":
    outputs["save"] = device.save_config()
elif save == "write":  # XR's driver has no save_config: XR saves at commit
    outputs["save"] = device.send_command("write memory")
outputs["running"] = device.send_command("show running-config")
outputs["brief"] = device.send_command("show ip interface brief")
device.disconnect()
for name, text in outputs.items():
    print(f"=== {name}\n{text}")
"#;

/// The appliance on one veth to a host namespace; its config directory is
/// removed on drop.
struct Site {
    host: Netns,
    link: Veth,
    dir: PathBuf,
    net: u8,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Site {
    /// The host is 10.<net>.1.2/24, the appliance 10.<net>.1.1.
    fn new(net: u8) -> Site {
        let host = Netns::new();
        let link = Veth::into_ns(&host);
        host.configure(&link.inner, &format!("10.{net}.1.2/24"), None);
        let dir = std::env::temp_dir().join(unique("nm"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "hostname edge-nm\nusername admin privilege 15 secret {PASSWORD}\n\
             interface {}\n ip address 10.{net}.1.1/24\n",
            link.outer
        );
        std::fs::write(dir.join("startup-config"), config).unwrap();
        std::fs::write(dir.join("push.py"), SCRIPT).unwrap();
        Site {
            host,
            link,
            dir,
            net,
        }
    }

    fn startup(&self) -> PathBuf {
        self.dir.join("startup-config")
    }

    /// The save said so, and the startup file has `text`.
    fn assert_saved(&self, pushed: &Pushed, text: &str) {
        let save = pushed.get("save");
        assert!(save.contains("[OK]"), "{save}");
        let saved = std::fs::read_to_string(self.startup()).unwrap();
        assert!(saved.contains(text), "{saved}");
    }

    fn start(&self) -> Child {
        let appliance = Child(
            Command::new(BIN)
                .arg("run")
                .arg("--config")
                .arg(self.startup())
                .arg("--no-console")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(
            self.host.ping_ok(&format!("10.{}.1.1", self.net)),
            "the appliance answers"
        );
        appliance
    }

    /// Runs the script with `driver` from the host; returns its outputs.
    fn push(&self, driver: &str, mode: &str, commit: bool, save: &str, lines: &[&str]) -> Pushed {
        let out = self
            .host
            .command(PYTHON)
            .arg(self.dir.join("push.py"))
            .args([driver, &format!("10.{}.1.1", self.net), PASSWORD, mode])
            .arg(if commit { "commit" } else { "-" })
            .arg(save)
            .args(lines)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{driver}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Pushed(text)
    }
}

/// The script's outputs, by name.
struct Pushed(String);

impl Pushed {
    fn get(&self, name: &str) -> &str {
        let start = format!("=== {name}\n");
        let Some(at) = self.0.find(&start) else {
            panic!("no {name} in {}", self.0)
        };
        let rest = &self.0[at + start.len()..];
        rest.find("\n=== ").map_or(rest, |end| &rest[..end])
    }
}

/// With Netmiko installed and as root, a site with its appliance started;
/// None (the test has nothing to run) otherwise.
fn running_site(net: u8) -> Option<(Site, Child)> {
    if !Path::new(PYTHON).exists() {
        eprintln!("netmiko tests skipped: run scripts/install-deps.sh");
        return None;
    }
    if !is_root() {
        return None;
    }
    let site = Site::new(net);
    let appliance = site.start();
    Some((site, appliance))
}

#[test]
fn netmiko_cisco_ios_pushes_without_commit_reads_back_and_saves() {
    let Some((site, _appliance)) = running_site(71) else {
        return;
    };
    let iface = &site.link.outer;
    let pushed = site.push(
        "cisco_ios",
        "configure terminal",
        false,
        "save",
        &[
            &format!("interface {iface}"),
            "description pushed-by-netmiko",
            "ip address 10.71.5.1 255.255.255.0 secondary",
            "ip route 10.71.9.0 255.255.255.0 10.71.1.2 name netmiko",
        ],
    );
    assert!(pushed.get("prompt").ends_with("edge-nm#"), "{}", pushed.0);
    assert!(!pushed.get("push").contains('%'), "{}", pushed.get("push"));
    let running = pushed.get("running");
    for line in [
        " description pushed-by-netmiko\n",
        " ip address 10.71.5.1 255.255.255.0 secondary\n",
        "ip route 10.71.9.0 255.255.255.0 10.71.1.2 name netmiko\n",
    ] {
        assert!(running.contains(line), "{line:?} in {running}");
    }
    let brief = pushed.get("brief");
    assert!(
        brief.contains(&format!(
            "{iface:<22} 10.71.1.1       YES manual up                    up"
        )),
        "{brief}"
    );
    site.assert_saved(&pushed, "name netmiko");
}

#[test]
fn netmiko_cisco_xr_pushes_and_commits_in_both_configuration_modes() {
    let Some((site, _appliance)) = running_site(72) else {
        return;
    };
    let iface = &site.link.outer;
    // XR's own way: `configure terminal`, the lines, `commit`.
    let pushed = site.push(
        "cisco_xr",
        "configure terminal",
        true,
        "-",
        &[
            "ip route 10.72.9.0 255.255.255.0 10.72.1.2 name by-xr",
            &format!("interface {iface}"),
            "description by-xr",
        ],
    );
    assert!(!pushed.get("commit").contains('%'), "{}", pushed.0);
    assert!(
        pushed.get("running").contains(" description by-xr\n"),
        "{}",
        pushed.0
    );
    // A candidate applied whole by `commit`, as on XR.
    let pushed = site.push(
        "cisco_xr",
        "configure exclusive",
        true,
        "write",
        &[
            &format!("interface {iface}"),
            "description candidate-by-xr",
            "exit",
            "no ip route 10.72.9.0 255.255.255.0 10.72.1.2",
        ],
    );
    let running = pushed.get("running");
    assert!(
        running.contains(" description candidate-by-xr\n"),
        "{}",
        pushed.0
    );
    assert!(!running.contains("10.72.9.0"), "{running}");
    assert!(
        pushed
            .get("brief")
            .contains("10.72.1.1       YES manual up"),
        "{}",
        pushed.get("brief")
    );
    site.assert_saved(&pushed, "candidate-by-xr");
}
