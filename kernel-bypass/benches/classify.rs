//! Firewall classifier figures: build time, memory and lookups/s (one key at
//! a time and in batches) of `classify::Classifier` for 10, 1,000 and 10,000
//! ClassBench-like ACL rules, and DPDK's rte_acl (`dpdk-test-acl`, Debian's
//! dpdk-dev) on the same rules and trace in the same run, with the ratio.
//! DPDK's answers are also compared with ours key by key.
//!
//! Run with `cargo bench -p kernel-bypass --bench classify`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod dpdk;

use kernel_bypass::classify::synth::{self, Mix};
use kernel_bypass::classify::{ipv4_mask, Classifier, FlowKey, Rule};

const SIZES: [usize; 3] = [10, 1_000, 10_000];
/// Keys in the trace; dpdk-test-acl reads at most 65,536 by default.
const TRACE: usize = 65_536;
/// Lookups timed per figure.
const LOOKUPS: usize = 16 * TRACE;
/// Keys per batch call: dpdk-test-acl's default trace step.
const BATCH: usize = 256;

fn main() {
    let dpdk = dpdk::tool("dpdk-test-acl");
    if let Err(why) = &dpdk {
        println!("dpdk-test-acl: not run: {why}");
    }
    println!(
        "{:>6} {:>9} {:>9} {:>5} {:>5} {:>6} {:>11} {:>11} | {:>9} {:>9} {:>11} | {:>8}",
        "rules",
        "build",
        "memory",
        "trees",
        "depth",
        "leaf",
        "single M/s",
        "batch M/s",
        "dpdk bld",
        "dpdk mem",
        "dpdk M/s",
        "ours/dpdk"
    );
    // Lookups/s per size: ours one by one, ours batched, dpdk-test-acl's.
    let mut rates = Vec::new();
    for size in SIZES {
        let rules = synth::acl_rules(size, 7, Mix::default());
        let keys = synth::trace(&rules, TRACE, 8);
        let (classifier, build) = best_of(3, || Classifier::build(&rules));
        check_against_linear(&rules, &keys[..4_096], &classifier);
        let stats = classifier.stats();
        let single = rate(|| {
            keys.iter()
                .map(|key| classifier.classify(black_box(key)).unwrap_or(0))
                .fold(0u32, u32::wrapping_add)
        });
        let mut out = [None; BATCH];
        let batched = rate(|| {
            let mut sum = 0u32;
            for chunk in keys.chunks(BATCH) {
                classifier.classify_batch(black_box(chunk), &mut out);
                sum = sum.wrapping_add(out[0].unwrap_or(0));
            }
            sum
        });
        let mut line = format!(
            "{size:>6} {:>7.1}ms {:>7}KB {:>5} {:>5} {:>6} {:>11.2} {:>11.2} |",
            build.as_secs_f64() * 1e3,
            classifier.memory_bytes() / 1024,
            stats.trees,
            stats.max_depth,
            stats.max_leaf,
            single / 1e6,
            batched / 1e6,
        );
        let dpdk_figures = dpdk.as_ref().map_err(Clone::clone).and_then(|tool| {
            let files = write_dpdk_files(size, &rules, &keys)?;
            check_against_dpdk(tool, &files, &keys, &classifier)?;
            run_dpdk(tool, &files)
        });
        rates.push((single, batched, dpdk_figures.as_ref().ok().map(|d| d.rate)));
        match dpdk_figures {
            Ok(d) => write!(
                line,
                " {:>7.1}ms {:>7}KB {:>11.2} | {:>8.2}",
                d.build.as_secs_f64() * 1e3,
                d.memory / 1024,
                d.rate / 1e6,
                batched / d.rate
            ),
            Err(why) => write!(line, " dpdk-test-acl: {why}"),
        }
        .expect("writing to a String");
        println!("{line}");
    }
    if let (Some(small), Some(large)) = (rates.first(), rates.last()) {
        let share = |large: f64, small: f64| format!("{:.0}%", 100.0 * large / small);
        let dpdk = match (small.2, large.2) {
            (Some(small), Some(large)) => share(large, small),
            _ => "not run".into(),
        };
        println!(
            "10,000 rules vs 10, share of the speed: ours {} one by one, {} batched; dpdk-test-acl {dpdk}",
            share(large.0, small.0),
            share(large.1, small.1),
        );
    }
    let big = synth::acl_rules(100_000, 9, Mix::default());
    let (classifier, build) = best_of(1, || Classifier::build(&big));
    println!(
        "100,000 rules: build {:.2} s, {} KB, {:?}",
        build.as_secs_f64(),
        classifier.memory_bytes() / 1024,
        classifier.stats()
    );
}

