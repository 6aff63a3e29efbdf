//! `gatehouse run`: hosted mode on existing Linux interfaces.

use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> ExitCode {
    eprintln!("gatehouse: hosted mode is not built yet");
    ExitCode::FAILURE
}
