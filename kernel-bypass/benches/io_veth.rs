//! Raw throughput of each packet I/O backend with 64-byte frames.
//!
//! For every backend: receive rate while an AF_PACKET port floods the other
//! end of a veth pair (for TAP: the tap's kernel side), then send rate with
//! the frames the kernel counts arriving at the other end. Needs root.
//! `GH_BENCH_SECS` sets the seconds per measurement (default 2).

#[path = "../tests/support/mod.rs"]
mod support;

use kernel_bypass::frame::Batch;
use kernel_bypass::io::{AfPacketConfig, AfPacketPort, AfXdpConfig, Backend, PacketPort, XdpMode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::frames::numbered;
use support::netns::{is_root, output, run, unique};
use support::ports::{wait_readable, PortKind};

const FRAME_LEN: usize = 64;
const BURST: usize = 64;

/// The two interfaces of one measurement, removed on drop.
struct Wire {
    /// Where the measured port is opened.
    port_if: String,
    /// Where the generator runs and the kernel counts arrivals.
    far_if: String,
}

impl Wire {
    fn new(backend: Backend) -> Wire {
        let base = unique("b");
        if backend == Backend::Tap {
            // The tap port creates its own interface; the generator uses its
            // kernel side.
            let name = format!("{base}t");
            return Wire {
                port_if: name.clone(),
                far_if: name,
            };
        }
        let wire = Wire {
            port_if: format!("{base}a"),
            far_if: format!("{base}b"),
        };
        run(&[
            "ip",
            "link",
            "add",
            &wire.port_if,
            "type",
            "veth",
            "peer",
            "name",
            &wire.far_if,
        ]);
        for name in [&wire.port_if, &wire.far_if] {
            run(&["ip", "link", "set", name, "addrgenmode", "none"]);
            run(&["ip", "link", "set", name, "up"]);
        }
        wire
    }

    fn far_rx_packets(&self) -> u64 {
        let path = format!("/sys/class/net/{}/statistics/rx_packets", self.far_if);
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        let _ = output(&["ip", "link", "del", &self.port_if]);
    }
}

/// A broadcast frame of an experimental ethertype no stack handles.
fn test_frame() -> [u8; FRAME_LEN] {
    numbered(0)
}

fn mpps(packets: u64, elapsed: Duration) -> f64 {
    packets as f64 / elapsed.as_secs_f64() / 1e6
}

/// Floods `ifname` from another thread until `stop`; returns frames offered.
fn spawn_generator(ifname: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut generator =
            AfPacketPort::open(&ifname, AfPacketConfig::default()).expect("open generator");
        let frame = test_frame();
        let mut offered = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut burst = std::iter::repeat_n(&frame[..], BURST);
            offered += generator.send(&mut burst).unwrap_or(0) as u64;
        }
        offered
    })
}

fn bench_rx(port: &mut dyn PacketPort, wire: &Wire, duration: Duration) -> String {
    let stop = Arc::new(AtomicBool::new(false));
    let generator = spawn_generator(wire.far_if.clone(), stop.clone());
    let mut batch = Batch::new(BURST);
    let mut received = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        batch.clear();
        match port.recv(&mut batch) {
            Ok(n) if n > 0 => received += n as u64,
            // Idle like a worker does, leaving the core to the kernel's
            // delivery work (on veth that runs on the same two cores).
            _ => wait_readable(port, Duration::from_millis(1)),
        }
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let offered = generator.join().expect("generator");
    format!(
        "rx {:.3} Mpps (generator offered {:.3} Mpps)",
        mpps(received, elapsed),
        mpps(offered, elapsed)
    )
}

fn bench_tx(port: &mut dyn PacketPort, wire: &Wire, duration: Duration) -> String {
    let frame = test_frame();
    let before = wire.far_rx_packets();
    let mut accepted = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration {
        let mut burst = std::iter::repeat_n(&frame[..], BURST);
        accepted += port.send(&mut burst).unwrap_or(0) as u64;
    }
    let elapsed = start.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    let arrived = wire.far_rx_packets().saturating_sub(before);
    format!(
        "tx {:.3} Mpps accepted, {:.3} Mpps arrived",
        mpps(accepted, elapsed),
        mpps(arrived, elapsed)
    )
}

fn main() {
    if !is_root() {
        println!("io_veth: skipped, needs root");
        return;
    }
    let secs = std::env::var("GH_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let duration = Duration::from_secs_f64(secs);
    println!("io_veth: {FRAME_LEN}-byte frames, bursts of {BURST}, {secs} s per figure");
    for (label, kind) in cases() {
        let wire = Wire::new(kind.backend());
        let mut port = match kind.open(&wire.port_if) {
            Ok(port) => port,
            Err(e) => {
                println!("{label:>14}: {e}");
                continue;
            }
        };
        let rx = bench_rx(port.as_mut(), &wire, duration);
        let tx = bench_tx(port.as_mut(), &wire, duration);
        println!("{label:>14}: {rx}; {tx}");
    }
}

/// What is measured: every backend as `open_port` makes it, plus AF_PACKET
/// with per-frame (V2) rings and AF_XDP with the program in generic (SKB)
/// mode, as on drivers without native XDP.
fn cases() -> [(&'static str, PortKind); 5] {
    let generic = AfXdpConfig {
        mode: XdpMode::Generic,
        ..AfXdpConfig::default()
    };
    [
        ("af-packet", PortKind::Default(Backend::AfPacket)),
        ("af-packet v2", PortKind::af_packet_v2()),
        ("af-xdp", PortKind::Default(Backend::AfXdp)),
        ("af-xdp generic", PortKind::AfXdp(generic)),
        ("tap", PortKind::Default(Backend::Tap)),
    ]
}
