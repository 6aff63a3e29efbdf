//! Two local stacks joined back to back (no root, no kernel): the socket API
//! semantics that the TUN tests do not reach.

mod support;

use kernel_bypass::local::{serve_echo, BackToBack, Liveness, LocalStack};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};
use support::local::{runtime, stack_at};
use support::PATIENCE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);

struct Pair {
    wire: BackToBack,
    a: LocalStack,
    b: LocalStack,
    runtime: tokio::runtime::Runtime,
}

impl Pair {
    /// Starts a TCP echo on B port 7 and waits until it listens; returns
    /// B's socket count then (the listener's share).
    fn serve_echo(&self) -> usize {
        self.runtime.spawn(serve_echo(self.b.clone(), 7));
        self.run(eventually("the listener", || self.b.socket_count() > 0));
        self.b.socket_count()
    }

    /// Runs `test` on the pair's runtime; a hang fails instead of blocking.
    fn run<T>(&self, test: impl std::future::Future<Output = T>) -> T {
        self.runtime
            .block_on(async { tokio::time::timeout(3 * PATIENCE, test).await })
            .expect("the test hung")
    }

    fn new() -> Pair {
        let runtime = runtime();
        let (a, port_a) = stack_at(&runtime, A);
        let (b, port_b) = stack_at(&runtime, B);
        Pair {
            wire: BackToBack::join(port_a, port_b),
            a,
            b,
            runtime,
        }
    }
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn megabytes_cross_an_echo_intact_both_ways() {
    let pair = Pair::new();
    pair.serve_echo();
    let a = pair.a.clone();
    pair.run(async move {
        let stream = a.tcp_connect(SocketAddrV4::new(B, 7)).await.unwrap();
        assert_eq!(stream.peer_addr(), SocketAddrV4::new(B, 7).into());
        let payload: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let sent = payload.clone();
        let writing = tokio::spawn(async move {
            writer.write_all(&sent).await.unwrap();
            writer.shutdown().await.unwrap();
        });
        let mut echoed = Vec::new();
        reader.read_to_end(&mut echoed).await.unwrap();
        assert!(echoed == payload, "echo differs from what was sent");
        writing.await.unwrap();
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let pair = Pair::new();
    let a = pair.a.clone();
    let error = pair
        .runtime
        .block_on(a.tcp_connect(SocketAddrV4::new(B, 4444)))
        .expect_err("nothing listens there");
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
    pair.run(eventually("the socket freed", || {
        pair.a.socket_count() == 0
    }));
}

#[test]
fn connecting_without_an_address_fails_cleanly() {
    let pair = Pair::new();
    pair.a.set_addresses(&[]);
    let error = pair
        .runtime
        .block_on(pair.a.tcp_connect(SocketAddrV4::new(B, 7)))
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::AddrNotAvailable);
    let multicast = pair
        .runtime
        .block_on(
            pair.a
                .tcp_connect(SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 1), 7)),
        )
        .err()
        .unwrap();
    assert_eq!(multicast.kind(), ErrorKind::InvalidInput);
    assert_eq!(pair.a.socket_count(), 0);
}

#[test]
fn ports_are_exclusive_until_released() {
    let pair = Pair::new();
    pair.run(async {
        let listener = pair.b.tcp_listen(22).await.unwrap();
        let again = pair.b.tcp_listen(22).await.err().unwrap();
        assert_eq!(again.kind(), ErrorKind::AddrInUse);
        drop(listener);
        eventually("the pool freed", || pair.b.socket_count() == 0).await;
        drop(pair.b.tcp_listen(22).await.unwrap());

        let udp = pair.b.udp_bind(53).await.unwrap();
        assert_eq!(
            pair.b.udp_bind(53).await.err().unwrap().kind(),
            ErrorKind::AddrInUse
        );
        drop(udp);
        pair.b.udp_bind(53).await.unwrap();
    });
}

