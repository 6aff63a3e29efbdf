//! The IoT gateway element: Modbus TCP devices polled by the appliance and
//! published to an MQTT broker. `iot gateway` opens `(config-iot-gw)` for
//! the broker's `mqtt ...` settings and the `device NAME`s; a device opens
//! `(config-iot-device)` (its `address`, `unit-id`, `poll-interval`,
//! `timeout`, `retries` and `tag NAME`s), a tag `(config-iot-tag)` (its
//! `source`, `type`, `length`, `byte-order`, `scale`, `offset`,
//! `deadband`, `writable`, `publish`).
//!
//! The modes nest as `ip slb serverfarm`'s `real` does: a tag's object
//! names its device (`DEVICE TAG`), and each mode takes its parents'
//! commands, so the next `tag` or `device` of a running-config block reads
//! back. Values are kept as typed (None: the default); the `effective`
//! methods give what is in force.

use crate::commands::{
    change_if, check_name, required, set_or_clear, CommandDef, ConfigContext, Edit, Mode, SubMode,
    INCOMPLETE,
};
use crate::config::Config;
use crate::render::Block;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// `(config-iot-gw)#`, opened by `iot gateway`.
pub static IOT_MODE: SubMode = SubMode {
    prompt: "iot-gw",
    parent: None,
};
/// `(config-iot-device)#`, opened by `device NAME` in the gateway.
pub static DEVICE_MODE: SubMode = SubMode {
    prompt: "iot-device",
    parent: Some(&IOT_MODE),
};
/// `(config-iot-tag)#`, opened by `tag NAME` in a device.
pub static TAG_MODE: SubMode = SubMode {
    prompt: "iot-tag",
    parent: Some(&DEVICE_MODE),
};

/// MQTT's registered ports, plain and over TLS.
pub const DEFAULT_MQTT_PORT: u16 = 1883;
pub const DEFAULT_MQTTS_PORT: u16 = 8883;
/// Modbus TCP's registered port.
pub const DEFAULT_MODBUS_PORT: u16 = 502;
/// Messages kept while the broker is away, when `mqtt buffer` is not set.
pub const DEFAULT_MQTT_BUFFER: u32 = 10_000;
/// The most registers (or bits / 16) one Modbus read may ask for.
pub const MAX_READ_REGISTERS: u16 = 125;

/// The IoT gateway's section of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Iot {
    pub mqtt: Mqtt,
    pub devices: BTreeMap<String, Device>,
}

/// The broker and how to talk to it, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mqtt {
    pub broker: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub client_id: Option<String>,
    /// `(username, password)`.
    pub credentials: Option<(String, String)>,
    /// Seconds, default 30.
    pub keepalive: Option<u16>,
    /// 0 or 1, default 1 (acknowledged: nothing lost while buffered).
    pub qos: Option<u8>,
    /// Default `gatehouse`.
    pub topic_prefix: Option<String>,
    pub retain: bool,
    /// Messages kept while the broker is away.
    pub buffer: Option<u32>,
    /// `mqtt tls ca-certificate PATH`: TLS to the broker, whose
    /// certificate must chain to the CA in this PEM file and name its
    /// address.
    pub tls_ca: Option<String>,
}

/// The broker settings in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttSettings {
    pub broker: Option<Ipv4Addr>,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
    pub keepalive: u16,
    pub qos: u8,
    pub topic_prefix: String,
    pub retain: bool,
    pub buffer: u32,
    pub tls_ca: Option<String>,
}

impl Mqtt {
    /// The settings in force; the client id defaults to `gatehouse-HOSTNAME`.
    pub fn effective(&self, hostname: &str) -> MqttSettings {
        MqttSettings {
            broker: self.broker,
            port: (self.port).unwrap_or(match self.tls_ca {
                Some(_) => DEFAULT_MQTTS_PORT,
                None => DEFAULT_MQTT_PORT,
            }),
            client_id: (self.client_id.clone()).unwrap_or_else(|| format!("gatehouse-{hostname}")),
            credentials: self.credentials.clone(),
            keepalive: self.keepalive.unwrap_or(30),
            qos: self.qos.unwrap_or(1),
            topic_prefix: (self.topic_prefix.clone()).unwrap_or_else(|| "gatehouse".to_string()),
            retain: self.retain,
            buffer: self.buffer.unwrap_or(DEFAULT_MQTT_BUFFER),
            tls_ca: self.tls_ca.clone(),
        }
    }
}

/// A Modbus TCP device, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Device {
    pub address: Option<Ipv4Addr>,
    pub port: Option<u16>,
    pub unit_id: Option<u8>,
    /// Milliseconds between polls, default 1000.
    pub poll_interval: Option<u32>,
    /// Milliseconds to wait for an answer, default 1000.
    pub timeout: Option<u32>,
    /// Tries after a failed request before the device counts as down,
    /// default 1.
    pub retries: Option<u8>,
    pub tags: BTreeMap<String, Tag>,
}

impl Device {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_MODBUS_PORT)
    }
    pub fn unit(&self) -> u8 {
        self.unit_id.unwrap_or(1)
    }
    pub fn poll_ms(&self) -> u32 {
        self.poll_interval.unwrap_or(1000)
    }
    pub fn timeout_ms(&self) -> u32 {
        self.timeout.unwrap_or(1000)
    }
    pub fn tries(&self) -> u8 {
        self.retries.unwrap_or(1).saturating_add(1)
    }
}

/// The four Modbus tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Coil,
    DiscreteInput,
    InputRegister,
    HoldingRegister,
}

impl Table {
    pub const ALL: [Table; 4] = [
        Table::Coil,
        Table::DiscreteInput,
        Table::InputRegister,
        Table::HoldingRegister,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::DiscreteInput => "discrete-input",
            Table::InputRegister => "input-register",
            Table::HoldingRegister => "holding-register",
        }
    }

    /// Coils and discrete inputs hold bits, the others 16-bit registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }

    /// Whether Modbus can write it.
    pub fn is_writable(self) -> bool {
        matches!(self, Table::Coil | Table::HoldingRegister)
    }
}

