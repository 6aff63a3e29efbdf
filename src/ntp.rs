//! The SNTP client (RFC 4330) on the appliance's own stack: each `ntp
//! server` is asked for the time (one mode-3 request, its mode-4 answer
//! checked against our request), the best answer (lowest stratum, then
//! shortest round trip) gives the clock's offset, and `show ntp status`
//! says what was found. Hosted, the appliance is a process beside others:
//! the offset is kept in this process (`shell::clock`, which `show clock`
//! and syslog timestamps read) and the host's clock is left alone. As PID
//! 1 of the image the appliance owns the machine: the system clock is set
//! (`clock_settime`) and the offset stays zero.

use grammar::config::Config;
use grammar::SyntaxError;
use kernel_bypass::local::{LocalStack, UdpSocket};
use kernel_bypass::Dataplane;
use shell::{clock, ShellBuilder};
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const NTP_PORT: u16 = 123;
/// Seconds from 1900 (NTP's era 0) to 1970.
const NTP_TO_UNIX: i64 = 2_208_988_800;
/// How long an answer is waited for.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Between polls while synchronised (IOS's minimum poll, 64 s) and while not.
const POLL: Duration = Duration::from_secs(64);
const RETRY: Duration = Duration::from_secs(8);
/// An answer older than this no longer vouches for the clock.
const VALID_FOR: Duration = Duration::from_secs(1024);

/// What one server told us.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    server: Ipv4Addr,
    /// The server's stratum (ours is one more).
    stratum: u8,
    /// Microseconds to add to the system clock.
    offset: i64,
    /// Round trip, microseconds.
    delay: i64,
}

/// What `show ntp status` shows.
#[derive(Default)]
struct Status {
    chosen: Option<(Sample, Instant)>,
    /// Servers that did not answer well last time, and why.
    problems: Vec<(Ipv4Addr, String)>,
    next_poll: Option<Instant>,
}

/// The client's state, shared with `show ntp status`.
#[derive(Clone, Default)]
pub struct Ntp(Arc<Mutex<Status>>);

impl Ntp {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn synchronised(status: &Status) -> Option<(Sample, Duration)> {
        let (sample, at) = status.chosen?;
        let age = at.elapsed();
        (age < VALID_FOR).then_some((sample, age))
    }

    /// `show ntp status`, in IOS's words.
    fn render(&self) -> String {
        let status = self.status();
        let mut out = match Ntp::synchronised(&status) {
            Some((s, age)) => format!(
                "Clock is synchronized, stratum {}, reference is {}\n\
                 clock offset is {:.4} msec, round trip delay is {:.4} msec\n\
                 last update {} s ago\n",
                u16::from(s.stratum) + 1,
                s.server,
                s.offset as f64 / 1000.0,
                s.delay as f64 / 1000.0,
                age.as_secs()
            ),
            None => "Clock is unsynchronized, stratum 16, no reference clock\n".to_string(),
        };
        if let Some(next) = status.next_poll {
            let _ = writeln!(
                out,
                "next poll in {} s",
                next.saturating_duration_since(Instant::now()).as_secs()
            );
        }
        for (server, problem) in &status.problems {
            let _ = writeln!(out, "server {server}: {problem}");
        }
        out.push_str(match std::process::id() {
            1 => "the system clock is set from it\n",
            _ => "hosted: the offset applies to this process's clock, the host's clock is left alone\n",
        });
        out
    }
}

/// Adds `show ntp status` to `builder`.
pub fn register_commands(builder: ShellBuilder, ntp: &Ntp) -> Result<ShellBuilder, SyntaxError> {
    let ntp = ntp.clone();
    builder.show(
        "ntp status",
        &[
            "Network time",
            "Synchronisation: server, stratum, offset, last update",
        ],
        move |_| ntp.render(),
    )
}

