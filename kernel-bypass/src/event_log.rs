//! The dataplane's log: lines the elements write about packets (an
//! access-list rule's `log`, a NAT pool running out), rate limited so that
//! a flood cannot flood the log, kept in a bounded buffer that `show
//! logging` prints (`logging buffered N` sets its size). One log for every
//! element, as on IOS. Control-plane services (remote syslog) subscribe to
//! the lines as they are logged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Lines kept for `show logging` until `logging buffered` says otherwise.
const KEPT: usize = grammar::config::DEFAULT_LOG_BUFFER as usize;
/// Lines a subscriber may fall behind by before it loses the oldest.
const SUBSCRIBER_BACKLOG: usize = 256;
/// Lines logged per second at most; the rest are counted.
const PER_SECOND: u32 = 10;

struct State {
    lines: VecDeque<String>,
    kept: usize,
    second: u32,
    this_second: u32,
    suppressed: u64,
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
        if s.lines.len() >= s.kept {
            s.lines.pop_front();
        }
        let line = line();
        s.lines.push_back(format!("at {now}s {line}"));
        drop(s);
        // No subscriber is not an error: the line is in the buffer.
        let _ = self.subscribers.send(line.into());
    }

    /// `show logging`.
    pub fn render(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = format!(
            "Log: {} lines kept (of at most {}), {} suppressed by the rate limit of {PER_SECOND}/s\n",
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
            text.starts_with("Log: 1 lines kept (of at most 1)"),
            "{text}"
        );
        assert!(
            text.contains("at 1s after") && !text.contains("before"),
            "{text}"
        );
    }
}
