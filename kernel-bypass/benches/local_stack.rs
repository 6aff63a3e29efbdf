//! Figures for the local stack: two stacks back to back on one machine, so
//! this measures the stack itself (smoltcp, queues, driver, async glue),
//! not a NIC. Run with `cargo bench -p kernel-bypass --bench local_stack`.

#[path = "../tests/support/mod.rs"]
mod support;

use kernel_bypass::local::{serve_echo, BackToBack, LocalStack};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;
use support::local::{runtime, stack_at};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const BULK_BYTES: usize = 64 << 20;
const CONNECTIONS: usize = 500;
const ROUND_TRIPS: usize = 10_000;

fn main() {
    let runtime = runtime();
    let (a, port_a) = stack_at(&runtime, A);
    let (b, port_b) = stack_at(&runtime, B);
    let _wire = BackToBack::join(port_a, port_b);
    runtime.spawn(serve_echo(b.clone(), 7));
    runtime.block_on(async {
        bulk(&a, &b).await;
        connections(&a).await;
        udp_round_trips(&a, &b).await;
    });
}

/// One connection, A writes, B reads and discards.
async fn bulk(a: &LocalStack, b: &LocalStack) {
    let listener = b.tcp_listen(9).await.expect("listen");
    let sink = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(read) => total += read,
            }
        }
    });
    let mut stream = a
        .tcp_connect(SocketAddrV4::new(B, 9))
        .await
        .expect("connect");
    let chunk = vec![0x5au8; 64 * 1024];
    let start = Instant::now();
    for _ in 0..BULK_BYTES / chunk.len() {
        stream.write_all(&chunk).await.expect("write");
    }
    stream.shutdown().await.expect("shutdown");
    let received = sink.await.expect("sink");
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(received, BULK_BYTES);
    println!(
        "tcp bulk: {} MiB in {seconds:.2} s = {:.0} Mbit/s",
        BULK_BYTES >> 20,
        BULK_BYTES as f64 * 8.0 / seconds / 1e6
    );
}

/// Sequential connect, one echoed byte, close.
async fn connections(a: &LocalStack) {
    let start = Instant::now();
    for _ in 0..CONNECTIONS {
        let mut stream = a
            .tcp_connect(SocketAddrV4::new(B, 7))
            .await
            .expect("connect");
        stream.write_all(b"x").await.expect("write");
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("read");
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "tcp connect+echo+close: {CONNECTIONS} in {seconds:.2} s = {:.0}/s",
        CONNECTIONS as f64 / seconds
    );
}

/// Ping-pong of small datagrams.
async fn udp_round_trips(a: &LocalStack, b: &LocalStack) {
    let server = b.udp_bind(53).await.expect("bind");
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((len, from)) = server.recv_from(&mut buf).await {
            let _ = server.send_to(&buf[..len], from).await;
        }
    });
    let client = a.udp_bind(0).await.expect("bind");
    let mut buf = [0u8; 512];
    let start = Instant::now();
    for _ in 0..ROUND_TRIPS {
        client
            .send_to(b"0123456789abcdef", SocketAddrV4::new(B, 53))
            .await
            .expect("send");
        client.recv_from(&mut buf).await.expect("recv");
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "udp round trips: {ROUND_TRIPS} in {seconds:.2} s = {:.0}/s, {:.1} us each",
        ROUND_TRIPS as f64 / seconds,
        seconds * 1e6 / ROUND_TRIPS as f64
    );
}
