//! A pipeline fed in memory, with every packet-path element compiled for a
//! configuration: eth0 on port 0, eth1 on port 1, a host behind each
//! whose neighbours are learned up front, and the elements' show commands.

use super::packets::ethernet;
use grammar::parse_config;
use kernel_bypass::counters::{event_total, Counter, WorkerCounters};
use kernel_bypass::elements::{registry, DataplaneElement, ElementCommand};
use kernel_bypass::frame::Batch;
use kernel_bypass::pipeline::{neighbor6_key, neighbor_key, Pipeline, Shared, Verdict};
use kernel_bypass::snapshot::{mac_for, InterfaceIds, Snapshot};
use kernel_bypass::wire::{mac_to_u64, Mac, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use std::net::IpAddr;
use std::sync::Arc;

/// The host behind eth0 and the one behind eth1.
pub const HOST_MACS: [Mac; 2] = [[0x02, 0, 0, 0, 0, 0x11], [0x02, 0, 0, 0, 0, 0x22]];

/// The snapshot of configuration `text` (which must pass the commit
/// checks) with `elements` compiled in; eth0 is port 0, eth1 port 1.
fn snapshot(text: &str, elements: &[Arc<dyn DataplaneElement>]) -> Snapshot {
    let (config, errors) = parse_config(text);
    assert_eq!(errors, [], "{text}");
    assert_eq!(grammar::validate(&config), Vec::<String>::new());
    let mut snap = Snapshot::compile(&config, &mut InterfaceIds::default(), &|name| match name {
        "eth0" => Some(0),
        "eth1" => Some(1),
        _ => None,
    })
    .expect("compile");
    for e in elements {
        e.compile(&config, &mut snap).expect("element compile");
    }
    snap
}

pub struct Harness {
    pub snap: Snapshot,
    pub elements: Vec<Arc<dyn DataplaneElement>>,
    pub load_balancer: Arc<kernel_bypass::lb::LoadBalancer>,
    pub pipeline: Pipeline,
    pub batch: Batch,
    pub counters: Arc<WorkerCounters>,
}

impl Harness {
    /// The pipeline of configuration `text` (which must pass the commit
    /// checks), with `neighbors` (interface, IPv4 or IPv6 address) learned
    /// at the host behind that interface.
    pub fn new(text: &str, neighbors: &[(&str, &str)]) -> Harness {
        let shared = Arc::new(Shared::default());
        let registry = registry(&shared);
        let elements = registry.all;
        let snap = snapshot(text, &elements);
        for (iface, addr) in neighbors {
            let id = snap
                .interfaces
                .iter()
                .flatten()
                .find(|i| i.name == *iface)
                .unwrap()
                .id;
            let mac = HOST_MACS[usize::from(*iface == "eth1")];
            match addr.parse().unwrap() {
                IpAddr::V4(a) => (shared.neighbors).learn(neighbor_key(id, a), mac_to_u64(&mac), 0),
                IpAddr::V6(a) => {
                    (shared.neighbors6).learn(neighbor6_key(id, a), mac_to_u64(&mac), 0)
                }
            }
        }
        let counters = Arc::new(WorkerCounters::default());
        let pipeline = Pipeline::new(shared, counters.clone(), None);
        Harness {
            snap,
            elements,
            load_balancer: registry.load_balancer,
            pipeline,
            batch: Batch::new(64),
            counters,
        }
    }

    /// Commits configuration `text` to the same elements (their state,
    /// sessions and counters carry over, as in the dataplane).
    pub fn apply(&mut self, text: &str) {
        self.snap = snapshot(text, &self.elements);
    }

    /// Feeds IPv4 `packets` in one batch, sent by the host behind `port`;
    /// the verdicts (the frames, rewritten, are in `batch`).
    pub fn feed(&mut self, port: u16, packets: &[Vec<u8>]) -> Vec<Verdict> {
        self.feed_typed(port, ETHERTYPE_IPV4, packets)
    }

    /// Feeds IPv6 `packets`, as `feed`.
    pub fn feed6(&mut self, port: u16, packets: &[Vec<u8>]) -> Vec<Verdict> {
        self.feed_typed(port, ETHERTYPE_IPV6, packets)
    }

    fn feed_typed(&mut self, port: u16, ethertype: u16, packets: &[Vec<u8>]) -> Vec<Verdict> {
        let mac = mac_for(if port == 0 { "eth0" } else { "eth1" });
        let frames: Vec<_> = (packets.iter())
            .map(|p| ethernet(mac, HOST_MACS[usize::from(port)], ethertype, p))
            .collect();
        self.feed_frames(port, &frames)
    }

    /// Feeds whole Ethernet `frames` in one batch on `port`.
    pub fn feed_frames(&mut self, port: u16, frames: &[Vec<u8>]) -> Vec<Verdict> {
        self.batch.clear();
        for frame in frames {
            assert!(self.batch.push_copy(frame));
        }
        self.pipeline
            .process(&self.snap, port, &mut self.batch)
            .to_vec()
    }

    /// Frames out of eth1 for one pass of whole Ethernet frames `batches`
    /// received on eth0 (the benchmarks' loop: no allocation in it).
    pub fn forward_batches(&mut self, batches: &[Vec<Vec<u8>>]) -> u64 {
        self.pass_batches((0, 1), batches)
    }

    /// As `forward_batches`, received on port `from`, counted out of `to`.
    pub fn pass_batches(&mut self, (from, to): (u16, u16), batches: &[Vec<Vec<u8>>]) -> u64 {
        let mut forwarded = 0;
        for batch in batches {
            self.batch.clear();
            for f in batch {
                self.batch.push_copy(f);
            }
            let verdicts = self.pipeline.process(&self.snap, from, &mut self.batch);
            forwarded += verdicts.iter().filter(|v| **v == Verdict::Tx(to)).count() as u64;
        }
        forwarded
    }

    /// Frames per second out of eth1, cycling through `batches` for `run`.
    pub fn forward_rate(&mut self, batches: &[Vec<Vec<u8>>], run: std::time::Duration) -> f64 {
        let start = std::time::Instant::now();
        let mut forwarded = 0;
        while start.elapsed() < run {
            forwarded += self.forward_batches(batches);
        }
        forwarded as f64 / start.elapsed().as_secs_f64()
    }

    /// The IP packets of the last batch that were sent out of `port`.
    pub fn sent_on(&self, verdicts: &[Verdict], port: u16) -> Vec<Vec<u8>> {
        let frames = self.batch.frames().iter().zip(verdicts);
        frames
            .filter(|(_, v)| **v == Verdict::Tx(port))
            .map(|(f, _)| f.data()[14..].to_vec())
            .collect()
    }

    /// How often the pipeline counted `c`, on any interface or none.
    pub fn total(&self, c: Counter) -> u64 {
        event_total(std::slice::from_ref(&self.counters), c)
    }

    /// The element command `line` names (as typed, `show` left out),
    /// with its arguments.
    fn command(&self, line: &str) -> Option<(ElementCommand, grammar::Args)> {
        for e in &self.elements {
            for c in e.clone().commands() {
                let (ElementCommand::Show { syntax, help, .. }
                | ElementCommand::Exec { syntax, help, .. }) = &c;
                let mut tree = grammar::CommandTree::new();
                tree.add(syntax, help, ()).expect("element command syntax");
                if let Ok(matched) = tree.parse(line) {
                    let args = matched.args.clone();
                    return Some((c, args));
                }
            }
        }
        None
    }

    /// The text of `show LINE` (as typed after `show`).
    pub fn show(&self, line: &str) -> String {
        match self.command(line) {
            Some((ElementCommand::Show { run, .. }, args)) => run(&args),
            _ => panic!("no show {line}"),
        }
    }

    /// Runs the EXEC command `line` (`clear ...`).
    pub fn exec(&self, line: &str) -> Result<String, String> {
        match self.command(line) {
            Some((ElementCommand::Exec { run, .. }, args)) => run(&args),
            _ => panic!("no command {line}"),
        }
    }
}
