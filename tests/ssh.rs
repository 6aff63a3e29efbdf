//! SSH access to the CLI: OpenSSH's `ssh` client in a namespace host logs in
//! to `gatehouse run --no-console` over the appliance's userspace stack.

// The namespace helpers of the dataplane tests, shared rather than copied.
#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;
// What the QEMU SSH test uses too.
#[path = "support/openssh.rs"]
mod openssh;

use netns::{is_root, Child, Netns, Scratch, Veth, SETTLE};
use openssh::{give_password, new_key, output_text as text, write_askpass};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const ADMIN_PASSWORD: &str = "s3cret-admin";
const VIEWER_PASSWORD: &str = "just-looking";

/// The appliance on one veth to a host namespace, with two users: `admin`
/// (privilege 15) and `viewer` (privilege 1).
struct Site {
    host: Netns,
    link: Veth,
    dir: Scratch,
    askpass: PathBuf,
    address: String,
}

impl Site {
    /// The host is 10.<net>.1.2/24 and 2001:db8:<net>::2/64, the appliance
    /// 10.<net>.1.1 (the address `ssh` uses) and 2001:db8:<net>::1.
    fn new(net: u8) -> Site {
        let host = Netns::new();
        let link = Veth::into_ns(&host);
        host.configure(&link.inner, &format!("10.{net}.1.2/24"), None);
        host.configure(&link.inner, &format!("2001:db8:{net}::2/64"), None);
        let dir = Scratch::new("ssh");
        let config = format!(
            "hostname edge-ssh\nusername admin privilege 15 secret {ADMIN_PASSWORD}\n\
             username viewer privilege 1 secret {VIEWER_PASSWORD}\n\
             interface {}\n ip address 10.{net}.1.1/24\n ipv6 address 2001:db8:{net}::1/64\n",
            link.outer
        );
        std::fs::write(dir.0.join("startup-config"), config).unwrap();
        // ssh asks this program for the password (no terminal in tests).
        let askpass = write_askpass(&dir.0);
        Site {
            host,
            link,
            dir,
            askpass,
            address: format!("10.{net}.1.1"),
        }
    }

    fn start(&self) -> Child {
        Child(
            Command::new(BIN)
                .arg("run")
                .arg("--config")
                .arg(self.dir.0.join("startup-config"))
                .arg("--no-console")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn key_file(&self) -> PathBuf {
        self.dir.0.join("ssh_host_ed25519_key")
    }

    /// `ssh user@appliance [options] [command]` from the host, with the
    /// password given through SSH_ASKPASS and no controlling terminal.
    fn ssh(&self, user: &str, password: &str, options: &[&str], command: Option<&str>) -> Command {
        let mut ssh = self.host.command("setsid");
        ssh.args(["-w", "ssh"])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "PubkeyAuthentication=no"])
            .args(["-o", "PreferredAuthentications=password"])
            .args(["-o", "NumberOfPasswordPrompts=1"])
            .args(["-o", "ConnectTimeout=5"])
            .args(options)
            .arg(format!("{user}@{}", self.address))
            .args(command)
            .stdin(Stdio::null());
        give_password(&mut ssh, &self.askpass, password);
        ssh
    }

    /// Runs `command` as admin in exec mode.
    fn exec(&self, command: &str) -> Output {
        self.ssh(
            "admin",
            ADMIN_PASSWORD,
            &["-o", "LogLevel=ERROR"],
            Some(command),
        )
        .output()
        .unwrap()
    }