/// How a tag's registers are read as a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataType {
    Bool,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float32,
    Float64,
    String,
}

impl DataType {
    pub const ALL: [DataType; 9] = [
        DataType::Bool,
        DataType::Int16,
        DataType::Uint16,
        DataType::Int32,
        DataType::Uint32,
        DataType::Int64,
        DataType::Float32,
        DataType::Float64,
        DataType::String,
    ];

    pub fn word(self) -> &'static str {
        match self {
            DataType::Bool => "bool",
            DataType::Int16 => "int16",
            DataType::Uint16 => "uint16",
            DataType::Int32 => "int32",
            DataType::Uint32 => "uint32",
            DataType::Int64 => "int64",
            DataType::Float32 => "float32",
            DataType::Float64 => "float64",
            DataType::String => "string",
        }
    }

    /// Registers a value takes (strings: their `length`).
    pub fn registers(self, length: u16) -> u16 {
        match self {
            DataType::Bool | DataType::Int16 | DataType::Uint16 => 1,
            DataType::Int32 | DataType::Uint32 | DataType::Float32 => 2,
            DataType::Int64 | DataType::Float64 => 4,
            DataType::String => length,
        }
    }
}

/// Byte and word order of a multi-register value, named by where the
/// bytes of the big-endian value `ABCD` arrive: `abcd` big-endian, `badc`
/// bytes swapped in each register, `cdab` registers swapped, `dcba`
/// little-endian.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ByteOrder {
    #[default]
    Abcd,
    Badc,
    Cdab,
    Dcba,
}

impl ByteOrder {
    pub const ALL: [ByteOrder; 4] = [
        ByteOrder::Abcd,
        ByteOrder::Badc,
        ByteOrder::Cdab,
        ByteOrder::Dcba,
    ];

    pub fn word(self) -> &'static str {
        match self {
            ByteOrder::Abcd => "abcd",
            ByteOrder::Badc => "badc",
            ByteOrder::Cdab => "cdab",
            ByteOrder::Dcba => "dcba",
        }
    }

    /// Whether the bytes of each register are swapped.
    pub fn swaps_bytes(self) -> bool {
        matches!(self, ByteOrder::Badc | ByteOrder::Dcba)
    }

    /// Whether the registers come least significant first.
    pub fn swaps_words(self) -> bool {
        matches!(self, ByteOrder::Cdab | ByteOrder::Dcba)
    }
}

/// When a tag's value is published.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Publish {
    /// When it changes by more than the deadband (or its quality changes).
    #[default]
    OnChange,
    /// After every poll.
    EveryPoll,
}

impl Publish {
    pub fn word(self) -> &'static str {
        match self {
            Publish::OnChange => "on-change",
            Publish::EveryPoll => "every-poll",
        }
    }
}

/// A finite number as typed (`scale 0.1`), comparable so that the model
/// stays `Eq`; renders back in Rust's shortest round-tripping form.
#[derive(Clone, Copy, Debug)]
pub struct Decimal(pub f64);

impl PartialEq for Decimal {
    fn eq(&self, other: &Decimal) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Decimal {}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Decimal {
    /// A typed number: finite, `-0` read as `0` (so it renders back).
    fn parse(what: &str, text: &str) -> Result<Decimal, String> {
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() && text.len() <= 32 => Ok(Decimal(n + 0.0)),
            _ => Err(format!("% Invalid {what} \"{text}\": a decimal number")),
        }
    }
}

/// One value of a device, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    /// `(table, address)`; required.
    pub source: Option<(Table, u16)>,
    /// Default: bool for coils and discrete inputs, uint16 for registers.
    pub data_type: Option<DataType>,
    /// Registers of a string (two characters each).
    pub length: Option<u16>,
    pub byte_order: Option<ByteOrder>,
    /// Published value = raw * scale + offset; default 1 and 0.
    pub scale: Option<Decimal>,
    pub offset: Option<Decimal>,
    /// On-change publishing ignores changes up to this much, default 0.
    pub deadband: Option<Decimal>,
    pub writable: bool,
    pub publish: Option<Publish>,
}

impl Tag {
    /// The data type in force.
    pub fn data_type(&self) -> DataType {
        match (self.data_type, self.source) {
            (Some(t), _) => t,
            (None, Some((table, _))) if table.is_bits() => DataType::Bool,
            (None, _) => DataType::Uint16,
        }
    }

    /// Registers (or bits, for coils and discrete inputs) it reads.
    pub fn width(&self) -> u16 {
        match self.source {
            Some((table, _)) if table.is_bits() => 1,
            _ => self.data_type().registers(self.length.unwrap_or(0)),
        }
    }
}

/// A tag mode's object: `DEVICE TAG` (neither has a blank).
pub fn tag_mode_object(device: &str, tag: &str) -> String {
    format!("{device} {tag}")
}

pub struct Element;

static SUB_MODES: &[&SubMode] = &[&IOT_MODE, &DEVICE_MODE, &TAG_MODE];

