//! `show processes cpu` and `show memory`, as an IOS operator reads them:
//! the appliance's threads (the dataplane workers, the control runtime,
//! the CLI and the rest) with their CPU use over the last five seconds,
//! minute and five minutes, from /proc sampled every five seconds (IOS's
//! own periods and averages); and the process's memory beside the
//! machine's, with the dataplane's table sizes.
//!
//! A busy-polling worker shows near 100% of a core whether it forwards or
//! not; `show interfaces` says how much traffic that time carries.

use kernel_bypass::Dataplane;
use shell::ShellBuilder;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the threads' times are read (IOS's five-second figure).
const SAMPLE: Duration = Duration::from_secs(5);
/// /proc reports CPU time in USER_HZ ticks, 1/100 s on Linux.
const TICKS_PER_SEC: f64 = 100.0;

/// One thread's use of a core (1.0: all of one core).
#[derive(Clone, Debug, Default, PartialEq)]
struct ThreadLoad {
    name: String,
    /// CPU time so far, ticks.
    ticks: u64,
    five_sec: f64,
    one_min: f64,
    five_min: f64,
}

/// The threads by id, as last sampled.
#[derive(Clone, Default)]
pub struct CpuMonitor(Arc<Mutex<BTreeMap<u32, ThreadLoad>>>);

/// A thread's name and CPU ticks (user + system) from its `stat` line:
/// `TID (NAME) STATE ...`, the name possibly holding blanks and parentheses.
fn parse_stat(line: &str) -> Option<(String, u64)> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let name = line.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3; utime and stime are fields 14, 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// Every thread of this process: (thread id, name, ticks).
fn threads() -> Vec<(u32, String, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let (name, ticks) = parse_stat(&stat)?;
            Some((tid, name, ticks))
        })
        .collect()
}

/// The share of `period` a decaying average over `window` gives the
/// newest sample (IOS's one- and five-minute figures).
fn weight(window: Duration) -> f64 {
    1.0 - (-SAMPLE.as_secs_f64() / window.as_secs_f64()).exp()
}

impl CpuMonitor {
    /// Takes one sample: each thread's load over the last period.
    fn sample(&self, now: Vec<(u32, String, u64)>) {
        let mut loads = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (minute, five) = (
            weight(Duration::from_secs(60)),
            weight(Duration::from_secs(300)),
        );
        let mut next = BTreeMap::new();
        for (tid, name, ticks) in now {
            let before = loads.remove(&tid).unwrap_or_default();
            let used = ticks.saturating_sub(before.ticks) as f64;
            let share = used / TICKS_PER_SEC / SAMPLE.as_secs_f64();
            let load = ThreadLoad {
                name,
                ticks,
                five_sec: share,
                one_min: before.one_min + minute * (share - before.one_min),
                five_min: before.five_min + five * (share - before.five_min),
            };
            next.insert(tid, load);
        }
        *loads = next;
    }

    /// `show processes cpu`.
    fn render(&self) -> String {
        let loads = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let total = |f: fn(&ThreadLoad) -> f64| loads.values().map(f).sum::<f64>() / cores * 100.0;
        let mut out = format!(
            "CPU utilization for five seconds: {:.0}%; one minute: {:.0}%; five minutes: {:.0}%\n",
            total(|l| l.five_sec),
            total(|l| l.one_min),
            total(|l| l.five_min)
        );
        let _ = writeln!(
            out,
            "{:>8} {:>12} {:>6} {:>6} {:>6}  Thread",
            "TID", "Runtime(ms)", "5Sec", "1Min", "5Min"
        );
        for (tid, l) in &loads {
            let _ = writeln!(
                out,
                "{tid:>8} {:>12} {:>5.1}% {:>5.1}% {:>5.1}%  {}",
                l.ticks * 10,
                l.five_sec * 100.0,
                l.one_min * 100.0,
                l.five_min * 100.0,
                l.name
            );
        }
        out
    }
}