/// Polls the configured servers until the configuration's sender is gone:
/// at once when the servers change, then every `POLL` (`RETRY` while no
/// server answers).
pub async fn serve(
    stack: LocalStack,
    dataplane: Arc<Dataplane>,
    ntp: Ntp,
    mut config: watch::Receiver<Config>,
) {
    let socket = loop {
        match stack.udp_bind(0).await {
            Ok(socket) => break socket,
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    };
    loop {
        let servers = config.borrow_and_update().management.ntp_servers.clone();
        let mut wait = POLL;
        if !servers.is_empty() {
            let mut best: Option<Sample> = None;
            let mut problems = Vec::new();
            for server in servers {
                match ask(&socket, server).await {
                    Ok(sample)
                        if best.is_none_or(|b| {
                            (sample.stratum, sample.delay) < (b.stratum, b.delay)
                        }) =>
                    {
                        best = Some(sample)
                    }
                    Ok(_) => {}
                    Err(problem) => problems.push((server, problem)),
                }
            }
            if best.is_none() {
                wait = RETRY;
            }
            adopt(&dataplane, &ntp, best, problems, wait);
        } else {
            *ntp.status() = Status::default();
        }
        tokio::select! {
            changed = config.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Takes a poll's result: sets the clock from the best sample, logs a
/// change of reference, records what `show ntp status` shows.
fn adopt(
    dataplane: &Dataplane,
    ntp: &Ntp,
    best: Option<Sample>,
    problems: Vec<(Ipv4Addr, String)>,
    wait: Duration,
) {
    let mut status = ntp.status();
    if let Some(sample) = best {
        let before = Ntp::synchronised(&status).map(|(s, _)| s.server);
        if before != Some(sample.server) {
            dataplane.log(format!(
                "%NTP-5-PEERSYNC: synchronized to {}, stratum {}, offset {:.3} ms",
                sample.server,
                u16::from(sample.stratum) + 1,
                sample.offset as f64 / 1000.0
            ));
        }
        set_clock(dataplane, sample.offset);
        status.chosen = Some((sample, Instant::now()));
    }
    status.problems = problems;
    status.next_poll = Some(Instant::now() + wait);
}

/// Hosted: keeps the offset in the process. As PID 1: sets the system clock.
fn set_clock(dataplane: &Dataplane, offset: i64) {
    if std::process::id() == 1 {
        let target = clock::system_micros().saturating_add(offset);
        let time = libc::timespec {
            tv_sec: target.div_euclid(1_000_000) as libc::time_t,
            tv_nsec: (target.rem_euclid(1_000_000) * 1000) as libc::c_long,
        };
        // SAFETY: `time` is a valid timespec that outlives the call; the
        // return value is checked.
        if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &time) } == 0 {
            clock::set_offset(0, true);
            return;
        }
        let e = std::io::Error::last_os_error();
        dataplane.log(format!("%NTP-4-SETCLOCK: cannot set the system clock: {e}"));
    }
    clock::set_offset(offset, true);
}

/// One SNTP exchange with `server`.
async fn ask(socket: &UdpSocket, server: Ipv4Addr) -> Result<Sample, String> {
    let sent_at = clock::system_micros();
    let request = request(sent_at);
    let target = SocketAddr::from((server, NTP_PORT));
    socket
        .send_to(&request, target)
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut buf = [0u8; 128];
    tokio::time::timeout(ANSWER_TIMEOUT, async {
        loop {
            let (len, from) = socket
                .recv_from(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            let received_at = clock::system_micros();
            // Anything else (a late answer to an earlier poll) is skipped.
            if from == target && buf[..len].get(24..32) == Some(&request[40..48]) {
                return answer(&buf[..len], server, sent_at, received_at);
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {} s", ANSWER_TIMEOUT.as_secs())))
}

/// A client request (LI 0, version 4, mode 3) whose transmit timestamp
/// is `now`; the server copies it into its answer's originate timestamp.
fn request(now: i64) -> [u8; 48] {
    let mut packet = [0u8; 48];
    packet[0] = 0x23;
    packet[40..48].copy_from_slice(&to_ntp(now).to_be_bytes());
    packet
}

/// Checks a server's answer and computes the offset and round trip
/// (RFC 4330 section 5) from our send and receive times.
fn answer(packet: &[u8], server: Ipv4Addr, t1: i64, t4: i64) -> Result<Sample, String> {
    let timestamp = |at: usize| -> Option<i64> {
        let bytes: [u8; 8] = packet.get(at..at + 8)?.try_into().ok()?;
        Some(from_ntp(u64::from_be_bytes(bytes)))
    };
    let (Some(&flags), Some(&stratum), Some(t2), Some(t3)) =
        (packet.first(), packet.get(1), timestamp(32), timestamp(40))
    else {
        return Err(format!("short answer ({} bytes)", packet.len()));
    };
    if flags & 0x07 != 4 || !(3..=4).contains(&(flags >> 3 & 0x07)) {
        return Err(format!("not a server answer (first byte {flags:#04x})"));
    }
    if flags >> 6 == 3 || !(1..=15).contains(&stratum) {
        return Err(format!("server not synchronised (stratum {stratum})"));
    }
    Ok(Sample {
        server,
        stratum,
        offset: ((t2 - t1) + (t3 - t4)) / 2,
        delay: ((t4 - t1) - (t3 - t2)).max(0),
    })
}

/// Microseconds since 1970 as an NTP timestamp (era 0: 1900-2036).
fn to_ntp(micros: i64) -> u64 {
    let seconds = micros.div_euclid(1_000_000) + NTP_TO_UNIX;
    let fraction = (micros.rem_euclid(1_000_000) << 32) / 1_000_000;
    (seconds as u64) << 32 | fraction as u64
}

fn from_ntp(timestamp: u64) -> i64 {
    let seconds = (timestamp >> 32) as i64 - NTP_TO_UNIX;
    // Rounded, so that a time written by `to_ntp` reads back the same.
    let micros = ((timestamp & 0xffff_ffff) * 1_000_000 + (1 << 31)) >> 32;
    seconds * 1_000_000 + micros as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's answer: flags, stratum, receive and transmit times.
    fn server_answer(flags: u8, stratum: u8, t2: i64, t3: i64) -> Vec<u8> {
        let mut packet = vec![0u8; 48];
        packet[0] = flags;
        packet[1] = stratum;
        packet[32..40].copy_from_slice(&to_ntp(t2).to_be_bytes());
        packet[40..48].copy_from_slice(&to_ntp(t3).to_be_bytes());
        packet
    }

    #[test]
    fn timestamps_round_trip_to_the_microsecond() {
        for micros in [0, 1_795_783_761_123_456, 1] {
            assert_eq!(from_ntp(to_ntp(micros)), micros);
        }
        assert_eq!(request(0)[0], 0x23);
    }

    #[test]
    fn offset_and_delay_follow_rfc_4330() {
        let server = Ipv4Addr::new(192, 0, 2, 1);
        // The server is 500 ms ahead; 10 ms each way, 2 ms inside the server.
        let (t1, t4) = (1_000_000_000, 1_000_022_000);
        let packet = server_answer(0x24, 2, t1 + 510_000, t1 + 512_000);
        let sample = answer(&packet, server, t1, t4).unwrap();
        assert_eq!(
            (sample.stratum, sample.offset, sample.delay),
            (2, 500_000, 20_000)
        );
    }

    #[test]
    fn bad_answers_are_refused_with_a_reason() {
        let server = Ipv4Addr::new(192, 0, 2, 1);
        let cases = [
            (server_answer(0x24, 0, 1, 1), "stratum 0"),
            (server_answer(0xe4, 2, 1, 1), "not synchronised"),
            (server_answer(0x23, 2, 1, 1), "not a server answer"),
            (vec![0x24, 2, 0], "short answer"),
            (Vec::new(), "short answer"),
        ];
        for (packet, why) in cases {
            let err = answer(&packet, server, 0, 0).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }
}
