//! Parsing and committing a generated 10,000-line configuration, and a
//! one-line incremental commit on top of it. Prints median times.
//! Run: cargo bench -p shell --bench config

use grammar::{parse_config, validate};
use shell::{run_lines, Session, ShellBuilder};
use std::time::{Duration, Instant};

const INTERFACES: usize = 1500;
const ROUTES: usize = 2500;

/// 1500 interfaces of 5 lines and 2500 static routes: 10,000 lines.
fn generate() -> String {
    let mut text = String::new();
    for i in 0..INTERFACES {
        let (hi, lo) = (i / 256, i % 256);
        text.push_str(&format!(
            "interface eth{i}\n description link {i}\n mtu 9000\n ip address 10.{hi}.{lo}.1/24\n \
             ipv6 address 2001:db8:{i:x}::1/64\n"
        ));
    }
    for r in 0..ROUTES {
        let (hi, lo) = (r / 256, r % 256);
        text.push_str(&format!(
            "ip route 172.{}.{lo}.0/24 10.{}.{}.2\n",
            16 + hi,
            (r % INTERFACES) / 256,
            (r % INTERFACES) % 256
        ));
    }
    text
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let text = generate();
    let lines = text.lines().count();
    let parse = median(
        (0..9)
            .map(|_| {
                let start = Instant::now();
                let (config, errors) = parse_config(&text);
                let problems = validate(&config);
                let elapsed = start.elapsed();
                assert!(
                    errors.is_empty() && problems.is_empty(),
                    "{errors:?} {problems:?}"
                );
                elapsed
            })
            .collect(),
    );
    println!(
        "parse + validate {lines} lines: {:.2} ms (target < 50 ms)",
        parse.as_secs_f64() * 1e3
    );

    let shell = ShellBuilder::new().build().0;
    let mut session = Session::new(shell.clone(), "bench", true);
    let mut sink = Vec::new();
    let start = Instant::now();
    let script = std::iter::once("configure terminal")
        .chain(text.lines())
        .chain(std::iter::once("commit"));
    let failures = run_lines(&mut session, script, &mut sink).expect("in-memory output");
    let full = start.elapsed();
    assert!(failures.is_empty(), "{failures:?}");
    println!(
        "type {lines} lines in a session and commit them: {:.2} ms",
        full.as_secs_f64() * 1e3
    );

    let incremental = median(
        (0..21)
            .map(|i| {
                let start = Instant::now();
                let failures = run_lines(
                    &mut session,
                    [format!("hostname edge{i}"), "commit".to_string()],
                    &mut sink,
                )
                .expect("in-memory output");
                let elapsed = start.elapsed();
                assert!(failures.is_empty(), "{failures:?}");
                elapsed
            })
            .collect(),
    );
    assert_eq!(shell.running().interfaces.len(), INTERFACES);
    println!(
        "one-line incremental commit on it: {:.3} ms (target < 5 ms)",
        incremental.as_secs_f64() * 1e3
    );
}
