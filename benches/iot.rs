//! The IoT gateway end to end (`cargo bench -p gatehouse --bench iot`,
//! root): tags per second from a pymodbus server through the appliance's
//! one control core into mosquitto (acknowledged by the broker), and the
//! memory 10,000 configured tags cost. Prints its figures; the issue's
//! targets are 50,000 tags/s and under 32 MiB per 10,000 tags.

#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "../tests/support/iot.rs"]
#[allow(dead_code)]
mod site;

use site::Site;
use std::time::{Duration, Instant};

/// Devices (connections to the one server) and tags on each.
const DEVICES: usize = 4;
const TAGS_PER_DEVICE: usize = 1000;
const MEASURE: Duration = Duration::from_secs(10);

/// The `iot gateway` device blocks: `devices` x `tags` holding registers.
fn devices(devices: usize, tags: usize, poll_ms: u32, every_poll: bool) -> String {
    let mut text = String::from(" mqtt buffer 100000");
    for d in 0..devices {
        text.push_str(&format!(
            "\n device d{d}\n  address {}\n  poll-interval {poll_ms}",
            site::FIELD
        ));
        for t in 0..tags {
            text.push_str(&format!("\n  tag t{t}\n   source holding-register {t}"));
            if every_poll {
                text.push_str("\n   publish every-poll");
            }
        }
    }
    text
}

/// `(published, acknowledged, dropped, queued)` from `show iot mqtt`.
fn counters(site: &mut Site) -> (u64, u64, u64, u64) {
    let console = site.typed(&["show iot mqtt"]);
    let number = |line: &str, word: &str| -> u64 {
        let at = line.find(word).map_or(line.len(), |i| i + word.len());
        let digits: String = line[at..]
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap_or(0)
    };
    let counts = console
        .lines()
        .rev()
        .find(|l| l.starts_with("Published"))
        .unwrap_or("");
    let queue = console
        .lines()
        .rev()
        .find(|l| l.starts_with("Queue"))
        .unwrap_or("");
    (
        number(counts, "Published"),
        number(counts, "acknowledged"),
        number(counts, "dropped"),
        number(queue, "Queue"),
    )
}

/// Resident memory of a process, bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    kb.and_then(|k| k.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Starts a site with `block`, waits until the broker has acknowledged
/// `settled` messages (and, if `drained`, the queue is empty); returns the
/// site, the appliance and its peers.
fn settled(block: &str, settled: u64, drained: bool) -> (Site, netns::Child, Vec<netns::Child>) {
    let mut site = Site::new(block);
    let peers = vec![site.mosquitto(), site.modbus_server()];
    std::thread::sleep(Duration::from_millis(500));
    let appliance = site.start();
    site.typed(&["enable"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, acked, _, queued) = counters(&mut site);
        if acked >= settled && (queued == 0 || !drained) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never settled: {acked} acknowledged, {queued} queued"
        );
    }
    (site, appliance, peers)
}

fn main() {
    if !netns::is_root() {
        return;
    }
    // Throughput: every tag published after every poll, as fast as the
    // server answers.
    let block = devices(DEVICES, TAGS_PER_DEVICE, 10, true);
    let (mut site, _appliance, _peers) = settled(&block, (DEVICES * TAGS_PER_DEVICE) as u64, false);
    let (p0, a0, _, _) = counters(&mut site);
    let started = Instant::now();
    std::thread::sleep(MEASURE);
    let (p1, a1, dropped, queued) = counters(&mut site);
    let seconds = started.elapsed().as_secs_f64();
    let shown = site.typed(&["show iot devices"]);
    let polls: u64 = (shown.lines().filter(|l| l.starts_with('d')))
        .filter_map(|l| l.split_whitespace().nth(4)?.parse::<u64>().ok())
        .sum();
    println!(
        "iot end to end, {DEVICES} devices x {TAGS_PER_DEVICE} tags every poll: {:.0} tags/s acknowledged by mosquitto \
         ({:.0} published/s; {} dropped, {} queued at the end; {polls} polls in all)",
        (a1 - a0) as f64 / seconds,
        (p1 - p0) as f64 / seconds,
        dropped,
        queued
    );
    drop(site);

    // Memory: the appliance with the gateway and no tags, then with 10,000
    // tags (10 devices x 1000), each once published and settled.
    let (_site, idle, _peers) = settled(" mqtt buffer 10000", 0, true);
    std::thread::sleep(Duration::from_secs(2));
    let before = rss(idle.0.id());
    drop((_site, idle, _peers));
    let (_site, loaded, _peers) = settled(&devices(10, 1000, 1000, false), 10_000, true);
    std::thread::sleep(Duration::from_secs(2));
    let after = rss(loaded.0.id());
    println!(
        "iot memory: {:.1} MiB resident without tags, {:.1} MiB with 10,000 tags: {:.1} MiB per 10,000 tags",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1048576.0
    );
}
