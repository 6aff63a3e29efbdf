//! HyperSplit construction (see the parent module for the paper and what
//! changed): rules become boxes of ranges, and nodes are cut breadth first
//! until their rule lists are short.

use std::collections::VecDeque;

use super::{Classifier, Node, Rule, Stats, FIELDS, LEAF, MAX_DEPTH};

/// Inclusive `(lo, hi)` per field, in [`super::FlowKey::point`] order.
type Bounds = [(u128, u128); FIELDS];

/// Lists this short are scanned rather than cut again.
const LEAF_RULES: usize = 6;

/// Rule references the leaves and pending nodes may hold per rule (at least
/// [`MIN_BUDGET`]) before the remaining nodes become leaves: the memory
/// bound, as only a cut that copies rules into both children adds any.
const REFS_PER_RULE: usize = 64;
const MIN_BUDGET: usize = 1 << 16;

/// Every value of every field.
const EVERYTHING: Bounds = [
    (0, u128::MAX),
    (0, u128::MAX),
    (0, u16::MAX as u128),
    (0, u16::MAX as u128),
    (0, u8::MAX as u128),
    (0, 1),
];

/// A rule as the tree sees it.
struct RuleBox {
    /// Position in the rule list, which is the priority.
    rule: u32,
    bounds: Bounds,
    /// False when an address mask is not a prefix: `bounds` is then a
    /// superset and only the leaf check is exact.
    exact: bool,
}

/// The range of the longest prefix within `mask`, and whether that prefix
/// is the whole mask.
fn masked_range(value: u128, mask: u128) -> ((u128, u128), bool) {
    let prefix = u128::MAX
        .checked_shl(128 - mask.leading_ones())
        .unwrap_or(0);
    let lo = value & prefix;
    ((lo, lo | !prefix), mask == prefix)
}

/// None for a rule that matches nothing (an empty port range).
fn rule_box(position: u32, rule: &Rule) -> Option<RuleBox> {
    let (src, src_exact) = masked_range(rule.src, rule.src_mask);
    let (dst, dst_exact) = masked_range(rule.dst, rule.dst_mask);
    let ports = |(lo, hi): (u16, u16)| (u128::from(lo), u128::from(hi));
    let protocol = rule
        .protocol
        .map_or(EVERYTHING[4], |p| (p.into(), p.into()));
    let bounds = [
        src,
        dst,
        ports(rule.src_ports),
        ports(rule.dst_ports),
        protocol,
        (rule.established.into(), 1),
    ];
    bounds.iter().all(|(lo, hi)| lo <= hi).then_some(RuleBox {
        rule: position,
        bounds,
        exact: src_exact && dst_exact,
    })
}

/// A node whose contents are not decided yet.
struct Pending {
    node: usize,
    region: Bounds,
    rules: Vec<u32>,
    depth: usize,
}