/// The help of `mqtt`, which every broker setting starts with.
macro_rules! mqtt_help {
    ($($rest:expr),*) => {
        &["MQTT broker connection", $($rest),*]
    };
}

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "iot gateway",
        help: &[
            "Industrial IoT protocol gateway",
            "Modbus devices published to an MQTT broker",
        ],
        handler: gateway,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt broker A.B.C.D$address [port <1-65535>$port]",
        help: mqtt_help!(
            "Broker to publish to",
            "Broker address",
            "TCP port (default 1883)",
            "Port"
        ),
        handler: mqtt_broker,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt client-id WORD$id",
        help: mqtt_help!(
            "Client identifier (default gatehouse-HOSTNAME)",
            "Identifier"
        ),
        handler: mqtt_text,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt username WORD$user password WORD$password",
        help: mqtt_help!(
            "Log in to the broker",
            "User name",
            "Password of the user",
            "Password"
        ),
        handler: mqtt_credentials,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt keepalive <5-3600>$value",
        help: mqtt_help!("Keepalive interval (default 30)", "Seconds"),
        handler: mqtt_number,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt qos <0-1>$value",
        help: mqtt_help!(
            "Quality of service of published values (default 1: acknowledged)",
            "0: at most once, 1: at least once"
        ),
        handler: mqtt_number,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt topic-prefix WORD$prefix",
        help: mqtt_help!(
            "First levels of every topic (default gatehouse)",
            "Topic levels, without wildcards"
        ),
        handler: mqtt_text,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt retain",
        help: mqtt_help!("Publish values as retained messages"),
        handler: mqtt_retain,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt buffer <1-1000000>$value",
        help: mqtt_help!(
            "Messages kept while the broker is away (default 10000)",
            "Messages"
        ),
        handler: mqtt_number,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "mqtt tls ca-certificate WORD$path",
        help: mqtt_help!(
            "TLS to the broker (default port 8883)",
            "CA the broker's certificate must chain to",
            "PEM file, absolute path"
        ),
        handler: mqtt_text,
    },
    CommandDef {
        mode: Mode::Sub(&IOT_MODE),
        syntax: "device WORD$name",
        help: &["Configure a Modbus TCP device", "Device name"],
        handler: device,
    },
    CommandDef {
        mode: Mode::Sub(&DEVICE_MODE),
        syntax: "address A.B.C.D$address [port <1-65535>$port]",
        help: &[
            "Address of the device",
            "IPv4 address",
            "TCP port (default 502)",
            "Port",
        ],
        handler: device_address,
    },
    CommandDef {
        mode: Mode::Sub(&DEVICE_MODE),
        syntax: "unit-id <0-255>$value",
        help: &["Modbus unit identifier (default 1)", "Unit"],
        handler: device_number,
    },
    CommandDef {
        mode: Mode::Sub(&DEVICE_MODE),
        syntax: "poll-interval <10-3600000>$value",
        help: &["Time between polls (default 1000)", "Milliseconds"],
        handler: device_number,
    },
    CommandDef {
        mode: Mode::Sub(&DEVICE_MODE),
        syntax: "timeout <10-60000>$value",
        help: &["Time to wait for an answer (default 1000)", "Milliseconds"],
        handler: device_number,
    },
    CommandDef {
        mode: Mode::Sub(&DEVICE_MODE),
        syntax: "retries <0-10>$value",
        help: &[
            "Tries again before the device is taken as down (default 1)",
            "Retries",
        ],
        handler: device_number,
    },
    CommandDef {
        mode: Mode::Sub(&DEVICE_MODE),
        syntax: "tag WORD$name",
        help: &["Configure a value of the device", "Tag name"],
        handler: tag,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        syntax: "source (coil|discrete-input|input-register|holding-register) <0-65535>$address",
        help: &[
            "Where the value is read",
            "Coils (read-write bits)",
            "Discrete inputs (read-only bits)",
            "Input registers (read-only)",
            "Holding registers (read-write)",
            "Address (0-based)",
        ],
        handler: tag_source,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        // The type is optional in the syntax only so that `no type` is complete.
        syntax: "type [(bool|int16|uint16|int32|uint32|int64|float32|float64|string)]",
        help: &[
            "Data type (default bool for bits, uint16 for registers)",
            "A bit, or a register that is not zero",
            "Signed 16 bits",
            "Unsigned 16 bits",
            "Signed 32 bits (2 registers)",
            "Unsigned 32 bits (2 registers)",
            "Signed 64 bits (4 registers)",
            "IEEE 754 single (2 registers)",
            "IEEE 754 double (4 registers)",
            "ASCII, two characters a register (see length)",
        ],
        handler: tag_type,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        syntax: "length <1-125>$value",
        help: &["Registers of a string", "Registers"],
        handler: tag_length,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        syntax: "byte-order [(abcd|badc|cdab|dcba)]",
        help: &[
            "Byte and word order of the registers (default abcd)",
            "Big-endian",
            "Bytes swapped in each register",
            "Registers swapped (least significant first)",
            "Little-endian",
        ],
        handler: tag_order,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        syntax: "scale WORD$value",
        help: &[
            "Factor the raw value is multiplied by (default 1)",
            "Decimal number",
        ],
        handler: tag_decimal,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        syntax: "offset WORD$value",
        help: &["Added after scaling (default 0)", "Decimal number"],
        handler: tag_decimal,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        syntax: "deadband WORD$value",
        help: &["Smallest change published (default 0)", "Decimal number"],
        handler: tag_decimal,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        syntax: "writable",
        help: &["Accept MQTT commands that write the value"],
        handler: tag_writable,
    },
    CommandDef {
        mode: Mode::Sub(&TAG_MODE),
        syntax: "publish [(on-change|every-poll)]",
        help: &[
            "When the value is published (default on-change)",
            "When it changes by more than the deadband",
            "After every poll",
        ],
        handler: tag_publish,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "iot",
    commands: COMMANDS,
    sub_modes: SUB_MODES,
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    fn secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[("mqtt username", "password")]
    }

    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let iot = &config.iot;
        let m = &iot.mqtt;
        let mut body = Vec::new();
        body.extend(m.broker.map(|b| match m.port {
            Some(port) => format!("mqtt broker {b} port {port}"),
            None => format!("mqtt broker {b}"),
        }));
        body.extend(
            m.client_id
                .as_ref()
                .map(|id| format!("mqtt client-id {id}")),
        );
        body.extend(
            (m.credentials.as_ref()).map(|(u, p)| format!("mqtt username {u} password {p}")),
        );
        body.extend(m.keepalive.map(|s| format!("mqtt keepalive {s}")));
        body.extend(m.qos.map(|q| format!("mqtt qos {q}")));
        body.extend((m.topic_prefix.as_ref()).map(|p| format!("mqtt topic-prefix {p}")));
        if m.retain {
            body.push("mqtt retain".to_string());
        }
        body.extend(m.buffer.map(|n| format!("mqtt buffer {n}")));
        body.extend((m.tls_ca.as_ref()).map(|p| format!("mqtt tls ca-certificate {p}")));
        for (name, d) in &iot.devices {
            body.push(format!("device {name}"));
            // One blank more per level: the device's own lines, then each
            // tag's.
            body.extend(d.address.map(|a| match d.port {
                Some(port) => format!(" address {a} port {port}"),
                None => format!(" address {a}"),
            }));
            body.extend(d.unit_id.map(|n| format!(" unit-id {n}")));
            body.extend(d.poll_interval.map(|n| format!(" poll-interval {n}")));
            body.extend(d.timeout.map(|n| format!(" timeout {n}")));
            body.extend(d.retries.map(|n| format!(" retries {n}")));
            for (tag, t) in &d.tags {
                body.push(format!(" tag {tag}"));
                body.extend((t.source).map(|(table, a)| format!("  source {} {a}", table.word())));
                body.extend(t.data_type.map(|d| format!("  type {}", d.word())));
                body.extend(t.length.map(|n| format!("  length {n}")));
                body.extend(t.byte_order.map(|o| format!("  byte-order {}", o.word())));
                body.extend(t.scale.map(|n| format!("  scale {n}")));
                body.extend(t.offset.map(|n| format!("  offset {n}")));
                body.extend(t.deadband.map(|n| format!("  deadband {n}")));
                if t.writable {
                    body.push("  writable".to_string());
                }
                body.extend(t.publish.map(|p| format!("  publish {}", p.word())));
            }
        }
        out.extend(Block::with_lines("iot gateway", body));
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let iot = &config.iot;
        if !iot.devices.is_empty() && iot.mqtt.broker.is_none() {
            problems.push("% iot gateway: devices but no mqtt broker".to_string());
        }
        for (name, device) in &iot.devices {
            if device.address.is_none() {
                problems.push(format!("% iot device {name}: no address"));
            }
            for (tag, t) in &device.tags {
                let what = format!("iot device {name} tag {tag}");
                check_tag(&what, t, problems);
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.iot, &new.iot)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        generate::iot()
    }
}

