//! The IoT protocol gateway on the appliance's own stack: each configured
//! Modbus TCP device is polled by a task of its own ([`device`]), its tags
//! decoded ([`decode`]) from as few reads as the protocol allows
//! ([`plan`]), and what changed is queued for the MQTT client ([`mqtt`]),
//! which publishes it to the broker, acknowledged with QoS 1, and turns
//! commands from the broker into Modbus writes.
//!
//! The queue is the store-and-forward buffer: bounded by `mqtt buffer`,
//! kept across broker outages and configuration changes, oldest dropped
//! (and counted) when full. Every commit that changes the `iot gateway`
//! section restarts the tasks with the new settings; the queue stays.
//!
//! Topics, under `mqtt topic-prefix` (default `gatehouse`):
//! - `PREFIX/DEVICE/data/TAG`: the tag's value (JSON: device, tag, value,
//!   quality, ts in ms since the epoch, error when bad);
//! - `PREFIX/DEVICE/status`: `online` or `offline` (retained);
//! - `PREFIX/DEVICE/command/TAG`: writes (a JSON value, or `{"value": V,
//!   "id": ID}`), answered on `PREFIX/DEVICE/response/TAG`;
//! - `PREFIX/gateway/status`: the gateway itself (retained; the broker
//!   publishes `offline` as our will when the connection is lost).

mod decode;
mod device;
mod mqtt;
mod plan;

use grammar::config::{Config, Iot, Tag};
use grammar::SyntaxError;
use kernel_bypass::local::LocalStack;
use kernel_bypass::Dataplane;
use shell::ShellBuilder;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

pub use device::WriteRequest;

/// One message for the broker.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// What `show iot devices` says of a device.
#[derive(Clone, Debug, Default)]
struct DeviceStatus {
    address: String,
    up: Option<bool>,
    polls: u64,
    failures: u64,
    /// Requests a poll makes (after coalescing).
    reads: usize,
    last_error: Option<String>,
    since: Option<Instant>,
}

/// What `show iot tags` says of a tag.
#[derive(Clone, Debug)]
struct TagStatus {
    value: String,
    good: bool,
    at: Instant,
}

#[derive(Default)]
struct MqttStatus {
    /// `connected` or why not.
    state: String,
    broker: String,
    since: Option<Instant>,
    published: u64,
    acked: u64,
    dropped: u64,
    commands: u64,
    refused: u64,
}

/// Where a device's commands go, with its tags to check them against.
type Route = (mpsc::Sender<WriteRequest>, Arc<BTreeMap<String, Tag>>);

#[derive(Default)]
struct State {
    /// Waiting to be sent, oldest first.
    queue: VecDeque<Message>,
    capacity: usize,
    /// Sent with QoS 1, not yet acknowledged: `(packet id, message)`.
    inflight: VecDeque<(u16, Message)>,
    mqtt: MqttStatus,
    devices: BTreeMap<String, DeviceStatus>,
    tags: BTreeMap<(String, String), TagStatus>,
    /// Where commands for each device go, and its tags.
    routes: HashMap<String, Route>,
}

/// The gateway's shared state: the queue, the counters and what the
/// shows print.
#[derive(Clone, Default)]
pub struct Gateway {
    state: Arc<Mutex<State>>,
    /// Woken when the queue gets a message.
    ready: Arc<Notify>,
}

