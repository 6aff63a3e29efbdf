//! Firewall ACL classification: the first rule that matches a flow key wins.
//!
//! The structure follows HyperSplit (Qi, Xu, Yang, Li, "Packet Classification
//! Algorithms: From Theory to Practice", INFOCOM 2009): every rule is a box of
//! inclusive ranges, one per field; an internal node cuts its region at
//! values of one field, rules that straddle a cut go to both sides, and a
//! leaf holds a short list of rules in priority order that is checked. A
//! lookup is a walk of a few nodes plus a short check, so a large ACL costs
//! a few more levels than a small one, not a linear scan.
//!
//! What is changed from the paper:
//! - Split choice: instead of weighted-segment balancing we try every rule
//!   endpoint of every field and keep the cut that minimises the larger
//!   side's rule count (then the sum, which is the replication); both come
//!   from two sorted endpoint lists and binary search, O(n log n) per node.
//! - 8-way nodes: a node repeats that binary choice on its fullest piece,
//!   along the same field, up to [`FANOUT`] pieces; with 64-bit fields
//!   (addresses as two halves) a node is one cache line and a walk about a
//!   third as deep as the paper's binary one.
//! - Pruning as in HiCuts/HyperCuts: in a node, every rule after the first
//!   one that covers the whole region can never win and is dropped; a leaf
//!   whose first rule covers its region is resolved and answers with no
//!   check at all. Other leaves keep up to [`FANOUT`]` - 1` rule positions
//!   inside the node.
//! - Masks that are not prefixes (IOS wildcards such as 0.0.255.0) are kept
//!   in the tree as the range of their longest leading prefix, a superset;
//!   leaves check every candidate against the real rule, so the answer is
//!   exact, and such rules never prune. [`Stats::inexact_rules`] counts them.
//! - Fields: source and destination (128 bits, IPv4-mapped), source and
//!   destination port (ICMP type and code), protocol, and a one-bit
//!   `established` field (TCP with ACK or RST).
//! - Separable trees from EffiCuts (Vamanan, Voskuilen, Vijaykumar,
//!   SIGCOMM 2010): a rule wide in one address field and narrow in the other
//!   is copied into every piece a cut of the wide field makes, and ACLs mix
//!   `any`-source and `any`-destination rules, so one tree for 10,000
//!   realistic rules held every rule about 50 times (9 MB). When one tree
//!   would outgrow [`SINGLE_TREE_BYTES`], the rules are split by whether
//!   each address is wide (a prefix shorter than an IPv4 /16): at most four
//!   trees, with almost no copies. EffiCuts' 2^5 categories and their
//!   merging are cut down to these two fields, which is where the copies
//!   came from. A lookup walks every tree and keeps the best (lowest) rule
//!   position; later leaf checks stop at it (OVS-style priority pruning).
//! - [`Classifier::classify_batch`] walks [`LANES`] keys through each tree
//!   side by side, all to the tree's full depth with no branch (a leaf is
//!   its own next node), since lanes reach leaves at different depths;
//!   their memory loads overlap. One key stops at its leaf: measured
//!   faster that way, as trees are not balanced.
//! - Bounded memory: nodes are built breadth first, and once a separable
//!   tree's bytes pass a budget proportional to its rule count (or the
//!   depth passes [`MAX_DEPTH`]) the remaining nodes become leaves; lookups
//!   stay exact, only their checks get longer. [`Stats::forced_leaves`]
//!   counts them.

mod build;
pub mod synth;
#[cfg(test)]
mod tests;

/// What a packet is classified by. IPv4 addresses are IPv4-mapped (::ffff:a.b.c.d as u128).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey {
    pub src: u128,
    pub dst: u128,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
}

/// `a.b.c.d` as an IPv4-mapped address (::ffff:a.b.c.d).
pub fn ipv4_mapped(addr: u32) -> u128 {
    0xffff << 32 | u128::from(addr)
}

/// The mask of an IPv4 prefix of `len` bits (at most 32) in IPv4-mapped
/// space: the ::ffff:0:0/96 part is part of the match.
pub fn ipv4_mask(len: u8) -> u128 {
    u128::MAX << (32 - u32::from(len.min(32)))
}

const TCP: u8 = 6;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

impl FlowKey {
    /// IOS `established`: a TCP segment with ACK or RST set.
    pub fn is_established(&self) -> bool {
        self.protocol == TCP && self.tcp_flags & (TCP_ACK | TCP_RST) != 0
    }