/// The fastest of `runs` runs of `f`, and its result.
fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (T, Duration) {
    let started = Instant::now();
    let mut kept = f();
    let mut best = started.elapsed();
    for _ in 1..runs {
        let started = Instant::now();
        let value = f();
        if started.elapsed() < best {
            best = started.elapsed();
            kept = value;
        }
    }
    (kept, best)
}

/// Lookups per second of `pass`, one pass over the trace, best of three
/// timings of `LOOKUPS / TRACE` passes each.
fn rate(mut pass: impl FnMut() -> u32) -> f64 {
    let passes = LOOKUPS / TRACE;
    let (_, took) = best_of(3, || {
        for _ in 0..passes {
            black_box(pass());
        }
    });
    LOOKUPS as f64 / took.as_secs_f64()
}

fn check_against_linear(rules: &[Rule], keys: &[FlowKey], classifier: &Classifier) {
    for key in keys {
        let expected = rules.iter().find(|r| r.matches(key)).map(|r| r.id);
        assert_eq!(classifier.classify(key), expected, "{key:?}");
    }
}

struct DpdkFiles {
    rules: PathBuf,
    trace: PathBuf,
}

/// The rules in ClassBench format as dpdk-test-acl reads them
/// (`@src/len dst/len sport_lo : sport_hi dport_lo : dport_hi proto/mask`,
/// the first line wins), and the trace as `src dst sport dport proto`.
fn write_dpdk_files(size: usize, rules: &[Rule], keys: &[FlowKey]) -> Result<DpdkFiles, String> {
    let prefix = |addr: u128, mask: u128| {
        let len = mask.count_ones().saturating_sub(96) as u8;
        (mask == ipv4_mask(len)).then(|| format!("{}/{len}", Ipv4Addr::from(addr as u32)))
    };
    let mut text = String::new();
    for rule in rules {
        let (Some(src), Some(dst), false) = (
            prefix(rule.src, rule.src_mask),
            prefix(rule.dst, rule.dst_mask),
            rule.established,
        ) else {
            return Err(format!("rule {} has no ClassBench form", rule.id));
        };
        let (proto, proto_mask) = rule.protocol.map_or((0, 0), |p| (p, 0xff));
        let ((sl, sh), (dl, dh)) = (rule.src_ports, rule.dst_ports);
        writeln!(
            text,
            "@{src} {dst} {sl} : {sh} {dl} : {dh} {proto}/{proto_mask:#04x}"
        )
        .expect("String");
    }
    let mut trace = String::new();
    for key in keys {
        let (s, d) = (key.src as u32, key.dst as u32);
        writeln!(
            trace,
            "{s} {d} {} {} {}",
            key.src_port, key.dst_port, key.protocol
        )
        .expect("String");
    }
    let dir = std::env::temp_dir();
    let files = DpdkFiles {
        rules: dir.join(format!("gatehouse-classify-{size}.rules")),
        trace: dir.join(format!("gatehouse-classify-{size}.trace")),
    };
    std::fs::write(&files.rules, text).map_err(|e| format!("{}: {e}", files.rules.display()))?;
    std::fs::write(&files.trace, trace).map_err(|e| format!("{}: {e}", files.trace.display()))?;
    Ok(files)
}

