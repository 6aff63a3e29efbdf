//! The IoT gateway in `gatehouse run`, the real binary, between real peers
//! in network namespaces: a pymodbus Modbus TCP server with known register
//! values (every data type and byte order) and a mosquitto broker, with
//! mosquitto_sub and mosquitto_pub as the cloud side.
//!
//! ```text
//!  broker 10.62.1.2 (mosquitto) --- [appliance] --- field 10.62.2.10:502 (pymodbus)
//!                                  10.62.1.1  10.62.2.1
//! ```

#[path = "../kernel-bypass/tests/support/netns.rs"]
#[allow(dead_code)]
mod netns;

use netns::{is_root, Child, Netns, Scratch, Veth};
use serde_json::Value as Json;
use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
/// Debian's Python, which has pymodbus (not a pyenv one on PATH).
const PYTHON: &str = "/usr/bin/python3";
const BROKER: &str = "10.62.1.2";
const FIELD: &str = "10.62.2.10";
/// Hang guard only: machines are noisy, nothing here is a timing.
const PATIENCE: Duration = Duration::from_secs(45);

/// A Modbus TCP server (unit 1) on ADDRESS:502 with known values; the
/// orders are named by where the bytes of big-endian ABCD arrive.
const SERVER: &str = r#"
import struct, sys
from pymodbus.server import StartTcpServer
from pymodbus.datastore import ModbusSequentialDataBlock as B, ModbusSlaveContext as S, ModbusServerContext as C
def words(fmt, value, order):
    b = struct.pack('>' + fmt, value)
    w = [b[i:i + 2] for i in range(0, len(b), 2)]
    if order in ('cdab', 'dcba'): w = w[::-1]
    if order in ('badc', 'dcba'): w = [x[::-1] for x in w]
    return [int.from_bytes(x, 'big') for x in w]
hr = [0] * 100
def put(address, ws): hr[address:address + len(ws)] = ws
put(0, words('h', -1234, 'abcd'))
put(1, words('H', 54321, 'badc'))
put(2, words('i', -123456789, 'abcd'))
put(4, words('I', 3000000000, 'badc'))
put(6, words('q', -9876543210123, 'cdab'))
put(10, words('f', 21.5, 'dcba'))
put(12, words('d', -1234.5678, 'cdab'))
put(16, [int.from_bytes(b'Gatehouse\0'[i:i + 2], 'big') for i in range(0, 10, 2)])
put(22, words('h', 615, 'abcd'))
put(24, words('f', 1.5, 'abcd'))
put(26, words('f', 2.5, 'badc'))
put(28, words('f', 3.5, 'cdab'))
put(30, words('f', 3.25, 'abcd'))
put(40, [7])
store = S(di=B(0, [1] * 8), co=B(0, [1] + [0] * 7), hr=B(0, hr), ir=B(0, [777] * 8), zero_mode=True)
StartTcpServer(context=C(slaves={1: store}, single=False), address=(sys.argv[1], 502))
"#;

/// `read ADDRESS COUNT` prints the holding registers; `write ADDRESS
/// VALUE` sets one.
const CLIENT: &str = r#"
import sys
from pymodbus.client import ModbusTcpClient
c = ModbusTcpClient(sys.argv[1], port=502)
assert c.connect()
if sys.argv[2] == 'read':
    r = c.read_holding_registers(int(sys.argv[3]), int(sys.argv[4]), slave=1)
    print(' '.join(map(str, r.registers)))
else:
    print(c.write_register(int(sys.argv[3]), int(sys.argv[4]), slave=1))
"#;

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

struct Site {
    broker: Netns,
    field: Netns,
    _links: Vec<Veth>,
    dir: Scratch,
    cli: Option<ChildStdin>,
}

