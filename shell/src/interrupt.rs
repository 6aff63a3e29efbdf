//! Ctrl-C during a long command (`ping`, `traceroute`): the front end
//! reading the user's keys raises it, the command sees it, stops and
//! prints what it gathered. A command says while it can be stopped, so a
//! front end takes keys from the user only then (at other times typed or
//! pasted lines wait for the prompt, as always).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One session's Ctrl-C. Cheap to clone; shared by the session, its front
/// end and the command running.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<State>);

#[derive(Debug, Default)]
struct State {
    /// A stoppable command runs.
    running: AtomicBool,
    raised: AtomicBool,
}

impl Interrupt {
    /// Marks a stoppable command running until the guard is dropped.
    pub fn stoppable(&self) -> Stoppable<'_> {
        self.0.raised.store(false, Ordering::SeqCst);
        self.0.running.store(true, Ordering::SeqCst);
        Stoppable(self)
    }

    /// Whether a stoppable command runs (the front end watches for Ctrl-C).
    pub fn is_running(&self) -> bool {
        self.0.running.load(Ordering::SeqCst)
    }

    /// The user pressed Ctrl-C: true if a stoppable command takes it (the
    /// key is then used up).
    pub fn raise(&self) -> bool {
        let running = self.is_running();
        if running {
            self.0.raised.store(true, Ordering::SeqCst);
        }
        running
    }

    /// Whether the running command was asked to stop.
    pub fn is_raised(&self) -> bool {
        self.0.raised.load(Ordering::SeqCst)
    }
}

/// A stoppable command's time; see [`Interrupt::stoppable`].
pub struct Stoppable<'a>(&'a Interrupt);

impl Drop for Stoppable<'_> {
    fn drop(&mut self) {
        self.0 .0.running.store(false, Ordering::SeqCst);
        self.0 .0.raised.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_c_reaches_only_a_stoppable_command() {
        let interrupt = Interrupt::default();
        assert!(!interrupt.raise(), "nothing runs: the key stays the line's");
        let running = interrupt.stoppable();
        assert!(!interrupt.is_raised());
        assert!(interrupt.clone().raise());
        assert!(interrupt.is_raised());
        drop(running);
        assert!(!interrupt.is_raised() && !interrupt.is_running());
    }
}
