//! The operator's reachability tools, from the appliance's own stack:
//! `ping` (ICMP echo, IPv4 and IPv6, IOS's `!!!!!` and success rate) and
//! `traceroute` (UDP probes with growing hop limits; the ICMP time
//! exceeded and port unreachable messages about them name the hops).
//!
//! A command runs on the control runtime while the CLI's thread waits for
//! its text. Each answer is shown as it comes (`Interrupt::show`): a
//! terminal prints it at once, other front ends get it with the rest.
//! Ctrl-C (the session's `Interrupt`) ends it early with what it gathered
//! and, for ping, the success rate of the echoes sent, as IOS does.

use kernel_bypass::local::{IcmpBinding, LocalStack, Scope, Source};
use shell::{Interrupt, ShellBuilder};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::time::Instant;

/// IOS's defaults: five 100-byte echoes, two seconds each.
const PING_REPEAT: u64 = 5;
const PING_SIZE: usize = 100;
const PING_TIMEOUT: u64 = 2;
/// IOS's traceroute: three probes a hop, three seconds each, 30 hops.
const PROBES: u16 = 3;
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_HOPS: u8 = 30;
/// How often a running tool looks for Ctrl-C.
const STOP_POLL: Duration = Duration::from_millis(50);
/// The first destination port of the probes (as Van Jacobson's traceroute).
const PROBE_PORT: u16 = 33434;

/// Echo identifiers, one per ping, so two at once do not see each other's.
static NEXT_IDENT: AtomicU16 = AtomicU16::new(0x4748);

/// ICMP types: echo request and reply, and the errors traceroute reads.
struct IcmpTypes {
    echo_request: u8,
    echo_reply: u8,
    time_exceeded: u8,
    unreachable: u8,
    port_unreachable_code: u8,
    ip_header: usize,
}

fn types(target: IpAddr) -> IcmpTypes {
    match target {
        IpAddr::V4(_) => IcmpTypes {
            echo_request: 8,
            echo_reply: 0,
            time_exceeded: 11,
            unreachable: 3,
            port_unreachable_code: 3,
            ip_header: 20,
        },
        IpAddr::V6(_) => IcmpTypes {
            echo_request: 128,
            echo_reply: 129,
            time_exceeded: 3,
            unreachable: 1,
            port_unreachable_code: 4,
            ip_header: 40,
        },
    }
}

/// An echo request (checksum left to the stack) of `size` bytes with its IP header.
fn echo_request(t: &IcmpTypes, ident: u16, seq: u16, size: usize) -> Vec<u8> {
    let mut message = vec![0u8; size.saturating_sub(t.ip_header).max(8)];
    message[0] = t.echo_request;
    message[4..6].copy_from_slice(&ident.to_be_bytes());
    message[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in message[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    message
}

/// Runs `work` on the control runtime and waits for its text.
fn run_blocking(
    runtime: &Handle,
    work: impl std::future::Future<Output = String> + Send + 'static,
) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .map_err(|_| "% The command was stopped".to_string())
}

/// What `ping` was asked for besides its target.
struct PingOptions {
    repeat: u64,
    size: usize,
    timeout: u64,
    scope: Scope,
}

/// Resolves once the user pressed Ctrl-C.
async fn stopped(interrupt: &Interrupt) {
    while !interrupt.is_raised() {
        tokio::time::sleep(STOP_POLL).await;
    }
}

/// `ping`: IOS's output.
async fn ping(
    stack: LocalStack,
    target: IpAddr,
    options: PingOptions,
    interrupt: Interrupt,
) -> String {
    let PingOptions {
        repeat,
        size,
        timeout,
        scope,
    } = options;
    let t = types(target);
    let ident = NEXT_IDENT.fetch_add(1, Ordering::Relaxed);
    let mut out = format!(
        "Type escape sequence to abort.\nSending {repeat}, {size}-byte ICMP Echos to {target}, timeout is {timeout} seconds:\n"
    );
    if scope.source.is_some() {
        match stack.source(&scope, target) {
            Ok(source) => {
                let _ = writeln!(out, "Packet sent with a source address of {source}");
            }
            Err(e) => return format!("% Cannot ping: {e}\n"),
        }
    }
    if scope.dont_fragment {
        out.push_str("Packet sent with the DF bit set\n");
    }
    let socket = match stack.icmp_socket(IcmpBinding::Echo(ident), scope) {
        Ok(s) => s,
        Err(e) => return format!("% Cannot ping: {e}\n"),
    };
    let wait = Duration::from_secs(timeout);
    let mut rtts = Vec::new();
    let mut buf = vec![0u8; 2048];
    let mut sent = 0;
    // The header at once: the first answer may take the whole timeout.
    interrupt.show(&std::mem::take(&mut out));
    for n in 0..repeat {
        // Sequence numbers wrap, as they do on the wire.
        let seq = n as u16;
        let started = Instant::now();
        if let Err(e) = socket
            .send_to(&echo_request(&t, ident, seq, size), target, None)
            .await
        {
            let _ = write!(out, "\n% Cannot send to {target}: {e}\n");
            return out;
        }
        sent += 1;
        let answered = async {
            loop {
                let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                    return false;
                };
                let reply = &buf[..len];
                if from == target
                    && len >= 8
                    && reply[0] == t.echo_reply
                    && reply[6..8] == seq.to_be_bytes()
                {
                    return true;
                }
            }
        };
        // A router's "fragmentation needed" is noted by the stack, not
        // queued to the socket: looked for as often as Ctrl-C.
        let refused = async {
            while !socket.refused_for_size(seq) {
                tokio::time::sleep(STOP_POLL).await;
            }
        };
        // IOS's marks: `!` answered, `.` no answer, `M` could not fragment.
        let mark = tokio::select! {
            answer = tokio::time::timeout(wait, answered) => match answer {
                Ok(true) => '!',
                _ => '.',
            },
            () = refused => 'M',
            () = stopped(&interrupt) => break,
        };
        if mark == '!' {
            rtts.push(started.elapsed().as_millis() as u64);
        }
        out.push(mark);
        if (n + 1).is_multiple_of(70) {
            out.push('\n');
        }
        interrupt.show(&std::mem::take(&mut out));
    }
    let ok = rtts.len() as u64;
    let _ = write!(
        out,
        "\nSuccess rate is {} percent ({ok}/{sent})",
        ok * 100 / sent.max(1)
    );
    if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
        let avg = rtts.iter().sum::<u64>() / ok;
        let _ = write!(out, ", round-trip min/avg/max = {min}/{avg}/{max} ms");
    }
    out.push('\n');
    out
}

