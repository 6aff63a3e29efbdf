//! Parsing and committing a generated 100,000-line configuration (parsed,
//! loaded as the startup file, typed in a session and committed), a
//! one-line incremental commit on top of it, and lines typed on top of it
//! in `configure terminal`. Prints median times, with the
//! figures measured before the elements had sections of their own (each
//! line then cost time proportional to the whole configuration).
//! Run: cargo bench -p shell --bench config

use grammar::{parse_config, validate};
use shell::{run_lines, Session, ShellBuilder};
use std::time::{Duration, Instant};

const INTERFACES: usize = 3000;
const ROUTES: usize = 85_000;

/// 3000 interfaces of 5 lines and 85,000 static routes: 100,000 lines.
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
        let prefix = std::net::Ipv4Addr::from(0xac10_0000u32 + ((r as u32) << 8));
        let via = r % INTERFACES;
        text.push_str(&format!(
            "ip route {prefix}/24 10.{}.{}.2\n",
            via / 256,
            via % 256
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
        "parse + validate {lines} lines: {:.2} ms",
        parse.as_secs_f64() * 1e3
    );

    let path = std::env::temp_dir().join(format!("gatehouse-bench-{}.cfg", std::process::id()));
    std::fs::write(&path, &text).expect("write the startup file");
    let start = Instant::now();
    let (loaded, report) = ShellBuilder::new().startup_path(&path).build();
    let load = start.elapsed();
    let _ = std::fs::remove_file(&path);
    assert!(report.is_empty(), "{report:?}");
    assert_eq!(loaded.running().interfaces.len(), INTERFACES);
    println!(
        "load a {lines}-line startup file: {:.1} ms (target < 1 s; before: 20 s)",
        load.as_secs_f64() * 1e3
    );

    let shell = ShellBuilder::new().build().0;
    let mut session = Session::new(shell.clone(), "bench", true);
    let mut sink = Vec::new();
    let start = Instant::now();
    let script = std::iter::once("configure exclusive")
        .chain(text.lines())
        .chain(std::iter::once("commit"));
    let failures = run_lines(&mut session, script, &mut sink).expect("in-memory output");
    let full = start.elapsed();
    assert!(failures.is_empty(), "{failures:?}");
    println!(
        "type {lines} lines in a session and commit them: {:.1} ms (target < 1 s; before: 5.6 s for 50,000)",
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
        "one-line commit on top of it: {:.3} ms (target < 5 ms)",
        incremental.as_secs_f64() * 1e3
    );

    // `configure terminal` commits every line: a line costs a copy and a
    // check of the section it changes.
    let routes: Vec<String> = (0..100)
        .map(|i| format!("ip route 10.250.{i}.0/24 eth0"))
        .collect();
    let start = Instant::now();
    let script = ["end", "configure terminal"]
        .into_iter()
        .chain(routes.iter().map(String::as_str))
        .chain(std::iter::once("end"));
    let failures = run_lines(&mut session, script, &mut sink).expect("in-memory output");
    assert!(failures.is_empty(), "{failures:?}");
    println!(
        "configure terminal on top of it, a route line (each committed at once): {:.2} ms",
        start.elapsed().as_secs_f64() * 1e3 / routes.len() as f64
    );
}
