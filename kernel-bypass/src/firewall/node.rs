//! The firewall's node, at post-routing (forwarded traffic: the ingress
//! interface's inbound list, then the egress interface's outbound list),
//! local-in (traffic to the appliance: the inbound list) and local-out
//! (the appliance's own traffic: no list, only its sessions), both families.
//!
//! Stateful semantics (those of IOS's `ip inspect`, simplified): a packet
//! of a known session passes without the lists, so the return traffic of a
//! flow a list permitted needs no rule of its own. A packet the lists
//! permit that opens a flow (a TCP SYN, a UDP datagram, an ICMP echo
//! request) creates a session; one that opens no flow (a TCP segment of a
//! flow the table does not know) passes without one. While the firewall
//! is on, every forwarded flow gets a session, so replies come back
//! through an interface whose inbound list would refuse them. An ICMP
//! error quoting a packet of a known session passes too (path-MTU
//! discovery and traceroute work through the firewall). IPv6 Neighbour
//! Discovery always passes, as IOS's IPv6 lists let it.

use super::acl::{CompiledAcl, RuleAction};
use super::fragments::FragmentMemory;
use crate::classify::FlowKey;
use crate::counters::{Count, PerWorker};
use crate::event_log::OncePerSecond;
use crate::features::{Action, Ahead, FeatureNode, Packet, Point, Prefetch};
use crate::headers::{tcp_flags, FlowInfo};
use crate::sessions::{addr_bits, Refused, SessionKey, SessionTable, TcpState, Timeouts};
use crate::snapshot::IfaceId;
use crate::state_sync::SyncRecord;
use crate::wire::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The inbound and outbound lists of one family, by interface id.
pub type Bindings = Vec<[Option<Arc<CompiledAcl>>; 2]>;
pub const IN: usize = 0;
pub const OUT: usize = 1;

/// What the firewall counted, in one worker's slot.
#[derive(Default)]
pub struct FirewallCounters {
    pub passed_by_session: Count,
    pub passed_as_related: Count,
    pub denied_by_rule: Count,
    pub denied_implicitly: Count,
    pub sessions_created: Count,
    pub session_table_full: Count,
    pub malformed: Count,
    pub fragments_passed: Count,
    pub fragments_without_first: Count,
}

impl FirewallCounters {
    /// (name, value) of each counter summed over workers, for `show
    /// access-lists`.
    pub fn rows(all: &PerWorker<FirewallCounters>) -> [(&'static str, u64); 9] {
        let get = |c: fn(&FirewallCounters) -> &Count| all.total(c);
        [
            ("passed by session", get(|c| &c.passed_by_session)),
            (
                "passed as related (ICMP errors)",
                get(|c| &c.passed_as_related),
            ),
            ("denied by a rule", get(|c| &c.denied_by_rule)),
            ("denied, no rule matched", get(|c| &c.denied_implicitly)),
            ("sessions created", get(|c| &c.sessions_created)),
            (
                "refused, session table full",
                get(|c| &c.session_table_full),
            ),
            ("malformed", get(|c| &c.malformed)),
            (
                "later fragments passed with their first",
                get(|c| &c.fragments_passed),
            ),
            (
                "later fragments dropped, first not passed",
                get(|c| &c.fragments_without_first),
            ),
        ]
    }
}

pub struct FirewallNode {
    pub name: &'static str,
    pub point: Point,
    pub bindings: Arc<Bindings>,
    pub sessions: Arc<SessionTable>,
    pub timeouts: Timeouts,
    pub counters: Arc<PerWorker<FirewallCounters>>,
    pub fragments: Arc<FragmentMemory>,
    /// The dataplane's log.
    pub shared: Arc<crate::pipeline::Shared>,
    /// Says once a second, not once a packet, that the table is full.
    pub full_reported: OncePerSecond,
}

/// Whether the packet can open a flow the table follows.
fn opens_flow(flow: &FlowInfo) -> bool {
    if !flow.has_transport {
        return false;
    }
    match flow.protocol {
        PROTO_TCP => tcp_flags::is_syn(flow.tcp_flags),
        PROTO_UDP => true,
        PROTO_ICMP => flow.icmp.0 == crate::wire::ICMP_ECHO_REQUEST,
        PROTO_ICMPV6 => flow.icmp.0 == crate::wire::ICMPV6_ECHO_REQUEST,
        _ => false,
    }
}

/// Whether the table can know the packet's flow (TCP, UDP, ICMP echo).
fn trackable(flow: &FlowInfo) -> bool {
    flow.has_transport && (matches!(flow.protocol, PROTO_TCP | PROTO_UDP) || flow.is_echo())
}

/// What the classifier reads of a packet (ICMP type and code in the port
/// fields).
pub fn flow_key(flow: &FlowInfo) -> FlowKey {
    let (src_port, dst_port) = match flow.protocol {
        PROTO_ICMP | PROTO_ICMPV6 => (u16::from(flow.icmp.0), u16::from(flow.icmp.1)),
        _ => (flow.src_port, flow.dst_port),
    };
    FlowKey {
        src: addr_bits(flow.src),
        dst: addr_bits(flow.dst),
        protocol: flow.protocol,
        src_port,
        dst_port,
        tcp_flags: flow.tcp_flags,
    }
}

/// A logged match, in IOS's words.
fn log_line(acl: &CompiledAcl, rule: &RuleAction, flow: &FlowInfo) -> String {
    let action = if rule.permit { "permitted" } else { "denied" };
    format!(
        "%SEC-6-IPACCESSLOG: list {} {} {action} protocol {} {}({}) -> {}({})",
        acl.name, rule.seq, flow.protocol, flow.src, flow.src_port, flow.dst, flow.dst_port
    )
}

impl FirewallNode {
    fn list(&self, iface: Option<IfaceId>, direction: usize) -> Option<&CompiledAcl> {
        let lists = self.bindings.get(usize::from(iface?))?;
        lists[direction].as_deref()
    }

