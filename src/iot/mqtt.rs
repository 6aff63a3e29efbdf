//! The MQTT 3.1.1 client on the appliance's own stack (packets encoded and
//! decoded by rumqttc's `mqttbytes`, the session kept here; TLS by rustls
//! when `mqtt tls ca-certificate` names the CA): connects with
//! a will on `PREFIX/gateway/status`, subscribes to the command topics,
//! publishes the queue in order with up to [`WINDOW`] QoS 1 messages in
//! flight, and puts what the broker had not acknowledged back at the head
//! of the queue when the connection is lost, so a broker restart loses
//! nothing the buffer had room for. Commands are checked against their
//! tag (writable, type, range) before any write, and always answered.

use super::decode::encode;
use super::{now_ms, Gateway, Message, WriteRequest};
use bytes::BytesMut;
use grammar::config::MqttSettings;
use kernel_bypass::local::LocalStack;
use kernel_bypass::Dataplane;
use rumqttc::mqttbytes::v4::{Connect, LastWill, Packet, PubAck, Publish, Subscribe};
use rumqttc::mqttbytes::{Error as PacketError, QoS};
use serde_json::{json, Value as Json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::oneshot;
use tokio::time::{timeout, Instant};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// QoS 1 messages sent and not yet acknowledged, at most: enough to keep
/// the link busy through a round trip, little to send twice.
pub const WINDOW: usize = 512;
/// Messages encoded for one write.
const BATCH: usize = 128;
/// The largest packet taken from the broker (commands are small).
const MAX_PACKET: usize = 64 * 1024;
/// Waits between connection attempts, doubling up to the last.
const RETRY: [u64; 4] = [500, 1000, 2000, 4000];
/// A session that lasted this long was a working one.
const STABLE: Duration = Duration::from_secs(10);
/// How long connecting (TCP, TLS, CONNACK) may take.
const PATIENCE: Duration = Duration::from_secs(5);
/// How long a command waits for its device.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps a session with the broker until aborted.
pub async fn run(
    stack: LocalStack,
    dataplane: Arc<Dataplane>,
    gateway: Gateway,
    settings: MqttSettings,
) {
    let Some(broker) = settings.broker else {
        return;
    };
    let target = SocketAddr::from((broker, settings.port));
    let mut attempt = 0usize;
    // One log line per outage, not one per attempt.
    let mut logged = false;
    loop {
        // Also what a task stopped by a commit left unacknowledged.
        requeue_inflight(&gateway);
        let outcome = session(&stack, &dataplane, &gateway, &settings, target).await;
        requeue_inflight(&gateway);
        let problem = match outcome {
            Ok(()) => "closed by the broker".to_string(),
            Err(problem) => problem,
        };
        // A session that lasted starts a new outage; one the broker
        // closes at once (refusing us) does not.
        let lasted = {
            let mut state = gateway.state();
            let connected = state.mqtt.state == "connected";
            let lasted = connected && state.mqtt.since.is_some_and(|s| s.elapsed() > STABLE);
            state.mqtt.state = format!("down: {problem}");
            state.mqtt.since = Some(std::time::Instant::now());
            lasted
        };
        if lasted {
            attempt = 0;
            logged = false;
        }
        if !logged {
            dataplane.log(format!("%IOT-4-MQTT_DOWN: broker {target}: {problem}"));
            logged = true;
        }
        tokio::time::sleep(Duration::from_millis(RETRY[attempt.min(RETRY.len() - 1)])).await;
        attempt += 1;
    }
}

/// Messages the broker did not acknowledge go back, in order, before the rest.
fn requeue_inflight(gateway: &Gateway) {
    let mut state = gateway.state();
    let inflight: Vec<Message> = state.inflight.drain(..).map(|(_, m)| m).collect();
    for message in inflight.into_iter().rev() {
        state.queue.push_front(message);
    }
}

/// A connection to the broker: plain TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for S {}

fn qos(settings: &MqttSettings) -> QoS {
    match settings.qos {
        0 => QoS::AtMostOnce,
        _ => QoS::AtLeastOnce,
    }
}

async fn send<S: Stream>(writer: &mut WriteHalf<S>, packet: Packet) -> Result<(), String> {
    let mut out = BytesMut::new();
    packet
        .write(&mut out, usize::MAX)
        .map_err(|e| format!("encode: {e}"))?;
    writer
        .write_all(&out)
        .await
        .map_err(|e| format!("send: {e}"))
}

/// Reads until one whole packet is in `input`, and takes it.
async fn next_packet<S: Stream>(
    reader: &mut ReadHalf<S>,
    input: &mut BytesMut,
) -> Result<Packet, String> {
    loop {
        match Packet::read(input, MAX_PACKET) {
            Ok(packet) => return Ok(packet),
            Err(PacketError::InsufficientBytes(_)) => {}
            Err(e) => return Err(format!("bad packet from the broker: {e}")),
        }
        let n = reader
            .read_buf(input)
            .await
            .map_err(|e| format!("receive: {e}"))?;
        if n == 0 {
            return Err("connection closed".to_string());
        }
    }
}

/// One connection, over TLS when configured.
async fn session(
    stack: &LocalStack,
    dataplane: &Dataplane,
    gateway: &Gateway,
    settings: &MqttSettings,
    target: SocketAddr,
) -> Result<(), String> {
    let stream = timeout(PATIENCE, stack.tcp_connect(target))
        .await
        .map_err(|_| "connect: no answer".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    let Some(ca) = &settings.tls_ca else {
        return talk(stream, dataplane, gateway, settings).await;
    };
    let connector = tls_connector(ca)?;
    let tls = timeout(
        PATIENCE,
        connector.connect(ServerName::from(target.ip()), stream),
    )
    .await
    .map_err(|_| "TLS handshake: no answer".to_string())?
    .map_err(|e| format!("TLS: {e}"))?;
    talk(tls, dataplane, gateway, settings).await
}

/// A TLS client that trusts only the CAs of the PEM file `path` and checks
/// that the broker's certificate names the address connected to. The file
/// is read at each connection, so a renewed CA is taken without a commit.
fn tls_connector(path: &str) -> Result<TlsConnector, String> {
    let problem = |e: &dyn std::fmt::Display| format!("CA certificate {path}: {e}");
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| problem(&e))? {
        roots
            .add(cert.map_err(|e| problem(&e))?)
            .map_err(|e| problem(&e))?;
    }
    if roots.is_empty() {
        return Err(problem(&"no certificate in it"));
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| problem(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// CONNECT, SUBSCRIBE, then publish and listen until the connection fails.
async fn talk<S: Stream>(
    stream: S,
    dataplane: &Dataplane,
    gateway: &Gateway,
    settings: &MqttSettings,
) -> Result<(), String> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let gateway_status = format!("{}/gateway/status", settings.topic_prefix);
    let mut connect = Connect::new(settings.client_id.clone());
    connect.keep_alive = settings.keepalive;
    connect.clean_session = true;
    connect.last_will = Some(LastWill::new(
        &gateway_status,
        json!({"status": "offline"}).to_string(),
        QoS::AtLeastOnce,
        true,
    ));
    if let Some((user, password)) = &settings.credentials {
        connect.set_login(user, password);
    }
    send(&mut writer, Packet::Connect(connect)).await?;
    let mut input = BytesMut::with_capacity(4096);
    match timeout(PATIENCE, next_packet(&mut reader, &mut input)).await {
        Ok(Ok(Packet::ConnAck(ack)))
            if ack.code == rumqttc::mqttbytes::v4::ConnectReturnCode::Success => {}
        Ok(Ok(Packet::ConnAck(ack))) => return Err(format!("refused: {:?}", ack.code)),
        Ok(Ok(other)) => return Err(format!("expected CONNACK, got {other:?}")),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err("no CONNACK".to_string()),
    }
    let commands = format!("{}/+/command/+", settings.topic_prefix);
    let mut subscribe = Subscribe::new(commands, QoS::AtLeastOnce);
    // Packet id 0 is a protocol error: brokers close the connection.
    subscribe.pkid = 1;
    send(&mut writer, Packet::Subscribe(subscribe)).await?;
    let broker = {
        let mut state = gateway.state();
        state.mqtt.state = "connected".to_string();
        state.mqtt.since = Some(std::time::Instant::now());
        state.mqtt.broker.clone()
    };
    dataplane.log(format!("%IOT-5-MQTT_UP: connected to broker {broker}"));
    let mut online = Publish::new(
        gateway_status,
        QoS::AtMostOnce,
        json!({"status": "online"}).to_string(),
    );
    online.retain = true;
    send(&mut writer, Packet::Publish(online)).await?;

    let keepalive = Duration::from_secs(u64::from(settings.keepalive.max(1)));
    let mut ping = tokio::time::interval(keepalive / 2);
    let mut heard = Instant::now();
    // Past the SUBSCRIBE's id.
    let mut next_pkid: u16 = 1;
    let qos = qos(settings);
    loop {
        // A broker that stops reading must not hold the session for ever.
        timeout(keepalive, flush(gateway, &mut writer, qos, &mut next_pkid))
            .await
            .map_err(|_| "the broker stopped reading".to_string())??;
        let room = gateway.state().inflight.len() < WINDOW;
        tokio::select! {
            packet = next_packet(&mut reader, &mut input) => {
                heard = Instant::now();
                match packet? {
                    Packet::PubAck(ack) => acknowledged(gateway, ack.pkid),
                    Packet::Publish(publish) => {
                        if publish.qos != QoS::AtMostOnce {
                            send(&mut writer, Packet::PubAck(PubAck::new(publish.pkid))).await?;
                        }
                        command(gateway, settings, &publish.topic, &publish.payload);
                    }
                    Packet::Disconnect => return Ok(()),
                    _ => {}
                }
            }
            _ = gateway.ready.notified(), if room => {}
            _ = ping.tick() => {
                if heard.elapsed() > keepalive + keepalive / 2 {
                    return Err("broker silent past the keepalive".to_string());
                }
                send(&mut writer, Packet::PingReq).await?;
            }
        }
    }
}

/// Sends queued messages while the window has room, a batch (taken
/// under one lock) per write.
async fn flush<S: Stream>(
    gateway: &Gateway,
    writer: &mut WriteHalf<S>,
    qos: QoS,
    next_pkid: &mut u16,
) -> Result<(), String> {
    let mut out = BytesMut::new();
    loop {
        {
            let mut state = gateway.state();
            let room = match qos {
                QoS::AtMostOnce => BATCH,
                _ => WINDOW.saturating_sub(state.inflight.len()).min(BATCH),
            };
            for _ in 0..room {
                let Some(message) = state.queue.pop_front() else {
                    break;
                };
                state.mqtt.published += 1;
                let mut pkid = 0;
                if qos == QoS::AtLeastOnce {
                    *next_pkid = next_pkid.checked_add(1).unwrap_or(1);
                    pkid = *next_pkid;
                }
                let mut publish =
                    Publish::new(message.topic.as_str(), qos, message.payload.as_slice());
                publish.retain = message.retain;
                publish.pkid = pkid;
                // A message too large to encode is dropped, not retried for ever.
                if publish.write(&mut out).is_err() {
                    state.mqtt.dropped += 1;
                    continue;
                }
                if qos == QoS::AtLeastOnce {
                    state.inflight.push_back((pkid, message));
                }
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        writer
            .write_all(&out)
            .await
            .map_err(|e| format!("send: {e}"))?;
        out.clear();
    }
}

fn acknowledged(gateway: &Gateway, pkid: u16) {
    let mut state = gateway.state();
    if let Some(at) = state.inflight.iter().position(|(id, _)| *id == pkid) {
        state.inflight.remove(at);
        state.mqtt.acked += 1;
    }
}

/// Where a command topic points: `(device, tag)`.
fn command_target<'t>(prefix: &str, topic: &'t str) -> Option<(&'t str, &'t str)> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let mut levels = rest.split('/');
    let (device, kind, tag) = (levels.next()?, levels.next()?, levels.next()?);
    (kind == "command" && levels.next().is_none()).then_some((device, tag))
}

/// A command's value and its optional id: `V` or `{"value": V, "id": ID}`.
fn command_body(payload: &[u8]) -> Result<(Json, Option<Json>), String> {
    let body: Json =
        serde_json::from_slice(payload).map_err(|_| "the payload is not JSON".to_string())?;
    match body {
        Json::Object(mut fields) => {
            let value = fields
                .remove("value")
                .ok_or("no \"value\" in the command")?;
            Ok((value, fields.remove("id")))
        }
        value => Ok((value, None)),
    }
}

/// Checks a command and hands it to its device; the outcome is published
/// on the response topic.
fn command(gateway: &Gateway, settings: &MqttSettings, topic: &str, payload: &[u8]) {
    let Some((device, tag)) = command_target(&settings.topic_prefix, topic) else {
        return;
    };
    let response = |id: Option<Json>, outcome: Result<(), String>| {
        let mut body = json!({
            "device": device,
            "tag": tag,
            "ok": outcome.is_ok(),
            "ts": now_ms(),
        });
        if let Some(id) = id {
            body["id"] = id;
        }
        if let Err(e) = outcome {
            body["error"] = Json::from(e);
        }
        Message {
            topic: format!("{}/{device}/response/{tag}", settings.topic_prefix),
            payload: body.to_string().into_bytes(),
            retain: false,
        }
    };
    let checked = command_body(payload).and_then(|(value, id)| {
        let state = gateway.state();
        let (sender, tags) = state
            .routes
            .get(device)
            .ok_or_else(|| format!("no device {device}"))?;
        let t = tags
            .get(tag)
            .ok_or_else(|| format!("no tag {tag} in device {device}"))?;
        if !t.writable {
            return Err(format!("tag {tag} is not writable"));
        }
        let registers = encode(&value, t)?;
        Ok((sender.clone(), registers, id))
    });
    gateway.state().mqtt.commands += 1;
    let (sender, registers, id) = match checked {
        Ok(ready) => ready,
        Err(problem) => {
            gateway.state().mqtt.refused += 1;
            let id = command_body(payload).ok().and_then(|(_, id)| id);
            gateway.publish(response(id, Err(problem)));
            return;
        }
    };
    let (reply, outcome) = oneshot::channel();
    let request = WriteRequest {
        tag: tag.to_string(),
        registers,
        reply,
    };
    let pending = response(id.clone(), Ok(()));
    let gateway = gateway.clone();
    let sent = sender.try_send(request);
    tokio::spawn(async move {
        let outcome = match sent {
            Err(_) => Err("the device's command queue is full".to_string()),
            Ok(()) => match timeout(COMMAND_TIMEOUT, outcome).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err("the device's poller stopped".to_string()),
                Err(_) => Err("the device did not answer in time".to_string()),
            },
        };
        let message = match outcome {
            Ok(()) => pending,
            Err(problem) => {
                gateway.state().mqtt.refused += 1;
                let mut body: Json = serde_json::from_slice(&pending.payload).unwrap_or_default();
                body["ok"] = Json::from(false);
                body["error"] = Json::from(problem);
                Message {
                    payload: body.to_string().into_bytes(),
                    ..pending
                }
            }
        };
        gateway.publish(message);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn command_topics_and_bodies_are_read_strictly() {
        assert_eq!(
            command_target("gh", "gh/plc/command/temp"),
            Some(("plc", "temp"))
        );
        assert_eq!(
            command_target("a/b", "a/b/plc/command/t"),
            Some(("plc", "t"))
        );
        assert_eq!(command_target("gh", "gh/plc/data/temp"), None);
        assert_eq!(command_target("gh", "gh/plc/command/temp/x"), None);
        assert_eq!(command_target("gh", "ghx/plc/command/temp"), None);
        assert_eq!(command_body(b"21.5"), Ok((Json::from(21.5), None)));
        assert_eq!(
            command_body(br#"{"value": true, "id": 7}"#),
            Ok((Json::from(true), Some(Json::from(7))))
        );
        assert!(command_body(b"{\"id\": 1}").is_err());
        assert!(command_body(b"\xff\xfe").is_err());
    }

    proptest! {
        /// Any bytes from the broker: a packet or an error, never a panic.
        #[test]
        fn malformed_packets_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut input = BytesMut::from(&bytes[..]);
            for _ in 0..8 {
                if Packet::read(&mut input, MAX_PACKET).is_err() {
                    break;
                }
            }
        }

        /// A plausible publish header with a random body.
        #[test]
        fn malformed_publishes_never_panic(flags in 0u8..16, body in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut bytes = vec![0x30 | flags, body.len() as u8];
            bytes.extend(&body);
            let mut input = BytesMut::from(&bytes[..]);
            let _ = Packet::read(&mut input, MAX_PACKET);
            let _ = command_body(&body);
            let _ = command_target("p", &String::from_utf8_lossy(&body));
        }
    }
}
