//! The dataplane's log: lines the elements write about packets (an
//! access-list rule's `log`, a NAT pool running out), rate limited so that
//! a flood cannot flood the log, kept in a bounded buffer that `show
//! logging` prints. One log for every element, as on IOS.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Lines kept for `show logging`.
const KEPT: usize = 200;
/// Lines logged per second at most; the rest are counted.
const PER_SECOND: u32 = 10;

#[derive(Default)]
struct State {
    lines: VecDeque<String>,
    second: u32,
    this_second: u32,
    suppressed: u64,
}

#[derive(Default)]
pub struct EventLog {
    state: Mutex<State>,
}

impl EventLog {
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
        if s.lines.len() == KEPT {
            s.lines.pop_front();
        }
        s.lines.push_back(format!("at {now}s {}", line()));
    }

    /// `show logging`.
    pub fn render(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = format!(
            "Log: {} lines kept (of at most {KEPT}), {} suppressed by the rate limit of {PER_SECOND}/s\n",
            s.lines.len(),
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
}