    /// Runs a list; false when it denies (and counts and logs why).
    fn permits(&self, acl: &CompiledAcl, key: &FlowKey, flow: &FlowInfo, now: u32) -> bool {
        match acl.classify(key) {
            Some(rule) => {
                rule.hits.fetch_add(1, Ordering::Relaxed);
                if rule.log {
                    self.shared.log.record(now, || log_line(acl, rule, flow));
                }
                if !rule.permit {
                    self.counters.here().denied_by_rule.add();
                }
                rule.permit
            }
            None => {
                self.counters.here().denied_implicitly.add();
                false
            }
        }
    }
}

impl FeatureNode for FirewallNode {
    fn name(&self) -> &'static str {
        self.name
    }

    fn process(&self, packet: &mut Packet<'_>) -> Action {
        let Some(flow) = FlowInfo::parse(packet.data) else {
            self.counters.here().malformed.add();
            return Action::Drop;
        };
        let (vrf, now) = (packet.vrf, packet.now_secs);
        match flow.fragment {
            // A later fragment goes where its first went.
            Some(f) if !f.first => {
                if self.fragments.recalls(vrf, &flow, f.id, now) {
                    self.counters.here().fragments_passed.add();
                    return Action::Continue;
                }
                self.counters.here().fragments_without_first.add();
                Action::Drop
            }
            Some(f) => {
                let action = self.judge(packet, &flow);
                if action == Action::Continue {
                    self.fragments.remember(vrf, &flow, f.id, now);
                }
                action
            }
            None => self.judge(packet, &flow),
        }
    }
}

impl FirewallNode {
    /// The verdict on a whole packet or a first fragment (one with its
    /// transport header).
    fn judge(&self, packet: &Packet<'_>, flow: &FlowInfo) -> Action {
        let now = packet.now_secs;
        let (session, forward) = SessionKey::of(packet.vrf, flow);
        if trackable(flow)
            && self
                .sessions
                .track(&session, forward, flow, now, &self.timeouts)
        {
            self.counters.here().passed_by_session.add();
            return Action::Continue;
        }
        // An ICMP error about a flow of the table (path MTU, unreachable,
        // time exceeded) belongs to it, as conntrack's RELATED.
        if let Some(quoted) = flow.quoted(packet.data) {
            let (key, _) = SessionKey::of(packet.vrf, &quoted);
            if trackable(&quoted) && self.sessions.contains(&key, now, &self.timeouts) {
                self.counters.here().passed_as_related.add();
                return Action::Continue;
            }
        }
        // IPv6 lists permit Neighbour Discovery before their implicit deny,
        // as IOS's do: without it nothing on the link is reachable.
        if flow.is_neighbor_discovery() {
            return Action::Continue;
        }
        let key = flow_key(flow);
        let lists = match self.point {
            Point::PostRouting => [self.list(packet.ingress, IN), self.list(packet.egress, OUT)],
            Point::LocalIn => [self.list(packet.ingress, IN), None],
            _ => [None, None],
        };
        for acl in lists.into_iter().flatten() {
            if !self.permits(acl, &key, flow, now) {
                return Action::Drop;
            }
        }
        if !opens_flow(flow) {
            return Action::Continue;
        }
        match self.sessions.create(&session, forward, now, &self.timeouts) {
            Ok(()) => {
                self.counters.here().sessions_created.add();
                (self.shared.sync.journal)
                    .note(|| SyncRecord::of_session(&session, forward, TcpState::SynSent));
                Action::Continue
            }
            Err(Refused::Full) => {
                self.counters.here().session_table_full.add();
                self.full_reported.record(&self.shared.log, now, || {
                    "%FW-4-SESSION_TABLE_FULL: the session table is full (ip inspect max-sessions); new flows are dropped".to_string()
                });
                Action::Drop
            }
        }
    }
}

/// Warms the session a packet ahead in the batch will be tracked by.
pub struct SessionPrefetch(pub Arc<SessionTable>);

impl Prefetch for SessionPrefetch {
    fn prefetch(&self, packet: &Ahead<'_>) {
        if let Some(flow) = FlowInfo::parse(packet.ip) {
            self.0.prefetch(&SessionKey::of(packet.vrf, &flow).0);
        }
    }
}