#[test]
fn udp_round_trip_with_ephemeral_port() {
    let pair = Pair::new();
    pair.run(async {
        let server = pair.b.udp_bind(53).await.unwrap();
        let client = pair.a.udp_bind(0).await.unwrap();
        assert!(client.port() >= 49152);
        client
            .send_to(b"question", SocketAddrV4::new(B, 53))
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let (len, from) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..len], b"question");
        assert_eq!(from, SocketAddrV4::new(A, client.port()).into());
        server.send_to(b"answer", from).await.unwrap();
        // A short buffer gets the start of the datagram, like a kernel socket.
        let mut short = [0u8; 3];
        let (len, from) = client.recv_from(&mut short).await.unwrap();
        assert_eq!(
            (&short[..len], from),
            (&b"ans"[..], SocketAddrV4::new(B, 53).into())
        );
        let too_big = vec![0u8; 1500];
        let error = client.send_to(&too_big, from).await.err().unwrap();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn dropped_connections_are_freed_on_both_sides() {
    let pair = Pair::new();
    let baseline = pair.serve_echo();
    pair.run(async {
        let mut streams = Vec::new();
        for _ in 0..20 {
            let mut stream = pair.a.tcp_connect(SocketAddrV4::new(B, 7)).await.unwrap();
            stream.write_all(b"x").await.unwrap();
            let mut byte = [0u8; 1];
            stream.read_exact(&mut byte).await.unwrap();
            streams.push(stream);
        }
        assert_eq!(pair.a.socket_count(), 20);
        assert_eq!(pair.b.socket_count(), baseline + 20);
        // Half close gracefully, half reset.
        for (i, stream) in streams.into_iter().enumerate() {
            if i % 2 == 0 {
                drop(stream);
            } else {
                stream.abort();
            }
        }
        eventually("client sockets freed", || pair.a.socket_count() == 0).await;
        eventually("server sockets freed", || pair.b.socket_count() == baseline).await;
    });
}

#[test]
fn a_vanished_peer_is_detected_and_freed() {
    let pair = Pair::new();
    let quick = Liveness {
        keep_alive: Duration::from_millis(200),
        peer_timeout: Duration::from_secs(1),
        orphan_linger: Duration::from_secs(1),
        handshake_timeout: Duration::from_secs(1),
    };
    pair.a.set_liveness(quick);
    pair.b.set_liveness(quick);
    let baseline = pair.serve_echo();
    pair.run(async {
        let mut idle = pair.a.tcp_connect(SocketAddrV4::new(B, 7)).await.unwrap();
        let mut closed = pair.a.tcp_connect(SocketAddrV4::new(B, 7)).await.unwrap();
        eventually("both accepted", || pair.b.socket_count() == baseline + 2).await;
        pair.wire.set_cut(true);
        // One side waits idle for data that never comes; the other was
        // closed by its owner and cannot finish the close handshake.
        closed.write_all(b"lost").await.unwrap();
        drop(closed);
        let mut byte = [0u8; 1];
        let error = idle.read(&mut byte).await.expect_err("the peer is gone");
        assert_eq!(error.kind(), ErrorKind::ConnectionReset);
        drop(idle);
        eventually("client sockets freed", || pair.a.socket_count() == 0).await;
        eventually("server sockets freed", || pair.b.socket_count() == baseline).await;
    });
}

#[test]
fn show_lists_listeners_and_connections() {
    let pair = Pair::new();
    pair.serve_echo();
    pair.run(async {
        let _udp = pair.b.udp_bind(53).await.unwrap();
        let stream = pair.a.tcp_connect(SocketAddrV4::new(B, 7)).await.unwrap();
        let client = stream.local_addr().to_string();
        let has = |words: &[&str]| {
            let shown = pair.b.show_sockets();
            assert!(shown.starts_with("Proto"), "{shown}");
            shown.lines().any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.starts_with(words)
            })
        };
        assert!(has(&["tcp", "*:7", "*", "LISTEN"]));
        assert!(has(&["udp", "*:53", "*"]));
        // The server side learns of the handshake's last ACK a moment later.
        let established = ["tcp", "10.1.0.2:7", &client, "ESTABLISHED"];
        eventually("the connection listed", || has(&established)).await;
    });
}

