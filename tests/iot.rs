//! The IoT gateway in `gatehouse run`, the real binary, between real peers
//! in network namespaces: a pymodbus Modbus TCP server with known register
//! values (every data type and byte order) and a mosquitto broker, with
//! mosquitto_sub and mosquitto_pub as the cloud side (the site is in
//! tests/support/iot.rs).

#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;
#[path = "support/iot.rs"]
mod site;

use netns::is_root;
use serde_json::Value as Json;
use site::{Site, CLIENT, FIELD, PATIENCE, PYTHON};
use std::time::{Duration, Instant};

/// The tags of every type and order over the server's values, with what
/// each must publish.
const TAGS: &[(&str, &str, &str)] = &[
    ("i16", "source holding-register 0\n   type int16", "-1234"),
    (
        "u16",
        "source holding-register 1\n   type uint16\n   byte-order badc",
        "54321",
    ),
    (
        "i32",
        "source holding-register 2\n   type int32",
        "-123456789",
    ),
    (
        "u32",
        "source holding-register 4\n   type uint32\n   byte-order badc",
        "3000000000",
    ),
    (
        "i64",
        "source holding-register 6\n   type int64\n   byte-order cdab",
        "-9876543210123",
    ),
    (
        "f32",
        "source holding-register 10\n   type float32\n   byte-order dcba",
        "21.5",
    ),
    (
        "f64",
        "source holding-register 12\n   type float64\n   byte-order cdab",
        "-1234.5678",
    ),
    (
        "text",
        "source holding-register 16\n   type string\n   length 5",
        "\"Gatehouse\"",
    ),
    (
        "temp",
        "source holding-register 22\n   type int16\n   scale 0.1\n   offset -40",
        "21.5",
    ),
    (
        "f32abcd",
        "source holding-register 24\n   type float32",
        "1.5",
    ),
    (
        "f32badc",
        "source holding-register 26\n   type float32\n   byte-order badc",
        "2.5",
    ),
    (
        "f32cdab",
        "source holding-register 28\n   type float32\n   byte-order cdab",
        "3.5",
    ),
    (
        "setpoint",
        "source holding-register 30\n   type float32\n   writable",
        "3.25",
    ),
    ("counter", "source holding-register 40", "7"),
    ("pump", "source coil 0\n   writable", "true"),
    ("door", "source discrete-input 0", "true"),
    ("level", "source input-register 0", "777"),
];

/// A data message of `tag` with good quality and `value`.
fn good(tag: &str, value: Json) -> impl Fn(&str, &Json) -> bool {
    let topic = format!("gh/plc/data/{tag}");
    move |t: &str, p: &Json| t == topic && p["quality"] == "good" && close(&p["value"], &value)
}

/// Equal, floats within a millionth.
fn close(a: &Json, b: &Json) -> bool {
    match (a.as_f64(), b.as_f64(), a.is_i64() || a.is_u64()) {
        (Some(x), Some(y), false) => (x - y).abs() <= 1e-6 * y.abs().max(1.0),
        _ => a == b,
    }
}

/// A hostile Modbus server on ADDRESS:5020: each request is answered with
/// another transaction's id or with a few random bytes.
const HOSTILE: &str = r#"
import os, socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5020))
s.listen()
def serve(c):
    n = 0
    while True:
        req = c.recv(260)
        if len(req) < 8:
            break
        n += 1
        wrong = bytes([req[0] ^ 0xff, req[1]]) + b'\0\0\0\x07' + req[6:8] + b'\x04\0\x01\0\x02'
        c.send(wrong if n % 2 else os.urandom(5))
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// The device of every type and order, and a hostile one beside it.
fn plc_block() -> String {
    let mut block = format!(" device plc\n  address {FIELD}\n  poll-interval 100\n  timeout 300");
    for (name, lines, _) in TAGS {
        block.push_str(&format!("\n  tag {name}\n   {lines}"));
    }
    block.push_str(&format!(
        "\n device hostile\n  address {FIELD} port 5020\n  poll-interval 100\n  timeout 300\n  \
         tag t\n   source holding-register 0\n   type int32"
    ));
    block
}

