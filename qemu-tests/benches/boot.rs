//! Boot time to the CLI prompt under TCG, direct kernel boot and UEFI
//! (OVMF + systemd-boot), and the image's sizes. Prints figures only.
//! `cargo bench -p qemu-tests --bench boot`

use qemu_tests::{image, Appliance, BootOptions};
use std::time::Duration;

const RUNS: usize = 3;

fn median_boot(uefi: bool) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let mut appliance = Appliance::boot(BootOptions {
                uefi,
                ..BootOptions::default()
            })
            .expect("starting QEMU");
            appliance.wait_for_prompt().expect("no prompt").1
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn mib(path: &std::path::Path) -> f64 {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or_default();
    size as f64 / (1 << 20) as f64
}

fn main() {
    let image = image();
    println!("kernel     {:6.1} MiB", mib(&image.kernel));
    println!("initramfs  {:6.1} MiB", mib(&image.initramfs));
    println!("disk image {:6.1} MiB (sparse)", mib(&image.disk));
    for (name, uefi) in [("-kernel boot", false), ("UEFI boot", true)] {
        let time = median_boot(uefi);
        println!(
            "{name}: QEMU start to prompt, median of {RUNS}: {:.2} s",
            time.as_secs_f64()
        );
    }
}
