//! HyperSplit construction (see the parent module for the paper and what
//! changed): rules become boxes of ranges, and nodes are cut breadth first
//! until their rule lists are short.

use std::collections::VecDeque;

use super::{
    Classifier, Node, Rule, Stats, Tree, FIELDS, LEAF, MAX_DEPTH, NO_RULE, SINGLE_TREE_COPIES,
};

/// Inclusive `(lo, hi)` per field, in [`super::FlowKey::point`] order.
type Bounds = [(u128, u128); FIELDS];

/// Lists this short are scanned rather than cut again.
const LEAF_RULES: usize = 3;

/// Rule references the leaves and pending nodes may hold per rule (at least
/// [`MIN_BUDGET`]) before the remaining nodes become leaves: the memory
/// bound, as only a cut that copies rules into both children adds any.
const REFS_PER_RULE: usize = 64;
const MIN_BUDGET: usize = 1 << 16;

/// Lists a single tree may always hold, however few its rules.
const MIN_SINGLE_BUDGET: usize = 1 << 12;

/// Addresses wider than this many values (a prefix shorter than an IPv4
/// /16) put a rule in a wide group of the separable trees.
const WIDE: u128 = 1 << 16;

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

impl RuleBox {
    /// Which separable tree the rule goes to: wide source, wide destination.
    fn wideness(&self) -> usize {
        let wide = |(lo, hi): (u128, u128)| usize::from(hi - lo >= WIDE);
        wide(self.bounds[0]) << 1 | wide(self.bounds[1])
    }
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
    // trees' lists hold positions in `boxes`.
    let boxes: Vec<RuleBox> = (0..)
        .zip(rules)
        .filter_map(|(i, rule)| rule_box(i, rule))
        .collect();
    let all: Vec<u32> = (0..index(boxes.len())).collect();
    let single_budget = MIN_SINGLE_BUDGET.max(boxes.len() * SINGLE_TREE_COPIES);
    let mut tables = Tables::new(&boxes);
    if !tables.add_tree(all.clone(), single_budget, Overflow::Abandon) {
        tables = Tables::new(&boxes);
        let mut groups: [Vec<u32>; 4] = Default::default();
        for b in all {
            groups[boxes[b as usize].wideness()].push(b);
        }
        for group in groups.into_iter().filter(|g| !g.is_empty()) {
            let budget = MIN_BUDGET.max(group.len().saturating_mul(REFS_PER_RULE));
            tables.add_tree(group, budget, Overflow::MakeLeaves);
        }
        tables.trees.sort_by_key(|t| t.first);
    }
    let Tables {
        trees,
        mut nodes,
        mut leaf_rules,
        mut stats,
        ..
    } = tables;
    stats.rules = rules.len();
    stats.trees = trees.len();
    stats.nodes = nodes.len();
    stats.leaf_entries = leaf_rules.len();
    stats.inexact_rules = boxes.iter().filter(|b| !b.exact).count();
    nodes.shrink_to_fit();
    leaf_rules.shrink_to_fit();
    Classifier {
        trees,
        nodes,
        leaf_rules,
        rules: rules.to_vec(),
        stats,
    }
}

/// What [`Tables::add_tree`] does when a tree's lists outgrow the budget.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Give up (the tables are then half-built and must be dropped).
    Abandon,
    /// Make every remaining node a leaf.
    MakeLeaves,
}

/// Trees under construction.
struct Tables<'a> {
    boxes: &'a [RuleBox],
    trees: Vec<Tree>,
    nodes: Vec<Node>,
    leaf_rules: Vec<u32>,
    stats: Stats,
}

impl<'a> Tables<'a> {
    fn new(boxes: &'a [RuleBox]) -> Tables<'a> {
        Tables {
            boxes,
            trees: Vec::new(),
            nodes: Vec::new(),
            leaf_rules: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Builds a tree over `rules` (positions in `boxes`, in priority
    /// order) breadth first, while the rule references held by its leaves
    /// and pending nodes stay within `budget`; false if abandoned.
    fn add_tree(&mut self, rules: Vec<u32>, budget: usize, overflow: Overflow) -> bool {
        let boxes = self.boxes;
        let root = self.nodes.len();
        self.trees.push(Tree {
            root: index(root),
            first: rules.first().map_or(NO_RULE, |&b| boxes[b as usize].rule),
        });
        self.nodes.push(leaf(0, 0));
        let mut held = rules.len();
        let mut queue = VecDeque::from([Pending {
            node: root,
            region: EVERYTHING,
            rules,
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
            prune(boxes, &mut rules, &region);
            held += rules.len();
            let over_budget = held > budget;
            if over_budget && overflow == Overflow::Abandon {
                return false;
            }
            self.stats.max_depth = self.stats.max_depth.max(depth);
            let forced = over_budget || depth >= MAX_DEPTH;
            let cut = if rules.len() <= LEAF_RULES || forced {
                None
            } else {
                best_cut(boxes, &rules, &region)
            };
            let Some((field, cut)) = cut else {
                self.stats.forced_leaves += usize::from(forced && rules.len() > LEAF_RULES);
                self.stats.leaves += 1;
                self.stats.max_leaf = self.stats.max_leaf.max(rules.len());
                self.nodes[node] = leaf(self.leaf_rules.len(), rules.len());
                self.leaf_rules
                    .extend(rules.iter().map(|&b| boxes[b as usize].rule));
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
            let left = self.nodes.len();
            self.nodes[node] = Node {
                cut,
                child: index(left),
                len: 0,
                field: field as u8,
            };
            self.nodes.extend([leaf(0, 0), leaf(0, 0)]);
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
        true
    }
}

fn leaf(start: usize, len: usize) -> Node {
    Node {
        cut: 0,
        child: index(start),
        len: index(len),
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
