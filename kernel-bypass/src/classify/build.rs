//! HyperSplit construction (see the parent module for the paper and what
//! changed): rules become boxes of ranges, and nodes are cut breadth first
//! until their rule lists are short. A node's cuts are binary HyperSplit
//! cuts, repeated on its fullest piece along the same field until it has
//! [`FANOUT`] pieces.

use std::collections::VecDeque;

use super::{
    Classifier, Node, Rule, Stats, Tree, ANSWER, FANOUT, FIELDS, LEAF, MAX_DEPTH, NO_RULE,
    SINGLE_TREE_BYTES,
};

/// Inclusive `(lo, hi)` per field, in [`super::FlowKey::point`] order.
type Bounds = [(u64, u64); FIELDS];

/// Lists this short are scanned rather than cut again. Cutting on until
/// each region has one covering rule (the paper's leaves) made 8-way nodes
/// with mostly empty pieces: 66 MB for 10,000 rules.
const LEAF_RULES: usize = 5;

/// Bytes a separable tree may take per rule (at least [`MIN_TREE_BYTES`])
/// before its remaining nodes become leaves: the memory bound. Only cuts
/// that copy rules into several pieces make a tree grow faster than this.
const BYTES_PER_RULE: usize = 1024;
const MIN_TREE_BYTES: usize = 1 << 20;

/// Addresses wider than this many values (a prefix shorter than an IPv4
/// /16) put a rule in a wide group of the separable trees.
const WIDE: u64 = 1 << 16;

/// Every value of every field.
const EVERYTHING: Bounds = [
    (0, u64::MAX),
    (0, u64::MAX),
    (0, u64::MAX),
    (0, u64::MAX),
    (0, u16::MAX as u64),
    (0, u16::MAX as u64),
    (0, u8::MAX as u64),
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
    /// Whether every key in `region` matches the rule.
    fn covers(&self, region: &Bounds) -> bool {
        self.exact
            && self
                .bounds
                .iter()
                .zip(region)
                .all(|((lo, hi), (rlo, rhi))| lo <= rlo && rhi <= hi)
    }

    /// Which separable tree the rule goes to: wide source, wide destination.
    fn wideness(&self) -> usize {
        let wide = |[(hi_lo, hi_hi), (lo, hi)]: [(u64, u64); 2]| {
            usize::from(hi_lo != hi_hi || hi - lo >= WIDE)
        };
        wide([self.bounds[0], self.bounds[1]]) << 1 | wide([self.bounds[2], self.bounds[3]])
    }
}

/// The ranges of the high and low 64 bits of the longest prefix within
/// `mask` (a prefix's range is exactly their product), and whether that
/// prefix is the whole mask.
fn masked_range(value: u128, mask: u128) -> ([(u64, u64); 2], bool) {
    let prefix = u128::MAX
        .checked_shl(128 - mask.leading_ones())
        .unwrap_or(0);
    let half = |value: u128, mask: u128| {
        let lo = value as u64 & mask as u64;
        (lo, lo | !mask as u64)
    };
    let halves = [half(value >> 64, prefix >> 64), half(value, prefix)];
    (halves, mask == prefix)
}