/// A tag's commit checks: a source, a type its table holds, a string's
/// length, writes only where Modbus writes, within the address space.
fn check_tag(what: &str, t: &Tag, problems: &mut Vec<String>) {
    let Some((table, address)) = t.source else {
        problems.push(format!("% {what}: no source"));
        return;
    };
    let data_type = t.data_type();
    if table.is_bits() && data_type != DataType::Bool {
        problems.push(format!(
            "% {what}: {} holds a bit, type must be bool",
            table.word()
        ));
    }
    if t.writable && !table.is_writable() {
        problems.push(format!("% {what}: {} is read-only", table.word()));
    }
    match (data_type, t.length) {
        (DataType::String, None) => problems.push(format!("% {what}: a string needs a length")),
        (DataType::String, _) | (_, None) => {}
        (_, Some(_)) => problems.push(format!("% {what}: length applies only to strings")),
    }
    if u32::from(address) + u32::from(t.width()) > 65536 {
        problems.push(format!("% {what}: ends past address 65535"));
    }
    if t.scale.is_some_and(|s| s.0 == 0.0) {
        problems.push(format!("% {what}: scale 0 loses the value"));
    }
    if t.deadband.is_some_and(|d| d.0 < 0.0) {
        problems.push(format!("% {what}: a deadband is not negative"));
    }
}

/// `iot gateway` enters its mode; `no iot gateway` removes every setting
/// and device.
fn gateway(edit: &mut Edit<'_>) -> Result<(), String> {
    if edit.negated {
        let iot = &mut edit.config.iot;
        change_if(iot, **iot != Iot::default(), |i| *i = Iot::default());
        return Ok(());
    }
    edit.enter = Some(ConfigContext::Sub(&IOT_MODE, String::new()));
    Ok(())
}

/// Applies `change` to a copy of the section and keeps it only if it differs.
fn edit_iot(
    edit: &mut Edit<'_>,
    change: impl FnOnce(&mut Iot) -> Result<(), String>,
) -> Result<(), String> {
    let mut iot = (*edit.config.iot).clone();
    change(&mut iot)?;
    if iot != *edit.config.iot {
        edit.config.iot = Arc::new(iot);
    }
    Ok(())
}

/// A topic prefix: levels without wildcards, empty levels or leading `$`.
fn topic_prefix(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 128
        && !text.starts_with('$')
        && text.split('/').all(|level| !level.is_empty())
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '+' | '#'));
    match valid {
        true => Ok(text.to_string()),
        false => Err(format!(
            "% Invalid topic prefix \"{text}\": levels separated by '/', no '+', '#', empty level or leading '$'"
        )),
    }
}

fn mqtt_broker(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let broker = set_or_clear(edit.negated, || {
        let address = args.ipv4("address").ok_or(INCOMPLETE)?;
        if address.is_unspecified() || address.is_multicast() || address.is_broadcast() {
            return Err(format!("% {address} is not a unicast address"));
        }
        Ok((address, args.number("port").map(|p| p as u16)))
    })?;
    edit_iot(edit, |i| {
        i.mqtt.broker = broker.map(|b| b.0);
        i.mqtt.port = broker.and_then(|b| b.1);
        Ok(())
    })
}

