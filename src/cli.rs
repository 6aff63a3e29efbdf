//! `gatehouse shell` and `gatehouse cli`: the CLI without a dataplane.

use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct ShellArgs {}

#[derive(Args)]
pub struct CliArgs {}

pub fn shell_main(_args: ShellArgs) -> ExitCode {
    eprintln!("gatehouse: shell is not built yet");
    ExitCode::FAILURE
}

pub fn cli_main(_args: CliArgs) -> ExitCode {
    eprintln!("gatehouse: cli is not built yet");
    ExitCode::FAILURE
}
