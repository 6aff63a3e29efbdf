//! The local stack against real Linux hosts: the worker side is attached to
//! a TUN device (bare IPv4 packets) that lives in a network namespace, and
//! `nc`, `curl` and python in that namespace talk to the stack's sockets.
//! Needs root; skipped otherwise.

mod support;

use kernel_bypass::local::{serve_echo, serve_status, LocalPort, LocalStack};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use support::local::{runtime, stack_at, tcp_exchange};
use support::netns::{is_root, run, unique, Netns};
use support::wait_until;

const STACK_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const HOST_ADDR: &str = "10.99.0.2";

/// A TUN device without packet information headers; it vanishes when the
/// fd closes.
fn open_tun(name: &str) -> OwnedFd {
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    // SAFETY: a plain open of a device node; the result is checked.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    assert!(
        fd >= 0,
        "open /dev/net/tun: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut request = IfReq {
        name: [0; 16],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    request.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which IfReq lays out.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut request) };
    assert!(rc == 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
    fd
}

/// Moves packets between the TUN fd and the stack's worker side, like the
/// pipeline would, until dropped.
struct Adapter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Adapter {
    fn start(tun: OwnedFd, port: LocalPort) -> Adapter {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) {
                let mut fds = [
                    libc::pollfd {
                        fd: tun.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: port.wake_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                // SAFETY: two valid pollfds.
                unsafe { libc::poll(fds.as_mut_ptr(), 2, 20) };
                loop {
                    // SAFETY: reads into a live buffer of the given length.
                    let read =
                        unsafe { libc::read(tun.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                    if read <= 0 {
                        break;
                    }
                    port.deliver(&buf[..read as usize]);
                }
                port.drain_outgoing(&mut |packet, _| {
                    // SAFETY: writes a live packet slice.
                    unsafe { libc::write(tun.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
                });
            }
        });
        Adapter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Adapter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A local stack wired to a host in a fresh namespace. Field order is drop
/// order: stop the adapter, then delete the namespace, then the runtime.
struct Testbed {
    _adapter: Adapter,
    ns: Netns,
    stack: LocalStack,
    runtime: tokio::runtime::Runtime,
}

impl Testbed {
    /// A testbed, or None (the test is skipped) when not root.
    fn new() -> Option<Testbed> {
        if !is_root() {
            return None;
        }
        let runtime = runtime();
        let (stack, port) = stack_at(&runtime, STACK_ADDR);
        let ns = Netns::new();
        let tun_name = unique("t");
        let tun = open_tun(&tun_name);
        run(&["ip", "link", "set", &tun_name, "netns", &ns.name]);
        ns.configure(&tun_name, &format!("{HOST_ADDR}/24"), None);
        Some(Testbed {
            _adapter: Adapter::start(tun, port),
            ns,
            stack,
            runtime,
        })
    }

    /// Runs `nc` in the namespace with `input` on stdin (closed afterwards).
    fn nc(&self, args: &[&str], input: &[u8]) -> Child {
        let mut child = self
            .ns
            .command("nc")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nc");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child
    }

    /// Waits until the stack has more sockets than `baseline`.
    fn wait_for_sockets_above(&self, what: &str, baseline: usize) {
        wait_until(what, || self.stack.socket_count() > baseline);
    }
}

fn stdout_of(output: Output) -> String {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A testbed whose stack runs a TCP echo on port 7; None unless root.
fn echo_testbed() -> Option<Testbed> {
    let testbed = Testbed::new()?;
    testbed.runtime.spawn(serve_echo(testbed.stack.clone(), 7));
    testbed.wait_for_sockets_above("the echo listener", 0);
    Some(testbed)
}

/// `nc` arguments sending stdin to the stack's echo port.
const NC_TO_ECHO: [&str; 5] = ["-N", "-w", "10", "10.99.0.1", "7"];

/// `payload` sent through `nc` to the echo comes back unchanged.
fn assert_echoed(payload: &str) {
    let Some(testbed) = echo_testbed() else {
        return;
    };
    let reply = testbed.nc(&NC_TO_ECHO, payload.as_bytes());
    assert_eq!(stdout_of(reply.wait_with_output().unwrap()), payload);
}

#[test]
fn nc_gets_its_bytes_echoed() {
    assert_echoed("hello gatehouse\n");
}

#[test]
fn echo_carries_a_large_transfer_intact() {
    // Larger than both socket buffers, so flow control must work both ways.
    let payload: String = (0..20_000).map(|i| format!("{i:07}\n")).collect();
    assert_echoed(&payload);
}

#[test]
fn curl_gets_the_status_page() {
    let Some(testbed) = Testbed::new() else {
        return;
    };
    testbed
        .runtime
        .spawn(serve_status(testbed.stack.clone(), 8080, || {
            "gatehouse: all good\n".to_string()
        }));
    testbed.wait_for_sockets_above("the status listener", 0);
    let output = testbed
        .ns
        .command("curl")
        .args(["-sS", "-m", "10", "http://10.99.0.1:8080/status"])
        .output()
        .unwrap();
    assert_eq!(stdout_of(output), "gatehouse: all good\n");
}

#[test]
fn twenty_concurrent_connections_all_echo() {
    let Some(testbed) = echo_testbed() else {
        return;
    };
    let baseline = testbed.stack.socket_count();
    let clients: Vec<(String, Child)> = (0..20)
        .map(|i| {
            let line = format!("client {i} says hi\n");
            let child = testbed.nc(&NC_TO_ECHO, line.as_bytes());
            (line, child)
        })
        .collect();
    for (line, child) in clients {
        assert_eq!(stdout_of(child.wait_with_output().unwrap()), line);
    }
    wait_until("all connections freed", || {
        testbed.stack.socket_count() == baseline
    });
}

#[test]
fn udp_datagram_is_answered() {
    let Some(testbed) = Testbed::new() else {
        return;
    };
    let stack = testbed.stack.clone();
    testbed.runtime.spawn(async move {
        let socket = stack.udp_bind(9000).await.unwrap();
        let mut buf = [0u8; 1500];
        loop {
            let (len, from) = socket.recv_from(&mut buf).await.unwrap();
            let mut reply = b"pong:".to_vec();
            reply.extend_from_slice(&buf[..len]);
            socket.send_to(&reply, from).await.unwrap();
        }
    });
    testbed.wait_for_sockets_above("the UDP socket", 0);
    let script = "import socket\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s.settimeout(10)\n\
        s.sendto(b'ping', ('10.99.0.1', 9000))\n\
        print(s.recvfrom(2000)[0].decode())\n";
    let output = testbed
        .ns
        .command("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert_eq!(stdout_of(output), "pong:ping\n");
}

#[test]
fn stack_connects_out_to_a_host_listener() {
    let Some(testbed) = Testbed::new() else {
        return;
    };
    let listener = testbed.nc(&["-N", "-l", HOST_ADDR, "7000"], b"from host\n");
    let target = SocketAddrV4::new(HOST_ADDR.parse().unwrap(), 7000);
    let (local, received) = tcp_exchange(&testbed.runtime, &testbed.stack, target, b"from stack\n");
    assert_eq!(local.ip(), STACK_ADDR);
    assert_eq!(received, "from host\n");
    assert_eq!(
        stdout_of(listener.wait_with_output().unwrap()),
        "from stack\n"
    );
}

#[test]
fn killed_client_leaves_no_socket_behind() {
    let Some(testbed) = echo_testbed() else {
        return;
    };
    let baseline = testbed.stack.socket_count();
    let mut client = testbed
        .ns
        .command("nc")
        .args(["10.99.0.1", "7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Keep stdin open so the connection stays up until the kill.
    let _stdin = client.stdin.take();
    testbed.wait_for_sockets_above("the connection to be accepted", baseline);
    client.kill().unwrap();
    client.wait().unwrap();
    wait_until("the connection to be freed", || {
        testbed.stack.socket_count() == baseline
    });
}
