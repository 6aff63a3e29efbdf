//! One Modbus TCP device's poller: connects from the appliance's own stack,
//! reads the coalesced blocks every `poll-interval`, publishes the tags
//! whose value or quality changed (every tag with `publish every-poll`),
//! and carries out the writes MQTT commands ask for between polls.
//!
//! A device that does not answer (after `retries` more tries) is marked
//! down once: a log line, `offline` on its status topic, each tag
//! published with bad quality; it is then tried with exponential backoff
//! (from the poll interval up to [`MAX_BACKOFF`]) and comes back by itself.
//! An exception or a short answer spoils only the tags of that read.

use super::decode::{decode, scaled, Value};
use super::plan::{plan, Read};
use super::{now_ms, Gateway, Message};
use grammar::config::{Device, MqttSettings, Publish, Table, Tag};
use kernel_bypass::local::LocalStack;
use kernel_bypass::Dataplane;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, Instant};
use tokio_modbus::client::{Context, Reader, Writer};
use tokio_modbus::Slave;

/// The longest wait between tries of a device that is down.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A write an MQTT command asks for: the registers (bits: 0 or 1) that
/// encode the checked value, and where to say how it went.
pub struct WriteRequest {
    pub tag: String,
    pub registers: Vec<u16>,
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// What one read gave: the registers (bits as 0/1), or why not.
type ReadOutcome = Result<Vec<u16>, String>;

pub struct Poller {
    stack: LocalStack,
    dataplane: Arc<Dataplane>,
    gateway: Gateway,
    name: String,
    device: Device,
    tags: Vec<(String, Tag)>,
    reads: Vec<Read>,
    prefix: String,
    retain: bool,
    context: Option<Context>,
    /// The last published value and quality of each tag.
    last: Vec<Option<(Value, bool)>>,
    up: Option<bool>,
}

impl Poller {
    pub fn new(
        stack: LocalStack,
        dataplane: Arc<Dataplane>,
        gateway: Gateway,
        name: String,
        device: Device,
        settings: &MqttSettings,
    ) -> Poller {
        let tags: Vec<(String, Tag)> = device
            .tags
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        // A tag without a source (commit refuses it) gets width 0, which
        // the plan leaves out, so indexes still name the tags.
        let shapes: Vec<_> = (tags.iter())
            .map(|(_, t)| match t.source {
                Some((table, address)) => (table, address, t.width()),
                None => (Table::HoldingRegister, 0, 0),
            })
            .collect();
        let reads = plan(&shapes);
        gateway.device_status(&name, |s| s.reads = reads.len());
        Poller {
            stack,
            dataplane,
            gateway,
            last: vec![None; tags.len()],
            name,
            device,
            tags,
            reads,
            prefix: settings.topic_prefix.clone(),
            retain: settings.retain,
            context: None,
            up: None,
        }
    }

