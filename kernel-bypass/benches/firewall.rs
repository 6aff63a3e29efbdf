//! Firewall benchmark (issue 10), printing each figure beside a baseline
//! measured in the same run (a few minutes, most of it building tables):
//! 1. in memory, one core, 64-byte UDP frames routed eth0 -> eth1:
//!    (a) no firewall; (b) a 10,000-rule ACL bound `in` on eth0 and
//!    1,000,000 live sessions of other flows, the traffic 65,536
//!    established flows; (c) the same with a new flow every packet (a
//!    session lookup miss, the ACL's classification, a session created);
//! 2. the session table alone, one thread: insertions and lookups with 1M
//!    sessions and bytes per session, beside std's HashMap on the same
//!    keys and Linux conntrack's object size (/proc/slabinfo);
//! 3. over veth (root only): the dataplane (af-packet, af-xdp) with the
//!    10,000-rule ACL against a Linux router namespace whose nftables
//!    forward chain holds the same 10,000 rules, walked for every packet
//!    (stateless), behind a connection mark (stateful, the dataplane's
//!    semantics), and as concatenated interval sets (the tuned kernel).
//!
//! The rules are random 5-tuple denies (hosts, prefixes, ports `eq` and
//! `range`, TCP, UDP and IP) that never match the traffic, then a final
//! permit, so every packet the lists see is classified through all of them.

#[path = "../tests/support/mod.rs"]
mod support;

use grammar::parse_config;
use kernel_bypass::classify::synth::Rng;
use kernel_bypass::counters::WorkerCounters;
use kernel_bypass::elements::{registry, ElementCommand};
use kernel_bypass::frame::Batch;
use kernel_bypass::headers::FlowInfo;
use kernel_bypass::io::Backend;
use kernel_bypass::pipeline::{neighbor_key, Pipeline, Shared, Verdict};
use kernel_bypass::sessions::{SessionKey, SessionTable, Timeouts};
use kernel_bypass::snapshot::{mac_for, InterfaceIds, Snapshot};
use kernel_bypass::wire::{mac_to_u64, Mac, ETHERTYPE_IPV4, PROTO_TCP, PROTO_UDP};
use kernel_bypass::{Dataplane, DataplaneOptions};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::load::{
    kernel_router, load_nft, offered_and_forwarded, sender_and_sink, veth_with_nftables,
};
use support::netns::Netns;
use support::packets::{ethernet, udp_packet};

const RUN: Duration = Duration::from_secs(3);
const RULES: usize = 10_000;
const LIVE_SESSIONS: u32 = 1_000_000;
/// Established flows of the traffic in (b): 1024 batches of 64.
const TRAFFIC_FLOWS: u32 = 65_536;
/// New flows fed in (c), on top of the live sessions.
const NEW_FLOWS: u32 = 2_000_000;
const SENDER: Ipv4Addr = Ipv4Addr::new(10, 80, 1, 2);
const SINK: Ipv4Addr = Ipv4Addr::new(10, 80, 2, 2);
const SENDER_MAC: Mac = [0x02, 0, 0, 0, 0, 1];
/// Offsets of the UDP ports in a frame from `frame`.
const SPORT_AT: usize = 14 + 20;
const DPORT_AT: usize = 14 + 22;

/// One side's address match: (address, prefix length); 0 is `any`.
type Addr = (Ipv4Addr, u8);

/// A port match: inclusive range; (0, 65535) is any.
type Ports = (u16, u16);

/// A random deny rule; one of its addresses is outside 10.0.0.0/8, so it
/// never matches the benchmark's traffic (10.80.1.2 -> 10.80.2.2).
struct DenyRule {
    /// PROTO_TCP, PROTO_UDP or 0 for `ip`.
    protocol: u8,
    src: Addr,
    dst: Addr,
    sport: Ports,
    dport: Ports,
}

const ANY_PORT: Ports = (0, u16::MAX);

fn random_addr(rng: &mut Rng, any_percent: u32) -> Addr {
    let roll = rng.below(100);
    if roll < any_percent {
        return (Ipv4Addr::UNSPECIFIED, 0);
    }
    let first = 11 + rng.below(100);
    let bits = first << 24 | (rng.next_u64() as u32 & 0x00ff_ffff);
    let len = if roll < any_percent + (100 - any_percent) / 2 {
        32
    } else {
        16 + rng.below(13) as u8
    };
    let mask = u32::MAX << (32 - u32::from(len));
    (Ipv4Addr::from(bits & mask), len)
}

