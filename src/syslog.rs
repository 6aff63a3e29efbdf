//! Remote syslog: every line of the dataplane's log (`show logging`: access
//! list matches, NAT and load balancer events, commits with who made them)
//! goes to each `logging host` as an RFC 5424 message over UDP 514, from
//! the appliance's own stack. Facility local7 (IOS's default), each line's
//! own severity, lines less severe than `logging trap` (informational by
//! default) left out; timestamps from the appliance's clock
//! (`shell::clock`, NTP-corrected).
//! UDP, as RFC 5426 says: a line the network loses is lost.

use grammar::config::Config;
use kernel_bypass::local::LocalStack;
use kernel_bypass::Dataplane;
use shell::clock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

pub const SYSLOG_PORT: u16 = 514;
/// Facility local7 (23): `<PRI>` is it times 8 plus the severity.
const FACILITY: u8 = 23;
/// Longest message sent: fits one datagram on any path (RFC 5426 asks
/// receivers for 480 bytes at least and 2048 where they can).
const MAX_MESSAGE: usize = 1200;

/// Sends the log's new lines to the configured hosts until the log closes.
pub async fn serve(stack: LocalStack, dataplane: Arc<Dataplane>, config: watch::Receiver<Config>) {
    let mut lines = dataplane.subscribe_log();
    let socket = loop {
        match stack.udp_bind(0).await {
            Ok(socket) => break socket,
            // Every ephemeral port taken: try again later.
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    loop {
        let line = match lines.recv().await {
            Ok(line) => line,
            Err(RecvError::Lagged(lost)) => {
                format!("%SYS-4-LOG_LOST: {lost} log lines were not sent to syslog").into()
            }
            Err(RecvError::Closed) => return,
        };
        let (hosts, message) = {
            let config = config.borrow();
            if kernel_bypass::log_severity(&line) > config.management.trap_level() {
                continue;
            }
            let hosts = config.management.logging_hosts.clone();
            (
                hosts,
                message(clock::now(), config.hostname_or_default(), &line),
            )
        };
        for host in hosts {
            // Nothing to do about a host we cannot reach but keep trying the others.
            let _ = socket
                .send_to(message.as_bytes(), (host, SYSLOG_PORT))
                .await;
        }
    }
}

/// One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
/// STRUCTURED-DATA MSG`, cut to `MAX_MESSAGE` bytes on a character boundary.
fn message(now: Duration, hostname: &str, line: &str) -> String {
    let priority = FACILITY * 8 + kernel_bypass::log_severity(line);
    let mut text = format!(
        "<{priority}>1 {} {hostname} gatehouse {} - - {line}",
        clock::rfc3339(now),
        std::process::id()
    );
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_rfc_5424_and_long_ones_are_cut_on_a_character() {
        let at = Duration::from_millis(1_795_783_761_123);
        let text = message(at, "edge1", "%SYS-5-CONFIG_I: Configured by admin");
        let pid = std::process::id();
        assert_eq!(
            text,
            format!("<189>1 2026-11-27T12:49:21.123Z edge1 gatehouse {pid} - - %SYS-5-CONFIG_I: Configured by admin")
        );
        let long = message(at, "edge1", &"é".repeat(1000));
        assert!(
            long.len() <= MAX_MESSAGE && long.ends_with('é'),
            "{}",
            long.len()
        );
    }
}
