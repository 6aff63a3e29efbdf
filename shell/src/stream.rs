//! The CLI over a plain byte stream (a serial console without a terminal,
//! an SSH channel): lines end with CR, LF or CRLF; `?` prints help for the
//! line so far and keeps it; Tab completes a unique keyword; Backspace,
//! Ctrl-C (drop the line) and Ctrl-Z (`end`) work. Typed characters are
//! echoed only if asked: a tty in canonical mode echoes them itself, an SSH
//! channel with a pty does not. A line over MAX_LINE bytes is refused whole.
//! A stream that echoes is a person's terminal: its long output is paged
//! after `terminal length N` (the terminal's height does not reach the
//! stream, so it does not page before).

use crate::pager::{page, Key, Screen};
use crate::session::Session;
use std::io::{self, Read, Write};
use std::sync::mpsc::RecvTimeoutError;

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const TAB: u8 = b'\t';
const CTRL_Z: u8 = 0x1a;
const DELETE: u8 = 0x7f;
/// The longest line kept, in bytes: far above any command, and a bound on
/// what a client can make the appliance buffer.
pub const MAX_LINE: usize = 4096;

/// Writes `text` with LF turned into CRLF, for raw terminals.
fn write_crlf(out: &mut dyn Write, text: &str) -> io::Result<()> {
    for (i, part) in text.split('\n').enumerate() {
        if i > 0 {
            out.write_all(b"\r\n")?;
        }
        out.write_all(part.as_bytes())?;
    }
    Ok(())
}

/// How the stream behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamOptions {
    /// The stream is a raw interactive terminal (an SSH channel with a
    /// pty): echo typed characters back, and page long output
    /// (`terminal length`).
    pub echo: bool,
}

/// The input one byte at a time, knowing what arrived in the same read.
struct Bytes<R> {
    input: R,
    chunk: [u8; 512],
    at: usize,
    len: usize,
}

