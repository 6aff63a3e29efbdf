//! The real appliance binary in hosted mode, for the namespace tests:
//! `gatehouse run` on the startup file `DIR/startup-config`, its CLI on a
//! pipe, its console in `DIR/console` and `DIR/errors`.

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

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