/// The destination port of the UDP packet an ICMP error quotes.
fn quoted_port(t: &IcmpTypes, message: &[u8], target: IpAddr) -> Option<u16> {
    let ip = message.get(8..)?;
    let header = match target {
        IpAddr::V4(_) => usize::from(ip.first()? & 0x0f) * 4,
        IpAddr::V6(_) => t.ip_header,
    };
    let udp = ip.get(header..header + 4)?;
    Some(u16::from_be_bytes([udp[2], udp[3]]))
}

/// `traceroute`: IOS's output, one line a hop.
async fn traceroute(
    stack: LocalStack,
    target: IpAddr,
    scope: Scope,
    interrupt: Interrupt,
) -> String {
    let t = types(target);
    let mut out = format!("Type escape sequence to abort.\nTracing the route to {target}\n\n");
    let udp = match stack.udp_bind_in(0, scope.clone()).await {
        Ok(s) => s,
        Err(e) => return format!("% Cannot trace: {e}\n"),
    };
    let icmp = match stack.icmp_socket(IcmpBinding::UdpErrors(udp.port()), scope) {
        Ok(s) => s,
        Err(e) => return format!("% Cannot trace: {e}\n"),
    };
    let mut buf = vec![0u8; 2048];
    interrupt.show(&std::mem::take(&mut out));
    for ttl in 1..=MAX_HOPS {
        let _ = write!(out, "{ttl:>3}");
        let mut hop = None;
        let mut reached = false;
        udp.set_hop_limit(Some(ttl));
        for probe in 0..PROBES {
            let port = PROBE_PORT + u16::from(ttl - 1) * PROBES + probe;
            let sent = Instant::now();
            if let Err(e) = udp.send_to(&[0u8; 12], SocketAddr::new(target, port)).await {
                let _ = write!(out, "\n% Cannot send to {target}: {e}\n");
                return out;
            }
            let answer = async {
                loop {
                    let Ok((len, from)) = icmp.recv_from(&mut buf).await else {
                        return None;
                    };
                    let m = &buf[..len];
                    if len < 8 || quoted_port(&t, m, target) != Some(port) {
                        continue;
                    }
                    let at_target = m[0] == t.unreachable && m[1] == t.port_unreachable_code;
                    if m[0] == t.time_exceeded || at_target {
                        return Some((from, at_target));
                    }
                }
            };
            let outcome = tokio::select! {
                answer = tokio::time::timeout(PROBE_TIMEOUT, answer) => answer,
                () = stopped(&interrupt) => {
                    out.push('\n');
                    return out;
                }
            };
            match outcome {
                Ok(Some((from, at_target))) => {
                    if hop != Some(from) {
                        let _ = write!(out, " {from}");
                        hop = Some(from);
                    }
                    let _ = write!(out, " {} msec", sent.elapsed().as_millis());
                    reached |= at_target;
                }
                _ => out.push_str(" *"),
            }
            interrupt.show(&std::mem::take(&mut out));
        }
        out.push('\n');
        if reached {
            break;
        }
    }
    out
}

