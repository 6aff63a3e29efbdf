//! The CLI over a plain byte stream (a serial console without a terminal,
//! an SSH channel): lines end with CR, LF or CRLF; `?` prints help for the
//! line so far and keeps it; Tab completes a unique keyword; Backspace,
//! Ctrl-C (drop the line) and Ctrl-Z (`end`) work. Typed characters are
//! echoed only if asked: a tty in canonical mode echoes them itself, an SSH
//! channel with a pty does not. A line over MAX_LINE bytes is refused whole.

use crate::session::Session;
use std::io::{self, Read, Write};

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
    /// Echo typed characters back (for raw channels).
    pub echo: bool,
}

/// Runs `session` without echo until `exit`, Ctrl-D on an empty line or
/// end of input.
pub fn run_stream(session: &mut Session, input: impl Read, output: impl Write) -> io::Result<()> {
    run_stream_with(session, input, output, StreamOptions::default())
}

/// Runs `session` until `exit`, Ctrl-D on an empty line or end of input.
pub fn run_stream_with(
    session: &mut Session,
    mut input: impl Read,
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
    let mut chunk = [0u8; 512];
    let mut previous = 0u8;
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let received = &chunk[..n];
        for (at, &byte) in received.iter().enumerate() {
            match byte {
                b'\n' if previous == b'\r' => {}
                // `?` and Enter ending one read is how a canonical tty sends
                // `?`: the line is kept. In pasted text (more follows in the
                // same read) or on a raw terminal (Enter comes in a read of
                // its own) the line end runs the line as usual.
                b'\r' | b'\n'
                    if at > 0 && previous == b'?' && only_line_ends(&received[at + 1..]) => {}
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
                        let reply = session.execute(&text);
                        if !show_reply(out, session, &text, reply, echo)? {
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
                    if !show_reply(out, session, "", reply, echo)? {
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
        out.flush()?;
    }
}

fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// True when `rest` holds nothing but line-end bytes.
fn only_line_ends(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == b'\r' || b == b'\n')
}

/// Prints a reply and the next prompt; false when the session ended.
fn show_reply(
    out: &mut dyn Write,
    session: &Session,
    line: &str,
    reply: crate::session::Reply,
    echoed: bool,
) -> io::Result<bool> {
    write_crlf(out, &reply.output)?;
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
