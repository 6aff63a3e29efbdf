//! The Prometheus endpoint: `GET /metrics` on TCP port `ip http metrics
//! port N` of the appliance's own addresses (off until configured), for
//! the sources `ip http access-class` permits. The text is OpenMetrics,
//! written by the `prometheus-client` crate from figures read at the
//! scrape (`kernel_bypass::stats`): interface traffic and drops, node
//! counters and drops by reason, routing table sizes, the elements' table
//! sizes (sessions, NAT translations, SLB sessions) and the process's
//! resident memory. A scrape reads counters without locks (the workers
//! write them with relaxed stores) and holds each element table's shard
//! lock for one length read; nothing scales with the number of routes or
//! sessions.

use grammar::config::{http_client_permitted, Config};
use kernel_bypass::counters::{Counter, InterfaceTotals};
use kernel_bypass::local::{answer_http, HttpResponse, LocalStack};
use kernel_bypass::stats::DataplaneStats;
use kernel_bypass::Dataplane;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// What Prometheus is told the body is (it then parses OpenMetrics).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves the endpoint while the configuration asks for it, moving to a
/// new port when it changes; returns when the configuration's sender is gone.
pub async fn serve(
    stack: LocalStack,
    dataplane: Arc<Dataplane>,
    mut config: watch::Receiver<Config>,
) {
    let scraper = Arc::new(Scraper::new(dataplane.clone()));
    loop {
        let port = config.borrow_and_update().management.metrics_port;
        let listener = match port {
            Some(port) => match stack.tcp_listen(port).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    dataplane.log(format!("%HTTP-3-LISTEN: metrics port {port}: {e}"));
                    None
                }
            },
            None => None,
        };
        loop {
            let accepted = async {
                match &listener {
                    Some(listener) => listener.accept().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = config.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if config.borrow().management.metrics_port != port {
                        break;
                    }
                }
                accepted = accepted => {
                    let Ok((stream, peer)) = accepted else { break };
                    // Refused sources are closed without an answer, as IOS's access-class does.
                    if http_client_permitted(&config.borrow(), peer.ip()) {
                        let scraper = scraper.clone();
                        tokio::spawn(answer_http(stream, move |path| scraper.respond(path)));
                    }
                }
            }
        }
    }
}

/// Renders scrapes; remembers the last one's size to allocate once.
pub struct Scraper {
    registry: Registry,
    last_len: AtomicUsize,
}

impl Scraper {
    pub fn new(dataplane: Arc<Dataplane>) -> Scraper {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(DataplaneCollector(dataplane)));
        Scraper {
            registry,
            last_len: AtomicUsize::new(4096),
        }
    }

    fn respond(&self, path: &str) -> HttpResponse {
        match path {
            "/metrics" => HttpResponse {
                status: "200 OK",
                content_type: CONTENT_TYPE,
                body: self.scrape(),
            },
            _ => HttpResponse {
                status: "404 Not Found",
                content_type: "text/plain; charset=utf-8",
                body: "Not found: the metrics are at /metrics\n".to_string(),
            },
        }
    }

    /// The exposition text of one scrape.
    pub fn scrape(&self) -> String {
        let mut text = String::with_capacity(self.last_len.load(Ordering::Relaxed) + 1024);
        // Writing to a String cannot fail; a collector's error would be ours.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            text = format!("# encoding failed: {e}\n# EOF\n");
        }
        self.last_len.store(text.len(), Ordering::Relaxed);
        text
    }
}

struct DataplaneCollector(Arc<Dataplane>);

impl fmt::Debug for DataplaneCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataplaneCollector")
    }
}

/// Interface metrics: name, help, the figure.
type InterfaceFigure = (&'static str, &'static str, fn(&InterfaceTotals) -> u64);

const INTERFACE_FIGURES: [InterfaceFigure; 4] = [
    ("gatehouse_interface_rx_packets", "Packets received", |t| {
        t.rx_packets
    }),
    ("gatehouse_interface_rx_bytes", "Bytes received", |t| {
        t.rx_bytes
    }),
    ("gatehouse_interface_tx_packets", "Packets sent", |t| {
        t.tx_packets
    }),
    ("gatehouse_interface_tx_bytes", "Bytes sent", |t| t.tx_bytes),
];

impl Collector for DataplaneCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let stats: DataplaneStats = self.0.stats();
        for (name, help, figure) in INTERFACE_FIGURES {
            let samples = (stats.interfaces.iter()).map(|i| {
                (
                    [("interface", i.name.as_str())],
                    ConstCounter::new(figure(&i.totals)),
                )
            });
            family(&mut e, name, help, MetricType::Counter, samples)?;
        }
        let drops = stats.interfaces.iter().flat_map(|i| {
            (i.totals.drops.iter()).map(|(c, n)| {
                let labels = [
                    ("interface", i.name.as_str()),
                    ("node", c.node()),
                    ("reason", c.name()),
                ];
                (labels, ConstCounter::new(*n))
            })
        });
        let help = "Packets dropped on an interface, by node and reason";
        family(
            &mut e,
            "gatehouse_interface_drops",
            help,
            MetricType::Counter,
            drops,
        )?;
        let (drops, events): (Vec<_>, Vec<_>) =
            stats.counters.iter().partition(|(c, _)| c.is_drop());
        let help = "Packets dropped by the pipeline, by node and reason";
        node_counters(&mut e, "gatehouse_node_drops", help, "reason", &drops)?;
        let help = "Pipeline node counters that are not drops";
        node_counters(&mut e, "gatehouse_node_events", help, "counter", &events)?;
        let routes = stats.routes.iter().flat_map(|t| {
            let vrf = t.vrf.as_deref().unwrap_or("global");
            [("ipv4", t.ipv4), ("ipv6", t.ipv6)].map(|(family, n)| {
                (
                    [("vrf", vrf), ("family", family)],
                    ConstGauge::new(n as u64),
                )
            })
        });
        let help = "Routes in a routing table (global: the table outside any VRF)";
        family(&mut e, "gatehouse_routes", help, MetricType::Gauge, routes)?;
        let tables = (stats.tables.iter())
            .map(|(table, n)| ([("table", *table)], ConstGauge::new(*n as u64)));
        let help =
            "Entries in a table of the packet path (sessions, NAT translations, SLB sessions, bridge MACs)";
        family(
            &mut e,
            "gatehouse_table_entries",
            help,
            MetricType::Gauge,
            tables,
        )?;
        let rss = resident_bytes().map(|n| ([("process", "gatehouse")], ConstGauge::new(n)));
        let help = "Resident memory of the process";
        family(
            &mut e,
            "process_resident_memory_bytes",
            help,
            MetricType::Gauge,
            rss,
        )
    }
}

/// Node counters, labelled by node and `label` (the counter's name).
fn node_counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    counters: &[&(Counter, u64)],
) -> fmt::Result {
    let samples = (counters.iter()).map(|(c, n)| {
        (
            [("node", c.node()), (label, c.name())],
            ConstCounter::new(*n),
        )
    });
    family(e, name, help, MetricType::Counter, samples)
}

/// One metric family: its descriptor, then a sample per label set.
fn family<L: EncodeLabelSet, M: EncodeMetric>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result {
    let mut metric = e.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The process's resident set, from /proc/self/statm (pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system; it has no
    // preconditions and returns -1 on error, which the conversion refuses.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
