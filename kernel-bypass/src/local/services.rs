//! Built-in services that prove the local sockets end to end: TCP echo and
//! a one-page HTTP status server.

use super::stack::LocalStack;
use super::tcp::TcpStream;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest HTTP request head the status server reads.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// A client gets this long to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Echoes every byte back on TCP `port`, one task per connection. Returns
/// only if the port cannot be listened on.
pub async fn serve_echo(stack: LocalStack, port: u16) -> io::Result<()> {
    let listener = stack.tcp_listen(port).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(echo(stream));
    }
}

async fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if stream.write_all(&buf[..read]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Answers every HTTP request on TCP `port` with `status()` as text/plain.
/// Returns only if the port cannot be listened on.
pub async fn serve_status(
    stack: LocalStack,
    port: u16,
    status: impl Fn() -> String + Send + Sync + 'static,
) -> io::Result<()> {
    let listener = stack.tcp_listen(port).await?;
    let status = Arc::new(status);
    loop {
        let (stream, _) = listener.accept().await?;
        let status = status.clone();
        tokio::spawn(async move {
            let _ = answer_status(stream, &*status).await;
        });
    }
}

async fn answer_status(
    mut stream: TcpStream,
    status: &(dyn Fn() -> String + Sync),
) -> io::Result<()> {
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_request_head(&mut stream)).await;
    if !matches!(head, Ok(Ok(true))) {
        return Ok(());
    }
    let body = status();
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the blank line ending a request head. False when the peer
/// closes first or the head is too long.
async fn read_request_head(stream: &mut TcpStream) -> io::Result<bool> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_REQUEST_HEAD {
        let read = stream.read(&mut buf).await?;
        if read == 0 {
            return Ok(false);
        }
        head.extend_from_slice(&buf[..read]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(true);
        }
    }
    Ok(false)
}
