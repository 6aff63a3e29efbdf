//! Builds the static appliance binary with cargo (the repository's
//! .cargo/config.toml makes it static) and finds where cargo put it.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Names a prebuilt appliance binary to use instead of building one.
pub const OVERRIDE_VARIABLE: &str = "GATEHOUSE_BINARY";

/// Runs `cargo build --release` for the `gatehouse` binary in `repo`
/// (unless $GATEHOUSE_BINARY names one). Selecting the whole workspace
/// keeps the feature set the same as `cargo test --release --workspace`,
/// so CI reuses that build.
pub fn build(repo: &Path) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(OVERRIDE_VARIABLE) {
        return Ok(PathBuf::from(path));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--release", "--workspace", "--bin", "gatehouse"])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(repo)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        bail!("cargo build of the appliance binary failed");
    }
    executable_path(&String::from_utf8_lossy(&output.stdout))
        .context("cargo reported no gatehouse executable")
}

/// The `"executable"` cargo's JSON messages report for the gatehouse binary.
fn executable_path(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| line.split_once("\"executable\":\"")?.1.split_once('"'))
        .map(|(path, _)| PathBuf::from(path))
        .find(|path| path.file_name().is_some_and(|name| name == "gatehouse"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_executable_in_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"clap"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"gatehouse"},"executable":"/t/release/gatehouse","fresh":true}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#
        );
        assert_eq!(
            executable_path(messages),
            Some(PathBuf::from("/t/release/gatehouse"))
        );
        assert_eq!(executable_path("{}"), None);
    }
}
