//! DPDK's own tools from Debian's `dpdk-dev` as yardsticks in the benches
//! (dpdk-test-acl, dpdk-test-fib, dpdk-testpmd): finding them (installing
//! the package when root), starting them without hugepages, reading their
//! text, and the clock their cycle counts are in.

// Each bench uses a different part of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `/usr/bin/<name>`; installs Debian's dpdk-dev (no recommends) when it
/// is missing and we are root. Err says why the tool cannot run.
pub fn tool(name: &str) -> Result<PathBuf, String> {
    let path = Path::new("/usr/bin").join(name);
    if !path.exists() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not installed, and not root to apt-get install dpdk-dev".into());
        }
        println!("{name}: installing Debian's dpdk-dev");
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "dpdk-dev"])
            .status()
            .map_err(|e| format!("apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("apt-get install dpdk-dev: {status}"));
        }
        if !path.exists() {
            return Err(format!("dpdk-dev installed no {}", path.display()));
        }
    }
    Ok(path)
}

/// `tool` with the EAL options every bench uses: no hugepages, `memory_mb`
/// of ordinary memory, no PCI scan, no shared configuration files or
/// sockets (other benches may run DPDK at the same time), and `lcores`
/// (`-l`/`--lcores` and its value). Stdout is line-buffered through stdbuf:
/// the tools may crash at exit under --no-huge, after their figures.
/// The tool's own options follow a `--` the caller adds.
pub fn command(tool: &Path, memory_mb: u32, lcores: [&str; 2]) -> Command {
    let mut command = Command::new("stdbuf");
    command
        .arg("-oL")
        .arg(tool)
        .args(["--no-huge", "-m", &memory_mb.to_string()])
        .args(["--no-pci", "--no-shconf"])
        .args(lcores);
    command
}

/// Stdout then stderr of a finished tool, as text.
pub fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// Why a run failed, for a "not run" line: its exit status and last line.
pub fn failure(output: &Output) -> String {
    let text = text(output);
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    format!("{}: {}", output.status, last.unwrap_or("no output"))
}

/// The clock DPDK's cycle counts (the TSC) tick at, in Hz: from the EAL's
/// own "TSC frequency is ~N KHz" line in `text` (printed with
/// `--log-level=lib.eal:debug`), else the first CPU's `cpu MHz`.
pub fn tsc_hz(text: &str) -> Option<f64> {
    let eal = text.lines().find_map(|l| {
        let khz = l.split("TSC frequency is ~").nth(1)?.strip_suffix(" KHz")?;
        khz.trim().parse::<f64>().ok()
    });
    if let Some(khz) = eal {
        return Some(khz * 1e3);
    }
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some(mhz * 1e6)
}

/// A dpdk-testpmd in interactive mode, driven through its stdin: started
/// by `Testpmd::start`, forwarding between `start` and `stop`, killed on
/// drop (also when a bench fails half-way).
pub struct Testpmd {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    /// Everything it printed so far, stdout and stderr.
    printed: std::sync::Arc<std::sync::Mutex<String>>,
}

/// How long testpmd may take to answer a command (probing AF_XDP ports
/// takes a second or two): a hang guard, never a measurement.
const TESTPMD_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

impl Testpmd {
    /// Starts `tool` with `vdevs` as ports 0 and 1, main and forwarding
    /// lcores both on CPU `cpu`, in forwarding mode `mode` (io, macswap),
    /// stopped; waits for its prompt.
    pub fn start(tool: &Path, cpu: usize, vdevs: [&str; 2], mode: &str) -> Result<Testpmd, String> {
        use std::io::Read;
        use std::process::Stdio;
        let lcores = format!("0@{cpu},1@{cpu}");
        let mut command = command(tool, 1024, ["--lcores", &lcores]);
        for vdev in vdevs {
            command.args(["--vdev", vdev]);
        }
        let mut child = command
            .args(["--", "-i", &format!("--forward-mode={mode}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start: {e}"))?;
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped")),
            Box::new(child.stderr.take().expect("piped")),
        ];
        for mut stream in streams {
            let printed = printed.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut chunk) {
                    let text = String::from_utf8_lossy(&chunk[..n]);
                    printed.lock().expect("not poisoned").push_str(&text);
                }
            });
        }
        let stdin = child.stdin.take().expect("piped");
        let mut testpmd = Testpmd {
            child,
            stdin,
            printed,
        };
        testpmd.wait_for(0, "testpmd> ")?;
        Ok(testpmd)
    }

    fn printed(&self) -> String {
        self.printed.lock().expect("not poisoned").clone()
    }

    /// Waits until `needle` appears after byte `from` of its output; Err
    /// with its last line if it exits or takes longer than the patience.
    fn wait_for(&mut self, from: usize, needle: &str) -> Result<String, String> {
        let deadline = std::time::Instant::now() + TESTPMD_PATIENCE;
        loop {
            let printed = self.printed();
            if printed.get(from..).is_some_and(|t| t.contains(needle)) {
                return Ok(printed[from..].to_string());
            }
            let exited = self.child.try_wait().ok().flatten();
            if exited.is_some() || std::time::Instant::now() > deadline {
                let why = exited.map_or("no answer".to_string(), |s| s.to_string());
                let last = printed.lines().rev().find(|l| !l.trim().is_empty());
                return Err(format!("{why}: {}", last.unwrap_or("no output")));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Sends one command line; returns what it printed up to `until`.
    pub fn send(&mut self, line: &str, until: &str) -> Result<String, String> {
        use std::io::Write;
        let from = self.printed().len();
        writeln!(self.stdin, "{line}").map_err(|e| format!("writing {line:?}: {e}"))?;
        self.wait_for(from, until)
    }

    /// Starts forwarding from zeroed statistics.
    pub fn forward(&mut self) -> Result<(), String> {
        self.send("clear port stats all", "testpmd> ")?;
        self.send("start", "testpmd> ").map(drop)
    }

    /// The port statistics of `port`: (RX-missed, frames the driver saw
    /// dropped before testpmd could take them; TX-packets).
    pub fn port_stats(&mut self, port: u16) -> Result<(u64, u64), String> {
        let text = self.send(&format!("show port stats {port}"), "Tx-bps")?;
        Ok((
            field(&text, "RX-missed:", port)?,
            field(&text, "TX-packets:", port)?,
        ))
    }

    /// Stops forwarding; returns TX-dropped of port `port` from the
    /// forward statistics `stop` prints.
    pub fn stop(&mut self, port: u16) -> Result<u64, String> {
        let text = self.send("stop", "Done.")?;
        let header = format!("Forward statistics for port {port} ");
        let section = text
            .split_once(&header)
            .map(|(_, rest)| rest)
            .ok_or("no forward statistics in its answer to stop")?;
        field(section, "TX-dropped:", port)
    }
}

/// The number after the first `name` in `text`, a statistic of `port`.
fn field(text: &str, name: &str, port: u16) -> Result<u64, String> {
    text.split_once(name)
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {name} for port {port}"))
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        use std::io::Write;
        // quit closes the ports (and removes its XDP programs); a kill
        // if it does not go within a few seconds.
        let _ = writeln!(self.stdin, "quit");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this kernel lets us open an AF_XDP socket; says why not.
pub fn af_xdp_available() -> Result<(), String> {
    // SAFETY: a plain socket call; the descriptor is closed at once.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    if fd < 0 {
        return Err(format!(
            "no AF_XDP sockets here: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is ours and open.
    unsafe { libc::close(fd) };
    Ok(())
}
