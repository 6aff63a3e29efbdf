//! The appliance init: what the binary does as PID 1 of the image.
//! Mounts the kernel filesystems, takes the serial console, loads the
//! modules the devices need, mounts the config partition, reaps orphans,
//! then runs the appliance on the console for ever (PID 1 must not exit).

mod boot_slots;
mod console;
mod modules;
mod mounts;
mod power;
mod reaper;

use crate::appliance::{self, ConsoleOptions};
use clap::Args;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Default)]
pub struct InitArgs {}

const MODULES_DIR: &str = "/lib/modules";
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
    let mut loader = load_modules(&mut messages);
    let config = mounts::mount_config();
    messages.push(config.message());
    if let Err(error) = reaper::spawn() {
        messages.push(format!("could not start the zombie reaper: {error}"));
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let image = match boot_slots::booted_slot(&cmdline) {
        Some(slot) => {
            messages.push(format!("booted from slot {}", slot.to_ascii_uppercase()));
            format!("slot {}", slot.to_ascii_uppercase())
        }
        None => "kernel command line without a slot".to_string(),
    };
    messages.extend(boot_slots::confirm_trial_boot(&cmdline, loader.as_mut()));
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
        .map(|m| format!("gatehouse: {m}"))
        .collect();
    loop {
        let options = ConsoleOptions {
            startup_config: Path::new(mounts::CONFIG_DIR).join("startup-config"),
            boot_messages: std::mem::take(&mut messages),
            power: Some(power::control()),
            image: image.clone(),
        };
        // A panic has already been printed by the hook; the console comes back.
        if panic::catch_unwind(AssertUnwindSafe(|| appliance::run_console(options))).is_err() {
            println!("gatehouse: the console session failed; starting a new one");
        }
        std::thread::sleep(RESTART_PAUSE);
    }
}

/// Loads the drivers of the devices present, then the config partition's
/// filesystem (no device selects a filesystem, and there is no modprobe for
/// the kernel to ask). Returns the loader for later needs.
fn load_modules(messages: &mut Vec<String>) -> Option<modules::Loader> {
    match modules::Loader::open(Path::new(MODULES_DIR)) {
        Ok(mut loader) => {
            loader.load_for_devices();
            for module in mounts::CONFIG_FILESYSTEM_MODULES {
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