#[test]
fn connect_from_a_chosen_own_address() {
    let pair = Pair::new();
    let second = Ipv4Addr::new(192, 0, 2, 1);
    pair.a.set_addresses(&[
        format!("{A}/24").parse().unwrap(),
        format!("{second}/24").parse().unwrap(),
    ]);
    pair.run(async {
        let listener = pair.b.tcp_listen(179).await.unwrap();
        let target = SocketAddrV4::new(B, 179);
        let stream = pair.a.tcp_connect_from(second, target).await.unwrap();
        assert_eq!(stream.local_addr().ip(), second);
        let (_accepted, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, stream.local_addr());
        let foreign = Ipv4Addr::new(198, 51, 100, 1);
        let error = pair
            .a
            .tcp_connect_from(foreign, target)
            .await
            .err()
            .unwrap();
        assert_eq!(error.kind(), ErrorKind::AddrNotAvailable);
    });
}

#[test]
fn datagrams_sent_just_before_drop_still_leave() {
    let pair = Pair::new();
    pair.run(async {
        let server = pair.b.udp_bind(514).await.unwrap();
        for i in 0..10u8 {
            let once = pair.a.udp_bind(0).await.unwrap();
            once.send_to(&[i], SocketAddrV4::new(B, 514)).await.unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 8];
        let receiving = async {
            while got.len() < 10 {
                let (len, _) = server.recv_from(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..len]);
            }
        };
        receiving.await;
        got.sort();
        assert_eq!(got, (0..10).collect::<Vec<u8>>());
    });
}

#[test]
fn tcp_and_udp_over_ipv6_global_and_link_local() {
    let pair = Pair::new();
    let (a, b) = (
        ["2001:db8:1::1/64", "fe80::a/64"],
        ["2001:db8:1::2/64", "fe80::b/64"],
    );
    pair.a.set_addresses(&a.map(|net| net.parse().unwrap()));
    pair.b.set_addresses(&b.map(|net| net.parse().unwrap()));
    pair.serve_echo();
    pair.run(async {
        let server = pair.b.udp_bind(53).await.unwrap();
        for (from, to) in [("2001:db8:1::1", "2001:db8:1::2"), ("fe80::a", "fe80::b")] {
            let echo: SocketAddr = format!("[{to}]:7").parse().unwrap();
            let mut stream = pair.a.tcp_connect(echo).await.unwrap();
            assert_eq!(stream.local_addr().ip().to_string(), from, "source address");
            stream.write_all(b"over ipv6").await.unwrap();
            let mut buf = [0u8; 9];
            stream.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"over ipv6");

            let client = pair.a.udp_bind(0).await.unwrap();
            let dns: SocketAddr = format!("[{to}]:53").parse().unwrap();
            client.send_to(b"question", dns).await.unwrap();
            let (len, peer) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..len], b"question");
            assert_eq!(peer, format!("[{from}]:{}", client.port()).parse().unwrap());
            server.send_to(b"answer", peer).await.unwrap();
            let (len, answered_by) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..len], answered_by), (&b"answer"[..], dns));
            // The IPv6 header is 20 bytes longer than the IPv4 one.
            let error = client.send_to(&[0; 1500 - 40 - 8 + 1], dns).await;
            assert_eq!(error.err().unwrap().kind(), ErrorKind::InvalidInput);
            client.send_to(&[7; 1500 - 40 - 8], dns).await.unwrap();
            let mut largest = [0u8; 1500];
            let (len, _) = server.recv_from(&mut largest).await.unwrap();
            assert_eq!(len, 1500 - 40 - 8, "the largest datagram arrives whole");
        }
    });
}