    /// The key as one value per tree field: addresses as their high and
    /// low 64 bits, so that nodes compare machine words.
    fn point(&self) -> [u64; FIELDS] {
        let halves = |a: u128| [(a >> 64) as u64, a as u64];
        let [src_hi, src_lo] = halves(self.src);
        let [dst_hi, dst_lo] = halves(self.dst);
        [
            src_hi,
            src_lo,
            dst_hi,
            dst_lo,
            self.src_port.into(),
            self.dst_port.into(),
            self.protocol.into(),
            self.is_established().into(),
        ]
    }
}

/// One rule; for ICMP the port fields hold the type (src_port range) and code (dst_port range), as DPDK's ACL does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Bits set in the mask must equal (masks may be non-contiguous: IOS wildcards).
    pub src: u128,
    pub src_mask: u128,
    pub dst: u128,
    pub dst_mask: u128,
    /// None: any.
    pub protocol: Option<u8>,
    /// Inclusive ranges; (0, 65535) = any.
    pub src_ports: (u16, u16),
    pub dst_ports: (u16, u16),
    /// TCP with ACK or RST set (IOS `established`).
    pub established: bool,
    /// Returned on match.
    pub id: u32,
}

impl Rule {
    /// A rule that matches every packet.
    pub fn any(id: u32) -> Rule {
        Rule {
            src: 0,
            src_mask: 0,
            dst: 0,
            dst_mask: 0,
            protocol: None,
            src_ports: (0, u16::MAX),
            dst_ports: (0, u16::MAX),
            established: false,
            id,
        }
    }

    /// The reference semantics, which leaves also use for their final
    /// check; `&` rather than `&&` because one well-predicted straight line
    /// beats a chain of data-dependent branches.
    pub fn matches(&self, key: &FlowKey) -> bool {
        let in_range = |v: u16, (lo, hi): (u16, u16)| (lo <= v) & (v <= hi);
        ((key.src ^ self.src) & self.src_mask == 0)
            & ((key.dst ^ self.dst) & self.dst_mask == 0)
            & self.protocol.is_none_or(|p| p == key.protocol)
            & in_range(key.src_port, self.src_ports)
            & in_range(key.dst_port, self.dst_ports)
            & (!self.established | key.is_established())
    }
}

/// Tree fields, the order of [`FlowKey::point`].
const FIELDS: usize = 8;

/// Children of an internal node: it cuts one field at up to `FANOUT - 1`
/// values, so a node is one cache line and a walk a third as deep as a
/// binary one.
pub const FANOUT: usize = 8;

/// Deepest node; deeper regions become leaves so a lookup stays bounded.
pub const MAX_DEPTH: usize = 48;

/// Size beyond which one tree gives way to separable trees: about a core's
/// L2 cache here. Each extra tree costs a walk, so one tree is kept as long
/// as it stays in cache (1,000 rules: one 0.9 MB tree classified 2.4 times
/// as fast as four small ones).
pub const SINGLE_TREE_BYTES: usize = 2 << 20;

/// Keys walked side by side by [`Classifier::classify_batch`].
pub const LANES: usize = 8;

/// Marks a leaf in [`Node::tag`]; the other bits are its length, or
/// [`ANSWER`].
const LEAF: u32 = 1 << 31;

/// Marks a resolved leaf, whose `child` is the answer's rule position.
const ANSWER: u32 = 1 << 30;

/// An internal node (`tag` is the field) sends a value to child
/// `child + (how many of values, its cuts, it exceeds)`, unused cuts being
/// u64::MAX. A resolved leaf's answer is `child`. Another leaf holds the
/// positions of the rules to check, in priority order, in `values` when
/// fewer than [`FANOUT`] (saving a dependent load), else in
/// `leaf_rules[child..child + (tag & !LEAF)]`.
#[derive(Clone, Copy, Debug)]
#[repr(align(64))]
struct Node {
    values: [u64; FANOUT - 1],
    child: u32,
    tag: u32,
}

impl Node {
    /// The node after this one (at `here`) on the way to `point`'s leaf; a
    /// leaf is its own next, so that lanes of a batch walk without branches.
    fn next(&self, here: usize, point: &[u64; FIELDS]) -> usize {
        // The mask keeps a leaf's tag in bounds; `above` is then unused.
        let value = point[self.tag as usize % FIELDS];
        let above: usize = self
            .values
            .iter()
            .map(|&cut| usize::from(value > cut))
            .sum();
        if self.tag & LEAF != 0 {
            here
        } else {
            self.child as usize + above
        }
    }
}

