//! Test support shared by kernel-bypass's tests and benches: Linux hosts in
//! network namespaces, packet builders, I/O port fixtures, dataplane and
//! local-stack setups. Every fixture cleans up on drop, even when a test
//! fails.

// Each test binary (and bench) uses a different part of these fixtures.
#![allow(dead_code)]

pub mod dataplane;
pub mod frames;
pub mod harness;
pub mod load;
pub mod local;
pub mod netns;
pub mod packets;
pub mod ports;
pub mod wireguard;

use std::time::{Duration, Instant};

/// Hang guard only: how long to wait for something that should happen
/// soon (ARP, listeners, paths coming up). Never a measurement.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `attempt` until it returns Some; panics naming `what` once
/// `PATIENCE` has passed.
pub fn retry<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `done` holds; panics naming `what` once `PATIENCE` has passed.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    retry(what, || done().then_some(()))
}