#[test]
fn values_commands_and_a_device_restart_reach_the_broker() {
    if !is_root() {
        return;
    }
    let mut site = Site::new(&plc_block());
    let _broker = site.mosquitto();
    let mut server = site.modbus_server();
    let _hostile = site.field.spawn(&[PYTHON, "-c", HOSTILE, FIELD]);
    std::thread::sleep(Duration::from_millis(500));
    let _sub = site.subscriber();
    let _appliance = site.start();

    // Every type and order, with the right number on the right topic,
    // while the hostile device's answers are refused (and stall nothing).
    for (name, _, value) in TAGS {
        let value: Json = serde_json::from_str(value).unwrap();
        site.wait_for(&format!("{name} = {value}"), 0, good(name, value));
    }
    site.wait_for("the device online", 0, |t, p| {
        t == "gh/plc/status" && p["status"] == "online"
    });

    // The clients are the appliance's own stack: the broker and the
    // server see its addresses.
    let log = std::fs::read_to_string(site.path("mosquitto.log")).unwrap_or_default();
    assert!(
        log.contains("New client connected from 10.62.1.1:"),
        "{log}"
    );
    let peers = site
        .field
        .run(&["ss", "-Htn", "state", "established", "( sport = :502 )"]);
    assert!(peers.contains("10.62.2.1:"), "{peers}");
    // 17 tags in 4 requests: the holding registers coalesced in one.
    let shown = site.typed(&["enable", "show iot devices"]);
    let plc: Vec<&str> = (shown.lines().rev())
        .find(|l| l.starts_with("plc "))
        .map_or(Vec::new(), |l| l.split_whitespace().collect());
    assert_eq!(
        (plc.get(2), plc.get(6)),
        (Some(&"up"), Some(&"4")),
        "{shown}"
    );
    site.wait_for("the hostile device offline", 0, |t, p| {
        t == "gh/hostile/status" && p["status"] == "offline"
    });
    let hostile = shown.lines().rev().find(|l| l.starts_with("hostile "));
    assert!(hostile.is_some_and(|l| !l.contains(" up ")), "{shown}");

    // A change on the server is published.
    let from = site.messages().len();
    site.field
        .run(&[PYTHON, "-c", CLIENT, FIELD, "write", "40", "4242"]);
    site.wait_for(
        "the changed counter",
        from,
        good("counter", Json::from(4242)),
    );

    // A command writes the register; a bad one is refused with a response.
    let from = site.messages().len();
    site.publish("gh/plc/command/setpoint", r#"{"value": 42.5, "id": "c1"}"#);
    site.wait_for("the write's response", from, |t, p| {
        t == "gh/plc/response/setpoint" && p["id"] == "c1" && p["ok"] == true
    });
    assert_eq!(site.holding(30, 2), "16938 0", "42.5 as float32 abcd");
    site.wait_for("the new setpoint", from, good("setpoint", Json::from(42.5)));
    site.publish("gh/plc/command/setpoint", r#"{"value": "hot", "id": "c2"}"#);
    site.publish("gh/plc/command/level", r#"{"value": 1, "id": "c3"}"#);
    site.publish("gh/plc/command/pump", "false");
    site.wait_for("the refusal of a string", from, |t, p| {
        t == "gh/plc/response/setpoint"
            && p["id"] == "c2"
            && p["ok"] == false
            && p["error"].is_string()
    });
    site.wait_for("the refusal of a read-only tag", from, |t, p| {
        t == "gh/plc/response/level" && p["ok"] == false
    });
    site.wait_for(
        "the coil switched off",
        from,
        good("pump", Json::from(false)),
    );
    assert_eq!(
        site.holding(30, 2),
        "16938 0",
        "refused commands wrote nothing"
    );

    // A tag added in the CLI is polled once committed.
    let from = site.messages().len();
    site.typed(&[
        "configure terminal",
        "iot gateway",
        "device plc",
        "tag extra",
        "source input-register 1",
        "end",
    ]);
    site.wait_for("the new tag", from, good("extra", Json::from(777)));

    // The device stops: offline and bad quality once; back: online.
    let from = site.messages().len();
    let _ = server.0.kill();
    let _ = server.0.wait();
    site.wait_for("the device offline", from, |t, p| {
        t == "gh/plc/status" && p["status"] == "offline"
    });
    site.wait_for("bad quality", from, |t, p| {
        t == "gh/plc/data/i16" && p["quality"] == "bad"
    });
    let console = site.typed(&["show logging"]);
    assert!(
        console.contains("%IOT-4-DEVICE_DOWN: device plc"),
        "{console}"
    );
    let up = "%IOT-5-MQTT_UP: connected to broker 10.62.1.2:1883";
    assert!(console.contains(up), "{console}");
    let from = site.messages().len();
    let _server = site.modbus_server();
    site.wait_for("the device online again", from, |t, p| {
        t == "gh/plc/status" && p["status"] == "online"
    });
    site.wait_for("good quality again", from, good("i16", Json::from(-1234)));
}

#[test]
fn a_broker_restart_loses_no_message() {
    if !is_root() {
        return;
    }
    // Ten tags polled every 100 ms, each published after every poll.
    let mut block = format!(" device plc\n  address {FIELD}\n  poll-interval 100");
    for i in 0..10 {
        block.push_str(&format!(
            "\n  tag r{i}\n   source holding-register {i}\n   publish every-poll"
        ));
    }
    let mut site = Site::new(&block);
    let mut broker = site.mosquitto();
    let _server = site.modbus_server();
    std::thread::sleep(Duration::from_millis(500));
    let _sub = site.subscriber();
    let _appliance = site.start();
    site.wait_for("the first values", 0, |t, _| t == "gh/plc/data/r9");

    // Stopped, down for 30 s.
    let stopped_at = Instant::now();
    // SAFETY: signals our own child, whose pid we hold.
    let stopped = unsafe { libc::kill(broker.0.id() as i32, libc::SIGTERM) };
    assert_eq!(stopped, 0);
    let _ = broker.0.wait();
    std::thread::sleep(Duration::from_secs(30));
    let down_ms = stopped_at.elapsed().as_millis() as u64;
    // The appliance is held off the new broker until the subscriber is
    // back: what the broker forwards while nobody listens is lost to the
    // test, not by the appliance.
    let hold = "add table inet hold
\
        add chain inet hold input { type filter hook input priority 0; }
\
        add rule inet hold input ip saddr 10.62.1.1 tcp dport 1883 reject with tcp reset
";
    std::fs::write(site.path("hold.nft"), hold).unwrap();
    site.broker.run(&["nft", "-f", &site.path("hold.nft")]);
    broker = site.mosquitto();
    let subscribed = Instant::now() + PATIENCE;
    while !std::fs::read_to_string(site.path("mosquitto.log"))
        .unwrap_or_default()
        .lines()
        .skip_while(|l| !l.contains("mosquitto version"))
        .skip(1)
        .skip_while(|l| !l.contains("mosquitto version"))
        .any(|l| l.contains("as tester"))
    {
        assert!(
            Instant::now() < subscribed,
            "the subscriber did not come back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    site.broker.run(&["nft", "delete", "table", "inet", "hold"]);
    let restarted = Instant::now();
    // Wait for what was polled after the restart to arrive: the buffer
    // goes first, in order.
    let before_ms = (site.messages().iter())
        .filter_map(|(_, p)| p["ts"].as_u64())
        .max()
        .unwrap_or(0);
    let after_ms = before_ms + down_ms + 2000;
    site.wait_for("values polled after the restart", 0, |t, p| {
        t == "gh/plc/data/r0" && p["ts"].as_u64().is_some_and(|ts| ts > after_ms)
    });
    let shown = site.typed(&["enable", "show iot mqtt"]);
    assert!(shown.contains("dropped 0"), "{shown}");

    // No gap in any tag's timestamps: every poll's message arrived.
    let messages = site.messages();
    for i in 0..10 {
        let topic = format!("gh/plc/data/r{i}");
        let mut stamps: Vec<u64> = messages
            .iter()
            .filter(|(t, _)| *t == topic)
            .filter_map(|(_, p)| p["ts"].as_u64())
            .collect();
        stamps.sort_unstable();
        stamps.dedup();
        let gap = stamps.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        assert!(
            stamps.len() > 300,
            "{topic}: {} messages; {shown}",
            stamps.len()
        );
        assert!(
            gap < 3000,
            "{topic}: a gap of {gap} ms in {} messages",
            stamps.len()
        );
    }
    eprintln!(
        "broker down {:.1} s; the buffer drained {:.1} s after its restart; {} messages",
        down_ms as f64 / 1000.0,
        restarted.elapsed().as_secs_f64(),
        messages.len()
    );
    drop(broker);
}

#[test]
fn tls_to_the_broker_checks_its_certificate() {
    if !is_root() {
        return;
    }
    let mut site = Site::new(&format!(
        " device plc\n  address {FIELD}\n  poll-interval 100\n  tag level\n   source input-register 0"
    ));
    let ca = site.ca("ca");
    site.broker_tls("ca");
    site.configure(&format!(" mqtt tls ca-certificate {ca}"));
    let _broker = site.mosquitto();
    let _server = site.modbus_server();
    std::thread::sleep(Duration::from_millis(500));
    let _sub = site.subscriber();
    let _appliance = site.start();
    site.wait_for("a value over TLS", 0, good("level", Json::from(777)));
    let log = std::fs::read_to_string(site.path("mosquitto.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("New connection from 10.62.1.1:") && l.contains("on port 8883")),
        "{log}"
    );

    // A CA that did not sign the broker's certificate: refused.
    let other = site.ca("other");
    site.typed(&[
        "enable",
        "configure terminal",
        "iot gateway",
        &format!("mqtt tls ca-certificate {other}"),
        "end",
    ]);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let shown = site.typed(&["show iot mqtt"]);
        let last = shown.rsplit("Broker ").next().unwrap_or("");
        if last.contains("TLS:") && last.contains("certificate") {
            break;
        }
        assert!(Instant::now() < deadline, "{shown}");
    }
}
