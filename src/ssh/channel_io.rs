//! Runs the (blocking) CLI engine on an SSH channel: a blocking task owns
//! the session and talks to the channel's async side through queues.
//!
//! russh hands each channel's messages to its reader through a bounded
//! queue and, when that is full, waits inside the connection's only loop:
//! idle timeout, `clear line` and window updates then stall for good. So a
//! channel's task reads it from the moment it opens to its end, also while
//! waiting for a shell or command and while output waits for the client.

use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use shell::interrupt::is_stop_key;
use shell::{run_lines, run_stream_with, Interrupt, Session, StreamOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::{mpsc as async_mpsc, oneshot};

/// Output the client has not accepted for this long (Ctrl-S, or a client
/// that stopped reading) counts as a gone client, like an idle one.
const OUTPUT_STALL: std::time::Duration = super::IDLE_TIMEOUT;
/// Bytes a client may type or paste ahead of its CLI session: thousands of
/// lines (a line is at most 4096 bytes), while 80 channels hold 20 MiB at
/// most. Only a client that sends on while its output waits (it does not
/// read it) gets this far; its connection is dropped.
const MAX_INPUT_BACKLOG: usize = 256 * 1024;
/// Flushes (prompts, a command's output) the CLI may run ahead of the
/// client; then it waits, and what the client sends waits in the backlog.
const OUTPUT_QUEUE: usize = 4;
/// Bytes of output one command run (exec) collects before it is sent: a
/// 10,000-line configuration fits three times over, while 80 channels hold
/// 80 MiB at most. Longer output ends with [`TRUNCATED`].
const MAX_EXEC_OUTPUT: usize = 1024 * 1024;
const TRUNCATED: &str = "% Output truncated\n";

/// What a channel's client asked to run.
pub enum Start {
    Shell(Session, StreamOptions),
    /// The command, and whether the channel has a PTY.
    Exec(Session, String, bool),
}

/// The connection a channel belongs to, ended as a whole when its client
/// misbehaves.
pub struct Owner {
    /// Read by the task serving the connection.
    ending: async_mpsc::UnboundedSender<&'static str>,
    source: IpAddr,
}

impl Owner {
    pub fn new(ending: async_mpsc::UnboundedSender<&'static str>, source: IpAddr) -> Owner {
        Owner { ending, source }
    }

    fn drop_connection(&self, reason: &'static str) {
        eprintln!("ssh from {}: {reason}: connection dropped", self.source);
        let _ = self.ending.send(reason);
    }
}

/// Serves a new channel: reads it until the client asks for a shell or a
/// command (what it sends before that has no reader and is dropped), then
/// runs that. Channels not started within the login grace are closed.
pub async fn serve(channel: Channel<Msg>, mut started: oneshot::Receiver<Start>, owner: Owner) {
    let (mut from_client, to_client) = channel.split();
    let waiting = async {
        loop {
            tokio::select! {
                // First: data after the request belongs to the shell or command.
                biased;
                start = &mut started => return start.ok(),
                message = from_client.wait() => {
                    if matches!(message, Some(ChannelMsg::Close) | None) {
                        return None;
                    }
                }
            }
        }
    };
    match tokio::time::timeout(super::LOGIN_GRACE, waiting).await {
        Ok(Some(Start::Shell(cli, options))) => {
            interactive(from_client, to_client, cli, options, owner).await
        }
        Ok(Some(Start::Exec(cli, command, pty))) => {
            exec(from_client, to_client, cli, command, pty, owner).await
        }
        Ok(None) => {}
        Err(_) => {
            drop(from_client);
            let _ = to_client.close().await;
        }
    }
}

/// Runs an interactive CLI session until the user exits or the client goes
/// away; either way the blocking task ends.
async fn interactive(
    from_client: ChannelReadHalf,
    to_client: ChannelWriteHalf<Msg>,
    mut session: Session,
    options: StreamOptions,
    owner: Owner,
) {
    let (input, input_queue) = mpsc::channel();
    let backlog = Arc::new(AtomicUsize::new(0));
    let (output_queue, output) = async_mpsc::channel(OUTPUT_QUEUE);
    let input = Input {
        queue: input,
        backlog: backlog.clone(),
        interrupt: session.interrupt(),
    };
    let cli = tokio::task::spawn_blocking(move || {
        let input = ChannelInput {
            queue: input_queue,
            pending: Vec::new(),
            backlog,
        };
        let output = ChannelOutput {
            queue: output_queue,
            buffer: Vec::new(),
        };
        run_stream_with(&mut session, input, output, options)
    });
    relay(from_client, &to_client, Some(input), output, &owner).await;
    let status = match cli.await {
        Ok(Ok(())) => 0,
        _ => 1,
    };
    finish(&to_client, status).await;
}

/// Runs the command's lines (one per line of `command`) and sends their
/// output, with CRLF line ends for a PTY (`ssh -t`, a raw terminal); exit
/// status 1 if any line failed or the output was cut at
/// [`MAX_EXEC_OUTPUT`].
async fn exec(
    from_client: ChannelReadHalf,
    to_client: ChannelWriteHalf<Msg>,
    mut session: Session,
    command: String,
    pty: bool,
    owner: Owner,
) {
    let (output_queue, output) = async_mpsc::channel(1);
    let ran = tokio::task::spawn_blocking(move || {
        let mut output = Capped::default();
        let failures = run_lines(&mut session, command.lines(), &mut output);
        let (output, truncated) = output.finish();
        let output = if pty {
            String::from_utf8_lossy(&output)
                .replace('\n', "\r\n")
                .into_bytes()
        } else {
            output
        };
        let _ = output_queue.blocking_send(output);
        failures.map(|failures| !failures.is_empty() || truncated)
    });
    relay(from_client, &to_client, None, output, &owner).await;
    let status = match ran.await {
        Ok(Ok(failed)) => u32::from(failed),
        _ => 1,
    };
    finish(&to_client, status).await;
}

/// Sends `output` to the client until it ends while reading what the
/// client sends into `input` (dropped if None), so that waiting for the
/// client to accept output never stops the reading. Returns when the
/// output ends, the client closes the channel or goes away, or its
/// connection is dropped; dropping `input` and `output` then unblocks the
/// CLI's task.
async fn relay(
    mut from_client: ChannelReadHalf,
    to_client: &ChannelWriteHalf<Msg>,
    mut input: Option<Input>,
    mut output: async_mpsc::Receiver<Vec<u8>>,
    owner: &Owner,
) {
    let writing = async {
        while let Some(bytes) = output.recv().await {
            match tokio::time::timeout(OUTPUT_STALL, to_client.data(&bytes[..])).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => return owner.drop_connection("output not read"),
            }
        }
    };
    tokio::pin!(writing);
    loop {
        tokio::select! {
            () = &mut writing => return,
            message = from_client.wait() => match message {
                Some(ChannelMsg::Data { data }) => {
                    if input.as_ref().is_some_and(|input| !input.push(&data)) {
                        return owner.drop_connection("input not read");
                    }
                }
                // End of input ends the CLI session, and so its output.
                Some(ChannelMsg::Eof) => input = None,
                Some(ChannelMsg::Close) | None => return,
                Some(_) => {}
            },
        }
    }
}

