//! The shell driven through its non-interactive and byte-stream entry
//! points: modes, transactional configuration, filters, startup file,
//! embedder hooks and commands.

use grammar::config::Config;
use shell::{run_lines, run_stream, Failure, Mode, Session, Shell, ShellBuilder};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn plain_shell() -> Arc<Shell> {
    ShellBuilder::new().build().0
}

/// Runs lines; returns the transcript and the failures.
fn run(session: &mut Session, lines: &[&str]) -> (String, Vec<Failure>) {
    let mut out = Vec::new();
    let failures = run_lines(session, lines, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), failures)
}

/// Runs lines that must all succeed; returns the output.
fn ok(session: &mut Session, lines: &[&str]) -> String {
    let (out, failures) = run(session, lines);
    assert_eq!(failures, [], "transcript:\n{out}");
    out
}

/// A scratch directory removed on drop, even when the test fails.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("gh-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn modes_and_prompts_follow_ios() {
    let mut s = Session::new(plain_shell(), "t", false);
    let mut prompts = vec![s.prompt()];
    for line in [
        "enable",
        "configure terminal",
        "interface eth0",
        "exit",
        "int eth0",
    ] {
        assert_eq!(s.execute(line).error, None, "{line}");
        prompts.push(s.prompt());
    }
    s.ctrl_z();
    prompts.push(s.prompt());
    for line in ["conf t", "end", "disable"] {
        s.execute(line);
        prompts.push(s.prompt());
    }
    assert_eq!(
        prompts,
        [
            "gatehouse>",
            "gatehouse#",
            "gatehouse(config)#",
            "gatehouse(config-if)#",
            "gatehouse(config)#",
            "gatehouse(config-if)#",
            "gatehouse#",
            "gatehouse(config)#",
            "gatehouse#",
            "gatehouse>",
        ]
    );
    assert!(
        s.execute("configure terminal").error.is_some(),
        "not in user mode"
    );
    assert!(s.execute("exit").quit);
}

#[test]
fn parent_mode_commands_work_from_a_sub_mode_and_do_runs_exec_commands() {
    let mut s = Session::new(plain_shell(), "t", true);
    ok(&mut s, &["conf t", "interface eth0", "hostname r9"]);
    assert_eq!(*s.mode(), Mode::Config(grammar::ConfigContext::Global));
    ok(
        &mut s,
        &["interface eth0", "ip address 10.0.0.1/24", "commit"],
    );
    assert_eq!(s.prompt(), "r9(config-if)#");
    let out = ok(&mut s, &["do show running-config | include address"]);
    assert_eq!(out, " ip address 10.0.0.1 255.255.255.0\n");
    assert_eq!(s.prompt(), "r9(config-if)#", "do keeps the mode");
}

#[test]
fn commit_validates_the_whole_candidate_and_abort_discards_it() {
    let shell = plain_shell();
    let mut s = Session::new(shell.clone(), "t", true);
    let (out, failures) = run(
        &mut s,
        &[
            "configure exclusive",
            "interface eth0",
            "ip address 10.0.0.1/16",
            "interface eth1",
            "ip address 10.0.5.1/24",
            "ip route 10.9.0.0/16 eth7",
            "commit",
        ],
    );
    assert_eq!(failures.len(), 1, "{out}");
    assert!(out.contains("% Commit failed, nothing was changed:"));
    assert!(out.contains("% 10.0.5.1/24 on eth1 overlaps 10.0.0.1/16 on eth0"));
    assert!(out.contains("% ip route 10.9.0.0/16: interface eth7 is not configured"));
    assert_eq!(*shell.running(), Config::default());
    let diff = ok(&mut s, &["show configuration"]);
    assert!(
        diff.contains("+ interface eth1\n+  ip address 10.0.5.1 255.255.255.0\n"),
        "{diff}"
    );
    ok(&mut s, &["abort"]);
    assert_eq!(*s.mode(), Mode::Privileged);
    assert_eq!(ok(&mut s, &["show configuration"]), "");
    ok(
        &mut s,
        &[
            "conf t",
            "interface eth0",
            "ip address 10.0.0.1/16",
            "commit",
        ],
    );
    assert_eq!(
        shell.running().interfaces.len(),
        1,
        "the aborted eth1 is gone"
    );
}