impl Gateway {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a message; when the buffer is full the oldest goes.
    pub fn publish(&self, message: Message) {
        let mut state = self.state();
        state.queue.push_back(message);
        while state.queue.len() > state.capacity.max(1) {
            state.queue.pop_front();
            state.mqtt.dropped += 1;
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Records a tag's latest value for `show iot tags`.
    fn record_tag(&self, device: &str, tag: &str, value: String, good: bool) {
        let status = TagStatus {
            value,
            good,
            at: Instant::now(),
        };
        (self.state().tags).insert((device.to_string(), tag.to_string()), status);
    }

    fn device_status(&self, device: &str, change: impl FnOnce(&mut DeviceStatus)) {
        if let Some(status) = self.state().devices.get_mut(device) {
            change(status);
        }
    }

    /// `show iot devices`.
    fn render_devices(&self) -> String {
        let state = self.state();
        let mut out = format!(
            "{:<16} {:<22} {:<8} {:>8} {:>8} {:>5}  {}\n",
            "Device", "Address", "State", "Polls", "Failed", "Reads", "Last error"
        );
        for (name, d) in &state.devices {
            let up = match d.up {
                Some(true) => "up",
                Some(false) => "down",
                None => "unknown",
            };
            let since = d
                .since
                .map_or(String::new(), |s| format!(" {}s", s.elapsed().as_secs()));
            let _ = writeln!(
                out,
                "{name:<16} {:<22} {:<8} {:>8} {:>8} {:>5}  {}",
                d.address,
                format!("{up}{since}"),
                d.polls,
                d.failures,
                d.reads,
                d.last_error.as_deref().unwrap_or("-")
            );
        }
        out
    }

    /// `show iot tags`: last value, quality, age.
    fn render_tags(&self) -> String {
        let state = self.state();
        let mut out = format!(
            "{:<16} {:<16} {:<24} {:<8} {:>8}\n",
            "Device", "Tag", "Value", "Quality", "Age(ms)"
        );
        for ((device, tag), t) in &state.tags {
            let _ = writeln!(
                out,
                "{device:<16} {tag:<16} {:<24} {:<8} {:>8}",
                t.value,
                if t.good { "good" } else { "bad" },
                t.at.elapsed().as_millis()
            );
        }
        out
    }

    /// `show iot mqtt`.
    fn render_mqtt(&self) -> String {
        let state = self.state();
        let m = &state.mqtt;
        let since = m.since.map_or(String::new(), |s| {
            format!(" for {}s", s.elapsed().as_secs())
        });
        format!(
            "Broker {}: {}{since}\nQueue {} of {} messages, {} awaiting acknowledgement\n\
             Published {}, acknowledged {}, dropped {}\nCommands {} received, {} refused\n",
            if m.broker.is_empty() {
                "none"
            } else {
                &m.broker
            },
            if m.state.is_empty() {
                "not configured"
            } else {
                &m.state
            },
            state.queue.len(),
            state.capacity,
            state.inflight.len(),
            m.published,
            m.acked,
            m.dropped,
            m.commands,
            m.refused
        )
    }
}

/// Adds `show iot devices|tags|mqtt` to `builder`.
pub fn register_commands(
    builder: ShellBuilder,
    gateway: &Gateway,
) -> Result<ShellBuilder, SyntaxError> {
    let (g1, g2, g3) = (gateway.clone(), gateway.clone(), gateway.clone());
    builder
        .show(
            "iot devices",
            &[
                "IoT protocol gateway",
                "Modbus devices: state, polls, failures",
            ],
            move |_| g1.render_devices(),
        )?
        .show(
            "iot tags",
            &["IoT protocol gateway", "Tags: last value, quality, age"],
            move |_| g2.render_tags(),
        )?
        .show(
            "iot mqtt",
            &[
                "IoT protocol gateway",
                "MQTT: connection, queue, published, acknowledged, dropped",
            ],
            move |_| g3.render_mqtt(),
        )
}

/// Milliseconds since the epoch by the appliance's clock.
fn now_ms() -> u64 {
    shell::clock::now().as_millis() as u64
}

/// Runs the gateway until the configuration's sender is gone, restarting
/// its tasks whenever the `iot gateway` section changes.
pub async fn serve(
    stack: LocalStack,
    dataplane: Arc<Dataplane>,
    gateway: Gateway,
    mut config: watch::Receiver<Config>,
) {
    let mut running: Vec<JoinHandle<()>> = Vec::new();
    let mut current: Option<Arc<Iot>> = None;
    loop {
        let (iot, hostname) = {
            let c = config.borrow_and_update();
            (c.iot.clone(), c.hostname_or_default().to_string())
        };
        if current.as_ref().is_none_or(|c| !Arc::ptr_eq(c, &iot)) {
            running.drain(..).for_each(|task| task.abort());
            running = start(&stack, &dataplane, &gateway, &iot, &hostname);
            current = Some(iot);
        }
        if config.changed().await.is_err() {
            running.drain(..).for_each(|task| task.abort());
            return;
        }
    }
}

/// Starts the MQTT client and a poller per device for `iot`.
fn start(
    stack: &LocalStack,
    dataplane: &Arc<Dataplane>,
    gateway: &Gateway,
    iot: &Iot,
    hostname: &str,
) -> Vec<JoinHandle<()>> {
    let settings = iot.mqtt.effective(hostname);
    let mut tasks = Vec::new();
    {
        let mut state = gateway.state();
        state.capacity = settings.buffer as usize;
        state.devices.clear();
        state.routes.clear();
        state
            .tags
            .retain(|(d, t), _| iot.devices.get(d).is_some_and(|d| d.tags.contains_key(t)));
        state.mqtt.broker = settings
            .broker
            .map_or(String::new(), |b| format!("{b}:{}", settings.port));
        state.mqtt.state.clear();
    }
    if settings.broker.is_none() {
        return tasks;
    }
    for (name, device) in &iot.devices {
        let Some(address) = device.address else {
            continue;
        };
        let (sender, receiver) = mpsc::channel(64);
        {
            let mut state = gateway.state();
            let status = DeviceStatus {
                address: format!("{address}:{}", device.port()),
                ..DeviceStatus::default()
            };
            state.devices.insert(name.clone(), status);
            state
                .routes
                .insert(name.clone(), (sender, Arc::new(device.tags.clone())));
        }
        let poller = device::Poller::new(
            stack.clone(),
            dataplane.clone(),
            gateway.clone(),
            name.clone(),
            device.clone(),
            &settings,
        );
        tasks.push(tokio::spawn(poller.run(receiver)));
    }
    tasks.push(tokio::spawn(mqtt::run(
        stack.clone(),
        dataplane.clone(),
        gateway.clone(),
        settings,
    )));
    tasks
}
