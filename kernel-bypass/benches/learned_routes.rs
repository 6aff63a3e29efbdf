//! Installing learned (BGP) routes: a million random prefixes (the `fib`
//! bench's length mix) through eight next hops into the global table of a
//! one-interface configuration, the way `Dataplane::change_learned_routes`
//! does it (clone the published table, apply the batch, publish a snapshot
//! copy through an `ArcSwap`), against the full rebuild a commit does (and
//! every BGP installation did before) in the same run:
//! 1. full rebuild: the snapshot compiled with the million learned routes;
//! 2. from empty, as one batch and as batches of 10,000, in prefix order
//!    (as the BGP speaker sends them);
//! 3. one prefix against the million-route table: a next hop replaced, a
//!    new prefix added, a prefix withdrawn (median and 99th percentile);
//! 4. lookups in the batched table and in the rebuilt one, alternated.
//!
//! Run with `cargo bench -p kernel-bypass --bench learned_routes`.

mod route_mix;

use arc_swap::ArcSwap;
use grammar::config::{Config, Interface, NextHop, StaticRoute};
use ipnet::Ipv4Net;
use kernel_bypass::classify::synth::Rng;
use kernel_bypass::snapshot::{InterfaceIds, LearnedRoutes, RouteChange, Snapshot, GLOBAL_TABLE};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUTES: usize = 1_000_000;
const BATCH: usize = 10_000;
const SINGLE_UPDATES: usize = 2_000;
const LOOKUPS: usize = 2_000_000;

fn config() -> Config {
    let mut config = Config::default();
    let eth0 = Interface {
        ipv4_addresses: ["10.0.0.1/24".parse().expect("address")]
            .into_iter()
            .collect(),
        ..Interface::default()
    };
    config.interfaces_mut().insert("eth0".into(), eth0);
    config
}

fn compile(config: &Config, learned: &LearnedRoutes) -> Snapshot {
    let port_of = |name: &str| (name == "eth0").then_some(0);
    Snapshot::compile_after(
        config,
        &mut InterfaceIds::default(),
        &port_of,
        None,
        learned,
    )
    .expect("compile")
}

/// An eBGP route to `prefix` through one of eight neighbours on eth0.
fn announce(prefix: Ipv4Net, neighbour: u32) -> RouteChange {
    RouteChange::Announce(StaticRoute {
        prefix,
        next_hop: NextHop::Address(Ipv4Addr::from(0x0a00_0002 + neighbour % 8)),
        distance: 20,
    })
}

/// What `Dataplane::change_learned_routes` does with a batch.
fn install(published: &ArcSwap<Snapshot>, changes: &[RouteChange]) {
    let snap = published.load();
    let mut table = snap.table(GLOBAL_TABLE).clone();
    table.apply_learned(changes).expect("apply");
    published.store(Arc::new(snap.with_table(GLOBAL_TABLE, table)));
}

fn time<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let result = work();
    (result, start.elapsed())
}

/// Median and 99th percentile of `count` timed single-change installs.
fn single_updates(
    published: &ArcSwap<Snapshot>,
    count: usize,
    mut change: impl FnMut(usize) -> RouteChange,
) -> (f64, f64) {
    let mut micros: Vec<f64> = (0..count)
        .map(|i| {
            let change = [change(i)];
            time(|| install(published, &change)).1.as_secs_f64() * 1e6
        })
        .collect();
    micros.sort_by(f64::total_cmp);
    (micros[count / 2], micros[count * 99 / 100])
}

/// Lookups per second (millions) in the global table of `snap`.
fn lookup_rate(snap: &Snapshot, addrs: &[Ipv4Addr]) -> f64 {
    let table = snap.table(GLOBAL_TABLE);
    let best = (0..3)
        .map(|_| time(|| black_box(addrs.iter().filter(|&&a| table.route(a).is_some()).count())).1)
        .min()
        .unwrap_or(Duration::MAX);
    addrs.len() as f64 / best.as_secs_f64() / 1e6
}

