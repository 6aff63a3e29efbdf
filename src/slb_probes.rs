//! The load balancer's health probes, on the appliance's own stack: each
//! real of a serverfarm with a probe is checked every `interval` seconds,
//! by a TCP connection or an HTTP GET whose status must be the expected
//! one, within `timeout`; every result goes to the dataplane's load
//! balancer, which counts them against `rise` and `fall`.

use grammar::config::ProbeKind;
use kernel_bypass::lb::{LoadBalancer, ProbeTarget, RealKey};
use kernel_bypass::local::{LocalStack, TcpStream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// How often the list of targets is read and due probes started.
const TICK: Duration = Duration::from_millis(250);
/// The most of a response read for its status line.
const STATUS_LINE_MAX: usize = 1024;

/// Probes the load balancer's targets until the runtime stops.
pub async fn serve(stack: LocalStack, lb: Arc<LoadBalancer>) {
    let mut due: HashMap<RealKey, Instant> = HashMap::new();
    loop {
        tokio::time::sleep(TICK).await;
        let now = Instant::now();
        let targets = lb.probe_targets();
        due.retain(|real, _| targets.iter().any(|t| &t.real == real));
        for target in targets {
            let next = due.entry(target.real.clone()).or_insert(now);
            if *next > now {
                continue;
            }
            *next = now + Duration::from_secs(target.settings.interval.into());
            let (stack, lb) = (stack.clone(), lb.clone());
            tokio::spawn(async move {
                let (ok, detail) = probe(&stack, &target).await;
                lb.report(&target.real, ok, &detail);
            });
        }
    }
}

/// One probe: (passed, what it saw).
async fn probe(stack: &LocalStack, target: &ProbeTarget) -> (bool, String) {
    let timeout = Duration::from_secs(target.settings.timeout.into());
    match tokio::time::timeout(timeout, check(stack, target)).await {
        Ok(Ok(seen)) => (true, seen),
        Ok(Err(problem)) => (false, problem),
        Err(_) => (false, format!("no answer within {}s", timeout.as_secs())),
    }
}

async fn check(stack: &LocalStack, target: &ProbeTarget) -> Result<String, String> {
    let stream = stack
        .tcp_connect(target.address)
        .await
        .map_err(|e| format!("tcp connect: {e}"))?;
    match target.settings.kind {
        ProbeKind::Tcp => Ok("tcp connect".to_string()),
        ProbeKind::Http => http_status(stream, target).await,
    }
}

/// Sends GET and checks the status line's code.
async fn http_status(mut stream: TcpStream, target: &ProbeTarget) -> Result<String, String> {
    let settings = &target.settings;
    // Host with the port: an IPv6 address needs its brackets there.
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: gatehouse-slb-probe\r\nConnection: close\r\n\r\n",
        settings.url, target.address
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("http send: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < STATUS_LINE_MAX {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("http read: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status = status_code(&head).ok_or("http: no status line")?;
    match status == settings.expect_status {
        true => Ok(format!("http {status}")),
        false => Err(format!(
            "http {status}, expected {}",
            settings.expect_status
        )),
    }
}

/// The code of an HTTP/1.x status line ("HTTP/1.1 200 OK").
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/1."))?;
    words
        .next()?
        .parse()
        .ok()
        .filter(|c| (100..600).contains(c))
}

#[cfg(test)]
mod tests {
    use super::status_code;

    #[test]
    fn status_lines_are_read_and_garbage_refused() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\nServer: x\r\n"), Some(200));
        assert_eq!(
            status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 99999\r\n"), None);
        assert_eq!(status_code(b""), None);
        assert_eq!(status_code(&[0xff, 0xfe, b'\n']), None);
    }
}
