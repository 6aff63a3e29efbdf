//! Commands, unique names, and Linux hosts in network namespaces wired to
//! the test by veth pairs; namespaces, links and processes go away on drop.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest a test waits for something that should happen at once:
/// generous, so a loaded CI machine is slow rather than failing.
pub const SETTLE: Duration = Duration::from_secs(15);

/// Whether we may create namespaces and raw sockets; says so when not.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root for namespaces and raw sockets");
    }
    root
}

/// Runs a command and returns its output (panics only if it cannot start).
pub fn output(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]))
}

/// Runs a command, panicking with its output when it fails.
pub fn run(args: &[&str]) -> String {
    let out = output(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A short name unique to this process and call: `gh<pid><n><tag>` (<= 15
/// chars, leaving room for a one-letter suffix).
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "gh{}{}{tag}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    assert!(name.len() < 15, "{name} too long for an interface name");
    name
}

/// A network namespace with its loopback up, deleted with everything in it
/// on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        Netns::named(unique("n"))
    }

    /// A namespace called `name` (which must be unique).
    pub fn named(name: String) -> Netns {
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// `program` set up to run inside this namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `work` on a fresh thread that has entered this namespace:
    /// sockets it creates keep the namespace they were created in.
    pub fn in_thread<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = File::open(format!("/var/run/netns/{}", self.name)).expect("open netns");
        std::thread::spawn(move || {
            // SAFETY: changes only this short-lived thread's namespace.
            let entered = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
            work()
        })
        .join()
        .expect("netns thread")
    }

    fn exec_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        all
    }

    pub fn run(&self, args: &[&str]) -> String {
        run(&self.exec_args(args))
    }

    pub fn output(&self, args: &[&str]) -> Output {
        output(&self.exec_args(args))
    }

    /// Starts a background process in this namespace, killed on drop.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let child = self
            .command(args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        Child(child)
    }

    /// Addresses `iface` (already in this namespace), brings it up and
    /// optionally sets the default route. Its offloads stay as Linux sets
    /// them (TSO, GSO, checksum offload on), as on every user's host: the
    /// dataplane must cope with super-packets and partial checksums.
    /// IPv6 addresses skip duplicate address detection, which would hold
    /// them back for seconds.
    pub fn configure(&self, iface: &str, address: &str, gateway: Option<&str>) {
        let mut add = vec!["ip", "addr", "add", address, "dev", iface];
        if address.contains(':') {
            add.push("nodad");
        }
        self.run(&add);
        self.run(&["ip", "link", "set", iface, "up"]);
        if let Some(gw) = gateway {
            self.run(&["ip", "route", "add", "default", "via", gw, "dev", iface]);
        }
    }

    /// Polls `ping` until it succeeds or `SETTLE` passes (ARP or ND and
    /// the dataplane's first snapshot may take a moment); IPv6 targets too.
    pub fn ping_ok(&self, target: &str) -> bool {
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            let out = self.output(&["ping", "-c", "1", "-W", "1", target]);
            if out.status.success() {
                return true;
            }
        }
        false
    }

    /// One ping of `size` data bytes, with DF set (`pmtudisc` "do") or
    /// clear ("dont"); its stdout and stderr (where local errors go).
    pub fn ping_sized(&self, target: &str, size: usize, pmtudisc: &str) -> String {
        let size = size.to_string();
        let args = [
            "ping", "-c", "1", "-W", "2", "-M", pmtudisc, "-s", &size, target,
        ];
        let out = self.output(&args);
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Runs a command until its stdout satisfies `done` or `SETTLE` passes
    /// (servers start, paths come up); returns the last stdout.
    pub fn stdout_until(&self, args: &[&str], done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SETTLE;
        loop {
            let text = String::from_utf8_lossy(&self.output(args).stdout).into_owned();
            if done(&text) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Netns {
    /// Whether `curl` here fetches `url` within `tries` tries a quarter of
    /// a second apart (servers take a moment to start; paths that should
    /// fail are given one try).
    pub fn fetches(&self, url: &str, tries: usize) -> bool {
        (0..tries).any(|_| {
            let curl = [
                "curl",
                "-sS",
                "-g",
                "-o",
                "/dev/null",
                "--max-time",
                "2",
                url,
            ];
            let ok = self.output(&curl).status.success();
            if !ok {
                std::thread::sleep(Duration::from_millis(250));
            }
            ok
        })
    }

    /// Turns `iface`'s transmit checksum and segmentation offloads off,
    /// as the tests once did for every host: what a forwarder sees then
    /// is only wire-sized frames with complete checksums.
    pub fn offloads_off(&self, iface: &str) {
        self.run(&[
            "ethtool", "-K", iface, "tx", "off", "tso", "off", "gso", "off",
        ]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = output(&["ip", "netns", "del", &self.name]);
    }
}

/// A veth pair: `outer` stays in the root namespace (for the dataplane),
/// `inner` goes into `ns`. Deleted on drop.
pub struct Veth {
    pub outer: String,
    pub inner: String,
}

impl Veth {
    pub fn into_ns(ns: &Netns) -> Veth {
        Veth::into_ns_with_queues(ns, 1)
    }

    /// A pair whose ends both have `queues` receive and transmit queues,
    /// as a multi-queue NIC has: the sending end spreads flows over its
    /// transmit queues by hash, and each arrives on the same-numbered
    /// receive queue of the other end.
    pub fn into_ns_with_queues(ns: &Netns, queues: u32) -> Veth {
        let outer = unique("o");
        let inner = unique("i");
        let q = queues.to_string();
        let queue_args = ["numrxqueues", &q, "numtxqueues", &q];
        let mut add = vec!["ip", "link", "add", &outer];
        add.extend(queue_args);
        add.extend(["type", "veth", "peer", "name", &inner]);
        add.extend(queue_args);
        run(&add);
        let veth = Veth { outer, inner };
        run(&["ip", "link", "set", &veth.inner, "netns", &ns.name]);
        run(&["ip", "link", "set", &veth.outer, "up"]);
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = output(&["ip", "link", "del", &self.outer]);
    }
}

/// A directory of its own under the temp directory (configs, keys, pid
/// files), removed with its contents on drop.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A background process killed on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
