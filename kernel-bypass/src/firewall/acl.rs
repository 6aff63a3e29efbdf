//! An access list compiled for the packet path: its rules turned into the
//! classifier's form (IPv4 as IPv4-mapped addresses, IOS wildcards as
//! masks, `neq` as two ranges, ICMP type and code in the port fields, as
//! DPDK's ACL does), each rule with its sequence number, action and hit
//! counter. A packet no rule matches is denied, as in IOS.

use crate::classify::{Classifier, FlowKey, Rule};
use grammar::config::{AccessList, AclProtocol, AclRule, AddressMatch, Entry, Family, PortMatch};
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// What a rule does when it matches.
pub struct RuleAction {
    pub seq: u32,
    /// The rule as the running config writes it, for `show access-lists`.
    pub line: String,
    pub permit: bool,
    pub log: bool,
    /// Matches since the list was configured or its counters cleared.
    pub hits: Arc<AtomicU64>,
}

pub struct CompiledAcl {
    pub name: String,
    /// `ip access-list extended NAME` or `ipv6 access-list NAME`.
    pub header: String,
    classifier: Classifier,
    /// Indexed by the classifier's rule ids.
    pub actions: Vec<RuleAction>,
}

const ANY_PORT: (u16, u16) = (0, u16::MAX);
/// The ::ffff:0:0/96 prefix every IPv4-mapped address has.
const V4_MAPPED: u128 = 0xffff_0000_0000;
const V4_MAPPED_MASK: u128 = !0u128 << 32;

impl CompiledAcl {
    /// Compiles `list`; `hits_of(seq)` gives each rule its (kept) counter.
    pub fn new(
        name: &str,
        family: Family,
        list: &AccessList,
        hits_of: &mut dyn FnMut(u32) -> Arc<AtomicU64>,
    ) -> CompiledAcl {
        let mut rules = Vec::new();
        let mut actions = Vec::new();
        for (seq, entry) in &list.entries {
            let Entry::Rule(rule) = entry else { continue };
            let id = actions.len() as u32;
            rules.extend(classifier_rules(family, rule, id));
            actions.push(RuleAction {
                seq: *seq,
                line: format!("{seq} {}", rule.text(family)),
                permit: rule.permit,
                log: rule.log,
                hits: hits_of(*seq),
            });
        }
        CompiledAcl {
            name: name.to_string(),
            header: format!("{} {name}", family.list_command()),
            classifier: Classifier::build(&rules),
            actions,
        }
    }

    /// The first rule matching `key`; None means the implicit deny.
    pub fn classify(&self, key: &FlowKey) -> Option<&RuleAction> {
        let id = self.classifier.classify(key)?;
        self.actions.get(id as usize)
    }
}

/// The classifier rules of one ACL rule (two for `neq`, none for a port
/// range that cannot match, such as `lt 0`).
fn classifier_rules(family: Family, rule: &AclRule, id: u32) -> Vec<Rule> {
    let (src, src_mask) = address_match(family, &rule.src);
    let (dst, dst_mask) = address_match(family, &rule.dst);
    let protocol = match (rule.protocol, family) {
        (AclProtocol::Ip, _) => None,
        (AclProtocol::Tcp, _) => Some(crate::wire::PROTO_TCP),
        (AclProtocol::Udp, _) => Some(crate::wire::PROTO_UDP),
        (AclProtocol::Icmp, Family::Ipv4) => Some(crate::wire::PROTO_ICMP),
        (AclProtocol::Icmp, Family::Ipv6) => Some(crate::wire::PROTO_ICMPV6),
        (AclProtocol::Number(n), _) => Some(n),
    };
    let (src_ranges, dst_ranges) = match rule.icmp {
        Some((kind, code)) => {
            let exactly = |v: u8| (u16::from(v), u16::from(v));
            (vec![exactly(kind)], vec![code.map_or(ANY_PORT, exactly)])
        }
        None => (ports(rule.src_ports), ports(rule.dst_ports)),
    };
    let mut out = Vec::new();
    for &src_ports in &src_ranges {
        for &dst_ports in &dst_ranges {
            out.push(Rule {
                src,
                src_mask,
                dst,
                dst_mask,
                protocol,
                src_ports,
                dst_ports,
                established: rule.established,
                id,
            });
        }
    }
    out
}

/// (value, mask) of an address match in the classifier's 128-bit space.
pub fn address_match(family: Family, m: &AddressMatch) -> (u128, u128) {
    match (m, family) {
        (AddressMatch::Any, Family::Ipv4) => (V4_MAPPED, V4_MAPPED_MASK),
        (AddressMatch::Any, Family::Ipv6) => (0, 0),
        (AddressMatch::Host(addr), _) => (crate::sessions::addr_bits(*addr), !0),
        (AddressMatch::Wildcard(addr, wildcard), _) => {
            let mask = V4_MAPPED_MASK | u128::from(!u32::from(*wildcard));
            (crate::sessions::addr_bits(IpAddr::V4(*addr)) & mask, mask)
        }
        (AddressMatch::Prefix(net), _) => {
            let mask = u128::from(net.netmask());
            (u128::from(net.network()) & mask, mask)
        }
    }
}

/// The inclusive ranges a port match allows.
fn ports(m: PortMatch) -> Vec<(u16, u16)> {
    match m {
        PortMatch::Any => vec![ANY_PORT],
        PortMatch::Eq(p) => vec![(p, p)],
        PortMatch::Lt(0) => vec![],
        PortMatch::Lt(p) => vec![(0, p - 1)],
        PortMatch::Gt(u16::MAX) => vec![],
        PortMatch::Gt(p) => vec![(p + 1, u16::MAX)],
        PortMatch::Neq(p) => {
            let below = p.checked_sub(1).map(|b| (0, b));
            let above = p.checked_add(1).map(|a| (a, u16::MAX));
            below.into_iter().chain(above).collect()
        }
        PortMatch::Range(lo, hi) => vec![(lo.min(hi), lo.max(hi))],
    }
}
