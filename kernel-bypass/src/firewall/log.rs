//! `log` on an access-list rule: a line per matching packet, rate limited
//! (so a flood cannot flood the log), kept in a bounded buffer that
//! `show logging` prints.

use super::acl::{CompiledAcl, RuleAction};
use crate::headers::FlowInfo;
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
pub struct AclLog {
    state: Mutex<State>,
}

impl AclLog {
    /// Logs a rule's match unless this second's budget is spent.
    pub fn record(&self, now: u32, acl: &CompiledAcl, rule: &RuleAction, flow: &FlowInfo) {
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
        let action = if rule.permit { "permitted" } else { "denied" };
        let line = format!(
            "%SEC-6-IPACCESSLOG: at {now}s list {} {} {action} protocol {} {}({}) -> {}({})",
            acl.name, rule.seq, flow.protocol, flow.src, flow.src_port, flow.dst, flow.dst_port
        );
        if s.lines.len() == KEPT {
            s.lines.pop_front();
        }
        s.lines.push_back(line);
    }

    /// `show logging`.
    pub fn render(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = format!(
            "Access-list log: {} lines kept (of at most {KEPT}), {} suppressed by the rate limit of {PER_SECOND}/s\n",
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
