//! The real appliance binary in hosted mode, for the namespace tests:
//! `gatehouse run` on the startup file `DIR/startup-config`, its CLI on a
//! pipe, its console in `DIR/console` and `DIR/errors`.

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the appliance with `workers` workers; its CLI is the returned pipe.
pub fn start(dir: &Path, workers: usize) -> (Child, ChildStdin) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("run")
        .arg("--config")
        .arg(dir.join("startup-config"))
        .arg("--workers")
        .arg(workers.to_string())
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(dir.join("console")).expect("console file"))
        .stderr(std::fs::File::create(dir.join("errors")).expect("errors file"))
        .spawn()
        .expect("gatehouse run");
    let cli = child.stdin.take().expect("piped stdin");
    (child, cli)
}

/// What the appliance printed on its console (the CLI's output) so far.
pub fn console(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("console")).unwrap_or_default()
}

/// Types `line` on the CLI, then waits up to `patience` for the console's
/// output after it to satisfy `done`: Ok(that output), or Err(what came).
#[allow(dead_code)] // not every test waits for answers
pub fn answer(
    dir: &Path,
    cli: &mut ChildStdin,
    line: &str,
    done: &dyn Fn(&str) -> bool,
    patience: Duration,
) -> Result<String, String> {
    let before = console(dir).len();
    writeln!(cli, "{line}").unwrap();
    cli.flush().unwrap();
    let deadline = Instant::now() + patience;
    loop {
        let text = console(dir)[before..].to_string();
        if done(&text) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            return Err(text);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