async fn finish(channel: &ChannelWriteHalf<Msg>, status: u32) {
    let _ = channel.exit_status(status).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

/// What the client typed, on its way to the CLI: [`MAX_INPUT_BACKLOG`]
/// bytes at most.
struct Input {
    queue: mpsc::Sender<Vec<u8>>,
    /// Bytes queued, not yet taken by [`ChannelInput`].
    backlog: Arc<AtomicUsize>,
    /// The session's Ctrl-C: the CLI's thread is busy with the command it
    /// stops, so the key is taken here, on its way.
    interrupt: Interrupt,
}

impl Input {
    /// Queues `bytes` (without a Ctrl-C that stopped a command); false if
    /// that would exceed the backlog.
    fn push(&self, bytes: &[u8]) -> bool {
        if bytes.iter().any(|b| is_stop_key(*b)) && self.interrupt.raise() {
            let rest: Vec<u8> = bytes.iter().copied().filter(|b| !is_stop_key(*b)).collect();
            return rest.is_empty() || self.push(&rest);
        }
        // Only the CLI takes from the backlog meanwhile, so it cannot grow.
        if self.backlog.load(Ordering::Relaxed) + bytes.len() > MAX_INPUT_BACKLOG {
            return false;
        }
        self.backlog.fetch_add(bytes.len(), Ordering::Relaxed);
        let _ = self.queue.send(bytes.to_vec());
        true
    }
}

/// What the client typed, as a blocking reader; end of input once the
/// async side drops its sender.
struct ChannelInput {
    queue: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
    backlog: Arc<AtomicUsize>,
}

impl Read for ChannelInput {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            match self.queue.recv() {
                Ok(bytes) => {
                    self.backlog.fetch_sub(bytes.len(), Ordering::Relaxed);
                    self.pending = bytes;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

/// The CLI's output, collected until a flush sends it as one message.
struct ChannelOutput {
    queue: async_mpsc::Sender<Vec<u8>>,
    buffer: Vec<u8>,
}

impl Write for ChannelOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.queue
            .blocking_send(std::mem::take(&mut self.buffer))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the SSH channel closed"))
    }
}

impl Drop for ChannelOutput {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A command run's output, kept up to [`MAX_EXEC_OUTPUT`] bytes.
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    truncated: bool,
}

impl Capped {
    /// The output, ending with [`TRUNCATED`] on a line of its own if it was
    /// cut, and whether it was.
    fn finish(mut self) -> (Vec<u8>, bool) {
        if self.truncated {
            if self.bytes.last() != Some(&b'\n') {
                self.bytes.push(b'\n');
            }
            self.bytes.extend_from_slice(TRUNCATED.as_bytes());
        }
        (self.bytes, self.truncated)
    }
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = MAX_EXEC_OUTPUT - self.bytes.len();
        self.truncated |= buf.len() > room;
        self.bytes.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_output_is_cut_at_its_limit() {
        let mut output = Capped::default();
        output.write_all(&[b'x'; MAX_EXEC_OUTPUT - 1]).unwrap();
        assert!(!output.truncated);
        output.write_all(b"yz").unwrap();
        assert!(output.truncated);
        assert_eq!(output.bytes.len(), MAX_EXEC_OUTPUT);
        let (bytes, truncated) = output.finish();
        assert!(truncated);
        assert!(bytes.ends_with(format!("y\n{TRUNCATED}").as_bytes()));
    }

    #[test]
    fn input_beyond_the_backlog_is_refused_until_the_cli_reads() {
        let (queue, received) = mpsc::channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let input = Input {
            queue,
            backlog: backlog.clone(),
            interrupt: Interrupt::default(),
        };
        let mut cli = ChannelInput {
            queue: received,
            pending: Vec::new(),
            backlog,
        };
        assert!(input.push(&[b'a'; MAX_INPUT_BACKLOG]));
        assert!(!input.push(b"b"), "over the backlog");
        let mut buf = [0u8; 16];
        assert_eq!(cli.read(&mut buf).unwrap(), 16);
        assert!(input.push(b"c"), "room once the CLI has read");
    }

    #[test]
    fn ctrl_c_stops_a_running_command_and_is_not_typed() {
        let (queue, received) = mpsc::channel();
        let interrupt = Interrupt::default();
        let input = Input {
            queue,
            backlog: Arc::new(AtomicUsize::new(0)),
            interrupt: interrupt.clone(),
        };
        assert!(input.push(b"\x03"));
        assert_eq!(
            received.try_recv().unwrap(),
            b"\x03",
            "no command: the line's"
        );
        let running = interrupt.stoppable();
        assert!(input.push(b"a\x03"));
        assert!(interrupt.is_raised());
        assert_eq!(received.try_recv().unwrap(), b"a");
        assert!(input.push(b"\x1e"), "IOS's Ctrl-Shift-6");
        assert!(received.try_recv().is_err(), "taken, not typed");
        drop(running);
    }
}