#[test]
fn configure_terminal_applies_each_line_at_once_as_ios_does() {
    let shell = plain_shell();
    let mut s = Session::new(shell.clone(), "t", true);
    ok(&mut s, &["configure terminal", "hostname r1"]);
    assert_eq!(shell.running().system.hostname.as_deref(), Some("r1"));
    assert_eq!(s.prompt(), "r1(config)#");
    ok(
        &mut s,
        &["interface eth0", "ip address 10.0.0.1 255.255.255.0"],
    );
    assert!(
        !shell.running().interfaces["eth0"].ipv4_addresses.is_empty(),
        "applied while still in the interface"
    );
    let out = ok(&mut s, &["ip route 10.9.0.0/16 eth7"]);
    assert!(out.contains("% Not applied yet"), "{out}");
    assert!(out.contains("interface eth7 is not configured"), "{out}");
    assert!(shell.running().routes.tables.is_empty());
    // Scripts written for the candidate model end with `commit`: accepted,
    // silent; `commit confirmed` needs a candidate.
    assert_eq!(ok(&mut s, &["ip route 10.9.0.0/16 eth0", "commit"]), "");
    let (out, failures) = run(&mut s, &["commit confirmed 5"]);
    assert_eq!(failures.len(), 1);
    assert!(out.contains("'configure exclusive'"), "{out}");
    let (out, failures) = run(&mut s, &["end"]);
    assert_eq!(failures.len(), 1, "{out}");
    assert!(
        out.contains("% Not applied: ip route 10.9.0.0/16 eth7\n"),
        "{out}"
    );
    assert!(!s.has_uncommitted_changes());

    // Another session's commit in between does not make these lines stale.
    let mut other = Session::new(shell.clone(), "o", true);
    ok(&mut s, &["conf t", "hostname r2"]);
    ok(&mut other, &["conf t", "banner motd hello", "end"]);
    ok(&mut s, &["hostname r3", "end"]);
    assert_eq!(shell.running().system.hostname.as_deref(), Some("r3"));

    // A configure-terminal session is one entry of the history while no
    // other commit comes between its lines: a rollback undoes it whole.
    let list = ok(&mut s, &["show configuration commit list"]);
    assert_eq!(list.matches("configure terminal").count(), 4, "{list}");
    ok(&mut s, &["rollback configuration last 4"]);
    assert_eq!(*shell.running(), Config::default());
}

#[test]
fn in_configure_terminal_refused_lines_wait_for_later_ones_until_end() {
    let shell = plain_shell();
    let mut s = Session::new(shell.clone(), "t", true);
    ok(
        &mut s,
        &["conf t", "interface eth0", "ip address 10.0.0.1/24", "exit"],
    );
    // A VXLAN interface is refused until its vni comes: the block's lines
    // wait for the block's next ones, silently.
    ok(&mut s, &["interface vxlan1", "source-interface eth0"]);
    let vxlan = |shell: &Shell| shell.running().interfaces.get("vxlan1").cloned();
    assert!(vxlan(&shell).is_none_or(|i| i.vxlan.is_none()), "waiting");
    assert_eq!(ok(&mut s, &["vni 100", "exit"]), "");
    let settings = vxlan(&shell).and_then(|i| i.vxlan).expect("applied");
    assert_eq!(settings.vni, Some(100));

    // As in IOS's own configurations, an interface may name an access
    // list defined further down: its line waits for it, with a note.
    let out = ok(
        &mut s,
        &[
            "interface eth1",
            "ip access-group EDGE in",
            "description x",
            "exit",
        ],
    );
    assert!(
        out.contains("% Not applied yet (again after each line, refused at 'end'): ip access-group EDGE in / description x\n"),
        "{out}"
    );
    assert!(shell.running().access_lists.bindings.is_empty());
    assert_eq!(
        shell.running().interfaces["eth1"],
        Default::default(),
        "the interface line itself applied"
    );
    ok(
        &mut s,
        &["ip access-list extended EDGE", "permit ip any any"],
    );
    assert!(
        !shell.running().access_lists.bindings.is_empty(),
        "bound once the list exists"
    );
    // A global line typed in a block ends it; what the block still lacks
    // waits, the line applies; at `end` what is still refused is dropped
    // and named.
    ok(&mut s, &["interface eth2", "ip address 10.0.0.6/24"]);
    let out = ok(&mut s, &["hostname after"]);
    assert!(out.contains("ip address 10.0.0.6/24"), "{out}");
    assert_eq!(shell.running().system.hostname.as_deref(), Some("after"));
    assert_eq!(s.prompt(), "after(config)#");
    let (out, failures) = run(&mut s, &["interface eth3", "ip address 10.0.0.7/24", "end"]);
    assert_eq!(failures.len(), 1, "{out}");
    assert!(
        out.contains("% Not applied: ip address 10.0.0.6/24\n% Commit failed"),
        "{out}"
    );
    assert!(
        out.contains("% Not applied: ip address 10.0.0.7/24\n"),
        "{out}"
    );
    assert!(out.contains("overlaps 10.0.0.1/24 on eth0"), "{out}");
    assert!(shell.running().interfaces["eth2"].ipv4_addresses.is_empty());
    assert!(shell.running().interfaces["eth3"].ipv4_addresses.is_empty());
    assert!(!s.has_uncommitted_changes());
    assert_eq!(*s.mode(), Mode::Privileged);
}

#[test]
fn rollback_returns_to_earlier_commits() {
    let shell = plain_shell();
    let mut s = Session::new(shell.clone(), "t", true);
    ok(
        &mut s,
        &[
            "configure exclusive",
            "hostname a",
            "commit",
            "hostname b",
            "commit",
            "hostname c",
            "commit",
            "end",
        ],
    );
    ok(&mut s, &["rollback configuration last 2"]);
    assert_eq!(shell.running().system.hostname.as_deref(), Some("a"));
    let list = ok(&mut s, &["show configuration commit list"]);
    assert!(list.contains("rollback 2"), "{list}");
    assert_eq!(shell.history().len(), 4);
    let (out, failures) = run(&mut s, &["rollback configuration last 9"]);
    assert_eq!(failures.len(), 1);
    assert!(out.contains("% Only 4 commit(s) in the history"), "{out}");
}

