//! Control-plane protection: what reaches the appliance itself passes the
//! local-in point through, in order, the SSH `access-class` (`line vty`:
//! a refused source costs one classification), the SYN guard (`syn_guard`:
//! listeners survive SYN floods) and per-class policers (`police`: ARP/ND
//! (ARP through the pipeline's ARP guard, before IP; ND here), ICMP, SSH,
//! other TCP/UDP, the rest), with defaults that keep management reachable
//! with no configuration at all. `show control-plane` shows them.

mod police;
mod syn_guard;

use crate::classify::{Classifier, Rule};
use crate::elements::{DataplaneElement, ElementCommand};
use crate::features::{Action, ArpGuard, Family as PathFamily, FeatureNode, Packet, Point};
use crate::headers::FlowInfo;
use crate::pipeline::Shared;
use crate::snapshot::Snapshot;
use grammar::config::{Config, CpClass, Family};
use police::{class_of, Bucket, SSH_PORT};
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use syn_guard::{Guard, SynGuard};

/// Before the firewall's local-in node (100): protection comes first.
const ORDER: u16 = 10;
const CLASSES: [CpClass; 6] = CpClass::ALL;

/// The policers of the published configuration, by class.
struct Policers([Arc<Bucket>; 6]);

impl Policers {
    fn of(&self, class: CpClass) -> &Bucket {
        let at = CLASSES.iter().position(|c| *c == class);
        &self.0[at.unwrap_or(CLASSES.len() - 1)]
    }
}

pub struct ControlPlane {
    shared: Arc<Shared>,
    guard: Arc<SynGuard>,
    policers: Mutex<Option<Arc<Policers>>>,
    refused_by_access_class: Arc<AtomicU64>,
}

impl ControlPlane {
    pub fn new(shared: Arc<Shared>) -> ControlPlane {
        ControlPlane {
            shared,
            guard: Arc::default(),
            policers: Mutex::default(),
            refused_by_access_class: Arc::default(),
        }
    }

    fn show(&self, now: u32) -> String {
        let mut out = String::from("Class      Rate/s   Burst      Passed     Dropped\n");
        if let Some(policers) = self
            .policers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            for (class, bucket) in CLASSES.iter().zip(policers.0.iter()) {
                let _ = writeln!(
                    out,
                    "{:<10} {:>6} {:>7} {:>11} {:>11}",
                    class.to_string(),
                    bucket.pps,
                    bucket.burst,
                    bucket.passed.load(Ordering::Relaxed),
                    bucket.dropped.load(Ordering::Relaxed)
                );
            }
        }
        let g = &self.guard;
        let _ = writeln!(
            out,
            "SYN guard: {}; {} SYNs challenged, {} sources verified by cookie\nSSH access-class: {} refused",
            if g.challenging(now) { "challenging (SYN flood)" } else { "idle" },
            g.challenged.load(Ordering::Relaxed),
            g.verified_by_cookie.load(Ordering::Relaxed),
            self.refused_by_access_class.load(Ordering::Relaxed),
        );
        out
    }
}

/// The node at local-in of one family.
struct ProtectNode {
    name: &'static str,
    /// Who may reach SSH (None: everyone).
    access_class: Option<Arc<AccessClass>>,
    guard: Arc<SynGuard>,
    policers: Arc<Policers>,
    refused: Arc<AtomicU64>,
    /// The HA peer's address and sync port: its own class.
    sync_peer: Option<(IpAddr, u16)>,
}

/// A compiled `access-class`: first match, implicit deny.
struct AccessClass {
    classifier: Classifier,
    permits: Vec<bool>,
}

