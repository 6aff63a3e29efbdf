//! Where `install image` takes an image from: an HTTP server, over the
//! appliance's own stack (a plain HTTP/1.0 GET; the signature, not the
//! transport, is what makes the image trustworthy), or a file on the box.

use kernel_bypass::local::LocalStack;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Larger than any image (about 18 MiB today) by a wide margin, small
/// enough that a wrong URL cannot fill the memory.
pub const MAX_IMAGE_BYTES: usize = 256 << 20;
/// A server that sends nothing for this long has gone away.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_HEAD: usize = 16 << 10;

#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    Http {
        server: SocketAddr,
        /// The path and query, as sent in the request line.
        path: String,
    },
    File(PathBuf),
}

impl Source {
    /// `http://A.B.C.D[:PORT]/PATH`, `http://[X:X::X]:PORT/PATH`, or an
    /// absolute path on the box. No DNS: the server is given by address.
    pub fn parse(text: &str) -> Result<Source, String> {
        if text.starts_with('/') {
            return Ok(Source::File(PathBuf::from(text)));
        }
        let rest = text
            .strip_prefix("http://")
            .ok_or("give an http:// URL or an absolute file path (https is not supported)")?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let server = authority
            .parse::<SocketAddr>()
            .or_else(|_| {
                authority
                    .parse::<IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 80))
            })
            .or_else(|_| {
                let bracketed = authority
                    .strip_prefix('[')
                    .and_then(|a| a.strip_suffix(']'));
                bracketed
                    .ok_or(())
                    .and_then(|a| a.parse::<IpAddr>().map_err(|_| ()))
                    .map(|ip| SocketAddr::new(ip, 80))
            })
            .map_err(|()| {
                format!("'{authority}' is not an address[:port] (there is no DNS resolver)")
            })?;
        Ok(Source::Http {
            server,
            path: path.to_string(),
        })
    }
}

/// The bytes of `source`, whole, or why not.
pub async fn fetch(stack: &LocalStack, source: &Source) -> Result<Vec<u8>, String> {
    match source {
        Source::File(path) => {
            let size = std::fs::metadata(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            if size > MAX_IMAGE_BYTES as u64 {
                return Err(format!("{}: larger than any image", path.display()));
            }
            std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
        }
        Source::Http { server, path } => http_get(stack, *server, path).await,
    }
}

async fn http_get(stack: &LocalStack, server: SocketAddr, path: &str) -> Result<Vec<u8>, String> {
    let mut stream = tokio::time::timeout(IDLE_TIMEOUT, stack.tcp_connect(server))
        .await
        .map_err(|_| format!("no answer from {server}"))?
        .map_err(|e| format!("connecting to {server}: {e}"))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {server}\r\nUser-Agent: gatehouse-install\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let n = tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buffer))
            .await
            .map_err(|_| format!("{server} stopped sending"))?
            .map_err(|e| format!("reading from {server}: {e}"))?;
        if n == 0 {
            break;
        }
        if received.len() + n > MAX_IMAGE_BYTES + MAX_HEAD {
            return Err(format!("{server} sends more than any image holds"));
        }
        received.extend_from_slice(&buffer[..n]);
    }
    body_of(received)
}

/// The body of a complete HTTP/1.x response: status 200, and as long as
/// its Content-Length says (a connection cut short is not an image).
fn body_of(mut response: Vec<u8>) -> Result<Vec<u8>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(&response) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Err("the server's answer ended early".into()),
        Err(e) => return Err(format!("the server's answer is not HTTP: {e}")),
    };
    match head.code {
        Some(200) => {}
        code => {
            return Err(format!(
                "the server answered {} {}",
                code.unwrap_or(0),
                head.reason.unwrap_or("")
            ))
        }
    }
    let length = head
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    let body_len = response.len() - head_len;
    if length.is_some_and(|length| length != body_len) {
        return Err(format!(
            "the transfer was cut short: {body_len} of {} bytes",
            length.unwrap_or(0)
        ));
    }
    response.drain(..head_len);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sources_are_urls_with_addresses_or_absolute_paths() {
        assert_eq!(
            Source::parse("http://10.0.0.2:8000/images/upgrade.img"),
            Ok(Source::Http {
                server: "10.0.0.2:8000".parse().unwrap(),
                path: "/images/upgrade.img".into()
            })
        );
        assert_eq!(
            Source::parse("http://10.0.0.2"),
            Ok(Source::Http {
                server: "10.0.0.2:80".parse().unwrap(),
                path: "/".into()
            })
        );
        assert_eq!(
            Source::parse("http://[2001:db8::2]/u.img"),
            Ok(Source::Http {
                server: "[2001:db8::2]:80".parse().unwrap(),
                path: "/u.img".into()
            })
        );
        assert_eq!(
            Source::parse("/config/u.img"),
            Ok(Source::File("/config/u.img".into()))
        );
        for bad in [
            "https://10.0.0.2/u.img",
            "http://images.example/u.img",
            "u.img",
            "http://10.0.0.2:99999/",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_whole_200_answer_is_a_body() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nbody".to_vec();
        assert_eq!(body_of(ok), Ok(b"body".to_vec()));
        let no_length = b"HTTP/1.1 200 OK\r\n\r\nbody".to_vec();
        assert_eq!(body_of(no_length), Ok(b"body".to_vec()));
        let short = b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nbody".to_vec();
        assert!(body_of(short).unwrap_err().contains("cut short"));
        let missing = b"HTTP/1.0 404 File not found\r\n\r\n".to_vec();
        assert_eq!(
            body_of(missing),
            Err("the server answered 404 File not found".into())
        );
        assert!(body_of(b"SSH-2.0-x\r\n".to_vec()).is_err());
        assert!(body_of(b"HTTP/1.0 200".to_vec()).is_err());
    }

    proptest! {
        #[test]
        fn any_answer_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = body_of(bytes);
        }
    }
}
