//! Local-stack setups: a runtime, stacks with an address, and a TCP
//! exchange from a stack to a listening host.

use super::PATIENCE;
use kernel_bypass::local::{local_stack, LocalPort, LocalStack};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The runtime the stacks' tasks run on: two workers, as on the appliance.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A local stack on `runtime` owning `address`/24, and its worker side.
pub fn stack_at(runtime: &tokio::runtime::Runtime, address: Ipv4Addr) -> (LocalStack, LocalPort) {
    let (stack, port) = local_stack(runtime.handle().clone()).expect("local stack");
    stack.set_addresses(&[format!("{address}/24").parse().expect("address")]);
    (stack, port)
}

/// Connects from `stack` to `target` (retrying while the listener may not
/// be up yet), sends `message`, closes its side and reads the reply to the
/// end. Returns the connection's own address and the reply; a hang fails.
pub fn tcp_exchange(
    runtime: &tokio::runtime::Runtime,
    stack: &LocalStack,
    target: impl Into<SocketAddr>,
    message: &[u8],
) -> (SocketAddr, String) {
    let target = target.into();
    let exchange = async {
        let deadline = Instant::now() + PATIENCE;
        let mut stream = loop {
            match stack.tcp_connect(target).await {
                Ok(stream) => break stream,
                Err(e) => {
                    assert!(Instant::now() < deadline, "connect: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let local = stream.local_addr();
        stream.write_all(message).await.expect("write");
        stream.shutdown().await.expect("shutdown");
        let mut received = String::new();
        stream.read_to_string(&mut received).await.expect("read");
        (local, received)
    };
    runtime
        .block_on(async { tokio::time::timeout(2 * PATIENCE, exchange).await })
        .expect("the exchange hung")
}

/// Echoes every datagram on UDP `port` of `stack` back to its sender.
pub async fn udp_echo(stack: LocalStack, port: u16) {
    let socket = stack.udp_bind(port).await.expect("udp bind");
    let mut buf = [0u8; 2048];
    while let Ok((len, from)) = socket.recv_from(&mut buf).await {
        let _ = socket.send_to(&buf[..len], from).await;
    }
}
