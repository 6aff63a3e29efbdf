//! Route table figures: load time, memory and lookup rate of `Lpm` for a
//! million random routes, next to a plain binary trie, and next to DPDK's
//! rte_fib DIR-24-8 (`dpdk-test-fib`, Debian's dpdk-dev) on the very same
//! routes and lookup addresses in the same run, with the ratios.
//!
//! Run with `cargo bench -p kernel-bypass --bench fib`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use kernel_bypass::classify::synth::Rng;
use kernel_bypass::fib::{flow_hash, EcmpGroup, Lpm};

const ROUTES: usize = 1_000_000;
const LOOKUPS: usize = 2_000_000;
const TRIE_LOOKUPS: usize = 250_000;
const BATCH: usize = 64;

mod dpdk;
mod route_mix;

use route_mix::random_routes;

/// The textbook baseline: one node per prefix bit.
struct BinaryTrie {
    /// Children (0 = none) and value (`u32::MAX` = none) of each node.
    nodes: Vec<([u32; 2], u32)>,
}

impl BinaryTrie {
    fn new() -> BinaryTrie {
        BinaryTrie {
            nodes: vec![([0, 0], u32::MAX)],
        }
    }

    fn insert(&mut self, prefix: Ipv4Net, value: u32) {
        let addr = u32::from(prefix.network());
        let mut node = 0;
        for depth in 0..prefix.prefix_len() {
            let bit = ((addr >> (31 - depth)) & 1) as usize;
            if self.nodes[node].0[bit] == 0 {
                self.nodes[node].0[bit] = self.nodes.len() as u32;
                self.nodes.push(([0, 0], u32::MAX));
            }
            node = self.nodes[node].0[bit] as usize;
        }
        self.nodes[node].1 = value;
    }

    fn lookup(&self, addr: u32) -> Option<u32> {
        let mut best = None;
        let mut node = 0;
        for depth in 0..=32 {
            let (children, value) = self.nodes[node];
            if value != u32::MAX {
                best = Some(value);
            }
            if depth == 32 {
                break;
            }
            match children[((addr >> (31 - depth)) & 1) as usize] {
                0 => break,
                child => node = child as usize,
            }
        }
        best
    }
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rate(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64() / 1e6
}

fn time<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let result = work();
    (result, start.elapsed())
}

/// Loads `routes` in one `insert_many` and reports time and memory.
fn load(label: &str, routes: &[(Ipv4Net, u32)]) -> Lpm {
    let before = resident_bytes();
    let (lpm, elapsed) = time(|| {
        let mut lpm = Lpm::new();
        lpm.insert_many(routes.iter().copied())
            .expect("no route limit");
        lpm
    });
    println!(
        "fib: {label}: {} routes loaded in {:.3} s, memory_bytes {:.1} MiB, RSS delta {:.1} MiB",
        lpm.len(),
        elapsed.as_secs_f64(),
        mib(lpm.memory_bytes()),
        mib(resident_bytes().saturating_sub(before)),
    );
    lpm
}

/// Lookups per second (millions) of the best of three passes over `addrs`,
/// and how many of them found a route.
fn best_rate(addrs: &[u32], mut pass: impl FnMut(&[u32]) -> usize) -> (f64, usize) {
    let mut best = Duration::MAX;
    let mut found = 0;
    for _ in 0..3 {
        let (count, elapsed) = time(|| pass(addrs));
        best = best.min(elapsed);
        found = count;
    }
    (rate(addrs.len(), best), found)
}

/// Prints and returns (single, batched) lookups per second, in millions.
fn lookup_rates(lpm: &Lpm, trie: &BinaryTrie, label: &str, addrs: &[u32]) -> (f64, f64) {
    let (single, found) = best_rate(addrs, |addrs| {
        addrs.iter().filter(|&&a| lpm.lookup(a).is_some()).count()
    });
    let mut out = vec![None; BATCH];
    let (batched, batched_found) = best_rate(addrs, |addrs| {
        let mut found = 0;
        for chunk in addrs.chunks(BATCH) {
            lpm.lookup_batch(chunk, &mut out);
            found += out[..chunk.len()].iter().filter(|v| v.is_some()).count();
        }
        found
    });
    assert_eq!(found, batched_found);
    // The trie is slow: time it on a slice so the bench stays short.
    let sample = &addrs[..TRIE_LOOKUPS];
    let (baseline, _) = best_rate(sample, |addrs| {
        addrs.iter().filter(|&&a| trie.lookup(a).is_some()).count()
    });
    let lpm_on_sample = sample.iter().filter(|&&a| lpm.lookup(a).is_some()).count();
    let trie_on_sample = sample.iter().filter(|&&a| trie.lookup(a).is_some()).count();
    assert_eq!(lpm_on_sample, trie_on_sample);
    println!(
        "fib: {} routes, {label}: lookups {single:.1} M/s, lookup_batch {batched:.1} M/s \
         (trie baseline {baseline:.1} M/s, {:.1}x / {:.1}x), {:.0}% matched, memory {:.0} MiB",
        lpm.len(),
        single / baseline,
        batched / baseline,
        100.0 * found as f64 / addrs.len() as f64,
        mib(lpm.memory_bytes()),
    );
    (single, batched)
}