fn random_ports(rng: &mut Rng, any_percent: u32) -> Ports {
    let roll = rng.below(100);
    if roll < any_percent {
        ANY_PORT
    } else if roll < any_percent + (100 - any_percent) * 3 / 4 {
        let p = rng.below(65536) as u16;
        (p, p)
    } else {
        let lo = rng.below(65000) as u16;
        (lo, lo + 1 + rng.below(500) as u16)
    }
}

fn random_rules(n: usize) -> Vec<DenyRule> {
    let mut rng = Rng::new(0x6761_7465_686f_7573);
    (0..n)
        .map(|_| {
            let protocol = match rng.below(20) {
                0..=8 => PROTO_UDP,
                9..=17 => PROTO_TCP,
                _ => 0,
            };
            let src = random_addr(&mut rng, 20);
            // The destination is never `any` when the source is.
            let dst = random_addr(&mut rng, if src.1 == 0 { 0 } else { 10 });
            let (sport, dport) = if protocol == 0 {
                (ANY_PORT, ANY_PORT)
            } else {
                (random_ports(&mut rng, 70), random_ports(&mut rng, 20))
            };
            DenyRule {
                protocol,
                src,
                dst,
                sport,
                dport,
            }
        })
        .collect()
}

impl DenyRule {
    fn ios(&self, seq: usize) -> String {
        let addr = |(a, len): Addr| match len {
            0 => "any".to_string(),
            32 => format!("host {a}"),
            _ => format!(
                "{a} {}",
                Ipv4Addr::from(!(u32::MAX << (32 - u32::from(len))))
            ),
        };
        let ports = |(lo, hi): Ports| match (lo, hi) {
            ANY_PORT => String::new(),
            _ if lo == hi => format!(" eq {lo}"),
            _ => format!(" range {lo} {hi}"),
        };
        let protocol = match self.protocol {
            PROTO_TCP => "tcp",
            PROTO_UDP => "udp",
            _ => "ip",
        };
        format!(
            " {seq} deny {protocol} {}{} {}{}\n",
            addr(self.src),
            ports(self.sport),
            addr(self.dst),
            ports(self.dport)
        )
    }

    /// The same rule as one nftables rule.
    fn nft(&self) -> String {
        let mut out = String::new();
        for (word, (a, len)) in [("saddr", self.src), ("daddr", self.dst)] {
            match len {
                0 => {}
                32 => {
                    let _ = write!(out, "ip {word} {a} ");
                }
                _ => {
                    let _ = write!(out, "ip {word} {a}/{len} ");
                }
            }
        }
        let name = if self.protocol == PROTO_TCP {
            "tcp"
        } else {
            "udp"
        };
        if self.protocol != 0 && self.sport == ANY_PORT && self.dport == ANY_PORT {
            let _ = write!(out, "meta l4proto {name} ");
        }
        for (word, (lo, hi)) in [("sport", self.sport), ("dport", self.dport)] {
            match (lo, hi) {
                ANY_PORT => {}
                _ if lo == hi => {
                    let _ = write!(out, "{name} {word} {lo} ");
                }
                _ => {
                    let _ = write!(out, "{name} {word} {lo}-{hi} ");
                }
            }
        }
        out + "drop"
    }

    /// The same rule as an element of a `inet_proto . ipv4_addr .
    /// ipv4_addr . inet_service . inet_service` interval set.
    fn nft_element(&self) -> String {
        let addr = |(a, len): Addr| match len {
            0 => "0.0.0.0/0".to_string(),
            32 => a.to_string(),
            _ => format!("{a}/{len}"),
        };
        let ports = |(lo, hi): Ports| format!("{lo}-{hi}");
        let protocol = match self.protocol {
            0 => "0-255".to_string(),
            p => p.to_string(),
        };
        format!(
            "{protocol} . {} . {} . {} . {}",
            addr(self.src),
            addr(self.dst),
            ports(self.sport),
            ports(self.dport)
        )
    }
}

/// A rule's five fields as inclusive ranges.
type Fields = [(u32, u32); 5];

