//! The local stack against real Linux hosts: the worker side is attached to
//! a TUN device (bare IPv4 packets) that lives in a network namespace, and
//! `nc`, `curl` and python in that namespace talk to the stack's sockets.
//! Needs root; skipped otherwise.

use kernel_bypass::local::{local_stack, serve_echo, serve_status, LocalPort, LocalStack};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STACK_ADDR: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const HOST_ADDR: &str = "10.99.0.2";
/// Upper bound for anything to happen; only a hang guard, never a measurement.
const PATIENCE: Duration = Duration::from_secs(20);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A name unique to this process and call, short enough for an interface.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(status.success(), "{args:?} failed: {status}");
}

/// A network namespace, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let name = unique_name("ghl");
        run(&["ip", "netns", "add", &name]);
        Netns { name }
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    fn ip(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name, "ip"];
        full.extend_from_slice(args);
        run(&full);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

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
                port.drain_outgoing(&mut |packet| {
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
    fn new() -> Testbed {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (stack, port) = local_stack(runtime.handle().clone()).unwrap();
        stack.set_addresses(&[format!("{STACK_ADDR}/24").parse().unwrap()]);
        let ns = Netns::new();
        let tun_name = unique_name("ght");
        let tun = open_tun(&tun_name);
        run(&["ip", "link", "set", &tun_name, "netns", &ns.name]);
        ns.ip(&["addr", "add", &format!("{HOST_ADDR}/24"), "dev", &tun_name]);
        ns.ip(&["link", "set", &tun_name, "up"]);
        ns.ip(&["link", "set", "lo", "up"]);
        Testbed {
            _adapter: Adapter::start(tun, port),
            ns,
            stack,
            runtime,
        }
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

    fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
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

fn start_echo(testbed: &Testbed, port: u16) {
    testbed
        .runtime
        .spawn(serve_echo(testbed.stack.clone(), port));
    testbed.wait_until("the echo listener", || testbed.stack.socket_count() > 0);
}

#[test]
fn nc_gets_its_bytes_echoed() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let testbed = Testbed::new();
    start_echo(&testbed, 7);
    let reply = testbed.nc(&["-N", "-w", "10", "10.99.0.1", "7"], b"hello gatehouse\n");
    assert_eq!(
        stdout_of(reply.wait_with_output().unwrap()),
        "hello gatehouse\n"
    );
}

#[test]
fn echo_carries_a_large_transfer_intact() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let testbed = Testbed::new();
    start_echo(&testbed, 7);
    // Larger than both socket buffers, so flow control must work both ways.
    let payload: String = (0..20_000).map(|i| format!("{i:07}\n")).collect();
    let reply = testbed.nc(&["-N", "-w", "10", "10.99.0.1", "7"], payload.as_bytes());
    assert_eq!(stdout_of(reply.wait_with_output().unwrap()), payload);
}

#[test]
fn curl_gets_the_status_page() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let testbed = Testbed::new();
    testbed
        .runtime
        .spawn(serve_status(testbed.stack.clone(), 8080, || {
            "gatehouse: all good\n".to_string()
        }));
    testbed.wait_until("the status listener", || testbed.stack.socket_count() > 0);
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
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let testbed = Testbed::new();
    start_echo(&testbed, 7);
    let baseline = testbed.stack.socket_count();
    let clients: Vec<(String, Child)> = (0..20)
        .map(|i| {
            let line = format!("client {i} says hi\n");
            let child = testbed.nc(&["-N", "-w", "10", "10.99.0.1", "7"], line.as_bytes());
            (line, child)
        })
        .collect();
    for (line, child) in clients {
        assert_eq!(stdout_of(child.wait_with_output().unwrap()), line);
    }
    testbed.wait_until("all connections freed", || {
        testbed.stack.socket_count() == baseline
    });
}

#[test]
fn udp_datagram_is_answered() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let testbed = Testbed::new();
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
    testbed.wait_until("the UDP socket", || testbed.stack.socket_count() > 0);
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
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let testbed = Testbed::new();
    let listener = testbed.nc(&["-N", "-l", HOST_ADDR, "7000"], b"from host\n");
    let stack = testbed.stack.clone();
    let exchange = async move {
        let target = SocketAddrV4::new(HOST_ADDR.parse().unwrap(), 7000);
        let deadline = Instant::now() + PATIENCE;
        // nc may not be listening yet: a refused attempt is retried.
        let mut stream = loop {
            match stack.tcp_connect(target).await {
                Ok(stream) => break stream,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("connect: {e}, retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("connect: {e}"),
            }
        };
        assert_eq!(stream.local_addr().ip(), &STACK_ADDR);
        stream.write_all(b"from stack\n").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut received = String::new();
        stream.read_to_string(&mut received).await.unwrap();
        received
    };
    let received = testbed
        .runtime
        .block_on(async { tokio::time::timeout(2 * PATIENCE, exchange).await })
        .expect("the exchange hung");
    assert_eq!(received, "from host\n");
    assert_eq!(
        stdout_of(listener.wait_with_output().unwrap()),
        "from stack\n"
    );
}

#[test]
fn killed_client_leaves_no_socket_behind() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let testbed = Testbed::new();
    start_echo(&testbed, 7);
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
    testbed.wait_until("the connection to be accepted", || {
        testbed.stack.socket_count() > baseline
    });
    client.kill().unwrap();
    client.wait().unwrap();
    testbed.wait_until("the connection to be freed", || {
        testbed.stack.socket_count() == baseline
    });
}
