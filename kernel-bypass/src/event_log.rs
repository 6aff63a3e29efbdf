//! The dataplane's log: lines the elements write about packets (an
//! access-list rule's `log`, a NAT pool running out), rate limited so that
//! a flood cannot flood the log, kept in a bounded buffer that `show
//! logging` prints (`logging buffered N LEVEL` sets its size and the least
//! severe line kept). One log for every element, as on IOS, whose lines
//! carry their severity as IOS's do (`%SYS-5-CONFIG_I: ...`: 5, notice).
//! Control-plane services (remote syslog) subscribe to every line as it is
//! logged, and filter by their own level.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Lines kept for `show logging` until `logging buffered` says otherwise.
const KEPT: usize = grammar::config::DEFAULT_LOG_BUFFER as usize;
/// Lines a subscriber may fall behind by before it loses the oldest.
const SUBSCRIBER_BACKLOG: usize = 256;
/// Lines logged per second at most; the rest are counted.
const PER_SECOND: u32 = 10;

/// The severity of a line in IOS's form `%FACILITY-SEVERITY-MNEMONIC:`;
/// notice (5) for a line without one.
pub fn severity(line: &str) -> u8 {
    let tag = line
        .strip_prefix('%')
        .and_then(|rest| rest.split(':').next());
    let level = tag
        .and_then(|t| t.split('-').nth(1))
        .and_then(|l| l.parse().ok());
    level.filter(|l| *l <= 7).unwrap_or(5)
}

struct State {
    lines: VecDeque<String>,
    kept: usize,
    /// The least severe level buffered.
    level: u8,
    second: u32,
    this_second: u32,
    suppressed: u64,
}

/// Lets a line that a flood would repeat for every packet (a table full)
/// reach the log at most once a second, checked with one atomic load and
/// without the log's lock.
#[derive(Default)]
pub struct OncePerSecond {
    /// The second last offered, plus one (so second 0 is not "seen").
    offered: AtomicU32,
}

impl OncePerSecond {
    pub fn record(&self, log: &EventLog, now: u32, line: impl FnOnce() -> String) {
        let mark = now.wrapping_add(1);
        if self.offered.load(Ordering::Relaxed) != mark
            && self.offered.swap(mark, Ordering::Relaxed) != mark
        {
            log.record(now, line);
        }
    }
}

pub struct EventLog {
    state: Mutex<State>,
    subscribers: broadcast::Sender<Arc<str>>,
}

impl Default for EventLog {
    fn default() -> Self {
        EventLog {
            state: Mutex::new(State {
                lines: VecDeque::new(),
                kept: KEPT,
                level: grammar::config::LOG_LEVELS.len() as u8 - 1,
                second: 0,
                this_second: 0,
                suppressed: 0,
            }),
            subscribers: broadcast::channel(SUBSCRIBER_BACKLOG).0,
        }
    }
}

impl EventLog {
    /// New lines from now on (without the buffer's `at Ns` prefix); a
    /// receiver that falls behind by more than a backlog loses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.subscribers.subscribe()
    }

    /// Sets how many lines are kept (`logging buffered N`), dropping the
    /// oldest beyond it.
    pub fn set_kept(&self, kept: usize) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.kept = kept.max(1);
        while s.lines.len() > s.kept {
            s.lines.pop_front();
        }
    }

    /// Sets the least severe level kept (`logging buffered LEVEL`); the
    /// lines kept already stay.
    pub fn set_level(&self, level: u8) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).level = level;
    }

    /// Logs the line `line` makes, unless this second's budget is spent
    /// (then the line is not even made).
    pub fn record(&self, now: u32, line: impl FnOnce() -> String) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.second != now {
            s.second = now;
            s.this_second = 0;
        }
        if s.this_second >= PER_SECOND {
            s.suppressed += 1;
            return;
        }
        s.this_second += 1;
        let line = line();
        if severity(&line) <= s.level {
            if s.lines.len() >= s.kept {
                s.lines.pop_front();
            }
            s.lines.push_back(format!("at {now}s {line}"));
        }
        drop(s);
        // No subscriber is not an error: the line is in the buffer.
        let _ = self.subscribers.send(line.into());
    }

    /// `show logging`.
    pub fn render(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let level = grammar::config::LOG_LEVELS[usize::from(s.level)];
        let mut out = format!(
            "Log: {} lines kept (of at most {}, level {level}), {} suppressed by the rate limit of {PER_SECOND}/s\n",
            s.lines.len(),
            s.kept,
            s.suppressed
        );
        for line in &s.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_to_the_budget_and_counted() {
        let log = EventLog::default();
        for i in 0..25 {
            log.record(7, || format!("line {i}"));
        }
        log.record(8, || "next second".to_string());
        let text = log.render();
        assert!(text.starts_with("Log: 11 lines kept"), "{text}");
        assert!(text.contains("15 suppressed"), "{text}");
        assert!(text.contains("at 8s next second"), "{text}");
    }

    #[test]
    fn lines_less_severe_than_the_level_are_not_kept_but_still_go_to_subscribers() {
        assert_eq!(severity("%SYS-5-CONFIG_I: Configured by admin"), 5);
        assert_eq!(severity("%SEC-6-IPACCESSLOG: list A permitted"), 6);
        assert_eq!(severity("%IPNAT-4-ADDR_ALLOC_FAILURE: pool P"), 4);
        assert_eq!(severity("no tag at all"), 5);
        assert_eq!(severity("%BAD-9-X: out of range"), 5);
        let log = EventLog::default();
        let mut lines = log.subscribe();
        log.set_level(4);
        log.record(1, || "%SEC-6-IPACCESSLOG: list A permitted".to_string());
        log.record(1, || "%IPNAT-4-ADDR_ALLOC_FAILURE: pool P".to_string());
        let text = log.render();
        assert!(text.contains("level warnings"), "{text}");
        assert!(
            !text.contains("IPACCESSLOG") && text.contains("ADDR_ALLOC"),
            "{text}"
        );
        assert!(lines.try_recv().unwrap().contains("IPACCESSLOG"));
    }

    #[test]
    fn a_gated_line_is_offered_once_a_second() {
        let log = EventLog::default();
        let gate = OncePerSecond::default();
        for now in [0, 0, 0, 1, 1, 5] {
            gate.record(&log, now, || format!("%FW-4-SESSION_TABLE_FULL: at {now}"));
        }
        let text = log.render();
        assert_eq!(text.matches("SESSION_TABLE_FULL").count(), 3, "{text}");
    }

    #[test]
    fn subscribers_get_new_lines_and_the_buffer_shrinks_to_its_size() {
        let log = EventLog::default();
        log.record(1, || "before".to_string());
        let mut lines = log.subscribe();
        log.record(1, || "after".to_string());
        assert_eq!(&*lines.try_recv().unwrap(), "after");
        assert!(lines.try_recv().is_err());
        log.set_kept(1);
        let text = log.render();
        assert!(
            text.starts_with("Log: 1 lines kept (of at most 1, level debugging)"),
            "{text}"
        );
        assert!(
            text.contains("at 1s after") && !text.contains("before"),
            "{text}"
        );
    }
}