impl DenyRule {
    /// The rule's five fields as inclusive ranges (protocol, source,
    /// destination, source port, destination port).
    fn ranges(&self) -> Fields {
        let addr = |(a, len): Addr| {
            let span = if len == 0 {
                u32::MAX
            } else {
                !(u32::MAX << (32 - u32::from(len)))
            };
            (u32::from(a), u32::from(a) | span)
        };
        let protocol = match self.protocol {
            0 => (0, 255),
            p => (u32::from(p), u32::from(p)),
        };
        let ports = |(lo, hi): Ports| (u32::from(lo), u32::from(hi));
        [
            protocol,
            addr(self.src),
            addr(self.dst),
            ports(self.sport),
            ports(self.dport),
        ]
    }
}

/// The rules split into sets whose elements do not overlap (the kernel's
/// concatenated interval sets refuse overlapping elements): each rule in
/// the first set where it overlaps nothing. All rules deny, so matching
/// any set is matching the list.
fn disjoint_sets(rules: &[DenyRule]) -> Vec<Vec<&DenyRule>> {
    let mut sets: Vec<Vec<(&DenyRule, Fields)>> = Vec::new();
    for rule in rules {
        let r = rule.ranges();
        let overlaps = |other: &Fields| r.iter().zip(other).all(|(a, b)| a.0 <= b.1 && b.0 <= a.1);
        match sets
            .iter_mut()
            .find(|set| !set.iter().any(|(_, o)| overlaps(o)))
        {
            Some(set) => set.push((rule, r)),
            None => sets.push(vec![(rule, r)]),
        }
    }
    sets.into_iter()
        .map(|set| set.into_iter().map(|(rule, _)| rule).collect())
        .collect()
}

/// The ACL as configuration text: the rules, then a final permit.
fn acl_text(rules: &[DenyRule]) -> String {
    let mut text = String::from("ip access-list extended BENCH\n");
    for (i, rule) in rules.iter().enumerate() {
        text.push_str(&rule.ios(10 * (i + 1)));
    }
    let _ = writeln!(text, " {} permit ip any any", 10 * (rules.len() + 1));
    text
}

/// Two routed interfaces, optionally with the ACL bound `in` on the first.
fn router_text(a: &str, b: &str, acl: Option<&str>) -> String {
    let mut text = String::from("ip inspect max-sessions 4000000\nip inspect udp idle-time 3600\n");
    text.push_str(acl.unwrap_or(""));
    let _ = writeln!(text, "interface {a}\n ip address 10.80.1.1/24");
    if acl.is_some() {
        text.push_str(" ip access-group BENCH in\n");
    }
    let _ = writeln!(text, "interface {b}\n ip address 10.80.2.1/24");
    text
}

fn config(text: &str) -> grammar::config::Config {
    let (config, errors) = parse_config(text);
    assert_eq!(errors, [], "the benchmark's configuration");
    config
}

/// A 60-byte frame (64 on the wire): UDP SENDER:sport -> SINK:dport, no checksum.
fn frame(dst_mac: Mac, sport: u16, dport: u16) -> Vec<u8> {
    let packet = udp_packet(SENDER, SINK, sport, dport, &[0; 18]);
    ethernet(dst_mac, SENDER_MAC, ETHERTYPE_IPV4, &packet)
}

/// One pipeline with the elements compiled in, eth0/eth1 on ports 0/1 and
/// the sink's MAC learned.
struct Harness {
    snap: Snapshot,
    pipeline: Pipeline,
    batch: Batch,
    elements: Vec<Arc<dyn kernel_bypass::elements::DataplaneElement>>,
    /// A frame whose ports `feed_flows` rewrites.
    template: Vec<u8>,
}

