//! `gatehouse run`, the real binary, as the hosted tests start it: its
//! startup configuration and its console in a scratch directory, its CLI
//! on a pipe.

use super::netns::Child;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};

/// Runs the appliance on `dir`/startup-config, its console written to
/// `dir`/console and `dir`/errors; the child and its CLI's input.
pub fn start(dir: &Path) -> (Child, ChildStdin) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("run")
        .arg("--config")
        .arg(dir.join("startup-config"))
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(dir.join("console")).unwrap())
        .stderr(std::fs::File::create(dir.join("errors")).unwrap())
        .spawn()
        .unwrap();
    let cli = child.stdin.take().unwrap();
    (Child(child), cli)
}

/// What the appliance started on `dir` printed so far.
pub fn console(dir: &Path) -> String {
    let read = |name| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    read("console") + &read("errors")
}
