//! Built-in services that prove the local sockets end to end: TCP echo and
//! a one-page HTTP status server; and the one HTTP/1.x request reader
//! every HTTP service of the appliance answers with (`answer_http`).

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

async fn answer_status(stream: TcpStream, status: &(dyn Fn() -> String + Sync)) -> io::Result<()> {
    answer_http(stream, |_| HttpResponse {
        status: "200 OK",
        content_type: "text/plain; charset=utf-8",
        body: status(),
    })
    .await
}

/// One HTTP answer: status line (`200 OK`), content type and body.
pub struct HttpResponse {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: String,
}

/// Reads one HTTP/1.x request head from `stream` (within a timeout, of
/// bounded length), answers it with `respond(path)` and closes. A client
/// that sends no complete head gets no answer.
pub async fn answer_http(
    mut stream: TcpStream,
    respond: impl FnOnce(&str) -> HttpResponse,
) -> io::Result<()> {
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_request_head(&mut stream)).await;
    let Ok(Ok(Some(head))) = head else {
        return Ok(());
    };
    let HttpResponse {
        status,
        content_type,
        body,
    } = respond(request_path(&head));
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The path of a request line (`GET /metrics HTTP/1.1`); empty when the
/// line has none.
fn request_path(head: &[u8]) -> &str {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default();
    let path = line.split(' ').nth(1).unwrap_or_default();
    path.split('?').next().unwrap_or_default()
}

/// Reads until the blank line ending a request head. None when the peer
/// closes first or the head is too long.
async fn read_request_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while head.len() < MAX_REQUEST_HEAD {
        let read = stream.read(&mut buf).await?;
        if read == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..read]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Some(head));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::request_path;

    #[test]
    fn request_paths_are_read_and_garbage_gives_none() {
        assert_eq!(
            request_path(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            "/metrics"
        );
        assert_eq!(
            request_path(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            "/metrics"
        );
        assert_eq!(request_path(b"\xff\xfe /x\r\n\r\n"), "");
        assert_eq!(request_path(b"GET\r\n\r\n"), "");
    }
}