/// The address typed as `$v4` or `$v6`.
fn target(args: &grammar::Args) -> Result<IpAddr, String> {
    (args.ipv4("v4").map(IpAddr::V4))
        .or(args.ipv6("v6").map(IpAddr::V6))
        .ok_or_else(|| "% Incomplete command.".to_string())
}

/// The `vrf`, `source` and `df-bit` typed.
fn scope(args: &grammar::Args) -> Scope {
    let source = (args.ipv4("src").map(|a| Source::Address(IpAddr::V4(a))))
        .or(args.ipv6("src6").map(|a| Source::Address(IpAddr::V6(a))))
        .or(args
            .text("srcif")
            .map(|name| Source::Interface(name.into())));
    Scope {
        vrf: args.text("vrf").map(str::to_string),
        source,
        dont_fragment: args.has("df-bit"),
    }
}

/// `source A.B.C.D|X:X::X:X|IFNAME`, with its help.
const SOURCE: &str = "[source (A.B.C.D$src|X:X::X:X$src6|IFNAME$srcif)]";
const SOURCE_HELP: [&str; 4] = [
    "Source address or interface",
    "Source IPv4 address",
    "Source IPv6 address",
    "Interface whose address is the source",
];
const VRF_HELP: [&str; 2] = [
    "Routing table of a VRF (default: the global table)",
    "VRF name",
];

/// Adds `ping` and `traceroute` to the privileged EXEC mode.
pub fn register_commands(
    builder: ShellBuilder,
    stack: LocalStack,
    runtime: Handle,
) -> Result<ShellBuilder, grammar::SyntaxError> {
    let (ping_stack, ping_runtime) = (stack.clone(), runtime.clone());
    let ping_help = [
        &["Send echo messages"][..],
        &VRF_HELP,
        &["IPv4 address", "IPv6 address"],
        &["Number of echoes (default 5)", "Count"],
        &["Datagram size, IP header included (default 100)", "Bytes"],
        &SOURCE_HELP,
        &["Set the DF bit in the IPv4 header (default: routers may fragment)"],
        &["Seconds to wait for each answer (default 2)", "Seconds"],
    ]
    .concat();
    let trace_help = [
        &["Trace the route to a destination"][..],
        &VRF_HELP,
        &["IPv4 address", "IPv6 address"],
        &SOURCE_HELP,
    ]
    .concat();
    builder
        .exec_stoppable(
            &format!(
                "ping [vrf WORD$vrf] (A.B.C.D$v4|X:X::X:X$v6) [repeat <1-100000>$repeat] [size <36-1500>$size] {SOURCE} [df-bit] [timeout <1-3600>$timeout]"
            ),
            &ping_help,
            move |args, interrupt| {
                let target = target(args)?;
                let scope = scope(args);
                if scope.dont_fragment && target.is_ipv6() {
                    return Err("% df-bit applies to IPv4: IPv6 routers never fragment".into());
                }
                let options = PingOptions {
                    repeat: args.number("repeat").unwrap_or(PING_REPEAT),
                    size: args.number("size").map_or(PING_SIZE, |s| s as usize),
                    timeout: args.number("timeout").unwrap_or(PING_TIMEOUT),
                    scope,
                };
                let _running = interrupt.stoppable();
                let work = ping(ping_stack.clone(), target, options, interrupt.clone());
                let rest = run_blocking(&ping_runtime, work)?;
                Ok(interrupt.take_progress() + &rest)
            },
        )?
        .exec_stoppable(
            &format!("traceroute [vrf WORD$vrf] (A.B.C.D$v4|X:X::X:X$v6) {SOURCE}"),
            &trace_help,
            move |args, interrupt| {
                let target = target(args)?;
                let _running = interrupt.stoppable();
                let work = traceroute(stack.clone(), target, scope(args), interrupt.clone());
                let rest = run_blocking(&runtime, work)?;
                Ok(interrupt.take_progress() + &rest)
            },
        )
}