/// One separable tree: its root node and the number of steps to its
/// deepest leaf.
#[derive(Clone, Copy, Debug)]
struct Tree {
    root: u32,
    depth: u32,
}

/// Position of no rule: after every real one.
const NO_RULE: u32 = u32::MAX;

/// Shape of a built classifier, for show commands and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rules: usize,
    pub trees: usize,
    pub nodes: usize,
    pub leaves: usize,
    /// Rule positions held by unresolved leaves (rules straddling cuts
    /// repeat).
    pub leaf_entries: usize,
    pub max_depth: usize,
    pub max_leaf: usize,
    /// Rules whose address mask is not a prefix: checked in the leaves only.
    pub inexact_rules: usize,
    /// Nodes made leaves because the memory budget or depth limit was hit.
    pub forced_leaves: usize,
}

/// A built, immutable ACL classifier.
#[derive(Clone, Debug)]
pub struct Classifier {
    trees: Vec<Tree>,
    nodes: Vec<Node>,
    leaf_rules: Vec<u32>,
    rules: Vec<Rule>,
    stats: Stats,
}

impl Classifier {
    /// Rules in priority order (the first that matches wins).
    pub fn build(rules: &[Rule]) -> Classifier {
        build::build(rules)
    }

    /// Id of the first matching rule.
    pub fn classify(&self, key: &FlowKey) -> Option<u32> {
        let point = key.point();
        let mut best = NO_RULE;
        for tree in &self.trees {
            let mut at = tree.root as usize;
            while self.nodes[at].tag & LEAF == 0 {
                at = self.nodes[at].next(at, &point);
            }
            best = self.scan(&self.nodes[at], key, best);
        }
        self.id(best)
    }

    /// Classifies `keys[i]` into `out[i]` for the shorter of the two, without
    /// allocating; lanes of [`LANES`] keys share each tree level so their
    /// cache misses overlap.
    pub fn classify_batch(&self, keys: &[FlowKey], out: &mut [Option<u32>]) {
        for (chunk, results) in keys.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let lanes = chunk.len().min(results.len());
            let mut points = [[0u64; FIELDS]; LANES];
            for (point, key) in points.iter_mut().zip(&chunk[..lanes]) {
                *point = key.point();
            }
            let mut best = [NO_RULE; LANES];
            for tree in &self.trees {
                let mut at = [tree.root as usize; LANES];
                for _ in 0..tree.depth {
                    for (at, point) in at[..lanes].iter_mut().zip(&points) {
                        *at = self.nodes[*at].next(*at, point);
                    }
                }
                for ((best, &at), key) in best.iter_mut().zip(&at[..lanes]).zip(chunk) {
                    *best = self.scan(&self.nodes[at], key, *best);
                }
            }
            for (result, &best) in results.iter_mut().zip(&best[..lanes]) {
                *result = self.id(best);
            }
        }
    }

    /// Bytes held by the trees, their leaf lists and the rule copies.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + self.trees.capacity() * size_of::<Tree>()
            + self.nodes.capacity() * size_of::<Node>()
            + self.leaf_rules.capacity() * size_of::<u32>()
            + self.rules.capacity() * size_of::<Rule>()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The position of the leaf's first rule that matches `key`, if it comes
    /// before `best`; else `best`.
    fn scan(&self, leaf: &Node, key: &FlowKey, best: u32) -> u32 {
        if leaf.tag & ANSWER != 0 {
            return best.min(leaf.child);
        }
        let len = (leaf.tag & !LEAF) as usize;
        if len < FANOUT {
            let inline = leaf.values[..len].iter().map(|&position| position as u32);
            return self.first_match(inline, key, best);
        }
        let start = leaf.child as usize;
        self.first_match(
            self.leaf_rules[start..start + len].iter().copied(),
            key,
            best,
        )
    }

    fn first_match(&self, positions: impl Iterator<Item = u32>, key: &FlowKey, best: u32) -> u32 {
        positions
            .take_while(|&position| position < best)
            .find(|&position| self.rules[position as usize].matches(key))
            .unwrap_or(best)
    }

    fn id(&self, position: u32) -> Option<u32> {
        self.rules.get(position as usize).map(|rule| rule.id)
    }
}
