//! The appliance itself: the CLI on the console wired to the dataplane.
//! Used by the image's init and by hosted mode.

use std::io::{BufRead, Write};
use std::path::PathBuf;

/// What the host system lets the CLI do besides configuring it.
pub struct PowerControl {
    pub reload: Box<dyn Fn() + Send + Sync>,
    pub poweroff: Box<dyn Fn() + Send + Sync>,
}

pub struct ConsoleOptions {
    /// Where `write memory` saves and the startup config is read from.
    pub startup_config: PathBuf,
    /// Messages to show before the first prompt (e.g. a config partition that failed to mount).
    pub boot_messages: Vec<String>,
    pub power: Option<PowerControl>,
}

/// Runs the CLI on stdin/stdout until the console session ends.
/// Placeholder until the shell engine lands: shows a prompt and refuses every line.
pub fn run_console(options: ConsoleOptions) {
    for message in &options.boot_messages {
        println!("{message}");
    }
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        let _ = write!(stdout, "gatehouse>");
        let _ = stdout.flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match (line.trim(), &options.power) {
            ("reload", Some(power)) => (power.reload)(),
            ("poweroff", Some(power)) => (power.poweroff)(),
            ("", _) => {}
            _ => println!("% Invalid input detected"),
        }
    }
}