/// None for a rule that matches nothing (an empty port range).
fn rule_box(position: u32, rule: &Rule) -> Option<RuleBox> {
    let ([src_hi, src_lo], src_exact) = masked_range(rule.src, rule.src_mask);
    let ([dst_hi, dst_lo], dst_exact) = masked_range(rule.dst, rule.dst_mask);
    let ports = |(lo, hi): (u16, u16)| (u64::from(lo), u64::from(hi));
    let protocol = rule
        .protocol
        .map_or(EVERYTHING[6], |p| (p.into(), p.into()));
    let bounds = [
        src_hi,
        src_lo,
        dst_hi,
        dst_lo,
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
    let mut tables = Tables::new(&boxes);
    if !tables.add_tree(all.clone(), SINGLE_TREE_BYTES, Overflow::Abandon) {
        tables = Tables::new(&boxes);
        let mut groups: [Vec<u32>; 4] = Default::default();
        for b in all {
            groups[boxes[b as usize].wideness()].push(b);
        }
        for group in groups.into_iter().filter(|g| !g.is_empty()) {
            let budget = MIN_TREE_BYTES.max(group.len().saturating_mul(BYTES_PER_RULE));
            tables.add_tree(group, budget, Overflow::MakeLeaves);
        }
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
    /// order) breadth first, while its nodes and the rule lists of its
    /// leaves and pending nodes stay within `budget` bytes; false if
    /// abandoned.
    fn add_tree(&mut self, rules: Vec<u32>, budget: usize, overflow: Overflow) -> bool {
        let before = self.bytes(0);
        let boxes = self.boxes;
        let root = self.nodes.len();
        let tree = self.trees.len();
        self.trees.push(Tree {
            root: index(root),
            depth: 0,
        });
        self.nodes.push(answer(NO_RULE));
        let mut pending = rules.len();
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
            pending -= rules.len();
            prune(boxes, &mut rules, &region);
            let over_budget = self.bytes(pending + rules.len()) - before > budget;
            if over_budget && overflow == Overflow::Abandon {
                return false;
            }
            self.stats.max_depth = self.stats.max_depth.max(depth);
            self.trees[tree].depth = self.trees[tree].depth.max(index(depth));
            let forced = over_budget || depth >= MAX_DEPTH;
            // Resolved: every key in the region gets the first rule (or none).
            let resolved = rules
                .first()
                .is_none_or(|&b| boxes[b as usize].covers(&region));
            let split = if resolved || forced || rules.len() <= LEAF_RULES {
                None
            } else {
                split(boxes, &rules, &region)
            };
            let Some((field, pieces)) = split else {
                self.stats.forced_leaves += usize::from(forced && !resolved);
                self.stats.leaves += 1;
                self.stats.max_leaf = self.stats.max_leaf.max(rules.len());
                let positions = rules.iter().map(|&b| boxes[b as usize].rule);
                self.nodes[node] = if resolved {
                    answer(positions.take(1).next().unwrap_or(NO_RULE))
                } else {
                    self.stats.leaf_entries += rules.len();
                    self.leaf(positions, rules.len())
                };
                continue;
            };
            let child = self.nodes.len();
            let mut values = [u64::MAX; FANOUT - 1];
            for (cut, piece) in values.iter_mut().zip(&pieces) {
                *cut = piece.hi;
            }
            self.nodes[node] = Node {
                values,
                child: index(child),
                tag: field as u32,
            };
            for (i, piece) in pieces.into_iter().enumerate() {
                pending += piece.rules.len();
                self.nodes.push(answer(NO_RULE));
                let mut region = region;
                region[field] = (piece.lo, piece.hi);
                queue.push_back(Pending {
                    node: child + i,
                    region,
                    rules: piece.rules,
                    depth: depth + 1,
                });
            }
        }
        true
    }

    /// A leaf to check `len` rules at `positions`: kept in the node when
    /// they fit, else appended to the shared lists.
    fn leaf(&mut self, positions: impl Iterator<Item = u32>, len: usize) -> Node {
        let mut values = [0; FANOUT - 1];
        let child = if len < FANOUT {
            for (value, position) in values.iter_mut().zip(positions) {
                *value = position.into();
            }
            0
        } else {
            self.leaf_rules.extend(positions);
            self.leaf_rules.len() - len
        };
        Node {
            values,
            child: index(child),
            tag: LEAF | index(len),
        }
    }

    /// Memory of the tables, counting `pending` list entries to come.
    fn bytes(&self, pending: usize) -> usize {
        self.nodes.len() * size_of::<Node>() + (self.leaf_rules.len() + pending) * size_of::<u32>()
    }
}

/// A resolved leaf: the lookup's answer is `position`, no check needed;
/// with [`NO_RULE`] also the placeholder of a node still to be built.
fn answer(position: u32) -> Node {
    Node {
        values: [u64::MAX; FANOUT - 1],
        child: position,
        tag: LEAF | ANSWER,
    }
}

/// One child's share of a node's field: `lo..=hi`, and its rules.
struct Piece {
    lo: u64,
    hi: u64,
    rules: Vec<u32>,
}

/// Cuts `rules` into up to [`FANOUT`] pieces along one field: the best
/// binary cut, then the best cut of the fullest piece along the same
/// field, while pieces can still be told apart. None when nothing cuts.
fn split(boxes: &[RuleBox], rules: &[u32], region: &Bounds) -> Option<(usize, Vec<Piece>)> {
    let (field, _) = best_cut(boxes, rules, region, None)?;
    let (lo, hi) = region[field];
    let mut pieces = vec![Piece {
        lo,
        hi,
        rules: rules.to_vec(),
    }];
    while pieces.len() < FANOUT {
        let Some((fullest, piece)) = pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.rules.len() > 1)
            .max_by_key(|(_, p)| p.rules.len())
        else {
            break;
        };
        let mut piece_region = *region;
        piece_region[field] = (piece.lo, piece.hi);
        let Some((_, cut)) = best_cut(boxes, &piece.rules, &piece_region, Some(field)) else {
            break;
        };
        let Piece { lo, hi, rules } = pieces.remove(fullest);
        let bounds = |b: &u32| boxes[*b as usize].bounds[field];
        let left = Piece {
            lo,
            hi: cut,
            rules: rules
                .iter()
                .copied()
                .filter(|b| bounds(b).0 <= cut)
                .collect(),
        };
        let right = Piece {
            lo: cut + 1,
            hi,
            rules: rules.into_iter().filter(|b| bounds(b).1 > cut).collect(),
        };
        pieces.splice(fullest..fullest, [left, right]);
    }
    Some((field, pieces))
}

/// Node and leaf-list positions fit u32: the budget keeps them far below.
fn index(i: usize) -> u32 {
    u32::try_from(i).expect("classifier tables exceed u32 indices")
}

/// Drops every rule after the first that matches all of `region`: none of
/// them can be the first match of a key in it.
fn prune(boxes: &[RuleBox], rules: &mut Vec<u32>, region: &Bounds) {
    if let Some(first) = rules.iter().position(|&b| boxes[b as usize].covers(region)) {
        rules.truncate(first + 1);
    }
}

/// The `(field, cut)` whose larger child holds the fewest rules (ties: the
/// fewest in both), trying every rule endpoint inside `region` of the
/// fields `only` allows; None when no cut separates any rule.
fn best_cut(
    boxes: &[RuleBox],
    rules: &[u32],
    region: &Bounds,
    only: Option<usize>,
) -> Option<(usize, u64)> {
    let n = rules.len();
    let mut best: Option<((usize, usize), usize, u64)> = None;
    let mut los = Vec::with_capacity(n);
    let mut his = Vec::with_capacity(n);
    for (field, &(rlo, rhi)) in region.iter().enumerate() {
        if rlo == rhi || only.is_some_and(|f| f != field) {
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