impl FeatureNode for ProtectNode {
    fn name(&self) -> &'static str {
        self.name
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let Some(flow) = FlowInfo::parse(packet.data) else {
            return Action::Continue; // the IP path counts malformed packets
        };
        let from_peer = |(peer, port)| flow.src == peer && flow.dst_port == port;
        let class = match flow.protocol == crate::wire::PROTO_UDP
            && self.sync_peer.is_some_and(from_peer)
        {
            true => CpClass::Redundancy,
            false => class_of(&flow),
        };
        if class == CpClass::Ssh && flow.dst_port == SSH_PORT {
            if let Some(acl) = &self.access_class {
                let key = crate::firewall::flow_key(&flow);
                let permitted = acl
                    .classifier
                    .classify(&key)
                    .is_some_and(|id| acl.permits.get(id as usize) == Some(&true));
                if !permitted {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return Action::Drop;
                }
            }
        }
        if flow.protocol == crate::wire::PROTO_TCP {
            match self
                .guard
                .check(packet.data, &flow, packet.now_secs, packet.now_ms)
            {
                Guard::Pass => {}
                Guard::Challenge => return Action::Reply,
                Guard::Drop => return Action::Drop,
            }
        }
        match self.policers.of(class).take(packet.now_ms) {
            true => Action::Continue,
            false => Action::Drop,
        }
    }
}

/// ARP to the appliance takes from the ARP/ND class's bucket.
struct ArpPolicer(Arc<Policers>);

impl ArpGuard for ArpPolicer {
    fn admit(&self, now_ms: u64) -> bool {
        self.0.of(CpClass::ArpNd).take(now_ms)
    }
}

/// The classifier of an access-class list: its rules' source matches
/// (an access-class looks at who connects, as IOS's does, whatever else
/// its rules say).
fn access_class(config: &Config, family: Family) -> Option<Arc<AccessClass>> {
    let name = config.access_lists.vty_access_class.get(&family)?;
    let list = config.access_lists.lists.get(&(family, name.clone()))?;
    let mut rules = Vec::new();
    let mut permits = Vec::new();
    for entry in list.entries.values() {
        let grammar::config::Entry::Rule(rule) = entry else {
            continue;
        };
        let (src, src_mask) = crate::firewall::address_match(family, &rule.src);
        rules.push(Rule {
            src,
            src_mask,
            ..Rule::any(permits.len() as u32)
        });
        permits.push(rule.permit);
    }
    Some(Arc::new(AccessClass {
        classifier: Classifier::build(&rules),
        permits,
    }))
}

impl DataplaneElement for ControlPlane {
    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String> {
        let policers = Arc::new(Policers(CLASSES.map(|class| {
            let p = config.control_plane.effective(class);
            Arc::new(Bucket::new(p.pps, p.burst))
        })));
        // Counters restart when the policers change: the rates they count against did.
        let mut published = self.policers.lock().unwrap_or_else(|p| p.into_inner());
        let policers = match published.as_ref() {
            Some(old)
                if old
                    .0
                    .iter()
                    .zip(policers.0.iter())
                    .all(|(a, b)| (a.pps, a.burst) == (b.pps, b.burst)) =>
            {
                old.clone()
            }
            _ => policers,
        };
        *published = Some(policers.clone());
        let arp = ArpPolicer(policers.clone());
        snap.features.register_arp_guard(Arc::new(arp));
        for (family, path, name) in [
            (Family::Ipv4, PathFamily::Ipv4, "ip4-control-plane"),
            (Family::Ipv6, PathFamily::Ipv6, "ip6-control-plane"),
        ] {
            let node = ProtectNode {
                name,
                access_class: access_class(config, family),
                guard: self.guard.clone(),
                policers: policers.clone(),
                refused: self.refused_by_access_class.clone(),
                sync_peer: (config.redundancy.peer)
                    .map(|peer| (IpAddr::V4(peer), config.redundancy.port())),
            };
            snap.features
                .register(path, Point::LocalIn, ORDER, Arc::new(node));
        }
        Ok(())
    }

    fn commands(self: Arc<Self>) -> Vec<ElementCommand> {
        vec![ElementCommand::Show {
            syntax: "control-plane",
            help: &["Control-plane protection: policers, SYN guard, SSH access-class"],
            run: Box::new(move |_| self.show(self.shared.now_secs())),
        }]
    }
}