/// Samples the threads every five seconds until the runtime stops.
pub async fn sample(monitor: CpuMonitor) {
    let mut every = tokio::time::interval(SAMPLE);
    loop {
        every.tick().await;
        monitor.sample(threads());
    }
}

/// A `KEY: N kB` line's value in bytes from a /proc status-like text.
fn kilobytes(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line
        .get(key.len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".into(), |b| {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    })
}

/// `show memory`.
fn memory(dataplane: &Dataplane) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mut out = String::new();
    let sections = [
        (
            "Gatehouse process",
            &status,
            &[
                ("resident", "VmRSS:"),
                ("resident peak", "VmHWM:"),
                ("virtual", "VmSize:"),
            ][..],
        ),
        (
            "System",
            &meminfo,
            &[("total", "MemTotal:"), ("available", "MemAvailable:")][..],
        ),
    ];
    for (title, text, rows) in sections {
        let _ = writeln!(out, "{title}:");
        for (label, key) in rows {
            let _ = writeln!(out, "  {label:<15}{}", mib(kilobytes(text, key)));
        }
    }
    out.push_str("Tables:\n");
    let stats = dataplane.stats();
    for t in &stats.routes {
        let table = t.vrf.as_deref().unwrap_or("global");
        let _ = writeln!(out, "  routes {table:<8} {} IPv4, {} IPv6", t.ipv4, t.ipv6);
    }
    for (name, entries) in &stats.tables {
        let _ = writeln!(out, "  {name:<15} {entries} entries");
    }
    out
}

/// Adds `show processes cpu` and `show memory`.
pub fn register_commands(
    builder: ShellBuilder,
    monitor: &CpuMonitor,
    dataplane: &Arc<Dataplane>,
) -> Result<ShellBuilder, grammar::SyntaxError> {
    let monitor = monitor.clone();
    let dataplane = dataplane.clone();
    builder
        .show(
            "processes cpu",
            &[
                "The appliance's threads",
                "CPU use over 5 s, 1 and 5 minutes",
            ],
            move |_| monitor.render(),
        )?
        .show(
            "memory",
            &["Memory of the process and the machine, and the table sizes"],
            move |_| memory(&dataplane),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_the_name_and_the_cpu_ticks() {
        let line = "4242 (dataplane-0) R 1 1 1 0 -1 4194368 100 0 0 0 730 25 0 0 20 0 3 0 99 0 0";
        assert_eq!(parse_stat(line), Some(("dataplane-0".into(), 755)));
        let odd = "7 (a (b) c) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0";
        assert_eq!(parse_stat(odd), Some(("a (b) c".into(), 3)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1"), None);
    }

    #[test]
    fn a_busy_thread_shows_its_share_and_the_averages_follow() {
        let monitor = CpuMonitor::default();
        monitor.sample(vec![(1, "dataplane-0".into(), 0)]);
        // Five seconds of a whole core: 500 ticks.
        monitor.sample(vec![(1, "dataplane-0".into(), 500)]);
        let load = monitor.0.lock().unwrap()[&1].clone();
        assert!((load.five_sec - 1.0).abs() < 1e-9);
        assert!(load.one_min > 0.0 && load.one_min < load.five_sec);
        assert!(load.five_min > 0.0 && load.five_min < load.one_min);
        let shown = monitor.render();
        assert!(shown.contains("100.0%"), "{shown}");
        assert!(shown.contains("dataplane-0"), "{shown}");
    }

    #[test]
    fn memory_figures_are_read_from_kilobyte_lines() {
        let status = "Name:\tgatehouse\nVmRSS:\t   47936 kB\nVmHWM:\t   51200 kB\n";
        assert_eq!(kilobytes(status, "VmRSS:"), Some(47936 * 1024));
        assert_eq!(kilobytes(status, "VmSize:"), None);
        assert_eq!(mib(Some(47936 * 1024)), "46.8 MiB");
    }
}