/// `mqtt client-id ID`, `mqtt topic-prefix P`; `no` restores the default.
fn mqtt_text(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let value = set_or_clear(edit.negated, || match () {
        _ if args.has("topic-prefix") => topic_prefix(required(args, "prefix")?),
        _ if args.has("tls") => ca_path(required(args, "path")?),
        _ => {
            let id = required(args, "id")?;
            check_name("client-id", id)?;
            Ok(id.to_string())
        }
    })?;
    edit_iot(edit, |i| {
        let m = &mut i.mqtt;
        match () {
            _ if args.has("topic-prefix") => m.topic_prefix = value,
            _ if args.has("tls") => m.tls_ca = value,
            _ => m.client_id = value,
        }
        Ok(())
    })
}

/// Whether `c` reads back inside one word of a configuration line.
fn reads_back(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '?' | '|' | '\\')
}

/// A CA file: an absolute path that reads back as one word.
fn ca_path(text: &str) -> Result<String, String> {
    match text.starts_with('/') && text.len() <= 255 && text.chars().all(reads_back) {
        true => Ok(text.to_string()),
        false => Err(format!(
            "% Invalid file \"{text}\": an absolute path without blanks or quotes"
        )),
    }
}

/// `mqtt username U password P`; `no mqtt username` logs in anonymously.
fn mqtt_credentials(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let credentials = set_or_clear(edit.negated, || {
        let user = required(args, "user")?;
        check_name("user", user)?;
        let password = required(args, "password")?;
        let reads_back =
            |c: char| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '?' | '|' | '\\');
        if !password.chars().all(reads_back) || password.len() > 128 {
            return Err(
                "% Invalid password: up to 128 printable characters, no blank, quote, '?', '|' or '\\'"
                    .into(),
            );
        }
        Ok((user.to_string(), password.to_string()))
    })?;
    edit_iot(edit, |i| {
        i.mqtt.credentials = credentials;
        Ok(())
    })
}

/// `mqtt keepalive|qos|buffer N` (the syntax bounds them); `no` restores
/// the default.
fn mqtt_number(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let n = set_or_clear(edit.negated, || {
        args.number("value").ok_or(INCOMPLETE.to_string())
    })?;
    edit_iot(edit, |i| {
        let m = &mut i.mqtt;
        match () {
            _ if args.has("keepalive") => m.keepalive = n.map(|n| n as u16),
            _ if args.has("qos") => m.qos = n.map(|n| n as u8),
            _ => m.buffer = n.map(|n| n as u32),
        }
        Ok(())
    })
}

fn mqtt_retain(edit: &mut Edit<'_>) -> Result<(), String> {
    let on = !edit.negated;
    edit_iot(edit, |i| {
        i.mqtt.retain = on;
        Ok(())
    })
}

/// The name typed as `$name`, refused unless it makes one topic level.
fn name_arg(what: &str, edit: &Edit<'_>) -> Result<String, String> {
    let name = required(edit.args, "name")?;
    check_name(what, name)?;
    Ok(name.to_string())
}

/// `device NAME` makes the device if new and enters its mode; `no device
/// NAME` removes it with its tags.
fn device(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = name_arg("device", edit)?;
    let exists = edit.config.iot.devices.contains_key(&name);
    if edit.negated {
        if !exists {
            return Err(format!("% No device {name}"));
        }
        Arc::make_mut(&mut edit.config.iot).devices.remove(&name);
        return Ok(());
    }
    change_if(&mut edit.config.iot, !exists, |i| {
        i.devices.insert(name.clone(), Device::default());
    });
    edit.enter = Some(ConfigContext::Sub(&DEVICE_MODE, name));
    Ok(())
}

/// The device the current mode edits: `(config-iot-device)`'s, or in
/// `(config-iot-tag)` the tag's device (its object leads with it).
fn current_device(context: &ConfigContext) -> Result<String, String> {
    (context.object_of(&DEVICE_MODE))
        .map(str::to_string)
        .ok_or_else(|| format!("% Not in config-{} mode", DEVICE_MODE.prompt))
}

/// Applies `change` to the device `name`, copying the section only when
/// the device really changes.
fn change_device(
    edit: &mut Edit<'_>,
    name: &str,
    change: impl FnOnce(&mut Device) -> Result<(), String>,
) -> Result<(), String> {
    let old = (edit.config.iot.devices.get(name)).ok_or_else(|| format!("% No device {name}"))?;
    let mut new = old.clone();
    change(&mut new)?;
    let needed = new != *old;
    change_if(&mut edit.config.iot, needed, |i| {
        i.devices.insert(name.to_string(), new);
    });
    Ok(())
}

fn device_address(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let address = set_or_clear(edit.negated, || {
        let address = args.ipv4("address").ok_or(INCOMPLETE)?;
        if address.is_unspecified() || address.is_multicast() || address.is_broadcast() {
            return Err(format!("% {address} is not a unicast address"));
        }
        Ok((address, args.number("port").map(|p| p as u16)))
    })?;
    let name = current_device(edit.context)?;
    change_device(edit, &name, |d| {
        d.address = address.map(|a| a.0);
        d.port = address.and_then(|a| a.1);
        Ok(())
    })
}

/// `unit-id|poll-interval|timeout|retries N`; `no` restores the default.
fn device_number(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let n = set_or_clear(edit.negated, || {
        args.number("value").ok_or(INCOMPLETE.to_string())
    })?;
    let name = current_device(edit.context)?;
    change_device(edit, &name, |d| {
        match () {
            _ if args.has("unit-id") => d.unit_id = n.map(|n| n as u8),
            _ if args.has("poll-interval") => d.poll_interval = n.map(|n| n as u32),
            _ if args.has("timeout") => d.timeout = n.map(|n| n as u32),
            _ => d.retries = n.map(|n| n as u8),
        }
        Ok(())
    })
}

