//! Gatehouse: the whole edge gateway appliance in one binary.
//!
//! As PID 1 of the image it is the init; otherwise the subcommand chooses
//! the shell on the terminal, a non-interactive CLI run, or hosted mode.

mod appliance;
mod bgp;
mod cli;
mod dataplane_events;
mod hosted;
mod init;
mod install;
mod iot;
mod metrics;
mod ntp;
mod ping;
mod processes;
mod redundancy;
mod slb_probes;
mod ssh;
mod syslog;
mod watchdog;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse edge gateway appliance"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The CLI on this terminal, on built-in defaults (no dataplane).
    Shell(cli::ShellArgs),
    /// Runs CLI lines non-interactively (from -c or a script file) and prints the output.
    Cli(cli::CliArgs),
    /// Hosted mode: attach the interfaces the config names and forward between them.
    Run(hosted::RunArgs),
    /// The appliance init (what runs as PID 1 in the image).
    Init(init::InitArgs),
}

fn main() -> ExitCode {
    if std::process::id() == 1 {
        return init::main(init::InitArgs::default());
    }
    match Args::parse().command {
        Command::Shell(args) => cli::shell_main(args),
        Command::Cli(args) => cli::cli_main(args),
        Command::Run(args) => hosted::main(args),
        Command::Init(args) => init::main(args),
    }
}