#[test]
fn every_change_of_the_running_configuration_is_told_who_made_it() {
    let told = Arc::new(Mutex::new(Vec::new()));
    let notes = told.clone();
    let shell = ShellBuilder::new()
        .on_commit(move |r| {
            notes
                .lock()
                .unwrap()
                .push(format!("{} {} {}", r.id, r.by, r.label))
        })
        .build()
        .0;
    let mut s = Session::new(shell, "alice", true);
    ok(
        &mut s,
        &[
            "conf t",
            "hostname a",
            "hostname b",
            "end",
            "rollback configuration last 1",
            "configure exclusive",
            "hostname c",
            "commit",
            "end",
        ],
    );
    let refused = "ip http access-class MISSING";
    for lines in [
        ["configure exclusive", refused, "commit", "abort"].as_slice(),
        ["conf t", refused, "end"].as_slice(),
    ] {
        let (_, failures) = run(&mut s, lines);
        assert_eq!(failures.len(), 1, "a refused commit tells nothing");
    }
    assert_eq!(
        *told.lock().unwrap(),
        [
            "1 alice configure terminal",
            "1 alice configure terminal",
            "2 alice rollback 1",
            "3 alice commit"
        ],
        "each line of configure terminal, in its session's entry"
    );
}

#[test]
fn a_commit_on_a_stale_candidate_is_refused() {
    let shell = plain_shell();
    let mut a = Session::new(shell.clone(), "a", true);
    let mut b = Session::new(shell.clone(), "b", true);
    ok(&mut a, &["configure exclusive", "hostname from-a"]);
    ok(&mut b, &["conf t", "interface eth0", "commit"]);
    let (out, failures) = run(&mut a, &["commit"]);
    assert_eq!(failures.len(), 1);
    assert!(
        out.contains("another session changed the running configuration"),
        "{out}"
    );
    assert_eq!(shell.running().system.hostname, None);
    ok(
        &mut a,
        &["abort", "configure exclusive", "hostname from-a", "commit"],
    );
    assert_eq!(shell.running().system.hostname.as_deref(), Some("from-a"));
    assert!(
        shell.running().interfaces.contains_key("eth0"),
        "b's commit is kept"
    );
}

#[test]
fn the_hook_sees_every_configuration_and_may_refuse_one() {
    let seen = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let log = seen.clone();
    let (shell, report) = ShellBuilder::new()
        .hook(move |c: &Config| {
            log.lock().unwrap().push(c.system.hostname.clone());
            match c.system.hostname.as_deref() {
                Some("forbidden") => Err("that name is reserved".to_string()),
                _ => Ok(()),
            }
        })
        .build();
    assert_eq!(report, Vec::<String>::new());
    let mut s = Session::new(shell.clone(), "t", true);
    let (out, failures) = run(
        &mut s,
        &["configure exclusive", "hostname forbidden", "commit"],
    );
    assert_eq!(failures.len(), 1);
    assert!(
        out.contains("% Commit refused by the system: that name is reserved"),
        "{out}"
    );
    assert_eq!(shell.running().system.hostname, None);
    ok(&mut s, &["hostname fine", "commit"]);
    assert_eq!(
        *seen.lock().unwrap(),
        [None, Some("forbidden".into()), Some("fine".into())],
        "start, refused commit, accepted commit"
    );
}

#[test]
fn commit_confirmed_reverts_unless_confirmed() {
    let shell = ShellBuilder::new()
        .confirm_minute(Duration::from_millis(20))
        .build()
        .0;
    let mut s = Session::new(shell.clone(), "t", true);
    ok(&mut s, &["configure exclusive", "hostname keep", "commit"]);
    let out = ok(&mut s, &["hostname trial", "commit confirmed 1"]);
    assert!(out.contains("rolled back in 1 minute(s)"), "{out}");
    assert!(shell.confirmation_pending());
    let deadline = Instant::now() + Duration::from_secs(10);
    while shell.running().system.hostname.as_deref() != Some("keep") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(shell.running().system.hostname.as_deref(), Some("keep"));
    assert!(!shell.confirmation_pending());

    let slow = ShellBuilder::new().build().0;
    let mut s = Session::new(slow.clone(), "t", true);
    ok(
        &mut s,
        &[
            "configure exclusive",
            "hostname trial",
            "commit confirmed 5",
        ],
    );
    // Asking again without changes moves the deadline, the revert stays armed.
    let out = ok(&mut s, &["commit confirmed 30"]);
    assert!(
        out.contains("will now be rolled back in 30 minute(s)"),
        "{out}"
    );
    assert!(slow.confirmation_pending());
    assert!(!slow.revert_if_due(), "not due yet");
    assert_eq!(ok(&mut s, &["commit"]), "Commit confirmed.\n");
    assert!(!slow.confirmation_pending());
    assert!(!slow.revert_if_due(), "a confirmed commit stays");
    assert_eq!(slow.running().system.hostname.as_deref(), Some("trial"));
}

