//! The local stack behind the real forwarding pipeline: a Linux host
//! reaches the appliance's own TCP services on a physical interface and on
//! a VXLAN interface (through the kernel's vxlan device), and the appliance
//! connects out over the overlay.
//!
//! ```text
//!  h1: veth 10.79.1.2, vx0 10.79.100.2 (VNI 77) --- [p 10.79.1.1, vxlan77 10.79.100.1  dataplane + local stack]
//! ```

mod dataplane_support;

use dataplane_support::{interface, is_root, Netns, Veth};
use grammar::config::{Config, Vxlan};
use kernel_bypass::io::Backend;
use kernel_bypass::local::{serve_echo, serve_status};
use kernel_bypass::{Dataplane, DataplaneOptions};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hang guard only: how long to retry while ARP and the overlay settle.
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs `attempt` until it returns Some or patience runs out.
fn retry<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up on {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn own_services_answer_on_physical_and_vxlan_interfaces() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let h1 = Netns::new();
    let veth = Veth::into_ns(&h1);
    let mut config = Config::default();
    config
        .interfaces
        .insert(veth.outer.clone(), interface(&["10.79.1.1/24"]));
    let mut tunnel = interface(&["10.79.100.1/24"]);
    tunnel.vxlan = Some(Vxlan {
        vni: Some(77),
        source_interface: Some(veth.outer.clone()),
        remotes: ["10.79.1.2".parse().unwrap()].into(),
        ..Vxlan::default()
    });
    config.interfaces.insert("vxlan77".into(), tunnel);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let dataplane = Dataplane::start(
        &config,
        DataplaneOptions {
            backend: Backend::AfPacket,
            workers: 1,
        },
        runtime.handle().clone(),
    )
    .expect("start");
    let stack = dataplane.local_stack();
    runtime.spawn(serve_echo(stack.clone(), 7));
    runtime.spawn(serve_status(stack.clone(), 8080, || {
        "gatehouse ok\n".into()
    }));

    h1.configure(&veth.inner, "10.79.1.2/24", None);
    h1.run(&[
        "ip",
        "link",
        "add",
        "vx0",
        "type",
        "vxlan",
        "id",
        "77",
        "local",
        "10.79.1.2",
        "remote",
        "10.79.1.1",
        "dstport",
        "4789",
        "dev",
        &veth.inner,
    ]);
    h1.configure("vx0", "10.79.100.2/24", None);

    let echoed = retry("echo on the physical interface", || {
        let out = h1.output(&["sh", "-c", "echo via-veth | nc -N -w 3 10.79.1.1 7"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text == "via-veth\n").then_some(text)
    });
    assert_eq!(echoed, "via-veth\n");

    let page = retry("status page over VXLAN", || {
        let out = h1.output(&["curl", "-sS", "-m", "3", "http://10.79.100.1:8080/"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(page, "gatehouse ok\n", "{}", dataplane.show_counters());

    // Outgoing over the overlay: the source must be the tunnel's address.
    let _listener = h1.spawn(&["sh", "-c", "echo from-h1 | nc -N -l 10.79.100.2 7001"]);
    let exchange = async {
        let target = SocketAddrV4::new("10.79.100.2".parse().unwrap(), 7001);
        let deadline = Instant::now() + PATIENCE;
        let mut stream = loop {
            match stack.tcp_connect(target).await {
                Ok(stream) => break stream,
                Err(e) => {
                    assert!(Instant::now() < deadline, "connect: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert_eq!(stream.local_addr().ip().to_string(), "10.79.100.1");
        stream.write_all(b"from appliance\n").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut received = String::new();
        stream.read_to_string(&mut received).await.unwrap();
        received
    };
    let received = runtime
        .block_on(async { tokio::time::timeout(2 * PATIENCE, exchange).await })
        .expect("the exchange hung");
    assert_eq!(received, "from-h1\n");
    dataplane.stop();
}
