//! The appliance init: what the binary does as PID 1 of the image.

use clap::Args;
use std::process::ExitCode;

#[derive(Args, Default)]
pub struct InitArgs {}

pub fn main(_args: InitArgs) -> ExitCode {
    eprintln!("gatehouse: init is not built yet");
    ExitCode::FAILURE
}