    /// Polls until aborted (by a configuration change).
    pub async fn run(mut self, mut commands: mpsc::Receiver<WriteRequest>) {
        let poll = Duration::from_millis(u64::from(self.device.poll_ms()));
        let mut failures: u32 = 0;
        let mut next = Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                Some(request) = commands.recv() => {
                    let outcome = self.write(&request.tag, &request.registers).await;
                    let _ = request.reply.send(outcome);
                    continue;
                }
            }
            let started = Instant::now();
            match self.poll_once().await {
                Ok(()) => {
                    failures = 0;
                    next = started + poll;
                }
                Err(problem) => {
                    self.context = None;
                    self.mark_down(&problem);
                    failures = failures.saturating_add(1);
                    let backoff = poll.saturating_mul(1 << failures.min(16)).min(MAX_BACKOFF);
                    next = Instant::now() + backoff.max(poll);
                }
            }
            // A poll slower than the interval starts the next one at once,
            // without a burst to catch up.
            next = next.max(Instant::now());
        }
    }

    fn per_try(&self) -> Duration {
        Duration::from_millis(u64::from(self.device.timeout_ms()))
    }

    /// The connection, opened if there is none.
    async fn connect(&mut self) -> Result<&mut Context, String> {
        if self.context.is_none() {
            let address = self.device.address.ok_or("no address")?;
            let target = SocketAddr::from((address, self.device.port()));
            let stream = timeout(self.per_try(), self.stack.tcp_connect(target))
                .await
                .map_err(|_| "connect: no answer".to_string())?
                .map_err(|e| format!("connect: {e}"))?;
            let slave = Slave(self.device.unit());
            self.context = Some(tokio_modbus::client::tcp::attach_slave(stream, slave));
        }
        self.context
            .as_mut()
            .ok_or_else(|| "not connected".to_string())
    }

    /// One read, tried `retries` + 1 times; Err(transport problem) when
    /// the device never answered, Ok(Err(..)) when it answered with an
    /// exception or a short response.
    async fn read(&mut self, read: &Read) -> Result<ReadOutcome, String> {
        let mut problem = String::new();
        for _ in 0..self.device.tries() {
            let per_try = self.per_try();
            let context = match self.connect().await {
                Ok(c) => c,
                Err(e) => {
                    problem = e;
                    continue;
                }
            };
            let (start, count) = (read.start, read.count);
            let answer = timeout(per_try, async {
                match read.table {
                    Table::Coil => bits(context.read_coils(start, count).await),
                    Table::DiscreteInput => bits(context.read_discrete_inputs(start, count).await),
                    Table::InputRegister => context.read_input_registers(start, count).await,
                    Table::HoldingRegister => context.read_holding_registers(start, count).await,
                }
            })
            .await;
            match answer {
                Ok(Ok(Ok(values))) if values.len() >= usize::from(count) => return Ok(Ok(values)),
                Ok(Ok(Ok(values))) => {
                    return Ok(Err(format!("short answer: {} of {count}", values.len())))
                }
                Ok(Ok(Err(exception))) => return Ok(Err(format!("exception: {exception}"))),
                Ok(Err(e)) => problem = format!("modbus: {e}"),
                Err(_) => problem = format!("no answer within {} ms", per_try.as_millis()),
            }
            // The connection may hold a late answer: start afresh.
            self.context = None;
        }
        Err(problem)
    }

    /// Reads every block and publishes what changed.
    async fn poll_once(&mut self) -> Result<(), String> {
        // A device without tags is still checked for an answer.
        self.connect().await?;
        let reads = self.reads.clone();
        let mut outcomes = Vec::with_capacity(reads.len());
        for read in &reads {
            outcomes.push(self.read(read).await?);
        }
        self.mark_up();
        self.gateway.device_status(&self.name, |s| s.polls += 1);
        for (read, outcome) in reads.iter().zip(outcomes) {
            for &(index, offset, width) in &read.tags {
                let value = match &outcome {
                    Ok(registers) => {
                        let (from, to) = (usize::from(offset), usize::from(offset + width));
                        let tag = &self.tags[index].1;
                        let raw = registers.get(from..to).and_then(|r| {
                            decode(r, tag.data_type(), tag.byte_order.unwrap_or_default())
                        });
                        raw.map(|v| scaled(v, tag))
                            .ok_or_else(|| "cannot decode".to_string())
                    }
                    Err(problem) => Err(problem.clone()),
                };
                self.update(index, value);
            }
        }
        Ok(())
    }

    /// Publishes a tag's new reading when it should be.
    fn update(&mut self, index: usize, reading: Result<Value, String>) {
        let (name, tag) = &self.tags[index];
        let deadband = tag.deadband.map_or(0.0, |d| d.0);
        let every_poll = tag.publish == Some(Publish::EveryPoll);
        let publish = match (&reading, &self.last[index]) {
            (_, None) => true,
            (Ok(v), Some((before, true))) => every_poll || v.changed(before, deadband),
            (Ok(_), Some((_, false))) => true,
            // Bad quality once, not every poll.
            (Err(_), Some((_, good))) => *good,
        };
        let (value, good, error) = match reading {
            Ok(v) => (v, true, None),
            Err(e) => {
                let before = self.last[index].as_ref().map(|(v, _)| v.clone());
                (before.unwrap_or(Value::Text(String::new())), false, Some(e))
            }
        };
        let shown = match &value {
            Value::Text(t) => t.clone(),
            v => v.to_json().to_string(),
        };
        self.gateway.record_tag(&self.name, name, shown, good);
        if !publish {
            return;
        }
        let body = json!({
            "device": self.name,
            "tag": name,
            "value": if good { value.to_json() } else { serde_json::Value::Null },
            "quality": if good { "good" } else { "bad" },
            "ts": now_ms(),
        });
        let topic = format!("data/{name}");
        self.send(&topic, body, error.as_deref(), self.retain);
        self.last[index] = Some((value, good));
    }

    fn status(&self, online: bool, error: Option<&str>) {
        let body = json!({
            "device": self.name,
            "status": if online { "online" } else { "offline" },
            "ts": now_ms(),
        });
        self.send("status", body, error, true);
    }

    /// Queues `body`, with `error` when there is one, on `PREFIX/DEVICE/TAIL`.
    fn send(&self, tail: &str, mut body: serde_json::Value, error: Option<&str>, retain: bool) {
        if let Some(error) = error {
            body["error"] = serde_json::Value::from(error);
        }
        self.gateway.publish(Message {
            topic: format!("{}/{}/{tail}", self.prefix, self.name),
            payload: body.to_string().into_bytes(),
            retain,
        });
    }

    fn mark_up(&mut self) {
        if self.up == Some(true) {
            return;
        }
        if self.up == Some(false) {
            self.dataplane.log(format!(
                "%IOT-5-DEVICE_UP: device {} answers again",
                self.name
            ));
        }
        self.set_up(true, None);
    }

    /// Records and publishes a change of state.
    fn set_up(&mut self, up: bool, problem: Option<&str>) {
        self.up = Some(up);
        self.gateway.device_status(&self.name, |s| {
            s.up = Some(up);
            s.since = Some(std::time::Instant::now());
        });
        self.status(up, problem);
    }

    /// Once per outage: the log line, the status, every tag bad.
    fn mark_down(&mut self, problem: &str) {
        self.gateway.device_status(&self.name, |s| {
            s.failures += 1;
            s.last_error = Some(problem.to_string());
        });
        if self.up == Some(false) {
            return;
        }
        self.dataplane.log(format!(
            "%IOT-4-DEVICE_DOWN: device {} is not answering: {problem}",
            self.name
        ));
        self.set_up(false, Some(problem));
        for index in 0..self.tags.len() {
            self.update(index, Err(format!("device down: {problem}")));
        }
    }

    /// Writes a tag's registers (a coil: its bit); the value was checked.
    async fn write(&mut self, tag: &str, registers: &[u16]) -> Result<(), String> {
        let (table, address) = (self.device.tags.get(tag).and_then(|t| t.source))
            .ok_or_else(|| format!("no tag {tag}"))?;
        let per_try = self.per_try();
        let context = self.connect().await?;
        let outcome = timeout(per_try, async {
            match (table, registers) {
                (Table::Coil, [bit]) => context.write_single_coil(address, *bit != 0).await,
                (Table::HoldingRegister, [word]) => {
                    context.write_single_register(address, *word).await
                }
                (Table::HoldingRegister, words) => {
                    context.write_multiple_registers(address, words).await
                }
                _ => Ok(Err(tokio_modbus::ExceptionCode::IllegalFunction)),
            }
        })
        .await;
        match outcome {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(exception))) => Err(format!("device refused: {exception}")),
            Ok(Err(e)) => {
                self.context = None;
                Err(format!("modbus: {e}"))
            }
            Err(_) => {
                self.context = None;
                Err(format!("no answer within {} ms", per_try.as_millis()))
            }
        }
    }
}

