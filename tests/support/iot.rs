//! The IoT gateway's test site, shared by tests/iot.rs and the `iot`
//! bench: a broker namespace with mosquitto, a field namespace with a
//! pymodbus Modbus TCP server of known values, and `gatehouse run`
//! between them with its CLI on a pipe.
//!
//! ```text
//!  broker 10.62.1.2 (mosquitto) --- [appliance] --- field 10.62.2.10:502 (pymodbus)
//!                                  10.62.1.1  10.62.2.1
//! ```

use crate::netns::{Child, Netns, Scratch, Veth};
use serde_json::Value as Json;
use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
/// Debian's Python, which has pymodbus (not a pyenv one on PATH).
pub const PYTHON: &str = "/usr/bin/python3";
const BROKER: &str = "10.62.1.2";
pub const FIELD: &str = "10.62.2.10";
/// Hang guard only: machines are noisy, nothing here is a timing.
pub const PATIENCE: Duration = Duration::from_secs(45);

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
hr = [0] * 10000
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
pub const CLIENT: &str = r#"
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

/// The namespaces, the scratch directory (configs, logs, the messages
/// received) and the appliance's CLI once started.
pub struct Site {
    pub broker: Netns,
    pub field: Netns,
    _links: Vec<Veth>,
    dir: Scratch,
    cli: Option<ChildStdin>,
}

impl Site {
    /// The namespaces and the appliance's startup config with `device`
    /// (the lines of an `iot gateway` device block).
    pub fn new(device: &str) -> Site {
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

    pub fn path(&self, name: &str) -> String {
        self.dir.0.join(name).to_string_lossy().into_owned()
    }

    pub fn mosquitto(&self) -> Child {
        self.broker
            .spawn(&["mosquitto", "-c", &self.path("mosquitto.conf")])
    }

    /// `openssl req` with a new P-256 key in `key`: a request (or, with
    /// `-x509` in `extra`, a self-signed certificate) in `out`.
    fn new_key(&self, key: &str, out: &str, subject: &str, extra: &[&str]) {
        let mut args = vec!["openssl", "req", "-newkey", "ec", "-pkeyopt"];
        args.extend(["ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key]);
        args.extend(["-out", out, "-subj", subject]);
        args.extend(extra);
        crate::netns::run(&args);
    }

    /// A CA, `NAME.pem` with its key `NAME.key`; returns the PEM file.
    pub fn ca(&self, name: &str) -> String {
        let pem = self.path(&format!("{name}.pem"));
        let subject = format!("/CN=gatehouse test {name}");
        let key = self.path(&format!("{name}.key"));
        self.new_key(&key, &pem, &subject, &["-x509", "-days", "2"]);
        pem
    }

    /// Makes the broker's certificate for its address, signed by the CA
    /// `ca` (a name given to [`Site::ca`]), and adds a TLS listener on 8883
    /// to its configuration (the plain one stays, for the test's clients).
    pub fn broker_tls(&self, ca: &str) {
        let (key, csr, cert, ext) = (
            self.path("server.key"),
            self.path("server.csr"),
            self.path("server.pem"),
            self.path("server.ext"),
        );
        let extensions = format!(
            "subjectAltName=IP:{BROKER}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        );
        std::fs::write(&ext, extensions).unwrap();
        self.new_key(&key, &csr, &format!("/CN={BROKER}"), &[]);
        let (ca, ca_key) = (
            self.path(&format!("{ca}.pem")),
            self.path(&format!("{ca}.key")),
        );
        let mut args = vec!["openssl", "x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey"];
        args.extend([ca_key.as_str(), "-CAcreateserial", "-out", &cert]);
        args.extend(["-days", "2", "-extfile", &ext]);
        crate::netns::run(&args);
        let listener =
            format!("listener 8883 0.0.0.0\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n");
        let conf = std::fs::read_to_string(self.path("mosquitto.conf")).unwrap();
        std::fs::write(self.path("mosquitto.conf"), conf + &listener).unwrap();
    }

    /// Adds `line` to the appliance's startup config (inside the `iot
    /// gateway` block, which comes last).
    pub fn configure(&self, line: &str) {
        let config = std::fs::read_to_string(self.path("startup-config")).unwrap();
        std::fs::write(self.path("startup-config"), format!("{config}{line}\n")).unwrap();
    }

    pub fn modbus_server(&self) -> Child {
        self.field.spawn(&[PYTHON, "-c", SERVER, FIELD])
    }

    /// A persistent QoS 1 subscriber to everything under `gh/`, its
    /// `topic payload` lines in the file `messages` (it reconnects by
    /// itself when the broker restarts).
    pub fn subscriber(&self) -> Child {
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

    pub fn publish(&self, topic: &str, payload: &str) {
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
    pub fn start(&mut self) -> Child {
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
    pub fn typed(&mut self, lines: &[&str]) -> String {
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
    pub fn messages(&self) -> Vec<(String, Json)> {
        let text = std::fs::read_to_string(self.path("messages")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(t, p)| Some((t.to_string(), serde_json::from_str(p).ok()?)))
            .collect()
    }

    /// Waits until a message after the first `from` satisfies `done`;
    /// returns its index. On giving up, says what the appliance knows.
    pub fn wait_for(
        &mut self,
        what: &str,
        from: usize,
        done: impl Fn(&str, &Json) -> bool,
    ) -> usize {
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

    pub fn holding(&self, address: u16, count: u16) -> String {
        let (a, c) = (address.to_string(), count.to_string());
        self.field
            .run(&[PYTHON, "-c", CLIENT, FIELD, "read", &a, &c])
            .trim()
            .to_string()
    }
}
