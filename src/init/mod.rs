//! The appliance init: what the binary does as PID 1 of the image.
//! Mounts the kernel filesystems, takes the serial console, loads the
//! modules the devices need, mounts the config partition, reaps orphans,
//! then runs the appliance on the console for ever (PID 1 must not exit).

mod console;
mod modules;
pub mod mounts;
mod power;
mod reaper;

use crate::appliance::{self, ConsoleOptions};
use crate::install::trial::{self, Trial};
use crate::watchdog::Watchdog;
use boot_image::slot;
use clap::Args;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Default)]
pub struct InitArgs {}

const MODULES_DIR: &str = "/lib/modules";
/// The ESP's filesystem and the code pages its defaults need (`install`
/// writes the slots there), and the software watchdog: no device selects them.
const EXTRA_MODULES: [&str; 4] = ["vfat", "nls_cp437", "nls_ascii", "softdog"];
const WATCHDOG_DEVICE: &str = "/dev/watchdog";
/// Pause before restarting a console session that ended, so a console
/// that keeps failing does not spin.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

pub fn main(_args: InitArgs) -> ExitCode {
    if std::process::id() != 1 {
        eprintln!("gatehouse: init runs only as PID 1 (the image's /init)");
        return ExitCode::FAILURE;
    }
    reaper::block_sigchld();
    let mut messages: Vec<String> = mounts::mount_kernel_filesystems();
    if let Err(problem) = console::attach() {
        messages.push(format!("console: {problem}"));
    }
    let loader = load_modules(&mut messages);
    let config = mounts::mount_config();
    messages.push(config.message());
    if let Err(error) = reaper::spawn() {
        messages.push(format!("could not start the zombie reaper: {error}"));
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let image = match slot::booted_slot(&cmdline) {
        Some(slot) => {
            messages.push(format!("booted from slot {}", slot.to_ascii_uppercase()));
            format!("slot {}", slot.to_ascii_uppercase())
        }
        None => "kernel command line without a slot".to_string(),
    };
    let trial = Trial::of_this_boot(&cmdline);
    if trial.is_none() {
        messages.extend(trial::fallback_notice(&cmdline));
    }
    let watchdog = match Watchdog::open(Path::new(WATCHDOG_DEVICE)) {
        Ok(watchdog) => Some(watchdog),
        Err(error) => {
            messages.push(format!("no watchdog ({WATCHDOG_DEVICE}: {error})"));
            None
        }
    };
    let loaded = loader.map(|loader| loader.loaded).unwrap_or_default();
    messages.push(format!(
        "modules: {}; up {:.2} s",
        if loaded.is_empty() {
            "none".into()
        } else {
            loaded.join(" ")
        },
        uptime_seconds().unwrap_or_default()
    ));
    let mut messages: Vec<String> = messages
        .into_iter()
        .map(|m| match m.starts_with('%') {
            true => m,
            false => format!("gatehouse: {m}"),
        })
        .collect();
    let (mut trial, mut watchdog) = (trial, watchdog);
    loop {
        let options = ConsoleOptions {
            startup_config: Path::new(mounts::CONFIG_DIR).join("startup-config"),
            boot_messages: std::mem::take(&mut messages),
            power: Some(power::control()),
            image: image.clone(),
            trial: trial.take(),
            watchdog: watchdog.take(),
        };
        // A panic has already been printed by the hook; the console comes back.
        if panic::catch_unwind(AssertUnwindSafe(|| appliance::run_console(options))).is_err() {
            println!("gatehouse: the console session failed; starting a new one");
        }
        std::thread::sleep(RESTART_PAUSE);
    }
}

/// Loads the drivers of the devices present, then the filesystems and the
/// watchdog (no device selects those, and there is no modprobe for the
/// kernel to ask).
fn load_modules(messages: &mut Vec<String>) -> Option<modules::Loader> {
    match modules::Loader::open(Path::new(MODULES_DIR)) {
        Ok(mut loader) => {
            loader.load_for_devices();
            for module in mounts::CONFIG_FILESYSTEM_MODULES
                .iter()
                .chain(&EXTRA_MODULES)
            {
                loader.load(module);
            }
            messages.append(&mut loader.problems);
            Some(loader)
        }
        Err(problem) => {
            messages.push(problem);
            None
        }
    }
}

fn uptime_seconds() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