#[test]
fn output_filters_apply_to_show_commands_only() {
    let mut s = Session::new(plain_shell(), "t", true);
    ok(
        &mut s,
        &[
            "conf t",
            "hostname f1",
            "interface eth0",
            "description a | b",
            "ip address 192.0.2.1/24",
            "interface eth1",
            "shutdown",
            "commit",
            "end",
        ],
    );
    assert_eq!(
        ok(&mut s, &["show running-config | include ^interface"]),
        "interface eth0\ninterface eth1\n"
    );
    assert_eq!(
        ok(&mut s, &["show running-config | exclude ^[! ]"]),
        "hostname f1\ninterface eth0\ninterface eth1\nend\n"
    );
    assert_eq!(
        ok(&mut s, &["sh run | begin eth1"]),
        "interface eth1\n shutdown\n!\nend\n"
    );
    assert_eq!(
        ok(&mut s, &["show run | count"]),
        "Number of lines which match regexp = 11\n"
    );
    assert!(ok(&mut s, &["show running-config"]).contains(" description a | b\n"));
    assert_eq!(
        ok(&mut s, &["show running-config interface eth1"]),
        "!\ninterface eth1\n shutdown\n!\nend\n"
    );
    let (out, failures) = run(&mut s, &["show run | include (", "show run | sort"]);
    assert_eq!(failures.len(), 2);
    assert!(out.contains("% Invalid regular expression \"(\""), "{out}");
    assert!(
        out.contains("f1#show run | sort\n              ^\n"),
        "{out}"
    );
}

#[test]
fn errors_are_ios_style() {
    let mut s = Session::new(plain_shell(), "t", true);
    let (out, failures) = run(
        &mut s,
        &[
            "c",
            "conf t",
            "ip route 10.0.0.0/8",
            "interface eth0",
            "mtu 9",
            "vni 3",
        ],
    );
    let messages: Vec<_> = failures.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "% Ambiguous command: \"c\"",
            "% Incomplete command.",
            "% Invalid input detected at '^' marker.",
            "% eth0 is not a VXLAN interface (vxlanN)",
        ]
    );
    let caret = format!("gatehouse(config-if)#mtu 9\n{}^\n", " ".repeat(25));
    assert!(out.contains(&caret), "{out}");
    assert_eq!(
        failures[2].summary(),
        "% line 5 \"mtu 9\": Invalid input detected at '^' marker."
    );
}

#[test]
fn help_and_completion_come_from_the_definitions() {
    let mut s = Session::new(plain_shell(), "t", true);
    let help = s.help("show ").unwrap();
    assert!(help.contains("  running-config"), "{help}");
    assert!(help.contains("Current operating configuration"));
    assert_eq!(
        s.help("write ").unwrap(),
        "  memory  To the startup configuration file\n  <cr>\n"
    );
    assert_eq!(
        s.complete("sh run"),
        (3, vec!["running-config".to_string()])
    );
    ok(&mut s, &["conf t", "interface vxlan1"]);
    let help = s.help("").unwrap();
    for word in ["vni", "remote", "no", "commit", "exit"] {
        assert!(
            help.contains(&format!("  {word} ")),
            "{word} missing from {help}"
        );
    }
    assert!(s.help("ip address ").unwrap().contains("A.B.C.D/M"));
    assert!(s.help("show run | ").unwrap().contains("include"));
    assert_eq!(s.help("bogus ").unwrap_err().caret, Some(0));
}

#[test]
fn embedder_commands_are_registered_with_help() {
    let reloads = Arc::new(AtomicUsize::new(0));
    let counter = reloads.clone();
    let builder = ShellBuilder::new()
        .show(
            "interfaces [IFNAME$name]",
            &["Interface status", "One interface"],
            |args| format!("status of {}\n", args.text("name").unwrap_or("all")),
        )
        .unwrap()
        .exec("reload", &["Restart the appliance"], move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok("Reloading...\n".into())
        })
        .unwrap();
    let builder = match builder.show("version", &["again"], |_| String::new()) {
        Err(e) => {
            assert!(e.0.contains("already defined"));
            ShellBuilder::new()
        }
        Ok(_) => panic!("a second `show version` must be refused"),
    };
    drop(builder);
    let mut s = Session::new(plain_shell(), "t", true);
    assert!(
        s.execute("reload").error.is_some(),
        "not registered on this shell"
    );

    let shell = ShellBuilder::new()
        .show(
            "interfaces [IFNAME$name]",
            &["Interface status", "One interface"],
            |args| format!("status of {}\n", args.text("name").unwrap_or("all")),
        )
        .unwrap()
        .exec("reload", &["Restart the appliance"], {
            let counter = reloads.clone();
            move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok("Reloading...\n".into())
            }
        })
        .unwrap()
        .build()
        .0;
    let mut s = Session::new(shell, "t", false);
    assert_eq!(ok(&mut s, &["sh int eth0"]), "status of eth0\n");
    assert!(
        s.execute("reload").error.is_some(),
        "exec commands need enable"
    );
    ok(&mut s, &["enable", "reload", "conf t", "do reload"]);
    assert_eq!(reloads.load(Ordering::SeqCst), 2);
    assert!(s.help("do show ").is_ok());
    assert!(Session::new(s.shell().clone(), "u", true)
        .help("show ")
        .unwrap()
        .contains("  interfaces      Interface status\n"));
}