/// `count` random addresses, each inside one of `routes`.
fn addresses_inside(rng: &mut Rng, routes: &[(Ipv4Net, u32)], count: usize) -> Vec<u32> {
    (0..count)
        .map(|_| {
            let (prefix, _) = routes[rng.below(routes.len() as u32) as usize];
            let host_bits = u32::MAX
                .checked_shr(u32::from(prefix.prefix_len()))
                .unwrap_or(0);
            u32::from(prefix.network()) | (rng.next_u64() as u32 & host_bits)
        })
        .collect()
}

fn trie_of(routes: &[(Ipv4Net, u32)]) -> BinaryTrie {
    let mut trie = BinaryTrie::new();
    for &(prefix, value) in routes {
        trie.insert(prefix, value);
    }
    trie
}

fn main() {
    let mut rng = Rng::new(0x6761_7465_686f_7573);
    let routes = random_routes(&mut rng, ROUTES);

    // Kept alive so each RSS delta only counts its own table.
    let _empty = load("empty", &[]);
    let small = load("1k", &routes[..1000]);
    let lpm = load("1M bulk", &routes);

    let (single, elapsed) = time(|| {
        let mut lpm = Lpm::new();
        for &(prefix, value) in &routes {
            lpm.insert(prefix, value).expect("no route limit");
        }
        lpm
    });
    println!("fib: 1M single inserts in {:.3} s", elapsed.as_secs_f64());
    drop(single);

    let (snapshot, elapsed) = time(|| lpm.clone());
    println!(
        "fib: clone of the 1M table (snapshot for publishing) {:.1} ms",
        elapsed.as_secs_f64() * 1e3
    );
    let (removed, elapsed) = time(|| {
        let mut copy = snapshot;
        routes[..100_000]
            .iter()
            .filter(|&&(prefix, _)| copy.remove(prefix))
            .count()
    });
    println!(
        "fib: {removed} single removes from the 1M table in {:.3} s",
        elapsed.as_secs_f64()
    );

    let (trie, elapsed) = time(|| trie_of(&routes));
    println!(
        "fib: trie baseline loaded in {:.3} s, {:.1} MiB of nodes",
        elapsed.as_secs_f64(),
        mib(trie.nodes.len() * std::mem::size_of::<([u32; 2], u32)>())
    );

    let uniform: Vec<u32> = (0..LOOKUPS).map(|_| rng.next_u64() as u32).collect();
    let inside = addresses_inside(&mut rng, &routes, LOOKUPS);
    lookup_rates(&lpm, &trie, "uniform random addresses", &uniform);
    let ours = lookup_rates(&lpm, &trie, "addresses inside routes", &inside);
    match dpdk::tool("dpdk-test-fib").and_then(|tool| rte_fib(&tool, &routes, &inside)) {
        Ok(theirs) => {
            let ours_mib = mib(lpm.memory_bytes());
            println!(
                "fib: rte_fib DIR-24-8 (dpdk-test-fib{}, same {} routes and {} addresses inside \
                 routes, bulk lookups of 64): {:.1} cycles/lookup at {:.2} GHz = {:.1} M/s, {:.0} MiB \
                 (2^24 x 4 B + {} tbl8 groups x 1 KiB)",
                theirs.source,
                routes.len(),
                inside.len(),
                theirs.cycles,
                theirs.hz / 1e9,
                theirs.rate,
                mib(theirs.memory),
                theirs.groups,
            );
            println!(
                "fib: ours / rte_fib: lookups {:.2}x single, {:.2}x batched; memory {:.0} / {:.0} MiB = {:.2}x",
                ours.0 / theirs.rate,
                ours.1 / theirs.rate,
                ours_mib,
                mib(theirs.memory),
                ours_mib / mib(theirs.memory),
            );
        }
        Err(why) => println!("fib: dpdk-test-fib: not run: {why}"),
    }
    let small_inside = addresses_inside(&mut rng, &routes[..1000], LOOKUPS);
    lookup_rates(
        &small,
        &trie_of(&routes[..1000]),
        "addresses inside routes",
        &small_inside,
    );

    let group = EcmpGroup::new((0..8u32).collect()).expect("non-empty");
    let (flows_per_second, _) = best_rate(&uniform, |addrs| {
        let picks = addrs
            .iter()
            .map(|&a| *group.select(flow_hash(a, 0x0a00_0001, 6, a as u16, 443)) as usize);
        black_box(picks.sum())
    });
    println!("fib: flow_hash + 8-way ECMP select {flows_per_second:.1} M/s");
}