impl Harness {
    fn new(text: &str) -> (Harness, Duration) {
        let config = config(text);
        let start = Instant::now();
        let mut snap = Snapshot::compile(&config, &mut InterfaceIds::default(), &|n| {
            (n == "eth0").then_some(0).or((n == "eth1").then_some(1))
        })
        .expect("compile");
        let shared = Arc::new(Shared::default());
        let elements = registry(&shared).all;
        for e in &elements {
            e.compile(&config, &mut snap).expect("element compile");
        }
        let took = start.elapsed();
        let eth1 = snap
            .interfaces
            .iter()
            .flatten()
            .find(|i| i.name == "eth1")
            .map_or(0, |i| i.id);
        let mac = mac_to_u64(&[2, 0, 0, 0, 0, 2]);
        shared.neighbors.learn(neighbor_key(eth1, SINK), mac, 0);
        let pipeline = Pipeline::new(shared, Arc::new(WorkerCounters::default()), None);
        let harness = Harness {
            snap,
            pipeline,
            batch: Batch::new(64),
            elements,
            template: frame(mac_for("eth0"), 0, 0),
        };
        (harness, took)
    }

    /// Feeds one batch of `frames`; frames forwarded out of eth1.
    fn feed(&mut self, frames: &[Vec<u8>]) -> u64 {
        self.batch.clear();
        for f in frames {
            self.batch.push_copy(f);
        }
        let verdicts = self.pipeline.process(&self.snap, 0, &mut self.batch);
        verdicts.iter().filter(|v| **v == Verdict::Tx(1)).count() as u64
    }

    /// Feeds flows `first..first + count` (sport = low 16 bits, dport =
    /// `dport_base` + high bits) in batches of 64; frames forwarded.
    fn feed_flows(&mut self, first: u32, count: u32, dport_base: u16) -> u64 {
        let mut forwarded = 0;
        let mut frame = self.template.clone();
        let mut flow = first;
        while flow < first + count {
            self.batch.clear();
            let end = (flow + 64).min(first + count);
            for f in flow..end {
                frame[SPORT_AT..SPORT_AT + 2].copy_from_slice(&(f as u16).to_be_bytes());
                let dport = dport_base.wrapping_add((f >> 16) as u16);
                frame[DPORT_AT..DPORT_AT + 2].copy_from_slice(&dport.to_be_bytes());
                self.batch.push_copy(&frame);
            }
            let verdicts = self.pipeline.process(&self.snap, 0, &mut self.batch);
            forwarded += verdicts.iter().filter(|v| **v == Verdict::Tx(1)).count() as u64;
            flow = end;
        }
        forwarded
    }

    /// Packets per second forwarded, cycling through `batches` for RUN.
    fn rate(&mut self, batches: &[Vec<Vec<u8>>]) -> f64 {
        let start = Instant::now();
        let mut forwarded = 0u64;
        while start.elapsed() < RUN {
            for batch in batches {
                forwarded += self.feed(batch);
            }
        }
        forwarded as f64 / start.elapsed().as_secs_f64()
    }

    /// The firewall's counters (`show access-lists`, after "Firewall:").
    fn firewall_counters(&self) -> String {
        show_firewall(self.elements.iter().flat_map(|e| e.clone().commands()))
    }
}

/// The "Firewall:" rows of `show access-lists` among `commands`, on one line.
fn show_firewall(commands: impl Iterator<Item = ElementCommand>) -> String {
    for c in commands {
        if let ElementCommand::Show { syntax, run, .. } = c {
            if syntax.starts_with("access-lists") {
                let text = run(&grammar::Args::default());
                let rows: Vec<&str> = text
                    .lines()
                    .skip_while(|l| !l.starts_with("Firewall:"))
                    .skip(1)
                    .map(str::trim)
                    .filter(|l| !l.ends_with(": 0"))
                    .collect();
                return rows.join("; ");
            }
        }
    }
    String::new()
}

/// The traffic of (a) and (b): 65,536 flows (sport 0..65535, dport 9) in
/// batches of 64.
fn traffic() -> Vec<Vec<Vec<u8>>> {
    let flows: Vec<Vec<u8>> = (0..TRAFFIC_FLOWS)
        .map(|f| frame(mac_for("eth0"), f as u16, 9))
        .collect();
    flows.chunks(64).map(<[Vec<u8>]>::to_vec).collect()
}

