//! `gatehouse run`: hosted mode, the appliance as a normal Linux process on
//! existing interfaces (veths, taps, NICs) named by the config.

use crate::appliance::{Appliance, ApplianceOptions};
use clap::Args;
use kernel_bypass::io::Backend;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct RunArgs {
    /// The configuration: applied at start, written by `write memory`.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Packet I/O backend for the interfaces: af-packet, af-xdp or tap.
    #[arg(long, default_value = "af-packet")]
    backend: Backend,
    /// Forwarding threads, each busy-polling on a CPU of its own. More than
    /// one: af-packet spreads flows over them by hash; af-xdp gives each a
    /// receive queue of every interface (which must have one per worker).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// Run without a CLI on this terminal, until killed (for services and tests).
    #[arg(long)]
    no_console: bool,
}

pub fn main(args: RunArgs) -> ExitCode {
    if !args.config.exists() {
        eprintln!("gatehouse run: {}: no such file", args.config.display());
        return ExitCode::FAILURE;
    }
    let started = Appliance::start(ApplianceOptions {
        startup_config: args.config,
        backend: args.backend,
        workers: args.workers.into(),
        power: None,
        image: std::env::current_exe().map_or_else(
            |_| "gatehouse (hosted)".to_string(),
            |path| path.display().to_string(),
        ),
        factory_config: None,
        watchdog: None,
    });
    let (appliance, report) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("gatehouse run: {e}");
            return ExitCode::FAILURE;
        }
    };
    report.iter().for_each(|line| eprintln!("{line}"));
    if args.no_console {
        loop {
            std::thread::park();
        }
    }
    let plain = std::env::var("TERM").is_ok_and(|term| term == "dumb");
    match appliance.console_session(plain) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse run: console: {e}");
            ExitCode::FAILURE
        }
    }
}