/// Coils and discrete inputs as 0/1 registers.
fn bits(answer: tokio_modbus::Result<Vec<bool>>) -> tokio_modbus::Result<Vec<u16>> {
    answer.map(|inner| inner.map(|bits| bits.into_iter().map(u16::from).collect()))
}

#[cfg(test)]
mod tests {
    //! tokio-modbus over an in-memory pipe, against a hostile server:
    //! what it answers must come back as an error, never a panic or a hang.

    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_modbus::client::Reader;

    /// Reads one request and answers `answer` (with the request's
    /// transaction id unless `keep_id`), then closes.
    async fn ask(answer: Vec<u8>, keep_id: bool) -> String {
        let (client, mut server) = tokio::io::duplex(4096);
        let mut context = tokio_modbus::client::tcp::attach_slave(client, tokio_modbus::Slave(1));
        let serve = async move {
            let mut request = [0u8; 12];
            let _ = server.read_exact(&mut request).await;
            let mut answer = answer;
            if !keep_id && answer.len() >= 2 {
                answer[..2].copy_from_slice(&request[..2]);
            }
            let _ = server.write_all(&answer).await;
            drop(server);
        };
        let read = async {
            let answer = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                context.read_holding_registers(0, 2),
            )
            .await;
            format!("{answer:?}")
        };
        let (_, outcome) = tokio::join!(serve, read);
        outcome
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn wrong_length_exceptions_and_wrong_transaction_ids_are_errors() {
        let rt = runtime();
        // A good answer: 2 registers.
        let good = vec![0, 0, 0, 0, 0, 7, 1, 3, 4, 0, 1, 0, 2];
        assert!(rt.block_on(ask(good, false)).contains("Ok(Ok([1, 2]))"));
        // Exception 2 (illegal data address).
        let exception = vec![0, 0, 0, 0, 0, 3, 1, 0x83, 2];
        assert!(rt
            .block_on(ask(exception, false))
            .contains("Ok(Err(IllegalDataAddress))"));
        // Byte count says 4, one register sent.
        let short = vec![0, 0, 0, 0, 0, 5, 1, 3, 4, 0, 1];
        assert!(!rt.block_on(ask(short, false)).contains("Ok(Ok("));
        // Another transaction's answer.
        let stranger = vec![0x12, 0x34, 0, 0, 0, 7, 1, 3, 4, 0, 1, 0, 2];
        assert!(!rt.block_on(ask(stranger, true)).contains("Ok(Ok("));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any bytes as an answer: an error or a value, never a panic.
        #[test]
        fn garbage_answers_never_panic(answer in proptest::collection::vec(any::<u8>(), 0..40), keep_id in any::<bool>()) {
            let rt = runtime();
            let _ = rt.block_on(ask(answer, keep_id));
        }
    }
}