fn in_memory(rules: &[DenyRule]) {
    let batches = traffic();
    let (mut plain, _) = Harness::new(&router_text("eth0", "eth1", None));
    let base = plain.rate(&batches);
    println!(
        "(a) in memory, no firewall: {:.2} Mpps/core (64-byte frames, batch 64, {TRAFFIC_FLOWS} flows)",
        base / 1e6
    );

    let acl = acl_text(rules);
    let (mut fw, took) = Harness::new(&router_text("eth0", "eth1", Some(&acl)));
    println!(
        "    commit with the {}-rule ACL (snapshot + elements, classifier build): {:.2} s",
        rules.len(),
        took.as_secs_f64()
    );
    let start = Instant::now();
    let created = fw.feed_flows(0, LIVE_SESSIONS, 10_000);
    let fill = start.elapsed().as_secs_f64();
    assert_eq!(
        created,
        u64::from(LIVE_SESSIONS),
        "every live session created"
    );
    for batch in &batches {
        fw.feed(batch);
    }
    let established = fw.rate(&batches);
    println!(
        "(b) in memory, {}-rule ACL in + {} live sessions, established flows: {:.2} Mpps/core, {:.2}x (a)",
        rules.len(),
        LIVE_SESSIONS + TRAFFIC_FLOWS,
        established / 1e6,
        established / base
    );

    // The same without the million idle sessions: what the table's size
    // costs (its memory, not its work).
    let (mut small, _) = Harness::new(&router_text("eth0", "eth1", Some(&acl)));
    for batch in &batches {
        small.feed(batch);
    }
    let cached = small.rate(&batches);
    println!(
        "    the same with only the {TRAFFIC_FLOWS} traffic sessions (a table that fits in the cache): {:.2} Mpps/core, {:.2}x (a)",
        cached / 1e6,
        cached / base
    );

    let start = Instant::now();
    let forwarded = fw.feed_flows(0, NEW_FLOWS, 20_000);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "(c) in memory, same ACL and table, a new flow every packet: {:.2} Mpps/core, {:.2}x (a) \
         ({NEW_FLOWS} new flows, {forwarded} forwarded; filling the first {LIVE_SESSIONS} the same way: {:.2} Mpps)",
        forwarded as f64 / secs / 1e6,
        forwarded as f64 / secs / base,
        f64::from(LIVE_SESSIONS) / fill / 1e6
    );
    println!("    firewall counters: {}", fw.firewall_counters());
}

fn session_keys(n: u32) -> Vec<(SessionKey, bool)> {
    let mut rng = Rng::new(7);
    (0..n)
        .map(|_| {
            let flow = udp_flow(&mut rng);
            SessionKey::of(0, &flow)
        })
        .collect()
}

fn udp_flow(rng: &mut Rng) -> FlowInfo {
    let r = rng.next_u64();
    FlowInfo {
        src: IpAddr::V4(Ipv4Addr::from((r >> 32) as u32)),
        dst: IpAddr::V4(Ipv4Addr::from(r as u32)),
        protocol: PROTO_UDP,
        src_port: rng.next_u64() as u16,
        dst_port: 53,
        tcp_flags: 0,
        icmp: (0, 0),
        has_transport: true,
        fragment: None,
    }
}

const TIMEOUTS: Timeouts = Timeouts {
    tcp_synwait: 30,
    tcp_idle: 3600,
    tcp_finwait: 5,
    udp_idle: 3600,
    icmp_idle: 10,
};

