//! Runs the (blocking) CLI engine on an SSH channel: a blocking task owns
//! the session and talks to the channel's async side through queues.

use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use shell::{run_lines, run_stream_with, Session, StreamOptions};
use std::io::{self, Read, Write};
use std::sync::mpsc;
use tokio::sync::mpsc as async_mpsc;

/// Runs an interactive CLI session on `channel` until the user exits or the
/// client goes away; either way the blocking task ends.
pub async fn interactive(channel: Channel<Msg>, mut session: Session, options: StreamOptions) {
    let (mut from_client, to_client) = channel.split();
    let (input, input_queue) = mpsc::channel();
    let (output_queue, mut output) = async_mpsc::unbounded_channel();
    let cli = tokio::task::spawn_blocking(move || {
        let input = ChannelInput {
            queue: input_queue,
            pending: Vec::new(),
        };
        let output = ChannelOutput {
            queue: output_queue,
            buffer: Vec::new(),
        };
        run_stream_with(&mut session, input, output, options)
    });
    let mut input = Some(input);
    loop {
        tokio::select! {
            bytes = output.recv() => match bytes {
                Some(bytes) => {
                    if to_client.data(&bytes[..]).await.is_err() {
                        break;
                    }
                }
                // The CLI session ended (`exit`, Ctrl-D).
                None => break,
            },
            message = from_client.wait(), if input.is_some() => match message {
                Some(ChannelMsg::Data { data }) => {
                    if let Some(queue) = &input {
                        let _ = queue.send(data.to_vec());
                    }
                }
                // End of input ends the CLI session, which ends the loop.
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => input = None,
                Some(_) => {}
            },
        }
    }
    // Unblock the CLI task if it is still reading or writing.
    drop(input);
    drop(output);
    let status = match cli.await {
        Ok(Ok(())) => 0,
        _ => 1,
    };
    finish(&to_client, status).await;
}

/// Runs the command's lines (one per line of `command`) and sends their
/// output, with CRLF line ends for a PTY (`ssh -t`, a raw terminal); exit
/// status 1 if any line failed.
pub async fn exec(channel: Channel<Msg>, mut session: Session, command: String, pty: bool) {
    let ran = tokio::task::spawn_blocking(move || {
        let mut output = Vec::new();
        let failures = run_lines(&mut session, command.lines(), &mut output);
        (output, failures)
    })
    .await;
    let (output, status) = match ran {
        Ok((output, Ok(failures))) => (output, u32::from(!failures.is_empty())),
        Ok((output, Err(_))) => (output, 1),
        Err(_) => (Vec::new(), 1),
    };
    let output = if pty {
        String::from_utf8_lossy(&output)
            .replace('\n', "\r\n")
            .into_bytes()
    } else {
        output
    };
    let (_, to_client) = channel.split();
    let _ = to_client.data(&output[..]).await;
    finish(&to_client, status).await;
}

async fn finish(channel: &ChannelWriteHalf<Msg>, status: u32) {
    let _ = channel.exit_status(status).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

/// What the client typed, as a blocking reader; end of input once the
/// async side drops its sender.
struct ChannelInput {
    queue: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Read for ChannelInput {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            match self.queue.recv() {
                Ok(bytes) => self.pending = bytes,
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
    queue: async_mpsc::UnboundedSender<Vec<u8>>,
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
            .send(std::mem::take(&mut self.buffer))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the SSH channel closed"))
    }
}

impl Drop for ChannelOutput {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
