//! `reload` and `poweroff`: flush and release the config partition, then
//! ask the kernel to reboot or power off.

use super::mounts;
use crate::appliance::PowerControl;
use std::sync::Arc;

fn shutdown(command: libc::c_int, what: &str) {
    println!("gatehouse: {what}");
    mounts::release_config();
    unsafe { libc::reboot(command) };
    // Only reached when the kernel refuses (not PID 1 in the initial namespace).
    println!(
        "gatehouse: {what} failed: {}",
        std::io::Error::last_os_error()
    );
}

pub fn control() -> PowerControl {
    PowerControl {
        reload: Arc::new(|| shutdown(libc::RB_AUTOBOOT, "rebooting")),
        poweroff: Arc::new(|| shutdown(libc::RB_POWER_OFF, "powering off")),
    }
}