/// `tag NAME` makes the tag if new and enters its mode; `no tag NAME`
/// removes it.
fn tag(edit: &mut Edit<'_>) -> Result<(), String> {
    let name = name_arg("tag", edit)?;
    let device = current_device(edit.context)?;
    let negated = edit.negated;
    change_device(edit, &device, |d| match negated {
        true => (d.tags.remove(&name).map(drop))
            .ok_or_else(|| format!("% No tag {name} in device {device}")),
        false => {
            d.tags.entry(name.clone()).or_default();
            Ok(())
        }
    })?;
    if !negated {
        edit.enter = Some(ConfigContext::Sub(
            &TAG_MODE,
            tag_mode_object(&device, &name),
        ));
    }
    Ok(())
}

/// Applies `change` to the tag of the current `(config-iot-tag)` mode.
fn change_tag(
    edit: &mut Edit<'_>,
    change: impl FnOnce(&mut Tag) -> Result<(), String>,
) -> Result<(), String> {
    let object = edit.object(&TAG_MODE)?;
    let (device, tag) = object
        .split_once(' ')
        .ok_or_else(|| format!("% Not in config-{} mode", TAG_MODE.prompt))?;
    let (device, tag) = (device.to_string(), tag.to_string());
    change_device(edit, &device, |d| {
        let t =
            (d.tags.get_mut(&tag)).ok_or_else(|| format!("% No tag {tag} in device {device}"))?;
        change(t)
    })
}

fn tag_source(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let source = set_or_clear(edit.negated, || {
        let table = Table::ALL
            .into_iter()
            .find(|t| args.has(t.word()))
            .ok_or(INCOMPLETE)?;
        Ok((table, args.number("address").ok_or(INCOMPLETE)? as u16))
    })?;
    change_tag(edit, |t| {
        t.source = source;
        Ok(())
    })
}

fn tag_type(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let data_type = set_or_clear(edit.negated, || {
        (DataType::ALL.into_iter().find(|t| args.has(t.word()))).ok_or(INCOMPLETE.to_string())
    })?;
    change_tag(edit, |t| {
        t.data_type = data_type;
        Ok(())
    })
}

fn tag_length(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let n = set_or_clear(edit.negated, || {
        args.number("value").ok_or(INCOMPLETE.to_string())
    })?;
    change_tag(edit, |t| {
        t.length = n.map(|n| n as u16);
        Ok(())
    })
}

fn tag_order(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let order = set_or_clear(edit.negated, || {
        (ByteOrder::ALL.into_iter().find(|o| args.has(o.word()))).ok_or(INCOMPLETE.to_string())
    })?;
    change_tag(edit, |t| {
        t.byte_order = order;
        Ok(())
    })
}

/// `scale|offset|deadband NUMBER`; `no` restores the default.
fn tag_decimal(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let word = ["scale", "offset", "deadband"]
        .into_iter()
        .find(|w| args.has(w))
        .unwrap_or("deadband");
    let value = set_or_clear(edit.negated, || {
        Decimal::parse(word, required(args, "value")?)
    })?;
    change_tag(edit, |t| {
        match word {
            "scale" => t.scale = value,
            "offset" => t.offset = value,
            _ => t.deadband = value,
        }
        Ok(())
    })
}

fn tag_writable(edit: &mut Edit<'_>) -> Result<(), String> {
    let on = !edit.negated;
    change_tag(edit, |t| {
        t.writable = on;
        Ok(())
    })
}

fn tag_publish(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let publish = set_or_clear(edit.negated, || {
        match (args.has("every-poll"), args.has("on-change")) {
            (true, _) => Ok(Publish::EveryPoll),
            (false, true) => Ok(Publish::OnChange),
            _ => Err(INCOMPLETE.to_string()),
        }
    })?;
    change_tag(edit, |t| {
        t.publish = publish;
        Ok(())
    })
}