/// Linux conntrack's object size from /proc/slabinfo, if readable.
fn conntrack_object_size() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("nf_conntrack "))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn session_table() {
    let keys = session_keys(LIVE_SESSIONS);
    let mut order: Vec<usize> = (0..keys.len()).collect();
    let mut rng = Rng::new(11);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u32 + 1) as usize);
    }
    let n = f64::from(LIVE_SESSIONS);
    let dummy = udp_flow(&mut rng);

    let table = SessionTable::new(LIVE_SESSIONS as usize * 2);
    let start = Instant::now();
    for (key, forward) in &keys {
        let _ = table.create(key, *forward, 0, &TIMEOUTS);
    }
    let insert = n / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut found = 0u64;
    for _ in 0..3 {
        for &i in &order {
            let (key, forward) = &keys[i];
            found += u64::from(table.track(key, *forward, &dummy, 1, &TIMEOUTS));
        }
    }
    let lookup = 3.0 * n / start.elapsed().as_secs_f64();
    assert_eq!(found, 3 * u64::from(LIVE_SESSIONS), "every session found");
    let per_session = table.memory_bytes() as f64 / table.len() as f64;

    let mut map: HashMap<SessionKey, [u32; 4]> = HashMap::new();
    let start = Instant::now();
    for (key, _) in &keys {
        map.insert(*key, [0, 0, 1, 0]);
    }
    let map_insert = n / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..3 {
        for &i in &order {
            if let Some(v) = map.get_mut(&keys[i].0) {
                v[3] += 1;
            }
        }
    }
    let map_lookup = 3.0 * n / start.elapsed().as_secs_f64();
    let entry = std::mem::size_of::<(SessionKey, [u32; 4])>() + 1;
    let map_bytes = (map.capacity() * 8 / 7).next_power_of_two() * entry;

    println!(
        "session table, one thread, {} sessions: {:.2} M insertions/s, {:.2} M lookups/s (random order); \
         std HashMap (SipHash) on the same keys: {:.2} M insertions/s, {:.2} M lookups/s",
        table.len(),
        insert / 1e6,
        lookup / 1e6,
        map_insert / 1e6,
        map_lookup / 1e6
    );
    let conntrack = match conntrack_object_size() {
        Some(size) => format!("{size} bytes (nf_conntrack slab object here) + 8 per hash bucket"),
        None => "about 300 bytes (published; /proc/slabinfo not readable)".to_string(),
    };
    println!(
        "memory per session: {per_session:.1} bytes ({} MB for {} sessions; 64-byte slots, shards half to three quarters full); \
         std HashMap about {:.1}; Linux conntrack {conntrack}",
        table.memory_bytes() / 1_000_000,
        table.len(),
        map_bytes as f64 / map.len() as f64,
    );
}

// ---- over veth -------------------------------------------------------

/// Frames of 64 flows from the sender to the sink through `router_mac`.
fn veth_frames(router_mac: Mac) -> Vec<Vec<u8>> {
    (0..64).map(|i| frame(router_mac, 1000 + i, 9)).collect()
}

/// (offered, forwarded) packets per second from the sender to the sink.
fn measure(sender: (&Netns, &str), sink: (&Netns, &str), router_mac: Mac) -> (f64, f64) {
    sink.0.ping_ok("10.80.2.1");
    offered_and_forwarded(sender, sink, veth_frames(router_mac), RUN)
}

/// The kernel's rulesets, each in its own table's forward chain.
#[derive(Clone, Copy)]
enum KernelRules {
    /// The 10,000 rules walked by every packet, then accept.
    Stateless,
    /// A connection mark lets a flow's later packets (both directions)
    /// pass without the rules; a flow the rules permit is marked: the
    /// dataplane's semantics. (`ct state established` would not do: a
    /// one-way UDP flow stays `new` in conntrack.)
    Stateful,
    /// The rules as concatenated interval sets (pipapo), looked up by
    /// every packet: as few sets as keep each one's elements disjoint.
    Set,
}

impl KernelRules {
    fn name(self) -> &'static str {
        match self {
            KernelRules::Stateless => "10,000 rules walked every packet",
            KernelRules::Stateful => "ct mark + the same 10,000 rules (stateful)",
            KernelRules::Set => "tuned: the rules as interval sets",
        }
    }

    /// The ruleset as `nft -f` files loaded in turn: one for the rules;
    /// for the set, its definition, then its elements 1,000 at a time (in
    /// one batch they overflow the netlink socket's buffer: ENOBUFS).
    fn ruleset(self, rules: &[DenyRule]) -> Vec<String> {
        let mut text = String::from(
            "table inet gatehouse_bench {\n chain forward {\n  \
             type filter hook forward priority filter; policy accept;\n",
        );
        match self {
            KernelRules::Stateless | KernelRules::Stateful => {
                if let KernelRules::Stateful = self {
                    text.push_str("  ct mark 0x1 accept\n");
                }
                for rule in rules {
                    let _ = writeln!(text, "  {}", rule.nft());
                }
                if let KernelRules::Stateful = self {
                    text.push_str("  ct mark set 0x1 accept\n");
                }
                text.push_str(" }\n}\n");
                vec![text]
            }
            KernelRules::Set => {
                let sets = disjoint_sets(rules);
                for i in 0..sets.len() {
                    let _ = writeln!(
                        text,
                        "  meta l4proto . ip saddr . ip daddr . th sport . th dport @deny{i} drop"
                    );
                }
                text.push_str(" }\n");
                for i in 0..sets.len() {
                    let _ = writeln!(
                        text,
                        " set deny{i} {{\n  type inet_proto . ipv4_addr . ipv4_addr . \
                         inet_service . inet_service\n  flags interval\n }}"
                    );
                }
                text.push_str("}\n");
                let mut files = vec![text];
                for (i, set) in sets.iter().enumerate() {
                    for chunk in set.chunks(1000) {
                        let mut add = format!("add element inet gatehouse_bench deny{i} {{\n");
                        for rule in chunk {
                            let _ = writeln!(add, " {},", rule.nft_element());
                        }
                        add.push_str("}\n");
                        files.push(add);
                    }
                }
                files
            }
        }
    }
}