#[test]
fn startup_file_errors_are_reported_and_good_lines_applied() {
    let dir = TempDir::new("startup");
    let path = dir.0.join("startup-config");
    let original = "hostname edge\ninterface eth0\n ip address 10.0.0.1/24\n mtu 99999\nip route 0.0.0.0/0 10.0.0.254\nbogus line\n";
    std::fs::write(&path, original).unwrap();
    let (shell, report) = ShellBuilder::new().startup_path(&path).build();
    assert_eq!(report.len(), 3, "{report:?}");
    assert!(report[0].contains("line 4: \"mtu 99999\""), "{report:?}");
    assert!(report[1].contains("line 6: \"bogus line\""), "{report:?}");
    assert!(report[2].contains("startup-config.rejected"), "{report:?}");
    let kept = dir.0.join("startup-config.rejected");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), original);
    std::fs::remove_file(kept).unwrap();
    let running = shell.running();
    assert_eq!(running.system.hostname.as_deref(), Some("edge"));
    assert_eq!(running.routes.global_ipv4().count(), 1);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        original,
        "not overwritten"
    );

    let mut s = Session::new(shell.clone(), "t", true);
    assert_eq!(ok(&mut s, &["show startup-config"]), original);
    ok(&mut s, &["write memory"]);
    let saved = std::fs::read_to_string(&path).unwrap();
    assert_eq!(saved, grammar::render(&running));
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        1,
        "no temporary file left"
    );
    let (again, report) = ShellBuilder::new().startup_path(&path).build();
    assert_eq!(report, Vec::<String>::new());
    assert_eq!(*again.running(), *running);
}

#[test]
fn a_missing_startup_file_gives_the_factory_configuration_and_nothing_is_written() {
    let dir = TempDir::new("factory");
    let path = dir.0.join("startup-config");
    let (shell, report) = ShellBuilder::new()
        .startup_path(&path)
        .factory_config("interface eth0\n ip address dhcp\n")
        .build();
    assert_eq!(report.len(), 1, "{report:?}");
    assert!(
        report[0].ends_with("does not exist: starting with the factory configuration"),
        "{report:?}"
    );
    assert!(shell.running().interfaces["eth0"].dhcp);
    assert!(
        !path.exists(),
        "the factory configuration is not saved by itself"
    );
    // A saved file wins over the factory configuration.
    std::fs::write(&path, "hostname edge\n").unwrap();
    let (saved, report) = ShellBuilder::new()
        .startup_path(&path)
        .factory_config("interface eth0\n ip address dhcp\n")
        .build();
    assert_eq!(report, Vec::<String>::new());
    assert!(saved.running().interfaces.is_empty());
}

#[test]
fn startup_blocks_that_fail_the_commit_checks_are_left_out_and_the_rest_applied() {
    let dir = TempDir::new("badstartup");
    let path = dir.0.join("startup-config");
    let text = [
        "hostname edge",
        "interface eth0",
        " ip address 10.0.0.1/8",
        // Overlaps eth0: left out.
        "interface eth1",
        " ip address 10.1.0.1/16",
        // Its source interface comes later in the file: kept all the same.
        "interface vxlan1",
        " vni 100",
        " source-interface wan0",
        "interface wan0",
        " ip address 192.0.2.1/24",
        // A refused header: its lines must not land on wan0.
        "interface ge-0/0/1",
        " shutdown",
        "username admin secret keep-me",
    ]
    .join("\n");
    std::fs::write(&path, &text).unwrap();
    let (shell, report) = ShellBuilder::new().startup_path(&path).build();
    let running = shell.running();
    assert_eq!(running.system.hostname.as_deref(), Some("edge"));
    let names: Vec<&str> = running.interfaces.keys().map(String::as_str).collect();
    assert_eq!(names, ["eth0", "vxlan1", "wan0"], "{report:?}");
    assert!(!running.interfaces["wan0"].shutdown, "{report:?}");
    assert!(running.users.contains_key("admin"), "{report:?}");
    assert!(
        report
            .iter()
            .any(|l| l.contains("line 4: \"interface eth1\": left out") && l.contains("overlaps")),
        "{report:?}"
    );
    assert!(
        report.iter().any(|l| l.contains("line 12: \"shutdown\"")),
        "{report:?}"
    );
    assert_eq!(report.len(), 4, "{report:?}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "not overwritten"
    );
}

#[test]
fn a_startup_interface_the_system_refuses_is_left_out_with_what_depends_on_it() {
    let dir = TempDir::new("absentnic");
    let path = dir.0.join("startup-config");
    let text = "interface eth0\n ip address 10.0.0.1/24\ninterface ghost0\n ip address 10.9.0.1/24\nip route 10.99.0.0/16 ghost0\nusername admin secret keep-me\n";
    std::fs::write(&path, text).unwrap();
    let applied = Arc::new(Mutex::new(Config::default()));
    let system = applied.clone();
    let (shell, report) = ShellBuilder::new()
        .startup_path(&path)
        .hook(move |c: &Config| {
            if c.interfaces.contains_key("ghost0") {
                return Err("ghost0: No such device".to_string());
            }
            *system.lock().unwrap() = c.clone();
            Ok(())
        })
        .build();
    let running = shell.running();
    assert!(running.interfaces.contains_key("eth0"), "{report:?}");
    assert!(running.users.contains_key("admin"), "{report:?}");
    assert!(running.routes.global_ipv4().next().is_none(), "{report:?}");
    assert_eq!(
        *applied.lock().unwrap(),
        *running,
        "the system has what runs"
    );
    assert!(
        report
            .iter()
            .any(|l| l.contains("line 3: \"interface ghost0\": left out: ghost0: No such device")),
        "{report:?}"
    );
    assert!(
        report
            .iter()
            .any(|l| l.contains("line 5: \"ip route 10.99.0.0/16 ghost0\": left out")),
        "{report:?}"
    );
}