fn main() {
    let mut rng = Rng::new(0x6267_705f_6669_6221);
    let routes = route_mix::random_routes(&mut rng, ROUTES + SINGLE_UPDATES);
    let (routes, spare) = routes.split_at(ROUTES);
    let mut sorted = routes.to_vec();
    sorted.sort();
    let changes: Vec<RouteChange> = (sorted.iter())
        .map(|&(prefix, value)| announce(prefix, value))
        .collect();
    let config = config();

    let mut learned = LearnedRoutes::default();
    learned.apply(None, &changes);
    let (rebuilt, rebuild) = time(|| compile(&config, &learned));
    println!(
        "learned routes: full rebuild (commit) with {} learned routes: {:.3} s",
        rebuilt.table(GLOBAL_TABLE).len(),
        rebuild.as_secs_f64()
    );

    let empty = compile(&config, &LearnedRoutes::default());
    let published = ArcSwap::from_pointee(empty.clone());
    let ((), one_batch) = time(|| install(&published, &changes));
    println!(
        "learned routes: {} installed from empty in one batch: {:.3} s ({:.2}x the rebuild)",
        published.load().table(GLOBAL_TABLE).len(),
        one_batch.as_secs_f64(),
        one_batch.as_secs_f64() / rebuild.as_secs_f64(),
    );
    let batched = ArcSwap::from_pointee(empty);
    let ((), in_batches) = time(|| {
        for batch in changes.chunks(BATCH) {
            install(&batched, batch);
        }
    });
    println!(
        "learned routes: {} installed from empty in batches of {BATCH}: {:.3} s ({:.2}x the rebuild)",
        batched.load().table(GLOBAL_TABLE).len(),
        in_batches.as_secs_f64(),
        in_batches.as_secs_f64() / rebuild.as_secs_f64(),
    );

    let installed = |i: usize| routes[rng_index(i, ROUTES)].0;
    let (replace, replace99) = single_updates(&published, SINGLE_UPDATES, |i| {
        announce(installed(i), i as u32 + 1)
    });
    let (add, add99) = single_updates(&published, SINGLE_UPDATES, |i| announce(spare[i].0, 0));
    let (withdraw, withdraw99) = single_updates(&published, SINGLE_UPDATES, |i| {
        RouteChange::Withdraw(spare[i].0)
    });
    println!(
        "learned routes: one prefix against the {}-route table, median (p99): next hop replaced \
         {replace:.1} us ({replace99:.1}), added {add:.1} us ({add99:.1}), withdrawn \
         {withdraw:.1} us ({withdraw99:.1}); the rebuild {:.0} us",
        published.load().table(GLOBAL_TABLE).len(),
        rebuild.as_secs_f64() * 1e6,
    );

    let addrs: Vec<Ipv4Addr> = (0..LOOKUPS)
        .map(|_| {
            let (prefix, _) = routes[rng.below(ROUTES as u32) as usize];
            let host_bits = u32::MAX
                .checked_shr(u32::from(prefix.prefix_len()))
                .unwrap_or(0);
            Ipv4Addr::from(u32::from(prefix.network()) | (rng.next_u64() as u32 & host_bits))
        })
        .collect();
    let (mut in_batched, mut in_rebuilt) = (0f64, 0f64);
    for _ in 0..2 {
        in_batched = in_batched.max(lookup_rate(&published.load(), &addrs));
        in_rebuilt = in_rebuilt.max(lookup_rate(&rebuilt, &addrs));
    }
    println!(
        "learned routes: lookups (route entry included) in the batched table {in_batched:.1} M/s, \
         in the rebuilt one {in_rebuilt:.1} M/s",
    );
}

/// A spread-out index below `count` for the `i`-th update.
fn rng_index(i: usize, count: usize) -> usize {
    i.wrapping_mul(0x9e37_79b9) % count
}
