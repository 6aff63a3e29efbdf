//! The serial console driven like a person: a reader thread collects
//! everything QEMU prints; callers wait for a pattern, type a line, and
//! read what came back up to the next prompt.

use anyhow::{bail, Result};
use regex::Regex;
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Any CLI prompt at the start of a line: the hostname (`gatehouse` until
/// the config names another) then `>`, `#`, or a mode: `(config-if)#`.
pub const PROMPT: &str = r"^[A-Za-z0-9][A-Za-z0-9.-]*(\([a-z0-9-]+\))?[>#] ?";

/// What the console printed, as a person would read it: carriage returns
/// and terminal escape sequences (rustyline's cursor moves, bracketed
/// paste, the firmware's screen clears) removed as the bytes arrive.
#[derive(Default)]
struct Log {
    bytes: Vec<u8>,
    escape: Escape,
    closed: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside a CSI sequence (ESC [ params final).
    Csi,
}

impl Log {
    fn push(&mut self, input: &[u8]) {
        for &byte in input {
            self.escape = match (self.escape, byte) {
                (Escape::None, 0x1b) => Escape::Start,
                (Escape::None, b'\r') => Escape::None,
                (Escape::None, _) => {
                    self.bytes.push(byte);
                    Escape::None
                }
                (Escape::Start, b'[') => Escape::Csi,
                (Escape::Start, _) => Escape::None,
                (Escape::Csi, 0x40..=0x7e) => Escape::None,
                (Escape::Csi, _) => Escape::Csi,
            };
        }
    }
}

pub struct Console {
    log: Arc<(Mutex<Log>, Condvar)>,
    input: Box<dyn Write + Send>,
    /// How far expect() has consumed the log.
    cursor: usize,
}

impl Console {
    pub fn new(output: impl Read + Send + 'static, input: impl Write + Send + 'static) -> Self {
        let log = Arc::new((Mutex::new(Log::default()), Condvar::new()));
        let writer = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut output = output;
            let mut buffer = [0u8; 4096];
            loop {
                let read = output.read(&mut buffer).unwrap_or(0);
                let (lock, signal) = &*writer;
                let mut log = lock.lock().unwrap_or_else(|e| e.into_inner());
                if read == 0 {
                    log.closed = true;
                } else {
                    log.push(&buffer[..read]);
                }
                signal.notify_all();
                if read == 0 {
                    return;
                }
            }
        });
        Console {
            log,
            input: Box::new(input),
            cursor: 0,
        }
    }

    /// Everything the console printed so far.
    pub fn transcript(&self) -> String {
        let log = self.log.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&log.bytes).into_owned()
    }

    /// Waits until `pattern` appears after what was already consumed;
    /// returns the text before the match and consumes through it.
    pub fn expect(&mut self, pattern: &str, timeout: Duration) -> Result<String> {
        let regex = Regex::new(&format!("(?m){pattern}"))?;
        let deadline = Instant::now() + timeout;
        let (lock, signal) = &*self.log;
        let mut log = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let text = String::from_utf8_lossy(&log.bytes[self.cursor..]);
            if let Some(found) = regex.find(&text) {
                let before = text[..found.start()].to_string();
                // Lossy text may be longer than the bytes (replacement characters).
                self.cursor = (self.cursor + found.end()).min(log.bytes.len());
                return Ok(before);
            }
            let now = Instant::now();
            if log.closed {
                bail!("console closed (QEMU exited) before /{pattern}/ appeared");
            }
            if now >= deadline {
                bail!("/{pattern}/ did not appear within {timeout:?}");
            }
            log = signal
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn send_line(&mut self, line: &str) -> Result<()> {
        self.input.write_all(format!("{line}\r").as_bytes())?;
        self.input.flush()?;
        Ok(())
    }

    /// Types a command and returns its output (without the echo) up to the next prompt.
    pub fn command(&mut self, line: &str, timeout: Duration) -> Result<String> {
        self.send_line(line)?;
        let output = self.expect(PROMPT, timeout)?;
        let output = output.trim_start_matches(' ');
        let output = output.strip_prefix(line).unwrap_or(output);
        Ok(output.trim_matches('\n').to_string())
    }

    /// Waits for the console to close (QEMU exiting).
    pub fn wait_closed(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let (lock, signal) = &*self.log;
        let mut log = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !log.closed {
            let now = Instant::now();
            if now >= deadline {
                bail!("QEMU still running after {timeout:?}");
            }
            log = signal
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }
}

/// Signs that something crashed: a Rust panic or a kernel panic/oops.
pub fn crash_lines(transcript: &str) -> Vec<&str> {
    transcript
        .lines()
        .filter(|line| {
            line.contains("panicked at")
                || line.contains("Kernel panic")
                || line.contains("Oops:")
                || line.contains("BUG:")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn expect_consumes_and_command_strips_the_echo() {
        let output =
            Cursor::new(b"boot\r\nmsg\r\ngatehouse>show x\r\nx is 1\r\ngatehouse#".to_vec());
        let mut console = Console::new(output, Vec::new());
        let boot = console.expect(PROMPT, Duration::from_secs(5)).unwrap();
        assert_eq!(boot, "boot\nmsg\n");
        let answer = console.command("show x", Duration::from_secs(5)).unwrap();
        assert_eq!(answer, "x is 1");
        assert!(console.expect("never", Duration::from_millis(50)).is_err());
        let renamed = Cursor::new(b"gatehouse: note\r\nedge-a(config-if)#".to_vec());
        let mut console = Console::new(renamed, Vec::new());
        let before = console.expect(PROMPT, Duration::from_secs(5)).unwrap();
        assert_eq!(before, "gatehouse: note\n");
    }

    #[test]
    fn finds_crashes() {
        let log =
            "ok\nthread 'main' panicked at src/x.rs:1:1:\n[ 1.0] Kernel panic - not syncing\n";
        assert_eq!(crash_lines(log).len(), 2);
        assert!(crash_lines("gatehouse>").is_empty());
    }
}