pub(super) fn build(rules: &[Rule]) -> Classifier {
    // Boxes of the rules that can match anything, in priority order; the
    // tree's lists hold positions in `boxes`.
    let boxes: Vec<RuleBox> = (0..)
        .zip(rules)
        .filter_map(|(i, rule)| rule_box(i, rule))
        .collect();
    let mut stats = Stats {
        rules: rules.len(),
        inexact_rules: boxes.iter().filter(|b| !b.exact).count(),
        ..Stats::default()
    };
    let budget = MIN_BUDGET.max(rules.len().saturating_mul(REFS_PER_RULE));
    let mut held = boxes.len();
    let mut nodes = vec![leaf(0, 0)];
    let mut leaf_rules = Vec::new();
    let mut queue = VecDeque::from([Pending {
        node: 0,
        region: EVERYTHING,
        rules: (0..index(boxes.len())).collect(),
        depth: 0,
    }]);
    while let Some(Pending {
        node,
        region,
        mut rules,
        depth,
    }) = queue.pop_front()
    {
        held -= rules.len();
        prune(&boxes, &mut rules, &region);
        held += rules.len();
        stats.max_depth = stats.max_depth.max(depth);
        let forced = held > budget || depth >= MAX_DEPTH;
        let cut = if rules.len() <= LEAF_RULES || forced {
            None
        } else {
            best_cut(&boxes, &rules, &region)
        };
        let Some((field, cut)) = cut else {
            stats.forced_leaves += usize::from(forced && rules.len() > LEAF_RULES);
            stats.leaves += 1;
            stats.max_leaf = stats.max_leaf.max(rules.len());
            nodes[node] = leaf(leaf_rules.len(), rules.len());
            leaf_rules.extend(rules.iter().map(|&b| boxes[b as usize].rule));
            continue;
        };
        let bounds = |b: u32| boxes[b as usize].bounds[field];
        let left_rules: Vec<u32> = rules
            .iter()
            .copied()
            .filter(|&r| bounds(r).0 <= cut)
            .collect();
        held += left_rules.len();
        held -= rules.len();
        rules.retain(|&r| bounds(r).1 > cut);
        held += rules.len();
        let (mut left_region, mut right_region) = (region, region);
        left_region[field].1 = cut;
        right_region[field].0 = cut + 1;
        let left = nodes.len();
        nodes[node] = Node {
            cut,
            left: index(left),
            right: index(left + 1),
            field: field as u8,
        };
        nodes.extend([leaf(0, 0), leaf(0, 0)]);
        queue.extend([
            Pending {
                node: left,
                region: left_region,
                rules: left_rules,
                depth: depth + 1,
            },
            Pending {
                node: left + 1,
                region: right_region,
                rules,
                depth: depth + 1,
            },
        ]);
    }
    stats.nodes = nodes.len();
    stats.leaf_entries = leaf_rules.len();
    nodes.shrink_to_fit();
    leaf_rules.shrink_to_fit();
    Classifier {
        nodes,
        leaf_rules,
        rules: rules.to_vec(),
        stats,
    }
}

fn leaf(start: usize, len: usize) -> Node {
    Node {
        cut: 0,
        left: index(start),
        right: index(len),
        field: LEAF,
    }
}

/// Node and leaf-list positions fit u32: the budget keeps them far below.
fn index(i: usize) -> u32 {
    u32::try_from(i).expect("classifier tables exceed u32 indices")
}

/// Drops every rule after the first that matches all of `region`: none of
/// them can be the first match of a key in it.
fn prune(boxes: &[RuleBox], rules: &mut Vec<u32>, region: &Bounds) {
    let covers = |b: &RuleBox| {
        b.exact
            && b.bounds
                .iter()
                .zip(region)
                .all(|((lo, hi), (rlo, rhi))| lo <= rlo && rhi <= hi)
    };
    if let Some(first) = rules.iter().position(|&b| covers(&boxes[b as usize])) {
        rules.truncate(first + 1);
    }
}

/// The `(field, cut)` whose larger child holds the fewest rules (ties: the
/// fewest in both), trying every rule endpoint inside `region`; None when
/// no cut separates any rule.
fn best_cut(boxes: &[RuleBox], rules: &[u32], region: &Bounds) -> Option<(usize, u128)> {
    let n = rules.len();
    let mut best: Option<((usize, usize), usize, u128)> = None;
    let mut los = Vec::with_capacity(n);
    let mut his = Vec::with_capacity(n);
    for (field, &(rlo, rhi)) in region.iter().enumerate() {
        if rlo == rhi {
            continue;
        }
        los.clear();
        his.clear();
        for &b in rules {
            let (lo, hi) = boxes[b as usize].bounds[field];
            los.push(lo.max(rlo));
            his.push(hi.min(rhi));
        }
        los.sort_unstable();
        his.sort_unstable();
        // A cut just below a range or at its end; `cut < rhi` keeps both
        // children non-empty regions.
        let after_ends = his.iter().copied();
        let before_starts = los.iter().filter(|&&lo| lo > rlo).map(|lo| lo - 1);
        let mut last = None;
        for cut in after_ends.chain(before_starts).filter(|&c| c < rhi) {
            if last == Some(cut) {
                continue;
            }
            last = Some(cut);
            let left = los.partition_point(|&lo| lo <= cut);
            let right = n - his.partition_point(|&hi| hi <= cut);
            let cost = (left.max(right), left + right);
            if cost.1 < 2 * n && best.is_none_or(|(c, ..)| cost < c) {
                best = Some((cost, field, cut));
            }
        }
    }
    best.map(|(_, field, cut)| (field, cut))
}