/// rte_fib's figures from one dpdk-test-fib run.
struct RteFib {
    /// How the routes reached it: from our file, or its own generator.
    source: &'static str,
    cycles: f64,
    hz: f64,
    /// Lookups per second, millions.
    rate: f64,
    /// Bytes of its DIR-24-8 lookup tables (the RIB it keeps beside them
    /// for updates is not counted, as ours counts no such thing).
    memory: usize,
    groups: usize,
}

/// Second-level (tbl8) groups DIR-24-8 needs: one per /24 holding a longer
/// prefix.
fn tbl8_groups(routes: &[(Ipv4Net, u32)]) -> usize {
    let slash24s: HashSet<u32> = routes
        .iter()
        .filter(|(p, _)| p.prefix_len() > 24)
        .map(|(p, _)| u32::from(p.network()) >> 8)
        .collect();
    slash24s.len()
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> Result<(), String> {
    let mut text = String::new();
    for line in lines {
        writeln!(text, "{line}").expect("String");
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs dpdk-test-fib (DIR-24-8, 4-byte next hops as ours need 16 bits
/// and it keeps one for a flag, exactly as many tbl8 groups as the routes
/// need) on `routes` and the lookup addresses `addrs`, written to files
/// in its format (`a.b.c.d/len next-hop`, one address a line); if it
/// cannot read them, on the same length mix from its own generator (`-d`).
/// Best of three runs: the machine is shared.
fn rte_fib(tool: &Path, routes: &[(Ipv4Net, u32)], addrs: &[u32]) -> Result<RteFib, String> {
    let dir = std::env::temp_dir();
    let (routes_file, addrs_file): (PathBuf, PathBuf) = (
        dir.join(format!("gatehouse-fib-{}.routes", std::process::id())),
        dir.join(format!("gatehouse-fib-{}.lookups", std::process::id())),
    );
    write_lines(
        &routes_file,
        routes.iter().map(|(p, nh)| format!("{p} {nh}")),
    )?;
    write_lines(
        &addrs_file,
        addrs.iter().map(|&a| Ipv4Addr::from(a).to_string()),
    )?;
    let groups = tbl8_groups(routes);
    let files = [
        "-f".to_string(),
        routes_file.display().to_string(),
        "-t".into(),
        addrs_file.display().to_string(),
    ];
    // The same mix as exact counts per length, for its own generator.
    let mut per_length = [0usize; 33];
    for (prefix, _) in routes {
        per_length[usize::from(prefix.prefix_len())] += 1;
    }
    let mix: Vec<String> = (1..=32)
        .filter(|&len| per_length[len] > 0)
        .map(|len| format!("{len}:{}", per_length[len]))
        .collect();
    let generated = [
        "-n".to_string(),
        routes.len().to_string(),
        "-l".into(),
        addrs.len().to_string(),
        "-d".into(),
        mix.join(","),
    ];
    let run = |args: &[String]| -> Result<(f64, f64), String> {
        let output = dpdk::command(tool, 2048, ["-l", "0"])
            .args(["--log-level=lib.eal:debug", "--"])
            .args(["-e", "4", "-g", &groups.to_string()])
            .args(args)
            .output()
            .map_err(|e| format!("cannot start: {e}"))?;
        let text = dpdk::text(&output);
        let loaded = format!("Routes total: {}\n", routes.len());
        let looked_up = format!("Lookup tuples: {}\n", addrs.len());
        if !text.contains(&loaded) || !text.contains(&looked_up) {
            return Err(format!(
                "did not take all routes and addresses: {}",
                dpdk::failure(&output)
            ));
        }
        let cycles = text
            .lines()
            .find_map(|l| l.strip_prefix("AVG FIB lookup ")?.trim().parse().ok())
            .ok_or_else(|| dpdk::failure(&output))?;
        let hz = dpdk::tsc_hz(&text).ok_or("no TSC or CPU clock")?;
        Ok((cycles, hz))
    };
    let (source, args, mut best) = match run(&files) {
        Ok(first) => (", routes and addresses from files", files.to_vec(), first),
        Err(why) => {
            println!("fib: dpdk-test-fib cannot read our files ({why}); its own generator instead");
            let first = run(&generated)?;
            (
                ", its own routes (-d) and lookups",
                generated.to_vec(),
                first,
            )
        }
    };
    for _ in 1..3 {
        let (cycles, hz) = run(&args)?;
        if cycles < best.0 {
            best = (cycles, hz);
        }
    }
    let _ = std::fs::remove_file(&routes_file);
    let _ = std::fs::remove_file(&addrs_file);
    let (cycles, hz) = best;
    Ok(RteFib {
        source,
        cycles,
        hz,
        rate: hz / cycles / 1e6,
        memory: (1 << 24) * 4 + groups * 256 * 4,
        groups,
    })
}
