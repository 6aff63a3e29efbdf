//! The CLI over a plain byte stream (a serial console without a terminal,
//! an SSH channel): lines end with CR, LF or CRLF; `?` prints help for the
//! line so far and keeps it; Tab completes a unique keyword; Backspace,
//! Ctrl-C (drop the line) and Ctrl-Z (`end`) work. Typed characters are
//! echoed only if asked: a tty in canonical mode echoes them itself, an SSH
//! channel with a pty does not.

use crate::session::Session;
use std::io::{self, Read, Write};

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const TAB: u8 = b'\t';
const CTRL_Z: u8 = 0x1a;
const DELETE: u8 = 0x7f;

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
    let mut chunk = [0u8; 512];
    let mut previous = 0u8;
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // A line end arriving in the same read as `?` was only typed to
        // send the `?` (a canonical tty): it does not run the line.
        let mut help_in_this_read = false;
        for &byte in &chunk[..n] {
            let text = String::from_utf8_lossy(&line).into_owned();
            match byte {
                b'\n' if previous == b'\r' => {}
                b'\r' | b'\n' if help_in_this_read => help_in_this_read = false,
                b'\r' | b'\n' => {
                    line.clear();
                    if echo {
                        out.write_all(b"\r\n")?;
                    }
                    let reply = session.execute(&text);
                    if !show_reply(out, session, &text, reply, echo)? {
                        return Ok(());
                    }
                }
                b'?' => {
                    help_in_this_read = true;
                    if echo {
                        out.write_all(b"?")?;
                    }
                    let help = session
                        .help(&text)
                        .unwrap_or_else(|e| e.render(session.prompt().chars().count()));
                    write_crlf(out, &format!("\n{help}{}{text}", session.prompt()))?;
                }
                TAB => {
                    let (start, words) = session.complete(&text);
                    if let [word] = words.as_slice() {
                        line.truncate(start);
                        line.extend_from_slice(word.as_bytes());
                        line.push(b' ');
                    }
                    let shown = String::from_utf8_lossy(&line).into_owned();
                    write_crlf(out, &format!("\n{}{shown}", session.prompt()))?;
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