impl<R: Read> Bytes<R> {
    /// The next byte; None at end of input.
    fn next(&mut self) -> io::Result<Option<u8>> {
        while self.at == self.len {
            match self.input.read(&mut self.chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => (self.at, self.len) = (0, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.at += 1;
        Ok(Some(self.chunk[self.at - 1]))
    }

    /// Whether every byte read so far has been taken.
    fn drained(&self) -> bool {
        self.at == self.len
    }

    /// The byte just taken came after another in the same read.
    fn followed_another(&self) -> bool {
        self.at > 1
    }

    /// What the read that brought the byte just taken holds after it.
    fn rest_of_read(&self) -> &[u8] {
        &self.chunk[self.at..self.len]
    }
}

/// The stream as a terminal to page on: keys come from its input.
struct StreamScreen<'a, R> {
    out: &'a mut dyn Write,
    input: &'a mut Bytes<R>,
}

impl<R: Read> Screen for StreamScreen<'_, R> {
    fn write(&mut self, text: &str) -> io::Result<()> {
        write_crlf(self.out, text)
    }

    fn key(&mut self) -> io::Result<Key> {
        self.out.flush()?;
        let byte = self.input.next()?;
        // Enter sent as CRLF is one key.
        if byte == Some(b'\r') && self.input.rest_of_read().first() == Some(&b'\n') {
            self.input.next()?;
        }
        Ok(byte.map_or(Key::Stop, Key::of))
    }
}

/// Runs `session` without echo until `exit`, Ctrl-D on an empty line or
/// end of input.
pub fn run_stream(session: &mut Session, input: impl Read, output: impl Write) -> io::Result<()> {
    run_stream_with(session, input, output, StreamOptions::default())
}

/// Runs `session` until `exit`, Ctrl-D on an empty line or end of input.
pub fn run_stream_with(
    session: &mut Session,
    input: impl Read,
    mut output: impl Write,
    options: StreamOptions,
) -> io::Result<()> {
    let echo = options.echo;
    let out: &mut dyn Write = &mut output;
    if let Some(banner) = session.banner() {
        write_crlf(out, &format!("{banner}\n"))?;
    }
    write_crlf(out, &session.prompt())?;
    out.flush()?;
    let mut line: Vec<u8> = Vec::new();
    // Set when the line outgrew MAX_LINE: the rest of it is dropped.
    let mut too_long = false;
    let mut input = Bytes {
        input,
        chunk: [0; 512],
        at: 0,
        len: 0,
    };
    let mut previous = 0u8;
    loop {
        if input.drained() {
            out.flush()?;
        }
        let Some(byte) = input.next()? else {
            return Ok(());
        };
        match byte {
            b'\n' if previous == b'\r' => {}
            // `?` and Enter ending one read is how a canonical tty sends
            // `?`: the line is kept. In pasted text (more follows in the
            // same read) or on a raw terminal (Enter comes in a read of
            // its own) the line end runs the line as usual.
            b'\r' | b'\n'
                if input.followed_another()
                    && previous == b'?'
                    && only_line_ends(input.rest_of_read()) => {}
            b'\r' | b'\n' => {
                let text = lossy(&line);
                line.clear();
                if echo {
                    out.write_all(b"\r\n")?;
                }
                if std::mem::take(&mut too_long) {
                    write_crlf(
                        out,
                        &format!(
                            "% Line too long (over {MAX_LINE} bytes): ignored\n{}",
                            session.prompt()
                        ),
                    )?;
                } else {
                    let reply = match echo {
                        true => execute_showing(session, &text, out)?,
                        false => session.execute(&text),
                    };
                    if !show_reply(out, &mut input, session, &text, reply, echo)? {
                        return Ok(());
                    }
                }
            }
            _ if too_long => {}
            b'?' => {
                if echo {
                    out.write_all(b"?")?;
                }
                let text = lossy(&line);
                let help = session
                    .help(&text)
                    .unwrap_or_else(|e| e.render(session.prompt().chars().count()));
                write_crlf(out, &format!("\n{help}{}{text}", session.prompt()))?;
            }
            TAB => {
                let (start, words) = session.complete(&lossy(&line));
                if let [word] = words.as_slice() {
                    line.truncate(start);
                    line.extend_from_slice(word.as_bytes());
                    line.push(b' ');
                }
                write_crlf(out, &format!("\n{}{}", session.prompt(), lossy(&line)))?;
            }
            BACKSPACE | DELETE => {
                if line.pop().is_some() && echo {
                    out.write_all(b"\x08 \x08")?;
                }
            }
            CTRL_C => {
                line.clear();
                if echo {
                    out.write_all(b"^C")?;
                }
                write_crlf(out, &format!("\n{}", session.prompt()))?;
            }
            CTRL_Z => {
                line.clear();
                if echo {
                    out.write_all(b"^Z\r\n")?;
                }
                let reply = session.ctrl_z();
                if !show_reply(out, &mut input, session, "", reply, echo)? {
                    return Ok(());
                }
            }
            CTRL_D if line.is_empty() => return Ok(()),
            _ if line.len() == MAX_LINE => {
                line.clear();
                too_long = true;
            }
            _ => {
                line.push(byte);
                if echo {
                    out.write_all(&[byte])?;
                }
            }
        }
        previous = byte;
    }
}

/// Runs `line` on a person's terminal, printing a stoppable command's
/// output as it comes (its Ctrl-C is taken before the input reaches this
/// stream: see `Interrupt`).
fn execute_showing(
    session: &mut Session,
    line: &str,
    out: &mut dyn Write,
) -> io::Result<crate::session::Reply> {
    const POLL: std::time::Duration = std::time::Duration::from_millis(100);
    let interrupt = session.interrupt();
    let (finished, finishing) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let running = scope.spawn(move || {
            let reply = session.execute(line);
            let _ = finished.send(());
            reply
        });
        // A quick command ends the wait at once.
        while let Err(RecvTimeoutError::Timeout) = finishing.recv_timeout(POLL) {
            let shown = interrupt.take_progress();
            if !shown.is_empty() {
                write_crlf(out, &shown)?;
                out.flush()?;
            }
        }
        running
            .join()
            .map_err(|_| io::Error::other("the command panicked"))
    })
}

fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// True when `rest` holds nothing but line-end bytes.
fn only_line_ends(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == b'\r' || b == b'\n')
}

/// Prints a reply (paged on an echoing stream) and the next prompt; false
/// when the session ended.
fn show_reply<R: Read>(
    out: &mut dyn Write,
    input: &mut Bytes<R>,
    session: &Session,
    line: &str,
    reply: crate::session::Reply,
    echoed: bool,
) -> io::Result<bool> {
    let length = match echoed {
        true => session.page_length().unwrap_or(0),
        false => 0,
    };
    page(&reply.output, length, &mut StreamScreen { out, input })?;
    if let Some(error) = &reply.error {
        // Without echo the line is not on screen: show it for the caret.
        let prompt = session.prompt();
        let echo = if error.caret.is_some() && !echoed {
            format!("{prompt}{line}\n")
        } else {
            String::new()
        };
        write_crlf(
            out,
            &format!("{echo}{}", error.render(prompt.chars().count())),
        )?;
    }
    if reply.quit {
        out.flush()?;
        return Ok(false);
    }
    write_crlf(out, &session.prompt())?;
    Ok(true)
}
