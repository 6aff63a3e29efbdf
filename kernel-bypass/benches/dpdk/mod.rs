//! DPDK's own tools from Debian's `dpdk-dev` as yardsticks in the benches
//! (dpdk-test-acl, dpdk-test-fib, dpdk-testpmd): finding them (installing
//! the package when root), starting them without hugepages, reading their
//! text, and the CPU clock their cycle counts are in.

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