/// (offered, forwarded) through a Linux router namespace with `kind`'s
/// ruleset, and how long `nft -f` took to load it.
fn through_kernel(kind: KernelRules, rules: &[DenyRule]) -> Result<((f64, f64), Duration), String> {
    let (sender, a, sink, b) = sender_and_sink();
    let (router, mac) = kernel_router(&a, &b);
    let start = Instant::now();
    load_nft(&router, &kind.ruleset(rules))?;
    let took = start.elapsed();
    let rates = measure((&sender, &a.inner), (&sink, &b.inner), mac);
    Ok((rates, took))
}

/// (offered, forwarded) through the dataplane with the ACL bound in, and
/// its drop counters and firewall counters.
fn through_dataplane(backend: Backend, acl: &str) -> Result<((f64, f64), String), String> {
    let (sender, a, sink, b) = sender_and_sink();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let options = DataplaneOptions {
        backend,
        workers: 1,
    };
    let config = config(&router_text(&a.outer, &b.outer, Some(acl)));
    let dataplane = Dataplane::start(&config, options, runtime.handle().clone())?;
    let rates = measure((&sender, &a.inner), (&sink, &b.inner), mac_for(&a.outer));
    let drops = support::dataplane::drop_counters(&dataplane);
    let firewall = show_firewall(dataplane.element_commands().into_iter());
    dataplane.stop();
    Ok((rates, format!("drops: {drops}; firewall: {firewall}")))
}

fn over_veth(rules: &[DenyRule]) {
    if !veth_with_nftables() {
        return;
    }
    println!(
        "veth, 64 UDP flows of 64-byte frames from an AF_PACKET generator (sendmmsg), {} deny rules + permit:",
        rules.len()
    );
    let mut kernel = Vec::new();
    for kind in [
        KernelRules::Stateless,
        KernelRules::Stateful,
        KernelRules::Set,
    ] {
        match through_kernel(kind, rules) {
            Ok(((offered, forwarded), took)) => {
                println!(
                    "  kernel nftables, {}: {:.3} Mpps forwarded ({:.3} Mpps offered; nft -f {:.2} s)",
                    kind.name(),
                    forwarded / 1e6,
                    offered / 1e6,
                    took.as_secs_f64()
                );
                kernel.push((kind.name(), forwarded));
            }
            Err(e) => println!("  kernel nftables, {}: not measured: {e}", kind.name()),
        }
    }
    println!(
        "  (kernel: forwards in the generator's softirq, no extra core; dataplane: one busy-polling \
         worker on the other core; offered load is what the generator reached while competing)"
    );
    let acl = acl_text(rules);
    for backend in [Backend::AfPacket, Backend::AfXdp] {
        match through_dataplane(backend, &acl) {
            Ok(((offered, forwarded), counters)) => {
                let ratios: Vec<String> = kernel
                    .iter()
                    .map(|(name, k)| format!("{:.2}x {name}", forwarded / k.max(1.0)))
                    .collect();
                println!(
                    "  dataplane {backend}, ACL in + sessions: {:.3} Mpps forwarded ({:.3} Mpps offered); \
                     ratio to kernel: {}",
                    forwarded / 1e6,
                    offered / 1e6,
                    ratios.join(", ")
                );
                println!("    {counters}");
            }
            Err(e) => println!("  dataplane {backend}: not measured: {e}"),
        }
    }
}

fn main() {
    let rules = random_rules(RULES);
    in_memory(&rules);
    session_table();
    over_veth(&rules);
}
