//! IOS's "5 minute input rate" of `show interfaces`: every 5 seconds a
//! thread reads each interface's totals and folds the growth since the last
//! reading into an exponentially weighted average with a 5-minute time
//! constant, as IOS does with its default `load-interval 300`. The workers
//! count as always; only the reader does arithmetic.

use crate::counters::{interface_totals, WorkerCounters, MAX_INTERFACES};
use crate::snapshot::IfaceId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the totals are read.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// The averages' time constant, in seconds.
const WINDOW_SECS: f64 = 300.0;

/// An interface's averaged traffic, per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rate {
    pub rx_bits: f64,
    pub rx_packets: f64,
    pub tx_bits: f64,
    pub tx_packets: f64,
}

/// One interface's last reading (rx bytes, rx packets, tx bytes, tx
/// packets) and its averages in the same order.
#[derive(Clone, Copy, Default)]
struct Average {
    last: Option<[u64; 4]>,
    rate: [f64; 4],
}

/// The averages of every interface id.
pub struct Rates {
    averages: Mutex<Vec<Average>>,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            averages: Mutex::new(vec![Average::default(); MAX_INTERFACES]),
        }
    }
}

impl Rates {
    /// Folds the counters' growth over the last `elapsed` seconds into the
    /// averages. The first reading of an interface only sets its base.
    pub fn sample(&self, workers: &[Arc<WorkerCounters>], elapsed: f64) {
        let keep = (-elapsed / WINDOW_SECS).exp();
        let mut averages = self.averages.lock().unwrap_or_else(|p| p.into_inner());
        for (id, average) in averages.iter_mut().enumerate() {
            let Ok(id) = IfaceId::try_from(id) else {
                break;
            };
            let t = interface_totals(workers, id);
            let now = [
                t.rx_bytes.saturating_mul(8),
                t.rx_packets,
                t.tx_bytes.saturating_mul(8),
                t.tx_packets,
            ];
            if let Some(last) = average.last {
                for ((rate, now), last) in average.rate.iter_mut().zip(now).zip(last) {
                    let current = now.saturating_sub(last) as f64 / elapsed;
                    *rate = *rate * keep + current * (1.0 - keep);
                }
            }
            average.last = Some(now);
        }
    }

    /// The averages of `iface`.
    pub fn of(&self, iface: IfaceId) -> Rate {
        let averages = self.averages.lock().unwrap_or_else(|p| p.into_inner());
        let [rx_bits, rx_packets, tx_bits, tx_packets] = averages
            .get(usize::from(iface))
            .map_or([0.0; 4], |a| a.rate);
        Rate {
            rx_bits,
            rx_packets,
            tx_bits,
            tx_packets,
        }
    }
}

/// Starts the thread that samples `workers` into `rates` until `stop`.
pub fn spawn_sampler(
    rates: Arc<Rates>,
    workers: Vec<Arc<WorkerCounters>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("gatehouse-rates".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(SAMPLE_INTERVAL);
                rates.sample(&workers, SAMPLE_INTERVAL.as_secs_f64());
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_flow_approaches_its_rate_with_a_five_minute_time_constant() {
        let worker = Arc::new(WorkerCounters::default());
        let workers = [worker.clone()];
        let rates = Rates::default();
        rates.sample(&workers, 5.0);
        // 100 packets of 125 bytes a second: 100,000 bits/s.
        let mut after_one = Rate::default();
        for step in 0..120 {
            for _ in 0..500 {
                worker.rx(3, 125);
            }
            rates.sample(&workers, 5.0);
            if step == 0 {
                after_one = rates.of(3);
            }
        }
        assert!(
            after_one.rx_packets > 1.0 && after_one.rx_packets < 2.0,
            "one 5-second sample moves a 5-minute average by about 1/60: {after_one:?}"
        );
        // Ten minutes are two time constants: 1 - e^-2 of the rate.
        let settled = rates.of(3);
        let expected = 1.0 - (-2.0f64).exp();
        assert!(
            (settled.rx_packets - 100.0 * expected).abs() < 0.1,
            "ten minutes of it: {settled:?}"
        );
        assert!(
            (settled.rx_bits - 100_000.0 * expected).abs() < 100.0,
            "{settled:?}"
        );
        assert_eq!(settled.tx_packets, 0.0);
        assert_eq!(rates.of(4), Rate::default());
    }
}