impl Site {
    /// The namespaces and the appliance's startup config with `device`
    /// (the lines of an `iot gateway` device block).
    fn new(device: &str) -> Site {
        let (broker, field) = (Netns::new(), Netns::new());
        let links = vec![Veth::into_ns(&broker), Veth::into_ns(&field)];
        broker.configure(&links[0].inner, "10.62.1.2/24", Some("10.62.1.1"));
        field.configure(&links[1].inner, "10.62.2.10/24", Some("10.62.2.1"));
        let dir = Scratch::new("iot");
        let config = [
            "hostname gw".to_string(),
            format!("interface {}\n ip address 10.62.1.1/24", links[0].outer),
            format!("interface {}\n ip address 10.62.2.1/24", links[1].outer),
            format!(
                "iot gateway\n mqtt broker {BROKER}\n mqtt client-id gw\n mqtt topic-prefix gh"
            ),
            device.to_string(),
        ]
        .join("\n");
        std::fs::write(dir.0.join("startup-config"), config + "\n").unwrap();
        let conf = format!(
            "listener 1883 0.0.0.0\nallow_anonymous true\nuser root\npersistence true\n\
             persistence_location {dir}/\nlog_dest file {dir}/mosquitto.log\nlog_type all\n",
            dir = dir.0.display()
        );
        std::fs::write(dir.0.join("mosquitto.conf"), conf).unwrap();
        Site {
            broker,
            field,
            _links: links,
            dir,
            cli: None,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.0.join(name).to_string_lossy().into_owned()
    }

    fn mosquitto(&self) -> Child {
        self.broker
            .spawn(&["mosquitto", "-c", &self.path("mosquitto.conf")])
    }

    fn modbus_server(&self) -> Child {
        self.field.spawn(&[PYTHON, "-c", SERVER, FIELD])
    }

    /// A persistent QoS 1 subscriber to everything under `gh/`, its
    /// `topic payload` lines in the file `messages` (it reconnects by
    /// itself when the broker restarts).
    fn subscriber(&self) -> Child {
        let out = std::fs::File::create(self.path("messages")).unwrap();
        let child = self
            .broker
            .command("mosquitto_sub")
            .args([
                "-h", BROKER, "-t", "gh/#", "-v", "-q", "1", "-c", "-i", "tester",
            ])
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Child(child)
    }

    fn publish(&self, topic: &str, payload: &str) {
        self.broker.run(&[
            "mosquitto_pub",
            "-h",
            BROKER,
            "-q",
            "1",
            "-t",
            topic,
            "-m",
            payload,
        ]);
    }

    /// `gatehouse run` with its CLI on a pipe.
    fn start(&mut self) -> Child {
        let mut child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(self.path("startup-config"))
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(self.path("console")).unwrap())
            .stderr(std::fs::File::create(self.path("errors")).unwrap())
            .spawn()
            .unwrap();
        self.cli = child.stdin.take();
        Child(child)
    }

    /// Types `lines` at the CLI and returns the console after a moment.
    fn typed(&mut self, lines: &[&str]) -> String {
        if let Some(stdin) = &mut self.cli {
            for line in lines {
                let _ = writeln!(stdin, "{line}");
            }
            let _ = stdin.flush();
        }
        std::thread::sleep(Duration::from_millis(500));
        let read = |name| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        read("console") + &read("errors")
    }

    /// The messages received so far: `(topic, payload)`.
    fn messages(&self) -> Vec<(String, Json)> {
        let text = std::fs::read_to_string(self.path("messages")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(t, p)| Some((t.to_string(), serde_json::from_str(p).ok()?)))
            .collect()
    }

    /// Waits until a message after the first `from` satisfies `done`;
    /// returns its index. On giving up, says what the appliance knows.
    fn wait_for(&mut self, what: &str, from: usize, done: impl Fn(&str, &Json) -> bool) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let messages = self.messages();
            let found = messages.iter().skip(from).position(|(t, p)| done(t, p));
            if let Some(i) = found {
                return from + i;
            }
            if Instant::now() > deadline {
                let console = self.typed(&[
                    "enable",
                    "show iot devices",
                    "show iot tags",
                    "show iot mqtt",
                    "show logging",
                ]);
                let last: Vec<_> = messages.iter().rev().take(5).collect();
                let log = std::fs::read_to_string(self.path("mosquitto.log")).unwrap_or_default();
                let log: Vec<_> = log.lines().rev().take(20).collect();
                panic!(
                    "gave up waiting for {what}; last messages {last:?}\nconsole:\n{console}\nbroker log (last first):\n{}",
                    log.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn holding(&self, address: u16, count: u16) -> String {
        let (a, c) = (address.to_string(), count.to_string());
        self.field
            .run(&[PYTHON, "-c", CLIENT, FIELD, "read", &a, &c])
            .trim()
            .to_string()
    }
}

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

fn plc_block() -> String {
    let mut block = format!(" device plc\n  address {FIELD}\n  poll-interval 100\n  timeout 300");
    for (name, lines, _) in TAGS {
        block.push_str(&format!("\n  tag {name}\n   {lines}"));
    }
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
    std::thread::sleep(Duration::from_millis(500));
    let _sub = site.subscriber();
    let _appliance = site.start();

    // Every type and order, with the right number on the right topic.
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