#[cfg(test)]
mod generate {
    use super::{ByteOrder, DataType, Table};
    use proptest::prelude::*;
    use proptest::sample::select;
    use std::net::Ipv4Addr;

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9_.-]{0,8}"
    }

    fn unicast() -> impl Strategy<Value = Ipv4Addr> {
        (1u8..224, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d))
    }

    fn decimal() -> impl Strategy<Value = String> {
        prop_oneof![
            (-1000i32..1000).prop_map(|n| n.to_string()),
            (-1e6f64..1e6).prop_map(|n| n.to_string()),
        ]
    }

    /// A tag's lines (two blanks deep).
    fn tag() -> impl Strategy<Value = String> {
        (
            proptest::option::of((select(Table::ALL.to_vec()), any::<u16>())),
            proptest::option::of(select(DataType::ALL.to_vec())),
            proptest::option::of(1u16..=125),
            proptest::option::of(select(ByteOrder::ALL.to_vec())),
            proptest::collection::vec(proptest::option::of(decimal()), 3),
            any::<bool>(),
            proptest::option::of(select(vec!["on-change", "every-poll"])),
        )
            .prop_map(
                |(source, data_type, length, order, decimals, writable, publish)| {
                    let mut text = String::new();
                    let mut line = |words: Option<String>| {
                        text.extend(words.map(|w| format!("  {w}\n")));
                    };
                    line(source.map(|(t, a)| format!("source {} {a}", t.word())));
                    line(data_type.map(|d| format!("type {}", d.word())));
                    line(length.map(|n| format!("length {n}")));
                    line(order.map(|o| format!("byte-order {}", o.word())));
                    for (word, value) in ["scale", "offset", "deadband"].iter().zip(decimals) {
                        line(value.map(|v| format!("{word} {v}")));
                    }
                    line(writable.then(|| "writable".to_string()));
                    line(publish.map(|p| format!("publish {p}")));
                    text
                },
            )
    }

    fn device() -> impl Strategy<Value = String> {
        (
            proptest::option::of((unicast(), proptest::option::of(1u16..))),
            proptest::collection::vec(proptest::option::of(0u32..=10), 4),
            proptest::collection::btree_map(name(), tag(), 0..3),
        )
            .prop_map(|(address, numbers, tags)| {
                let mut text = String::new();
                text.extend(address.map(|(a, port)| match port {
                    Some(p) => format!(" address {a} port {p}\n"),
                    None => format!(" address {a}\n"),
                }));
                let words = [
                    ("unit-id", 0),
                    ("poll-interval", 10),
                    ("timeout", 10),
                    ("retries", 0),
                ];
                for ((word, base), n) in words.iter().zip(numbers) {
                    text.extend(n.map(|n| format!(" {word} {}\n", n + base)));
                }
                for (name, body) in tags {
                    text.push_str(&format!(" tag {name}\n{body}"));
                }
                text
            })
    }

    pub fn iot() -> BoxedStrategy<String> {
        let mqtt = (
            proptest::option::of((unicast(), proptest::option::of(1u16..))),
            proptest::option::of(name()),
            proptest::option::of((name(), "[A-Za-z0-9@#%^&*_.=+-]{1,12}")),
            proptest::option::of(5u16..=3600),
            proptest::option::of(0u8..=1),
            proptest::option::of("[a-z0-9]{1,6}(/[a-z0-9_-]{1,6}){0,2}"),
            any::<bool>(),
            (
                proptest::option::of(1u32..=1_000_000),
                proptest::option::of("/[a-z0-9_./-]{1,20}"),
            ),
        );
        (
            mqtt,
            proptest::collection::btree_map(name(), device(), 0..3),
        )
            .prop_map(
                |(
                    (broker, id, credentials, keepalive, qos, prefix, retain, (buffer, ca)),
                    devices,
                )| {
                    let mut text = String::from("iot gateway\n");
                    text.extend(broker.map(|(a, port)| match port {
                        Some(p) => format!(" mqtt broker {a} port {p}\n"),
                        None => format!(" mqtt broker {a}\n"),
                    }));
                    text.extend(id.map(|i| format!(" mqtt client-id {i}\n")));
                    text.extend(
                        (credentials).map(|(u, p)| format!(" mqtt username {u} password {p}\n")),
                    );
                    text.extend(keepalive.map(|k| format!(" mqtt keepalive {k}\n")));
                    text.extend(qos.map(|q| format!(" mqtt qos {q}\n")));
                    text.extend(prefix.map(|p| format!(" mqtt topic-prefix {p}\n")));
                    if retain {
                        text.push_str(" mqtt retain\n");
                    }
                    text.extend(buffer.map(|b| format!(" mqtt buffer {b}\n")));
                    text.extend(ca.map(|p| format!(" mqtt tls ca-certificate {p}\n")));
                    for (name, body) in devices {
                        text.push_str(&format!(" device {name}\n{body}"));
                    }
                    text
                },
            )
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{apply_text, parse_config, render, validate};

    const EXAMPLE: &str = "\
iot gateway
 mqtt broker 192.0.2.10 port 1884
 mqtt client-id edge1
 mqtt username gw password s3cret
 mqtt keepalive 15
 mqtt qos 1
 mqtt topic-prefix plant/line1
 mqtt retain
 mqtt buffer 5000
 mqtt tls ca-certificate /config/broker-ca.pem
 device PLC1
  address 192.0.2.20 port 5020
  unit-id 7
  poll-interval 100
  timeout 500
  retries 2
  tag pump
   source coil 3
   writable
  tag temp
   source holding-register 100
   type float32
   byte-order cdab
   scale 0.1
   offset -40
   deadband 0.5
   publish every-poll
";

    fn messages(errors: &[crate::LineError]) -> Vec<&str> {
        errors.iter().map(|e| e.error.message.as_str()).collect()
    }

    #[test]
    fn the_example_builds_the_model_and_renders_back_exactly() {
        let (config, errors) = parse_config(EXAMPLE);
        assert_eq!(errors, []);
        let iot = &config.iot;
        let mqtt = iot.mqtt.effective("r1");
        assert_eq!(
            (
                mqtt.broker,
                mqtt.port,
                mqtt.client_id.as_str(),
                mqtt.keepalive,
                mqtt.qos
            ),
            (Some(Ipv4Addr::new(192, 0, 2, 10)), 1884, "edge1", 15, 1)
        );
        assert_eq!(
            (mqtt.topic_prefix.as_str(), mqtt.retain, mqtt.buffer),
            ("plant/line1", true, 5000)
        );
        let plc = &iot.devices["PLC1"];
        assert_eq!(
            (
                plc.port(),
                plc.unit(),
                plc.poll_ms(),
                plc.timeout_ms(),
                plc.tries()
            ),
            (5020, 7, 100, 500, 3)
        );
        let temp = &plc.tags["temp"];
        assert_eq!(temp.source, Some((Table::HoldingRegister, 100)));
        assert_eq!((temp.data_type(), temp.width()), (DataType::Float32, 2));
        assert_eq!(temp.byte_order, Some(ByteOrder::Cdab));
        assert_eq!(temp.offset, Some(Decimal(-40.0)));
        assert_eq!(plc.tags["pump"].data_type(), DataType::Bool);
        assert_eq!(render(&config), format!("!\n{EXAMPLE}!\nend\n"));
        assert_eq!(validate(&config), Vec::<String>::new());
    }

    #[test]
    fn defaults_fill_in_what_is_not_typed() {
        let m = Mqtt::default().effective("r1");
        assert_eq!(
            (
                m.port,
                m.client_id.as_str(),
                m.keepalive,
                m.qos,
                m.topic_prefix.as_str(),
                m.buffer
            ),
            (
                1883,
                "gatehouse-r1",
                30,
                1,
                "gatehouse",
                DEFAULT_MQTT_BUFFER
            )
        );
        let tls = Mqtt {
            tls_ca: Some("/ca.pem".into()),
            ..Mqtt::default()
        };
        assert_eq!(tls.effective("r1").port, DEFAULT_MQTTS_PORT);
        let d = Device::default();
        assert_eq!(
            (d.port(), d.unit(), d.poll_ms(), d.timeout_ms(), d.tries()),
            (502, 1, 1000, 1000, 2)
        );
        let (config, errors) = parse_config("iot gateway\n");
        assert_eq!(errors, []);
        assert_eq!(render(&config), "!\nend\n", "an empty gateway says nothing");
    }

    #[test]
    fn bad_lines_are_refused_and_change_nothing() {
        let (mut config, errors) = parse_config(EXAMPLE);
        assert_eq!(errors, []);
        let before = config.clone();
        let cases = [
            ("iot gateway\n mqtt topic-prefix a/+/b", "% Invalid topic prefix \"a/+/b\": levels separated by '/', no '+', '#', empty level or leading '$'"),
            ("iot gateway\n mqtt topic-prefix a//b", "% Invalid topic prefix \"a//b\": levels separated by '/', no '+', '#', empty level or leading '$'"),
            ("iot gateway\n mqtt broker 224.0.0.1", "% 224.0.0.1 is not a unicast address"),
            ("iot gateway\n mqtt tls ca-certificate ca.pem", "% Invalid file \"ca.pem\": an absolute path without blanks or quotes"),
            ("iot gateway\n mqtt qos 2", "% Invalid input detected at '^' marker."),
            ("iot gateway\n device a/b", "% Invalid device name \"a/b\": up to 64 letters, digits, '-', '_' and '.'"),
            ("iot gateway\n no device NOPE", "% No device NOPE"),
            ("iot gateway\n device PLC1\n no tag NOPE", "% No tag NOPE in device PLC1"),
            ("iot gateway\n device PLC1\n tag temp\n scale ten", "% Invalid scale \"ten\": a decimal number"),
            ("iot gateway\n device PLC1\n tag temp\n offset inf", "% Invalid offset \"inf\": a decimal number"),
            ("iot gateway\n device PLC1\n poll-interval 5", "% Invalid input detected at '^' marker."),
        ];
        for (lines, message) in cases {
            let errors = apply_text(&mut config, &format!("{lines}\n"));
            assert_eq!(messages(&errors), [message], "{lines}");
        }
        assert_eq!(config, before);
    }

    #[test]
    fn nested_modes_take_their_parents_commands() {
        let (config, errors) = parse_config(
            "iot gateway\n device A\n tag t1\n source input-register 1\n tag t2\n source coil 2\n \
             address 192.0.2.1\n device B\n address 192.0.2.2\n mqtt broker 192.0.2.9\n",
        );
        assert_eq!(errors, []);
        let a = &config.iot.devices["A"];
        assert_eq!(a.tags.len(), 2);
        assert_eq!(
            a.address,
            Some(Ipv4Addr::new(192, 0, 2, 1)),
            "set from a tag's mode"
        );
        assert_eq!(
            config.iot.devices["B"].address,
            Some(Ipv4Addr::new(192, 0, 2, 2))
        );
        assert_eq!(config.iot.mqtt.broker, Some(Ipv4Addr::new(192, 0, 2, 9)));
    }

    #[test]
    fn no_forms_restore_defaults_and_remove_objects() {
        let (mut config, errors) = parse_config(EXAMPLE);
        assert_eq!(errors, []);
        let errors = apply_text(
            &mut config,
            "iot gateway\n no mqtt client-id\n no mqtt username\n no mqtt keepalive\n no mqtt qos\n \
             no mqtt topic-prefix\n no mqtt retain\n no mqtt buffer\n no mqtt tls ca-certificate\n device PLC1\n no unit-id\n \
             no poll-interval\n no timeout\n no retries\n no tag pump\n tag temp\n no type\n \
             no byte-order\n no scale\n no offset\n no deadband\n no publish\n",
        );
        assert_eq!(errors, []);
        assert_eq!(
            render(&config),
            "!\niot gateway\n mqtt broker 192.0.2.10 port 1884\n device PLC1\n  address 192.0.2.20 port 5020\n  \
             tag temp\n   source holding-register 100\n!\nend\n"
        );
        assert_eq!(apply_text(&mut config, "no iot gateway\n"), []);
        assert_eq!(*config.iot, Iot::default());
    }

    #[test]
    fn commit_checks_name_each_problem() {
        let (config, errors) = parse_config(
            "iot gateway\n device D\n tag a\n type int16\n tag b\n source coil 1\n type float32\n \
             tag c\n source input-register 5\n writable\n tag d\n source holding-register 65535\n type int32\n \
             tag e\n source holding-register 1\n type string\n tag f\n source holding-register 1\n length 3\n \
             tag g\n source holding-register 1\n scale 0\n deadband -1\n",
        );
        assert_eq!(errors, []);
        assert_eq!(
            validate(&config),
            [
                "% iot gateway: devices but no mqtt broker",
                "% iot device D: no address",
                "% iot device D tag a: no source",
                "% iot device D tag b: coil holds a bit, type must be bool",
                "% iot device D tag c: input-register is read-only",
                "% iot device D tag d: ends past address 65535",
                "% iot device D tag e: a string needs a length",
                "% iot device D tag f: length applies only to strings",
                "% iot device D tag g: scale 0 loses the value",
                "% iot device D tag g: a deadband is not negative",
            ]
        );
    }

    #[test]
    fn lines_that_change_nothing_keep_the_section_shared() {
        let (mut config, errors) = parse_config(EXAMPLE);
        assert_eq!(errors, []);
        let before = config.iot.clone();
        let again = "iot gateway\n mqtt qos 1\n device PLC1\n unit-id 7\n tag temp\n scale 0.1\n";
        assert_eq!(apply_text(&mut config, again), []);
        assert!(Arc::ptr_eq(&before, &config.iot));
    }
}