/// Runs dpdk-test-acl on one lcore.
fn dpdk_test_acl(tool: &Path, rules: &Path, args: &[String]) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let output = dpdk::command(tool, 512, ["-l", "0"])
        .args(["--log-level=lib.acl:debug", "--"])
        .arg(format!("--rulesf={}", rules.display()))
        .args(args)
        .output()
        .map_err(|e| format!("cannot start: {e}"))?;
    let took = started.elapsed();
    // Figures go to stdout, the build report (memory) to the log on stderr.
    let text = dpdk::text(&output);
    if !text.contains("rte_acl_build(3) finished with 0") {
        return Err(dpdk::failure(&output));
    }
    Ok((text, took))
}

/// dpdk-test-acl prints each key's result as the 0-based line of the
/// first matching rule, u32::MAX for none: that is our rule id.
fn check_against_dpdk(
    tool: &Path,
    files: &DpdkFiles,
    keys: &[FlowKey],
    ours: &Classifier,
) -> Result<(), String> {
    let args = [
        format!("--tracef={}", files.trace.display()),
        "--iter=1".into(),
        "--verbose=2".into(),
    ];
    let (stdout, _) = dpdk_test_acl(tool, &files.rules, &args)?;
    let mut compared = 0;
    for line in stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ipv4_5tuple: "))
    {
        let mut fields = line.split(", ");
        let index: usize = number(fields.next(), "")?;
        let result: u32 = number(fields.nth(1), "result: ")?;
        let key = keys
            .get(index.wrapping_sub(1))
            .ok_or("trace index out of range")?;
        let expected = ours.classify(key).unwrap_or(u32::MAX);
        if result != expected {
            return Err(format!(
                "disagrees on {key:?}: dpdk {result}, ours {expected}"
            ));
        }
        compared += 1;
    }
    if compared != keys.len() {
        return Err(format!("printed {compared} of {} results", keys.len()));
    }
    Ok(())
}

struct DpdkFigures {
    build: Duration,
    memory: usize,
    rate: f64,
}

/// Lookup rate from the tool's own cycle count, memory from its build
/// report; build time is the wall time of a build-only run less that of a
/// one-rule run (the EAL start-up). Best of three runs each, as for ours:
/// the machine is shared.
fn run_dpdk(tool: &Path, files: &DpdkFiles) -> Result<DpdkFigures, String> {
    const RUNS: usize = 3;
    let iterations = (LOOKUPS / TRACE).to_string();
    let args = [
        format!("--tracef={}", files.trace.display()),
        format!("--iter={iterations}"),
        "--verbose=0".into(),
    ];
    let mut rate = 0f64;
    let mut stdout = String::new();
    for _ in 0..RUNS {
        stdout = dpdk_test_acl(tool, &files.rules, &args)?.0;
        let run: f64 = stdout
            .lines()
            .find(|l| l.contains("pkt/sec"))
            .and_then(|l| l.split(", ").last()?.strip_suffix(" pkt/sec")?.parse().ok())
            .ok_or("no pkt/sec figure")?;
        rate = rate.max(run);
    }
    let memory = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("total: ")?
                .strip_suffix(" bytes")?
                .parse()
                .ok()
        })
        .ok_or("no memory footprint")?;
    let one_rule = files.rules.with_extension("one");
    let first = std::fs::read_to_string(&files.rules).map_err(|e| e.to_string())?;
    std::fs::write(&one_rule, first.lines().next().unwrap_or("")).map_err(|e| e.to_string())?;
    let quiet = ["--verbose=0".to_string()];
    let mut start_up = Duration::MAX;
    let mut with_build = Duration::MAX;
    for _ in 0..RUNS {
        start_up = start_up.min(dpdk_test_acl(tool, &one_rule, &quiet)?.1);
        with_build = with_build.min(dpdk_test_acl(tool, &files.rules, &quiet)?.1);
    }
    Ok(DpdkFigures {
        build: with_build.saturating_sub(start_up),
        memory,
        rate,
    })
}

fn number<T: std::str::FromStr>(field: Option<&str>, label: &str) -> Result<T, String> {
    field
        .and_then(|f| f.strip_prefix(label))
        .and_then(|f| f.trim().parse().ok())
        .ok_or_else(|| format!("unreadable result line field {label:?}"))
}