#[test]
fn write_memory_without_a_startup_path_is_an_error() {
    let mut s = Session::new(plain_shell(), "t", true);
    let reply = s.execute("write memory");
    assert!(reply
        .error
        .unwrap()
        .message
        .contains("No startup-config file"));
}

#[test]
fn the_byte_stream_front_end_handles_help_line_ends_and_control_keys() {
    let mut s = Session::new(plain_shell(), "t", false);
    // As a canonical tty delivers it: `show ?` and Enter in a read of their own.
    let input = Reads(vec![
        b"enable\r\n",
        b"show ?\n",
        b"version\r\nconf ex\rhostname s1\r\ninterface eth0\x1acommit\nconfigure exclusive\nhostnaXX\x08\x08me s2\x03\x1aexit\n",
    ]);
    let mut output = Vec::new();
    run_stream(&mut s, input, &mut output).unwrap();
    let text = String::from_utf8(output).unwrap();
    assert!(text.contains("\r\n  version "), "help was shown: {text}");
    assert!(
        text.contains("Gatehouse edge gateway, version"),
        "show + version ran: {text}"
    );
    assert!(
        text.contains("% Invalid input detected"),
        "commit outside config mode: {text}"
    );
    assert!(text.ends_with("gatehouse#"), "{text:?}");
    assert!(
        !text.contains("\n\n") && !text.replace("\r\n", "").contains('\n'),
        "CRLF only"
    );
    assert!(
        s.has_uncommitted_changes(),
        "hostname s1 is pending, s2 was dropped by Ctrl-C"
    );
    assert_eq!(s.shell().running().system.hostname, None);
}

/// A reader that returns its pieces one read at a time.
struct Reads(Vec<&'static [u8]>);

impl std::io::Read for Reads {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Ok(0);
        }
        let piece = self.0.remove(0);
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        if n < piece.len() {
            self.0.insert(0, &piece[n..]);
        }
        Ok(n)
    }
}

#[test]
fn a_pasted_block_keeps_its_lines_apart_and_an_endless_line_is_refused() {
    let mut s = Session::new(plain_shell(), "t", true);
    let endless = format!("{}\n", "x".repeat(100_000));
    let input = [
        "configure exclusive\r\ninterface eth0\r\ndescription uplink?\r\nshutdown\r\n",
        &endless,
        "do show version\n",
    ]
    .concat();
    let mut output = Vec::new();
    run_stream(&mut s, input.as_bytes(), &mut output).unwrap();
    let text = String::from_utf8(output).unwrap();
    let pending = s.execute("show configuration").output;
    assert!(pending.contains(" description uplink\n"), "{pending}");
    assert!(pending.contains(" shutdown\n"), "{pending}");
    assert!(
        text.contains("% Line too long (over 4096 bytes): ignored"),
        "{text}"
    );
    assert!(text.contains("Gatehouse edge gateway, version"), "{text}");
}

#[test]
fn sessions_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Session>();
    assert_send::<Arc<Shell>>();
}

#[test]
fn logins_are_checked_against_hashed_secrets_and_privilege_levels() {
    let shell = plain_shell();
    let mut admin = Session::new(shell.clone(), "setup", true);
    ok(
        &mut admin,
        &[
            "conf t",
            "username oper privilege 1 secret look only",
            "username root secret \"all powers\"",
            "username short se abbreviated-s3cret",
            "commit",
        ],
    );
    assert_eq!(shell.authenticate("oper", "look only"), Some(1));
    assert_eq!(shell.authenticate("root", "all powers"), Some(15));
    assert_eq!(shell.authenticate("root", "all power"), None);
    assert_eq!(shell.authenticate("nobody", ""), None);
    let mut oper = Session::for_user(shell.clone(), "oper", 1);
    assert_eq!(oper.prompt(), "gatehouse>");
    let denied = oper.execute("enable").error.unwrap();
    assert_eq!(
        denied.message,
        "% Access denied: oper has privilege level 1"
    );
    assert_eq!(Session::for_user(shell, "root", 15).prompt(), "gatehouse#");
    let history = ok(&mut admin, &["show history"]);
    assert!(
        history.contains("  username oper privilege 1 secret <removed>\n"),
        "{history}"
    );
    assert!(
        !history.contains("look only")
            && !history.contains("all powers")
            && !history.contains("abbreviated-s3cret"),
        "{history}"
    );
}

#[test]
fn the_byte_stream_can_echo_for_raw_channels() {
    let mut s = Session::new(plain_shell(), "t", true);
    let mut output = Vec::new();
    let options = shell::StreamOptions { echo: true };
    shell::run_stream_with(
        &mut s,
        &b"shoX\x7fw ver\rsh ip\rexit\r"[..],
        &mut output,
        options,
    )
    .unwrap();
    let text = String::from_utf8(output).unwrap();
    assert!(
        text.starts_with("gatehouse#shoX\x08 \x08w ver\r\nGatehouse edge gateway"),
        "{text:?}"
    );
    let caret = format!("gatehouse#sh ip\r\n{}^\r\n% Invalid", " ".repeat(13));
    assert!(text.contains(&caret), "{text:?}");
}

