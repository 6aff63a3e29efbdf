//! Ctrl-C during a long command (`ping`, `traceroute`): the front end
//! reading the user's keys raises it, the command sees it, stops and
//! prints what it gathered. A command says while it can be stopped, so a
//! front end takes keys from the user only then (at other times typed or
//! pasted lines wait for the prompt, as always). Meanwhile the command may
//! hand over its output as it goes (`show`), for a terminal to print at
//! once (IOS's `!` per echo); what no front end took comes with the reply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Whether `key` stops a command: Ctrl-C, or IOS's escape sequence
/// Ctrl-Shift-6 (Ctrl-^), which the operator's "Type escape sequence to
/// abort" names.
pub fn is_stop_key(key: u8) -> bool {
    key == 0x03 || key == 0x1e
}

/// One session's Ctrl-C. Cheap to clone; shared by the session, its front
/// end and the command running.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<State>);

#[derive(Debug, Default)]
struct State {
    /// A stoppable command runs.
    running: AtomicBool,
    raised: AtomicBool,
    /// Output of the running command not yet printed.
    progress: Mutex<String>,
}

impl Interrupt {
    /// Marks a stoppable command running until the guard is dropped.
    pub fn stoppable(&self) -> Stoppable<'_> {
        self.take_progress();
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

    fn progress(&self) -> std::sync::MutexGuard<'_, String> {
        // A String is whole between calls, whoever panicked.
        (self.0.progress.lock()).unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The running command's output so far (appended).
    pub fn show(&self, text: &str) {
        self.progress().push_str(text);
    }

    /// Takes the output shown and not yet printed.
    pub fn take_progress(&self) -> String {
        std::mem::take(&mut self.progress())
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

    #[test]
    fn output_shown_is_taken_once() {
        let interrupt = Interrupt::default();
        interrupt.show("!!");
        interrupt.show(".");
        assert_eq!(interrupt.take_progress(), "!!.");
        assert_eq!(interrupt.take_progress(), "");
    }
}
