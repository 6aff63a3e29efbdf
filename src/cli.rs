//! `gatehouse shell` and `gatehouse cli`: the CLI without a dataplane.

use clap::Args;
use shell::{run_lines, run_stream, run_terminal, Session, Shell, ShellBuilder};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
pub struct ShellArgs {
    /// Startup configuration: loaded at start, written by `write memory`.
    #[arg(long, value_name = "FILE")]
    startup: Option<PathBuf>,
}

#[derive(Args)]
pub struct CliArgs {
    /// A CLI line to run; repeat for several (they run in order). The
    /// session starts in privileged EXEC mode (`#`).
    #[arg(short = 'c', long = "command", value_name = "LINE")]
    commands: Vec<String>,
    /// A script with one CLI line per line, run after the -c lines. Without
    /// -c and -f, lines are read from standard input.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Startup configuration: loaded at start, written by `write memory`.
    #[arg(long, value_name = "FILE")]
    startup: Option<PathBuf>,
}

fn build_shell(startup: Option<PathBuf>) -> Arc<Shell> {
    let builder = match startup {
        Some(path) => ShellBuilder::new().startup_path(path),
        None => ShellBuilder::new(),
    };
    let (shell, report) = builder.build();
    for line in report {
        eprintln!("{line}");
    }
    shell
}

pub fn shell_main(args: ShellArgs) -> ExitCode {
    let mut session = Session::new(build_shell(args.startup), "console", false);
    let result = if io::stdin().is_terminal() {
        run_terminal(&mut session).map_err(|e| e.to_string())
    } else {
        run_stream(&mut session, io::stdin(), io::stdout()).map_err(|e| e.to_string())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse shell: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn cli_main(args: CliArgs) -> ExitCode {
    let mut lines = args.commands;
    let read = match &args.file {
        Some(path) => std::fs::read_to_string(path)
            .map(|text| lines.extend(text.lines().map(str::to_string)))
            .map_err(|e| format!("{}: {e}", path.display())),
        None if lines.is_empty() => io::stdin()
            .lock()
            .lines()
            .try_for_each(|l| l.map(|l| lines.push(l)))
            .map_err(|e| format!("standard input: {e}")),
        None => Ok(()),
    };
    if let Err(e) = read {
        eprintln!("gatehouse cli: {e}");
        return ExitCode::FAILURE;
    }
    let mut session = Session::new(build_shell(args.startup), "cli", true);
    let mut stdout = io::stdout().lock();
    let failures = match run_lines(&mut session, &lines, &mut stdout) {
        Ok(failures) => failures,
        Err(e) => {
            eprintln!("gatehouse cli: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = stdout.flush();
    for failure in &failures {
        eprintln!("{}", failure.summary());
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
