//! Password guessing is slowed per source address: after a few failed
//! logins from one address, further attempts from it are refused (without
//! checking the password) until the oldest failure leaves the window. An
//! IPv6 source counts as its /64 (see [`origin`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Failed logins one source may have within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Sources remembered at most; the ones whose last failure is oldest go first.
const MAX_SOURCES: usize = 4096;

/// What the per-source limits count as one source: an IPv4 address, or the
/// /64 of an IPv6 one, since a host usually holds a whole /64 and can
/// rotate through it.
pub fn origin(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::from(u64::MAX));
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// Recent failures per source, shared by all connections.
#[derive(Clone, Default)]
pub struct LoginLimit(Arc<Mutex<HashMap<IpAddr, VecDeque<Instant>>>>);

impl LoginLimit {
    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `source` may try a password at `now`.
    pub fn allows(&self, source: IpAddr, now: Instant) -> bool {
        self.lock().get(&origin(source)).is_none_or(|failures| {
            failures
                .iter()
                .filter(|at| now.duration_since(**at) < WINDOW)
                .count()
                < MAX_FAILURES
        })
    }

    /// Records a failed login from `source` at `now`.
    pub fn failed(&self, source: IpAddr, now: Instant) {
        let source = origin(source);
        let mut table = self.lock();
        table.retain(|_, failures| {
            failures.retain(|at| now.duration_since(*at) < WINDOW);
            !failures.is_empty()
        });
        if table.len() >= MAX_SOURCES && !table.contains_key(&source) {
            let oldest = table
                .iter()
                .min_by_key(|(_, failures)| failures.back().copied())
                .map(|(address, _)| *address);
            oldest.map(|address| table.remove(&address));
        }
        let failures = table.entry(source).or_default();
        failures.push_back(now);
        if failures.len() > MAX_FAILURES {
            failures.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_refused_after_its_failures_until_they_age_out() {
        for (guesser, other) in [
            ("192.0.2.9", "192.0.2.10"),
            ("2001:db8::9", "2001:db8:0:1::9"),
        ] {
            let limit = LoginLimit::default();
            let (guesser, other) = (guesser.parse().unwrap(), other.parse().unwrap());
            let start = Instant::now();
            for n in 0..MAX_FAILURES {
                assert!(limit.allows(guesser, start), "{guesser} attempt {n}");
                limit.failed(guesser, start);
            }
            assert!(!limit.allows(guesser, start));
            let neighbour = match guesser {
                IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) + 1).into()),
                v4 => v4,
            };
            assert!(!limit.allows(neighbour, start), "the same /64");
            assert!(!limit.allows(guesser, start + WINDOW / 2));
            assert!(limit.allows(other, start), "other sources are not affected");
            assert!(limit.allows(guesser, start + WINDOW), "failures age out");
        }
    }

    #[test]
    fn the_table_stays_bounded() {
        let limit = LoginLimit::default();
        let now = Instant::now();
        for n in 0..(MAX_SOURCES as u32 + 10) {
            limit.failed(std::net::Ipv4Addr::from(0x0a00_0000 + n).into(), now);
        }
        assert!(limit.lock().len() <= MAX_SOURCES);
    }
}