/// An IOS-style configuration as an operator pastes it: masks,
/// secondaries, route names, `interface range` and `default interface`.
const PASTED_IOS: &[&str] = &[
    "configure terminal",
    "hostname edge-ios",
    "interface eth0",
    " description uplink",
    " ip address 192.0.2.1 255.255.255.0",
    " ip address 198.51.100.1 255.255.255.128 secondary",
    "interface range eth1 - 3, eth5",
    " mtu 9000",
    " description access",
    "interface eth2",
    " ip address 10.2.0.1 255.255.0.0",
    "interface eth5",
    " ip address 10.5.0.1/16",
    "default interface eth3",
    "ip route 0.0.0.0 0.0.0.0 192.0.2.254 name default-gw",
    "ip route 10.20.0.0 255.255.0.0 10.2.0.2 200 name backup",
    "ip route 10.30.0.0/16 eth5",
    "commit",
    "end",
];

#[test]
fn a_pasted_ios_configuration_loads_and_renders_back_stably() {
    let shell = plain_shell();
    let mut s = Session::new(shell.clone(), "t", true);
    ok(&mut s, PASTED_IOS);
    let rendered = ok(&mut s, &["show running-config"]);
    assert_eq!(
        rendered,
        "!\nhostname edge-ios\n\
         !\ninterface eth0\n description uplink\n ip address 192.0.2.1 255.255.255.0\n \
         ip address 198.51.100.1 255.255.255.128 secondary\n\
         !\ninterface eth1\n description access\n mtu 9000\n\
         !\ninterface eth2\n description access\n mtu 9000\n ip address 10.2.0.1 255.255.0.0\n\
         !\ninterface eth3\n\
         !\ninterface eth5\n description access\n mtu 9000\n ip address 10.5.0.1 255.255.0.0\n\
         !\nip route 0.0.0.0 0.0.0.0 192.0.2.254 name default-gw\n\
         ip route 10.20.0.0 255.255.0.0 10.2.0.2 200 name backup\n\
         ip route 10.30.0.0 255.255.0.0 eth5\n!\nend\n"
    );
    // Pasting the rendered text into a fresh appliance gives the same
    // configuration and the same text.
    let again = plain_shell();
    let mut t = Session::new(again.clone(), "t", true);
    let lines: Vec<&str> = ["configure terminal"]
        .into_iter()
        .chain(rendered.lines().filter(|l| *l != "end"))
        .chain(["commit"])
        .collect();
    ok(&mut t, &lines);
    assert_eq!(*again.running(), *shell.running());
    assert_eq!(ok(&mut t, &["do show running-config"]), rendered);
}

#[test]
fn interface_range_has_its_own_prompt_and_exit_end_and_do_work_in_it() {
    let mut s = Session::new(plain_shell(), "t", true);
    ok(&mut s, &["conf t", "interface range eth1 - 2"]);
    assert_eq!(s.prompt(), "gatehouse(config-if-range)#");
    let out = ok(
        &mut s,
        &["shutdown", "do show running-config | include shutdown"],
    );
    assert_eq!(out, " shutdown\n shutdown\n", "applied at once to both");
    assert_eq!(
        s.prompt(),
        "gatehouse(config-if-range)#",
        "do keeps the mode"
    );
    ok(&mut s, &["exit"]);
    assert_eq!(s.prompt(), "gatehouse(config)#");
    ok(&mut s, &["interface range eth1, eth2", "end"]);
    assert_eq!(s.prompt(), "gatehouse#");
    let (out, failures) = run(&mut s, &["conf t", "interface range eth2 - 1"]);
    assert_eq!(failures.len(), 1, "{out}");
    assert_eq!(
        s.prompt(),
        "gatehouse(config)#",
        "a refused range enters nothing"
    );
}

#[test]
fn show_running_config_interface_shows_that_interface_only() {
    let mut s = Session::new(plain_shell(), "t", true);
    ok(
        &mut s,
        &[
            "conf t",
            "interface eth0",
            "mtu 1400",
            "interface eth0.100",
            "shutdown",
            "interface eth01",
            "commit",
            "end",
        ],
    );
    assert_eq!(
        ok(&mut s, &["show running-config interface eth0"]),
        "!\ninterface eth0\n mtu 1400\n!\nend\n"
    );
    let all = ok(&mut s, &["show running-config interface"]);
    assert!(all.contains("interface eth0.100\n") && all.contains("interface eth01\n"));
    let (out, failures) = run(&mut s, &["show running-config interface eth9"]);
    assert_eq!(
        failures[0].message, "% Interface eth9 is not configured",
        "{out}"
    );
}

#[test]
fn section_filters_keep_whole_blocks() {
    let mut s = Session::new(plain_shell(), "t", true);
    ok(&mut s, PASTED_IOS);
    assert_eq!(
        ok(&mut s, &["show running-config | section secondary"]),
        "interface eth0\n description uplink\n ip address 192.0.2.1 255.255.255.0\n \
         ip address 198.51.100.1 255.255.255.128 secondary\n"
    );
    assert_eq!(
        ok(&mut s, &["sh run | sec ^ip route"]),
        "ip route 0.0.0.0 0.0.0.0 192.0.2.254 name default-gw\n\
         ip route 10.20.0.0 255.255.0.0 10.2.0.2 200 name backup\n\
         ip route 10.30.0.0 255.255.0.0 eth5\n"
    );
}

