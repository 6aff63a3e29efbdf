//! The machine's watchdog: on the image, the kernel's softdog, a timer that
//! reboots the machine unless /dev/watchdog is written to within a minute.
//! A thread feeds it while the appliance starts, for at most
//! `START_DEADLINE`; from then on the control runtime feeds it. So a hung
//! control plane, or a start that never ends, reboots the box, and on a
//! trial boot that spends one of the new slot's tries.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Well inside softdog's default margin of 60 s.
const FEED_EVERY: Duration = Duration::from_secs(5);
/// A start (dataplane, startup config with a million routes under TCG)
/// that takes longer than this is a hang.
const START_DEADLINE: Duration = Duration::from_secs(600);

pub struct Watchdog {
    device: Arc<File>,
    started: Arc<AtomicBool>,
}

impl Watchdog {
    /// Opens (and so arms) the watchdog device and feeds it while the
    /// appliance starts.
    pub fn open(path: &Path) -> io::Result<Watchdog> {
        let device = Arc::new(File::options().write(true).open(path)?);
        let started = Arc::new(AtomicBool::new(false));
        let (starting_device, starting) = (device.clone(), started.clone());
        std::thread::Builder::new()
            .name("gatehouse-wdog".into())
            .spawn(move || {
                let deadline = Instant::now() + START_DEADLINE;
                while !starting.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let _ = (&*starting_device).write_all(b"\0");
                    std::thread::sleep(FEED_EVERY);
                }
            })?;
        Ok(Watchdog { device, started })
    }

    /// Feeds the watchdog from the control runtime for ever; called once
    /// the appliance has started.
    pub async fn feed(self) {
        self.started.store(true, Ordering::Relaxed);
        loop {
            let _ = (&*self.device).write_all(b"\0");
            tokio::time::sleep(FEED_EVERY).await;
        }
    }
}