    /// Waits until the appliance answers SSH (the dataplane and the stack
    /// take a moment to come up); returns the host key fingerprint it shows.
    fn wait_ready(&self) -> String {
        let deadline = Instant::now() + SETTLE;
        loop {
            let out = self.exec("show ssh host-key fingerprint");
            if out.status.success() || Instant::now() > deadline {
                return text(&out);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// As root, a site whose appliance is started and answers SSH; None (the
/// test has nothing to run) otherwise.
fn running_site(net: u8) -> Option<(Site, Child)> {
    if !is_root() {
        return None;
    }
    let site = Site::new(net);
    let appliance = site.start();
    site.wait_ready();
    Some((site, appliance))
}

#[test]
fn exec_mode_runs_lines_and_reports_failures_in_the_exit_status() {
    if !is_root() {
        return;
    }
    let site = Site::new(81);
    let _appliance = site.start();
    let fingerprint = site.wait_ready();
    assert!(fingerprint.starts_with("ED25519 SHA256:"), "{fingerprint}");
    let out = site.exec("show running-config");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let config = text(&out);
    assert!(config.contains("hostname edge-ssh"), "{config}");
    assert!(config.contains("username viewer privilege 1"), "{config}");
    // With a PTY (a raw terminal) lines end with CRLF.
    let out = site
        .ssh(
            "admin",
            ADMIN_PASSWORD,
            &["-tt", "-o", "LogLevel=ERROR"],
            Some("show running-config"),
        )
        .output()
        .unwrap();
    assert!(
        text(&out).contains("hostname edge-ssh\r\n"),
        "{:?}",
        text(&out)
    );
    assert!(!text(&out).contains("\r\r\n"), "{:?}", text(&out));
    let out = site.exec("show no-such-thing");
    assert_eq!(out.status.code(), Some(1), "a failing line: {}", text(&out));
    assert!(
        text(&out).contains('%'),
        "the error is shown: {}",
        text(&out)
    );
}

#[test]
fn a_wrong_password_is_refused() {
    let Some((site, _appliance)) = running_site(82) else {
        return;
    };
    let out = site
        .ssh(
            "admin",
            "not-the-password",
            &[],
            Some("show running-config"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Permission denied"),
        "refused: {}",
        text(&out)
    );
    assert!(!text(&out).contains("hostname edge-ssh"));
    let out = site
        .ssh("nobody", ADMIN_PASSWORD, &[], Some("show running-config"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "unknown user: {}", text(&out));
}

#[test]
fn a_config_change_over_ssh_is_committed_and_a_viewer_cannot_configure() {
    let Some((site, _appliance)) = running_site(83) else {
        return;
    };
    let out = site.exec("configure terminal\nhostname via-exec\ncommit\nend");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = site.exec("show running-config");
    assert!(text(&out).contains("hostname via-exec"), "{}", text(&out));

    let viewer = site
        .ssh(
            "viewer",
            VIEWER_PASSWORD,
            &["-o", "LogLevel=ERROR"],
            Some("configure terminal\nhostname nope\ncommit"),
        )
        .output()
        .unwrap();
    assert_eq!(viewer.status.code(), Some(1), "{}", text(&viewer));
    let out = site.exec("show running-config");
    assert!(!text(&out).contains("hostname nope"), "{}", text(&out));
}

#[test]
fn an_interactive_session_with_a_pty_echoes_helps_and_commits() {
    let Some((site, _appliance)) = running_site(84) else {
        return;
    };
    let mut client = Interactive::open(&site);
    // `show ?` lists the show commands and keeps the line; Ctrl-C drops it.
    client
        .input
        .write_all(b"configure terminal\rhostname via-pty\rcommit\rend\rshow running-config\rshow ?\r\x03exit\r")
        .unwrap();
    let (status, screen) = client.finish();
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("edge-ssh(config)#"),
        "config mode prompt: {screen}"
    );
    assert!(screen.contains("hostname via-pty"), "committed: {screen}");
    assert!(
        screen.contains("via-pty#"),
        "new hostname in the prompt: {screen}"
    );
    assert!(screen.contains("SSH server"), "help for `show ?`: {screen}");
    assert!(screen.contains("\r\n"), "CRLF line ends on a pty: {screen}");
}

#[test]
fn the_host_key_is_created_once_and_kept_across_restarts() {
    if !is_root() {
        return;
    }
    let site = Site::new(85);
    let first = {
        let _appliance = site.start();
        site.wait_ready()
    };
    let mode = std::fs::metadata(site.key_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "host key file mode");
    let _appliance = site.start();
    let second = site.wait_ready();
    assert_eq!(first, second, "fingerprint after a restart");
    // The client sees the same key the CLI shows.
    let out = site
        .ssh(
            "admin",
            ADMIN_PASSWORD,
            &["-v"],
            Some("show running-config"),
        )
        .output()
        .unwrap();
    let shown = first.split_whitespace().nth(1).unwrap_or("?").to_string();
    let debug = text(&out);
    assert!(
        debug.contains(&format!("Server host key: ssh-ed25519 {shown}")),
        "client view of {shown}: {debug}"
    );
}

/// An interactive client (`ssh -tt`) whose input stays open until dropped,
/// and everything it has shown so far.
struct Interactive {
    client: Child,
    input: std::process::ChildStdin,
    screen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Interactive {
    /// `ssh -tt` as admin with its input and output piped.
    fn spawn(site: &Site) -> Child {
        Child(
            site.ssh(
                "admin",
                ADMIN_PASSWORD,
                &["-tt", "-o", "LogLevel=ERROR"],
                None,
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        )
    }

    fn open(site: &Site) -> Interactive {
        let mut client = Interactive::spawn(site);
        let input = client.0.stdin.take().unwrap();
        let mut output = client.0.stdout.take().unwrap();
        let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shown = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 256];
            while let Ok(n @ 1..) = std::io::Read::read(&mut output, &mut chunk) {
                shown.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Interactive {
            client,
            input,
            screen,
            reader,
        }
    }

    /// Closes the input, waits for the client to exit and returns its exit
    /// status and everything it showed.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.input);
        let status = self.client.0.wait().unwrap();
        let _ = self.reader.join();
        let screen = String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned();
        (status, screen)
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits until the screen shows `text` `times` times (false if it
    /// does not within `SETTLE` or the client exits).
    fn wait_for(&mut self, text: &str, times: usize) -> bool {
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            if self.shown().matches(text).count() >= times {
                return true;
            }
            if self.client.0.try_wait().unwrap().is_some() {
                return self.shown().matches(text).count() >= times;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }

    fn type_line(&mut self, line: &str) {
        self.input
            .write_all(format!("{line}\r").as_bytes())
            .unwrap();
        self.input.flush().unwrap();
    }
}

/// An interactive client at its prompt, kept open until dropped; None if
/// it never shows the prompt.
fn hold_session(site: &Site) -> Option<Interactive> {
    let mut session = Interactive::open(site);
    session.wait_for("edge-ssh#", 1).then_some(session)
}

/// [`hold_session`], retried a few times: the slot of a session that just
/// ended is freed a moment after its client exits.
fn hold_session_retrying(site: &Site) -> Option<Interactive> {
    (0..5).find_map(|_| {
        hold_session(site).or_else(|| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            None
        })
    })
}

/// How many logged-in `admin` lines `show users` lists, once it lists `want`
/// (or whatever it lists when `SETTLE` passes); None if exec failed.
fn admin_sessions_until(site: &Site, want: usize) -> Option<usize> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let out = site.exec("show users");
        let count = out
            .status
            .success()
            .then(|| text(&out).lines().filter(|l| l.contains(" admin ")).count());
        if count == Some(want) || Instant::now() > deadline {
            return count;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn twenty_sessions_at_once_the_next_is_refused_and_dropped_clients_free_their_slots() {
    let Some((site, _appliance)) = running_site(86) else {
        return;
    };
    // One after another: a host may only have a few logins in progress.
    let mut held: Vec<Interactive> = (0..20)
        .filter_map(|_| hold_session_retrying(&site))
        .collect();
    assert_eq!(held.len(), 20, "sessions at their prompt");
    let refused = site.exec("show users");
    assert!(
        !refused.status.success(),
        "a 21st session: {}",
        text(&refused)
    );
    // Clients killed mid-session (no exit, no EOF) leave no session behind.
    held.truncate(10);
    assert_eq!(admin_sessions_until(&site, 11), Some(11));
    held.clear();
    assert_eq!(admin_sessions_until(&site, 1), Some(1));
}

#[test]
fn a_source_that_keeps_guessing_is_refused_even_with_the_right_password() {
    let Some((site, _appliance)) = running_site(87) else {
        return;
    };
    // Five wrong guesses, one after another (a host may only have a few
    // logins in progress); each is refused after russh's delay.
    for _ in 0..5 {
        let out = site
            .ssh("admin", "guess", &[], Some("show users"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{}", text(&out));
    }
    let out = site.exec("show running-config");
    assert!(
        !out.status.success(),
        "right password after the guesses: {}",
        text(&out)
    );
    assert!(text(&out).contains("Permission denied"), "{}", text(&out));
}

/// Whether `client` exits (within `SETTLE`).
fn ends_by_itself(client: &mut Child) -> bool {
    let deadline = Instant::now() + SETTLE;
    while client.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    client.0.try_wait().unwrap().is_some()
}

/// The lowest `show users` line of a logged-in admin.
fn oldest_admin_line(site: &Site) -> Option<u64> {
    let users = text(&site.exec("show users"));
    users
        .lines()
        .filter(|l| l.contains(" admin "))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .min()
}

#[test]
fn clear_line_ends_another_session() {
    let Some((site, _appliance)) = running_site(88) else {
        return;
    };
    let mut held = hold_session_retrying(&site).expect("a session at its prompt");
    // Once the earlier exec's line is gone, the held session has the lowest line.
    assert_eq!(admin_sessions_until(&site, 2), Some(2));
    let line = oldest_admin_line(&site).expect("a line number");
    let out = site.exec(&format!("clear line {line}"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(ends_by_itself(&mut held.client), "the cleared client ended");
    assert_eq!(admin_sessions_until(&site, 1), Some(1));
    let out = site.exec("clear line 4000000");
    assert_eq!(out.status.code(), Some(1), "no such line: {}", text(&out));
}

#[test]
fn a_commit_from_a_stale_ssh_session_is_refused_and_the_other_commit_kept() {
    let Some((site, _appliance)) = running_site(89) else {
        return;
    };
    let mut first = Interactive::open(&site);
    assert!(first.wait_for("edge-ssh#", 1), "{}", first.shown());
    first.type_line("configure exclusive");
    first.type_line("hostname from-first");
    assert!(first.wait_for("edge-ssh(config)#", 2), "{}", first.shown());
    // Another session commits while the first one's candidate is open.
    let out = site.exec("configure terminal\nhostname from-second\ncommit");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    first.type_line("commit");
    assert!(
        first.wait_for("another session changed the running configuration", 1),
        "{}",
        first.shown()
    );
    let running = text(&site.exec("show running-config"));
    assert!(running.contains("hostname from-second"), "{running}");
    assert!(!running.contains("from-first"), "{running}");
}

#[test]
fn subsystems_such_as_sftp_are_refused_at_once() {
    let Some((site, _appliance)) = running_site(90) else {
        return;
    };
    let mut sftp = site.host.command("setsid");
    // `timeout` only guards against a hang; the message decides.
    sftp.args(["-w", "timeout", "30", "sftp"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "PreferredAuthentications=password"])
        .arg(format!("admin@{}", site.address))
        .stdin(Stdio::null());
    give_password(&mut sftp, &site.askpass, ADMIN_PASSWORD);
    let out = sftp.output().unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("subsystem request failed"),
        "{}",
        text(&out)
    );
}

/// `ssh -i KEY user@appliance command`, offering only that key.
fn ssh_with_key(site: &Site, user: &str, key: &Path, command: &str) -> Output {
    site.host
        .command("setsid")
        .args(["-w", "ssh", "-i"])
        .arg(key)
        .args(["-o", "IdentitiesOnly=yes"])
        .args(["-o", "PreferredAuthentications=publickey"])
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "ConnectTimeout=5"])
        .args(["-o", "LogLevel=ERROR"])
        .arg(format!("{user}@{}", site.address))
        .arg(command)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_configured_public_key_logs_in_and_another_key_is_refused() {
    if !is_root() {
        return;
    }
    let site = Site::new(91);
    let key = new_key(&site.dir.0, "id", "");
    let stranger = new_key(&site.dir.0, "stranger", "");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut startup = std::fs::OpenOptions::new()
        .append(true)
        .open(site.dir.0.join("startup-config"))
        .unwrap();
    writeln!(
        startup,
        "username keyuser privilege 15 ssh-key {}",
        public.trim()
    )
    .unwrap();
    drop(startup);
    let _appliance = site.start();
    site.wait_ready();

    let out = ssh_with_key(&site, "keyuser", &key, "show running-config");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let line = format!("username keyuser privilege 15 ssh-key {}", public.trim());
    assert!(text(&out).contains(&line), "{}", text(&out));

    let out = ssh_with_key(&site, "keyuser", &stranger, "show running-config");
    assert!(!out.status.success(), "another key: {}", text(&out));
    assert!(text(&out).contains("Permission denied"), "{}", text(&out));
    let out = ssh_with_key(&site, "admin", &key, "show running-config");
    assert!(
        !out.status.success(),
        "the key of another user: {}",
        text(&out)
    );
}

/// Accepts whatever host key the appliance shows (a fresh one per test).
struct AnyHostKey;

impl russh::client::Handler for AnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// A russh client in the site's host namespace, driven by its own runtime
/// so a test can send what OpenSSH's client never would.
struct RawClient {
    runtime: tokio::runtime::Runtime,
    handle: russh::client::Handle<AnyHostKey>,
    /// Its address as `show users` shows it.
    from: String,
}

impl RawClient {
    /// Connects and logs in as admin.
    fn login(site: &Site) -> RawClient {
        // A worker of its own keeps the connection served between calls.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        RawClient::login_on(site, runtime)
    }

    /// Connects and logs in as admin, then does nothing between calls: it
    /// does not even close the connection when told to disconnect.
    fn login_deaf(site: &Site) -> RawClient {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        RawClient::login_on(site, runtime)
    }

    fn login_on(site: &Site, runtime: tokio::runtime::Runtime) -> RawClient {
        let address = format!("{}:22", site.address);
        // The socket is made in the namespace and keeps it.
        let stream = site
            .host
            .in_thread(move || std::net::TcpStream::connect(address).unwrap());
        let from = stream.local_addr().unwrap().to_string();
        stream.set_nonblocking(true).unwrap();
        let stream = {
            let _entered = runtime.enter();
            tokio::net::TcpStream::from_std(stream).unwrap()
        };
        let config = std::sync::Arc::new(russh::client::Config::default());
        let connecting = russh::client::connect_stream(config, stream, AnyHostKey);
        let mut handle = runtime.block_on(connecting).unwrap();
        let auth = runtime.block_on(handle.authenticate_password("admin", ADMIN_PASSWORD));
        assert!(auth.unwrap().success(), "raw client login");
        RawClient {
            runtime,
            handle,
            from,
        }
    }

    /// Runs `work` on the client's runtime, giving up after `SETTLE`.
    fn run<T>(&self, work: impl std::future::Future<Output = T>) -> Option<T> {
        self.runtime
            .block_on(async { tokio::time::timeout(SETTLE, work).await.ok() })
    }

    /// Output and exit status of `command` run on a new channel, if it
    /// finishes within `SETTLE`.
    fn exec(&self, command: &str) -> Option<(String, Option<u32>)> {
        self.run(async {
            let mut channel = self.handle.channel_open_session().await.ok()?;
            channel.exec(true, command).await.ok()?;
            let (mut output, mut status) = (Vec::new(), None);
            while let Some(message) = channel.wait().await {
                match message {
                    russh::ChannelMsg::Data { data } => output.extend_from_slice(&data),
                    russh::ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    _ => {}
                }
            }
            Some((String::from_utf8_lossy(&output).into_owned(), status))
        })
        .flatten()
    }
}

/// Clears the `show users` line of the connection from `from` and waits
/// until only the admin session asking is left.
fn clear_line_of(site: &Site, from: &str) {
    let users = text(&site.exec("show users"));
    let line = users.lines().find(|l| l.contains(from));
    let line = line
        .and_then(|l| l.split_whitespace().nth(1))
        .expect(&users);
    let out = site.exec(&format!("clear line {line}"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(admin_sessions_until(site, 1), Some(1), "line {line} freed");
}

#[test]
fn a_channel_nobody_starts_cannot_stall_its_connection() {
    let Some((site, _appliance)) = running_site(92) else {
        return;
    };
    let client = RawClient::login(&site);
    // Far more messages than russh queues for a channel, on a channel that
    // never asks for a shell or a command.
    let sent = client.run(async {
        let channel = client.handle.channel_open_session().await.unwrap();
        for _ in 0..1000 {
            channel.data(&b"show users\n"[..]).await.unwrap();
        }
        channel
    });
    assert!(sent.is_some(), "the data was sent");
    let (users, status) = client
        .exec("show users")
        .expect("the connection still answers");
    assert_eq!(status, Some(0), "{users}");
    assert!(users.contains(&client.from), "{users}");
    clear_line_of(&site, &client.from);
}

#[test]
fn a_client_that_stops_reading_output_and_keeps_typing_is_dropped() {
    let Some((site, _appliance)) = running_site(93) else {
        return;
    };
    // Its output is never read: once the client's window is full, output
    // waits; what it types (echoed, so output) keeps coming.
    let mut client = Interactive::spawn(&site);
    let mut input = client.0.stdin.take().unwrap();
    // 8 MB, far beyond the input backlog, yet small for a server that
    // queues it all; blocks (until the client is killed) if the client
    // stops taking it.
    let typist = std::thread::spawn(move || {
        for _ in 0..400_000 {
            if input.write_all(b"show running-config\r").is_err() {
                return;
            }
        }
    });
    assert!(ends_by_itself(&mut client), "the connection was dropped");
    assert_eq!(admin_sessions_until(&site, 1), Some(1));
    drop(client);
    let _ = typist.join();
}

#[test]
fn a_host_holding_connections_at_the_login_prompt_locks_nobody_out() {
    let Some((site, _appliance)) = running_site(94) else {
        return;
    };
    // A second address on the host: the connections that never log in.
    let squatter = "10.94.1.3";
    let prefixed = format!("{squatter}/24");
    site.host
        .run(&["ip", "addr", "add", &prefixed, "dev", &site.link.inner]);
    let server = std::net::SocketAddr::from(([10, 94, 1, 1], 22));
    let source = std::net::SocketAddr::from(([10, 94, 1, 3], 0));
    // Each sends its banner and nothing more.
    let held: Vec<std::net::TcpStream> = site.host.in_thread(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let connect = || async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(source)?;
            let stream = socket.connect(server).await?.into_std()?;
            stream.set_nonblocking(false)?;
            (&stream).write_all(b"SSH-2.0-Squatter\r\n")?;
            Ok::<_, std::io::Error>(stream)
        };
        (0..10)
            .map(|_| runtime.block_on(connect()).unwrap())
            .collect()
    });
    let answered = held
        .iter()
        .filter(|stream| {
            let mut stream: &std::net::TcpStream = stream;
            stream.set_read_timeout(Some(SETTLE)).unwrap();
            let mut banner = [0u8; 17];
            std::io::Read::read_exact(&mut stream, &mut banner).is_ok()
                && banner.starts_with(b"SSH-2.0-Gatehouse")
        })
        .count();
    assert_eq!(answered, 4, "connections from one host logging in at once");
    // Another host logs in while those wait.
    let out = site.exec("show users");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let users = text(&out);
    let waiting = users.lines().filter(|l| l.contains("(login)"));
    assert_eq!(waiting.count(), 4, "{users}");
    assert!(users.contains(" admin "), "{users}");
}

#[test]
fn a_connection_has_at_most_four_channels_at_once() {
    let Some((site, _appliance)) = running_site(95) else {
        return;
    };
    let client = RawClient::login(&site);
    let opened = client.run(async {
        let mut opened = Vec::new();
        for _ in 0..4 {
            opened.push(client.handle.channel_open_session().await.unwrap());
        }
        opened
    });
    let opened = opened.expect("four channels");
    assert_eq!(client.exec("show users"), None, "a fifth channel");
    client.run(opened[0].close()).unwrap().unwrap();
    let (users, status) = client
        .exec("show users")
        .expect("a channel once one closed");
    assert_eq!(status, Some(0), "{users}");
}

#[test]
fn exec_output_beyond_its_limit_is_cut_with_a_line_saying_so() {
    if !is_root() {
        return;
    }
    let site = Site::new(96);
    // About 200 KB of running configuration.
    let routes: String = (0..5000)
        .map(|n| format!("ip route 10.200.{}.{}/32 10.96.1.2\n", n / 256, n % 256))
        .collect();
    let mut startup = std::fs::OpenOptions::new()
        .append(true)
        .open(site.dir.0.join("startup-config"))
        .unwrap();
    startup.write_all(routes.as_bytes()).unwrap();
    drop(startup);
    let _appliance = site.start();
    site.wait_ready();
    let out = site.exec("show running-config");
    assert_eq!(out.status.code(), Some(0), "once: {}", text(&out));
    assert!(!text(&out).contains("% Output truncated"));
    let out = site.exec(&"show running-config\n".repeat(10));
    assert_eq!(out.status.code(), Some(1), "cut output is a failure");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.ends_with("\n% Output truncated\n"), "{}", shown.len());
    assert!(shown.len() < routes.len() * 10, "{}", shown.len());
}

#[test]
fn an_encrypted_host_key_file_is_kept_and_a_key_for_this_run_used() {
    if !is_root() {
        return;
    }
    let site = Site::new(97);
    let key = new_key(&site.dir.0, "ssh_host_ed25519_key", "not-given");
    assert_eq!(key, site.key_file());
    let before = std::fs::read(&key).unwrap();
    let _appliance = site.start();
    let fingerprint = site.wait_ready();
    assert!(fingerprint.starts_with("ED25519 SHA256:"), "{fingerprint}");
    let listed = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    let file_key = text(&listed).split_whitespace().nth(1).unwrap().to_string();
    assert!(
        !fingerprint.contains(&file_key),
        "{fingerprint} is not {file_key}"
    );
    assert_eq!(std::fs::read(&key).unwrap(), before, "the key file is kept");
}

#[test]
fn a_cleared_client_that_never_closes_its_side_still_frees_its_line() {
    let Some((site, _appliance)) = running_site(98) else {
        return;
    };
    let client = RawClient::login_deaf(&site);
    clear_line_of(&site, &client.from);
}

#[test]
fn ssh_over_ipv6_logs_in_and_show_users_lists_the_ipv6_source() {
    if !is_root() {
        return;
    }
    let mut site = Site::new(99);
    site.address = "2001:db8:99::1".into();
    let _appliance = site.start();
    site.wait_ready();
    let out = site.exec("show users");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let users = text(&out);
    let line = users.lines().find(|line| line.contains("admin"));
    assert!(
        line.is_some_and(|line| line.contains("2001:db8:99::2")),
        "the session's IPv6 source: {users}"
    );
}

#[test]
fn ssh_answers_during_and_right_after_a_syn_flood_and_a_udp_flood() {
    let Some((site, _appliance)) = running_site(79) else {
        return;
    };
    let attempt = |when: &str| {
        let out = site
            .ssh(
                "admin",
                ADMIN_PASSWORD,
                &["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=2"],
                Some("show version"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success() && text(&out).contains("Gatehouse"),
            "{when}: {}",
            text(&out)
        );
    };
    attempt("before the flood");
    // hping3 as fast as it goes: SYNs to port 22 from random sources, and
    // UDP to a closed port, both from the host's link.
    let floods = [
        site.host.spawn(&[
            "hping3",
            "--flood",
            "-S",
            "--rand-source",
            "-p",
            "22",
            &site.address,
        ]),
        site.host
            .spawn(&["hping3", "--flood", "--udp", "-p", "9", &site.address]),
    ];
    std::thread::sleep(std::time::Duration::from_secs(2));
    for _ in 0..3 {
        attempt("during the flood");
    }
    let shown = text(&site.exec("show control-plane"));
    assert!(shown.contains("challenging (SYN flood)"), "{shown}");
    drop(floods);
    attempt("right after the flood");
}

#[test]
fn with_no_administrator_ssh_refuses_everyone_and_says_what_to_type() {
    if !is_root() {
        return;
    }
    let site = Site::new(91);
    // The same site with no users at all: a first boot.
    let config = std::fs::read_to_string(site.dir.0.join("startup-config")).unwrap();
    let without_users: Vec<_> = config
        .lines()
        .filter(|l| !l.starts_with("username"))
        .collect();
    std::fs::write(
        site.dir.0.join("startup-config"),
        without_users.join("\n") + "\n",
    )
    .unwrap();
    let _appliance = site.start();
    let deadline = Instant::now() + SETTLE;
    let out = loop {
        let out = site
            .ssh("admin", ADMIN_PASSWORD, &[], Some("show version"))
            .output()
            .unwrap();
        if text(&out).contains("No administrator") || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("username NAME privilege 15 secret PASSWORD"),
        "the banner says what to type: {}",
        text(&out)
    );
}

#[test]
fn ctrl_c_on_an_ssh_pty_stops_a_ping_shown_as_it_goes() {
    let Some((site, _appliance)) = running_site(71) else {
        return;
    };
    let Some(mut client) = hold_session(&site) else {
        panic!("no prompt over SSH");
    };
    // Nobody answers 10.71.1.99: each one-second timeout shows at once.
    client.type_line("ping 10.71.1.99 repeat 1000 timeout 1");
    assert!(client.wait_for("...", 1), "{}", client.shown());
    client.input.write_all(b"\x03").unwrap();
    client.input.flush().unwrap();
    assert!(
        client.wait_for("Success rate is 0 percent (0/", 1),
        "{}",
        client.shown()
    );
    assert!(client.wait_for("edge-ssh#", 2), "{}", client.shown());
    let screen = client.shown();
    let sent: u64 = (screen.split("(0/").nth(1))
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{screen}"));
    assert!((3..=5).contains(&sent), "stopped after {sent}:\n{screen}");
    // The Ctrl-C stopped the ping only: no `^C` line after it.
    assert!(!screen.contains("^C"), "{screen}");
    client.type_line("exit");
    let (status, _) = client.finish();
    assert!(status.success());
}
