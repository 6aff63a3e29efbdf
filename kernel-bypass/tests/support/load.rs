//! A load generator for the veth benchmarks: frames sent round and round
//! with sendmmsg on an AF_PACKET socket in a namespace, and the counters
//! that say how many arrived.

use super::netns::{output, run, unique, Netns, Veth};
use kernel_bypass::wire::Mac;
use std::time::{Duration, Instant};

/// Which transmit queues of the sender's veth the load leaves by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TxQueues {
    /// The qdisc layer is bypassed, and the queue is the sending CPU's
    /// (`packet_pick_tx_queue`): one queue, the cheapest path.
    Bypass,
    /// Through the qdisc layer, which spreads flows over the queues by
    /// their hash, as a host's stack does.
    ByFlowHash,
}

/// Sends `frames` round and round out of `ifname` in `ns` for `run` with
/// sendmmsg on an AF_PACKET socket; returns frames sent.
pub fn blast(
    ns: &Netns,
    ifname: &str,
    frames: Vec<Vec<u8>>,
    run: Duration,
    queues: TxQueues,
) -> u64 {
    if frames.is_empty() {
        return 0;
    }
    let ifname = std::ffi::CString::new(ifname).expect("name");
    ns.in_thread(move || {
        let mut iovs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        // SAFETY: plain syscalls on a descriptor this thread owns; the
        // messages point into `iovs` (within its length, it is not empty)
        // and at `frames`, both alive and unmoved for the loop.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            let mut addr: libc::sockaddr_ll = std::mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = libc::if_nametoindex(ifname.as_ptr()) as i32;
            let bound = libc::bind(
                fd,
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if fd < 0 || bound != 0 {
                return 0;
            }
            let bypass = libc::c_int::from(queues == TxQueues::Bypass);
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                &bypass as *const _ as *const libc::c_void,
                4,
            );
            // 64 messages a call, cycling over the frames (several may
            // point at one iovec: the kernel only reads them).
            let count = iovs.len();
            let mut msgs: Vec<libc::mmsghdr> = (0..64)
                .map(|i| {
                    let mut m: libc::mmsghdr = std::mem::zeroed();
                    m.msg_hdr.msg_iov = iovs.as_mut_ptr().add(i % count);
                    m.msg_hdr.msg_iovlen = 1;
                    m
                })
                .collect();
            let start = Instant::now();
            let mut sent = 0u64;
            while start.elapsed() < run {
                let n = libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as u32, 0);
                if n > 0 {
                    sent += n as u64;
                }
            }
            libc::close(fd);
            sent
        }
    })
}

/// Packets `ifname` in `ns` has received.
pub fn rx_packets(ns: &Netns, ifname: &str) -> u64 {
    let path = format!("/sys/class/net/{ifname}/statistics/rx_packets");
    ns.run(&["cat", &path]).trim().parse().unwrap_or(0)
}

/// (offered, forwarded) packets per second: `frames` blasted from the
/// sender for `run` (qdisc bypassed), counted at the sink.
pub fn offered_and_forwarded(
    sender: (&Netns, &str),
    sink: (&Netns, &str),
    frames: Vec<Vec<u8>>,
    run: Duration,
) -> (f64, f64) {
    offered_and_forwarded_on(sender, sink, frames, run, TxQueues::Bypass)
}

/// Like `offered_and_forwarded`, leaving by the transmit `queues` said.
pub fn offered_and_forwarded_on(
    (sender, sender_if): (&Netns, &str),
    (sink, sink_if): (&Netns, &str),
    frames: Vec<Vec<u8>>,
    run: Duration,
    queues: TxQueues,
) -> (f64, f64) {
    let before = rx_packets(sink, sink_if);
    let sent = blast(sender, sender_if, frames, run, queues);
    std::thread::sleep(Duration::from_millis(100));
    let received = rx_packets(sink, sink_if).saturating_sub(before);
    let secs = run.as_secs_f64();
    (sent as f64 / secs, received as f64 / secs)
}

/// Sender (10.80.1.2, 2001:db8:80:1::2) and sink (10.80.2.2,
/// 2001:db8:80:2::2) namespaces, each on a veth whose other end is
/// returned, their gateways .1.
pub fn sender_and_sink() -> (Netns, Veth, Netns, Veth) {
    sender_and_sink_with_queues(1)
}

/// Like `sender_and_sink`, on veths with `queues` receive and transmit
/// queues.
pub fn sender_and_sink_with_queues(queues: u32) -> (Netns, Veth, Netns, Veth) {
    let (sender, sink) = (Netns::new(), Netns::new());
    let (a, b) = (
        Veth::into_ns_with_queues(&sender, queues),
        Veth::into_ns_with_queues(&sink, queues),
    );
    sender.configure(&a.inner, "10.80.1.2/24", Some("10.80.1.1"));
    sink.configure(&b.inner, "10.80.2.2/24", Some("10.80.2.1"));
    sender.configure(&a.inner, "2001:db8:80:1::2/64", Some("2001:db8:80:1::1"));
    sink.configure(&b.inner, "2001:db8:80:2::2/64", Some("2001:db8:80:2::1"));
    (sender, a, sink, b)
}

/// Installs nftables if `nft` is missing; false if that failed.
fn nft_available() -> bool {
    if output(&["sh", "-c", "command -v nft"]).status.success() {
        return true;
    }
    println!("    (installing nftables: apt-get install -y --no-install-recommends nftables)");
    let installed = output(&[
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "nftables",
    ]);
    installed.status.success() && output(&["sh", "-c", "command -v nft"]).status.success()
}

/// A Linux router namespace between the sender and the sink: the veths'
/// outer ends moved into it with the gateways' addresses, forwarding on;
/// with the MAC of its sender-side end.
pub fn kernel_router(a: &Veth, b: &Veth) -> (Netns, Mac) {
    let router = Netns::new();
    for (end, address) in [(&a.outer, "10.80.1.1/24"), (&b.outer, "10.80.2.1/24")] {
        run(&["ip", "link", "set", end, "netns", &router.name]);
        router.configure(end, address, None);
    }
    router.run(&["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    let text = router.run(&["cat", &format!("/sys/class/net/{}/address", a.outer)]);
    let mut mac = [0u8; 6];
    for (m, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *m = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    (router, mac)
}

/// Loads `files` in turn with `nft -f` in `router`; Err with nft's first lines.
pub fn load_nft(router: &Netns, files: &[String]) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!("{}.nft", unique("nft")));
    for file in files {
        std::fs::write(&path, file).map_err(|e| e.to_string())?;
        let loaded = router.output(&["nft", "-f", &path.to_string_lossy()]);
        if !loaded.status.success() {
            let _ = std::fs::remove_file(&path);
            return Err(String::from_utf8_lossy(&loaded.stderr)
                .lines()
                .take(3)
                .collect());
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Whether the veth comparison with nftables can run (root, nftables
/// installed or installable); says why not.
pub fn veth_with_nftables() -> bool {
    if !super::netns::is_root() {
        println!("veth: skipped (needs root for namespaces, raw sockets and nftables)");
        return false;
    }
    if !nft_available() {
        println!("veth: kernel baseline not measured: nftables could not be installed");
        return false;
    }
    true
}