#[test]
fn write_alone_saves_like_write_memory() {
    let dir = TempDir::new("write");
    let path = dir.0.join("startup-config");
    let (shell, _) = ShellBuilder::new().startup_path(&path).build();
    let mut s = Session::new(shell.clone(), "t", true);
    // The operator's first lines, as typed in issue 18.
    ok(
        &mut s,
        &[
            "conf t",
            "hostname saved",
            "interface eth0",
            "ip add 10.0.2.15 255.255.255.0",
            "ip route 0.0.0.0 0.0.0.0 10.0.2.2",
            "commit",
            "end",
        ],
    );
    let out = ok(&mut s, &["wr"]);
    assert!(out.contains("[OK]"), "{out}");
    let saved = std::fs::read_to_string(&path).unwrap();
    assert_eq!(saved, grammar::render(&shell.running()));
    assert!(saved.contains("hostname saved\n"));
    assert!(
        saved.contains(" ip address 10.0.2.15 255.255.255.0\n"),
        "{saved}"
    );
    assert!(
        saved.contains("ip route 0.0.0.0 0.0.0.0 10.0.2.2\n"),
        "{saved}"
    );
}

/// Typed on an SSH pty (echoing stream): `terminal length` (unless
/// `length` is empty), nine interfaces, then `show running-config`, then
/// `keys` at the `--More--` prompts. Returns what `show running-config`
/// printed and the `--More--` count.
fn paged_show_run(length: &str, echo: bool, keys: &str) -> (String, usize) {
    let mut s = Session::new(plain_shell(), "t", true);
    let mut typed = match length {
        "" => String::new(),
        length => format!("terminal length {length}\r"),
    };
    typed.push_str("conf t\r");
    for n in 1..=9 {
        typed.push_str(&format!("interface eth{n}\rdescription port {n}\r"));
    }
    typed.push_str(&format!("commit\rend\rshow running-config\r{keys}exit\r"));
    let mut output = Vec::new();
    let options = shell::StreamOptions { echo };
    shell::run_stream_with(&mut s, typed.as_bytes(), &mut output, options).unwrap();
    let text = String::from_utf8(output).unwrap();
    // Between the prompt before the command and the one after it.
    let prompts: Vec<&str> = text.split("gatehouse#").collect();
    let segment = prompts[prompts.len() - 2];
    let shown = segment
        .strip_prefix("show running-config\r\n")
        .unwrap_or(segment);
    let shown = shown.replace("\r          \r", "").replace("\r\n", "\n");
    let mores = shown.matches(" --More-- ").count();
    (shown.replace(" --More-- ", ""), mores)
}

#[test]
fn long_output_on_a_pty_pauses_at_more_until_space_enter_or_q() {
    // 5-line screens: 4 lines, --More--, Space: 4 more, Enter: 1 more, q.
    let (shown, mores) = paged_show_run("5", true, " \rq");
    assert_eq!(mores, 3, "{shown}");
    assert_eq!(
        shown,
        "!\ninterface eth1\n description port 1\n!\n\
         interface eth2\n description port 2\n!\ninterface eth3\n description port 3\n"
    );
    let (shown, mores) = paged_show_run("5", true, &" ".repeat(20));
    assert_eq!(mores, 7, "27 lines on 4-line screens");
    assert!(shown.ends_with("!\nend\n"), "{shown}");
}

#[test]
fn no_paging_with_length_0_before_terminal_length_or_off_a_terminal() {
    for (length, echo) in [("0", true), ("5", false), ("", true)] {
        let (shown, mores) = paged_show_run(length, echo, "");
        assert_eq!(mores, 0, "{shown}");
        assert!(
            shown.contains("interface eth9\n description port 9\n!\nend\n"),
            "{shown}"
        );
    }
    // Exec and script runs never page, whatever the length.
    let mut s = Session::new(plain_shell(), "t", true);
    let lines: Vec<String> = ["terminal length 2", "conf t"]
        .into_iter()
        .map(String::from)
        .chain((1..=9).map(|n| format!("interface eth{n}")))
        .chain(["commit".into(), "end".into(), "show running-config".into()])
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = ok(&mut s, &lines);
    assert!(
        !out.contains("More") && out.contains("interface eth9\n!\nend\n"),
        "{out}"
    );
    let (_, failures) = run(&mut s, &["terminal length 513"]);
    assert_eq!(failures.len(), 1);
}

#[test]
fn show_clock_prints_utc_in_ios_format_in_every_mode() {
    let ios = regex::Regex::new(
        r"^\*\d\d:\d\d:\d\d\.\d{3} UTC (Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d{1,2} \d{4}\n$",
    )
    .unwrap();
    let mut s = Session::new(plain_shell(), "t", false);
    let out = ok(&mut s, &["sh clock"]);
    assert!(ios.is_match(&out), "{out:?}");
    let out = ok(
        &mut s,
        &["enable", "conf t", "interface eth0", "do show clock"],
    );
    assert!(ios.is_match(&out), "{out:?}");
}

#[test]
fn a_session_starts_with_the_motd_and_the_embedders_notice_made_then() {
    let told = Arc::new(AtomicUsize::new(0));
    let counter = told.clone();
    let shell = ShellBuilder::new()
        .login_notice(move || {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            (n > 0).then(|| format!("% notice {n}"))
        })
        .build()
        .0;
    let mut s = Session::new(shell, "t", true);
    assert_eq!(s.banner(), None);
    assert_eq!(s.banner().as_deref(), Some("% notice 1"));
    ok(&mut s, &["conf t", "banner motd hello", "end"]);
    assert_eq!(s.banner().as_deref(), Some("hello\n% notice 2"));
}
