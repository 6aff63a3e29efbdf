//! The dataplane as the rest of the binary sees it: start it on a config,
//! apply committed configs (validated, compiled, published without stopping
//! traffic), read show output, reach the appliance's own sockets, stop it.

use crate::counters::WorkerCounters;
use crate::elements::{self, DataplaneElement, ElementCommand};
use crate::io::Backend;
use crate::local::{self, LocalStack};
use crate::pipeline::{LocalHandle, Pipeline, Shared};
use crate::rates::{self, Rates};
use crate::show;
use crate::snapshot::{
    InterfaceIds, LearnedRoutes, PortId, RouteChange, RouteTable, Snapshot, GLOBAL_TABLE,
};
use crate::spread;
use crate::worker::{self, Worker};
use arc_swap::ArcSwap;
use grammar::config::Config;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug)]
pub struct DataplaneOptions {
    pub backend: Backend,
    /// Worker threads, each with its own port on every interface. More than
    /// one needs af-packet (the workers share an interface's traffic
    /// through a fanout group) or af-xdp (a worker per rx queue, so every
    /// interface must offer a queue per worker); see `spread`.
    pub workers: usize,
}

impl Default for DataplaneOptions {
    fn default() -> Self {
        DataplaneOptions {
            backend: Backend::AfPacket,
            workers: 1,
        }
    }
}

/// Control-side state, changed only under the lock by `apply`.
struct Control {
    ids: InterfaceIds,
    /// Attached physical interfaces and their port index (never reused).
    ports: BTreeMap<String, PortId>,
    /// What part of each attached interface's traffic each worker serves.
    shares: BTreeMap<String, Vec<String>>,
    next_port: usize,
    /// The configuration of the published snapshot (it passed the checks).
    applied: Config,
    /// The routes the control plane's protocols handed over.
    learned: LearnedRoutes,
    /// What the snapshot was compiled from: `applied` with the DHCP leases.
    effective: Config,
    /// Attached interfaces whose link (carrier) is down: down in the
    /// snapshot, as if not attached.
    links_down: BTreeSet<String>,
}

pub struct Dataplane {
    backend: Backend,
    control: Mutex<Control>,
    snapshots: Arc<ArcSwap<Snapshot>>,
    shared: Arc<Shared>,
    workers: Vec<Worker>,
    stop: Arc<AtomicBool>,
    local: LocalStack,
    /// The packet path's network elements (`crate::elements`).
    elements: Vec<Arc<dyn DataplaneElement>>,
    load_balancer: Arc<crate::lb::LoadBalancer>,
    dhcp: Arc<crate::dhcp::Dhcp>,
    vrrp: Arc<crate::vrrp::Vrrp>,
    /// Interfaces' 5-minute rates, sampled by a thread of their own.
    rates: Arc<Rates>,
}

impl Dataplane {
    /// Validates the config, opens a port for every physical interface it
    /// names (not shut down) and starts the workers.
    pub fn start(
        config: &Config,
        options: DataplaneOptions,
        runtime: tokio::runtime::Handle,
    ) -> Result<Dataplane, String> {
        if options.workers == 0 {
            return Err("at least one worker is needed".to_string());
        }
        if options.workers > 1 && options.backend == Backend::Tap {
            return Err(format!(
                "{} workers need the af-packet or af-xdp backend (tap cannot share an interface)",
                options.workers
            ));
        }
        let (local, local_port) = local::local_stack(runtime)
            .map_err(|e| format!("cannot start the local stack: {e}"))?;
        let local_port = Arc::new(local_port);
        let snapshots = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let shared = Arc::new(Shared::default());
        let elements::Elements {
            all: elements,
            load_balancer,
            dhcp,
            vrrp,
        } = elements::registry(&shared);
        // Quick and lock-free, as the stack requires of its selector.
        let (routes, neighbors) = (snapshots.clone(), shared.clone());
        local.set_source_selector(Arc::new(move |vrf, dst| {
            neighbors.local_source(&routes.load(), vrf, dst)
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(options.workers);
        // Several workers get a CPU each (round robin over the allowed ones);
        // a single worker is left to the scheduler, next to everything else.
        let cpus = if options.workers > 1 {
            worker::allowed_cpus()
        } else {
            Vec::new()
        };
        for index in 0..options.workers {
            let cpu = (!cpus.is_empty()).then(|| cpus[index % cpus.len()]);
            let counters = Arc::new(WorkerCounters::default());
            let handle = LocalHandle {
                port: local_port.clone(),
                drains: index == 0,
            };
            let pipeline = Pipeline::new(shared.clone(), counters.clone(), Some(handle));
            let spawned = Worker::spawn(
                index,
                cpu,
                pipeline,
                counters,
                snapshots.clone(),
                stop.clone(),
            );
            match spawned {
                Ok(w) => workers.push(w),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    workers.into_iter().for_each(Worker::join);
                    return Err(format!("cannot start a worker thread: {e}"));
                }
            }
        }
        let dataplane = Dataplane {
            backend: options.backend,
            control: Mutex::new(Control {
                ids: InterfaceIds::default(),
                ports: BTreeMap::new(),
                shares: BTreeMap::new(),
                next_port: 0,
                applied: Config::default(),
                learned: LearnedRoutes::default(),
                effective: Config::default(),
                links_down: BTreeSet::new(),
            }),
            snapshots,
            shared,
            workers,
            stop,
            local,
            elements,
            load_balancer,
            dhcp,
            vrrp,
            rates: Arc::default(),
        };
        // On an error from here on, dropping the dataplane stops the workers.
        rates::spawn_sampler(
            dataplane.rates.clone(),
            dataplane.counters(),
            dataplane.stop.clone(),
        )
        .map_err(|e| format!("cannot start the rate sampler: {e}"))?;
        dataplane.apply(config)?;
        Ok(dataplane)
    }

    /// Applies a committed config: opens ports for newly named physical
    /// interfaces, compiles the snapshot and publishes it; workers switch
    /// between batches. On Err nothing changed.
    pub fn apply(&self, config: &Config) -> Result<(), String> {
        let mut control = self
            .control
            .lock()
            .map_err(|_| "dataplane control poisoned".to_string())?;
        self.apply_locked(&mut control, config)
    }

    /// Returns when a DHCP lease was granted, moved or ended; then
    /// [`Dataplane::apply_leases`] makes the dataplane follow.
    pub async fn lease_changed(&self) {
        self.dhcp.changed().await
    }

    /// Applies the current configuration again with the DHCP leases as
    /// they are now.
    pub fn apply_leases(&self) -> Result<(), String> {
        let mut control = self
            .control
            .lock()
            .map_err(|_| "dataplane control poisoned".to_string())?;
        let config = control.applied.clone();
        self.apply_locked(&mut control, &config)
    }

    fn apply_locked(&self, control: &mut Control, config: &Config) -> Result<(), String> {
        // Only what changed since the last applied configuration is checked
        // again, and its route tables are kept when their inputs are the same.
        let problems = grammar::validate_change(&control.applied, config);
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        let wanted = Snapshot::attached_names(config);
        let mut opened = Vec::new();
        let mut notes = Vec::new();
        for name in wanted.iter().filter(|n| !control.ports.contains_key(*n)) {
            let index = PortId::try_from(control.next_port + opened.len())
                .map_err(|_| "too many ports opened".to_string())?;
            let spread = spread::open_ports(self.backend, name, self.workers.len())?;
            notes.extend(spread.notes);
            opened.push((name.clone(), index, spread.ports, spread.shares));
        }
        let mut port_ids = control.ports.clone();
        port_ids.extend(
            opened
                .iter()
                .map(|(name, index, ..)| (name.clone(), *index)),
        );
        let port_of = |name: &str| port_ids.get(name).copied();
        let (snap, effective) = self.compile(control, config, &port_of)?;
        // Committed from here on: ports first, so a worker that sees the
        // new snapshot also finds its ports.
        let stale: Vec<String> = control
            .ports
            .keys()
            .filter(|n| !wanted.contains(n))
            .cloned()
            .collect();
        for name in stale {
            control.shares.remove(&name);
            if let Some(index) = control.ports.remove(&name) {
                self.workers
                    .iter()
                    .for_each(|w| w.change_port((index, None)));
            }
        }
        control.next_port += opened.len();
        for (name, index, ports, shares) in opened {
            control.shares.insert(name.clone(), shares);
            control.ports.insert(name, index);
            for (w, port) in self.workers.iter().zip(ports) {
                w.change_port((index, Some(port)));
            }
        }
        self.publish(control, config, (snap, effective));
        notes.into_iter().for_each(|line| self.log(line));
        Ok(())
    }

    /// Reads the link state (carrier) of every attached interface and,
    /// when one changed, publishes the snapshot again with the interfaces
    /// whose link is down taken down (VRRP then stops on them, and tracking
    /// routers lower their priority). Returns the changes: (interface, up).
    pub fn follow_links(&self) -> Result<Vec<(String, bool)>, String> {
        let mut control = self
            .control
            .lock()
            .map_err(|_| "dataplane control poisoned".to_string())?;
        let control = &mut *control;
        let down: BTreeSet<String> = (control.ports.keys())
            .filter(|name| carrier(name) == Some(false))
            .cloned()
            .collect();
        if down == control.links_down {
            return Ok(Vec::new());
        }
        let changes = (down.symmetric_difference(&control.links_down))
            .map(|name| (name.clone(), !down.contains(name)))
            .collect();
        let before = std::mem::replace(&mut control.links_down, down);
        let config = control.applied.clone();
        if let Err(e) = self.apply_locked(control, &config) {
            control.links_down = before; // tried again at the next call
            return Err(e);
        }
        Ok(changes)
    }

    /// Applies a batch of changes to the learned routes (BGP's best
    /// paths) of table `vrf` (None: the global table) and publishes the
    /// table changed, without a rebuild (`crate::route_table`): the cost
    /// is that of the routes changed, not of the table. A VRF that does
    /// not exist (yet) keeps them for when it does. On Err nothing changed.
    pub fn change_learned_routes(
        &self,
        vrf: Option<&str>,
        changes: &[RouteChange],
    ) -> Result<(), String> {
        let mut control = self
            .control
            .lock()
            .map_err(|_| "dataplane control poisoned".to_string())?;
        let published = self.snapshots.load();
        if let Some(id) = published.vrf_id(vrf) {
            let mut table = published.table(id).clone();
            table.apply_learned(changes)?;
            self.snapshots
                .store(Arc::new(published.with_table(id, table)));
        }
        control.learned.apply(vrf, changes);
        Ok(())
    }

    /// The snapshot of `config` with the DHCP leases and the learned
    /// routes, its elements' parts included, sharing what it can with the
    /// published one; and the configuration it was compiled from.
    fn compile(
        &self,
        control: &mut Control,
        config: &Config,
        port_of: &dyn Fn(&str) -> Option<PortId>,
    ) -> Result<(Snapshot, Config), String> {
        let previous = self.snapshots.load();
        let effective = self.dhcp.with_leases(config);
        let links_down = &control.links_down;
        let attached = |name: &str| port_of(name).filter(|_| !links_down.contains(name));
        let mut snap = Snapshot::compile_after(
            &effective,
            &mut control.ids,
            &attached,
            Some((&control.effective, &previous)),
            &control.learned,
        )?;
        for iface in snap.interfaces.iter_mut().flatten() {
            if links_down.contains(&iface.name) {
                iface.down_reason = Some(LINK_DOWN);
            }
        }
        for element in &self.elements {
            element.compile(&effective, &mut snap)?;
        }
        Ok((snap, effective))
    }

    /// Makes `snap` (compiled from `config` with the leases: `effective`)
    /// the one the workers use.
    fn publish(
        &self,
        control: &mut Control,
        config: &Config,
        (snap, effective): (Snapshot, Config),
    ) {
        self.local.set_addresses(&snap.own_addresses());
        self.local.set_tables(snap.own_tables());
        (self.shared.log).set_kept(config.management.log_buffer() as usize);
        (self.shared.log).set_level(config.management.buffered_level());
        self.snapshots.store(Arc::new(snap));
        control.applied = config.clone();
        control.effective = effective;
    }

    fn counters(&self) -> Vec<Arc<WorkerCounters>> {
        self.workers.iter().map(|w| w.counters.clone()).collect()
    }

    /// `show interfaces [NAME]`: state, addresses, rates, traffic and
    /// drops by reason.
    pub fn show_interfaces(&self, name: Option<&str>) -> String {
        show::interfaces(&self.snapshots.load(), &self.counters(), &self.rates, name)
    }

    /// The interface lines of `show version`.
    pub fn interface_counts(&self) -> String {
        show::interface_counts(&self.snapshots.load())
    }

    /// `show ip interface brief`.
    pub fn show_ip_interface_brief(&self) -> String {
        show::ip_interface_brief(&self.snapshots.load())
    }

    /// `show ipv6 interface brief`.
    pub fn show_ipv6_interface_brief(&self) -> String {
        show::ipv6_interface_brief(&self.snapshots.load())
    }

    /// `show ip arp [vrf NAME]`.
    pub fn show_ip_arp(&self, vrf: Option<&str>) -> String {
        show::ip_arp(&self.snapshots.load(), &self.shared, vrf)
    }

    /// `show ip route [vrf NAME]`.
    pub fn show_ip_route(&self, vrf: Option<&str>) -> String {
        show::ip_route(&self.snapshots.load(), vrf)
    }

    /// `f` of the published global table (BGP's `network` and
    /// `redistribute` look there).
    pub fn with_global_table<R>(&self, f: impl FnOnce(&RouteTable) -> R) -> R {
        f(self.snapshots.load().table(GLOBAL_TABLE))
    }

    /// `show ipv6 route [vrf NAME]`.
    pub fn show_ipv6_route(&self, vrf: Option<&str>) -> String {
        show::ipv6_route(&self.snapshots.load(), vrf)
    }

    /// The show and clear commands of the packet path's elements.
    pub fn element_commands(&self) -> Vec<ElementCommand> {
        self.elements
            .iter()
            .flat_map(|e| e.clone().commands())
            .collect()
    }

    /// `show features`.
    pub fn show_features(&self) -> String {
        self.snapshots.load().features.describe()
    }

    /// `show vrf`.
    pub fn show_vrf(&self) -> String {
        show::vrfs(&self.snapshots.load())
    }

    /// `show ipv6 neighbors`.
    pub fn show_ipv6_neighbors(&self) -> String {
        show::ipv6_neighbors(&self.snapshots.load(), &self.shared)
    }

    /// `show arp`.
    pub fn show_arp(&self) -> String {
        show::arp(&self.snapshots.load(), &self.shared)
    }

    /// `show vxlan`: tunnels, remotes and learned MACs.
    pub fn show_vxlan(&self) -> String {
        show::vxlan(&self.snapshots.load(), &self.shared)
    }

    /// Every figure a metrics scrape reports (`crate::stats`).
    pub fn stats(&self) -> crate::stats::DataplaneStats {
        let mut tables = Vec::new();
        self.elements
            .iter()
            .for_each(|e| e.table_sizes(&mut tables));
        crate::stats::DataplaneStats::read(&self.snapshots.load(), &self.counters(), tables)
    }

    /// Adds a line to the dataplane's log (`show logging`, remote syslog)
    /// for a control-plane event (a commit, a clock synchronised).
    pub fn log(&self, line: String) {
        self.shared.log.record(self.shared.now_secs(), || line);
    }

    /// New log lines as they are logged.
    pub fn subscribe_log(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.shared.log.subscribe()
    }

    /// `show dataplane workers`: each worker's CPU, and per interface the
    /// share of its traffic the worker serves and its packet counts.
    pub fn show_workers(&self) -> String {
        let Ok(control) = self.control.lock() else {
            return "% dataplane control poisoned\n".to_string();
        };
        let workers: Vec<_> = self
            .workers
            .iter()
            .map(|w| (w.cpu, w.counters.clone()))
            .collect();
        show::workers(&self.snapshots.load(), &workers, &control.shares)
    }

    /// `show counters`: non-zero per-node counters summed over workers.
    pub fn show_counters(&self) -> String {
        show::counters(&self.counters())
    }

    /// The appliance's own sockets on this dataplane.
    /// The load balancer, for the service that runs its probes.
    /// The VRRP routers (the HA pair's sync follows their states).
    pub fn vrrp(&self) -> Arc<crate::vrrp::Vrrp> {
        self.vrrp.clone()
    }

    /// The HA pair's synchronised tables (`crate::state_sync`).
    pub fn state_sync(&self) -> Arc<crate::state_sync::StateSync> {
        self.shared.sync.clone()
    }

    /// The clock the tables' entries are stamped by, in seconds.
    pub fn now_secs(&self) -> u32 {
        self.shared.now_secs()
    }

    pub fn load_balancer(&self) -> Arc<crate::lb::LoadBalancer> {
        self.load_balancer.clone()
    }

    pub fn local_stack(&self) -> LocalStack {
        self.local.clone()
    }

    /// Stops the workers and closes every port.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers.drain(..) {
            w.join();
        }
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The `down_reason` of an attached interface whose link is down.
const LINK_DOWN: &str = "link down";

/// Whether `ifname`'s link is up (its carrier), if the kernel says.
fn carrier(ifname: &str) -> Option<bool> {
    let state = std::fs::read_to_string(format!("/sys/class/net/{ifname}/carrier")).ok()?;
    Some(state.trim() == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataplane_is_shareable_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Dataplane>();
    }

    #[test]
    fn worker_counts_the_backend_cannot_serve_are_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let start = |backend, workers| {
            Dataplane::start(
                &Config::default(),
                DataplaneOptions { backend, workers },
                runtime.handle().clone(),
            )
            .err()
        };
        assert!(start(Backend::AfPacket, 0).is_some());
        let err = start(Backend::Tap, 2).expect("refused");
        assert!(err.contains("af-packet or af-xdp"), "{err}");
        for backend in [Backend::AfPacket, Backend::AfXdp] {
            assert!(start(backend, 2).is_none(), "an empty config needs no port");
        }
    }

    #[test]
    fn invalid_configs_are_refused_before_any_port_opens() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let dataplane = Dataplane::start(
            &Config::default(),
            DataplaneOptions::default(),
            runtime.handle().clone(),
        )
        .expect("empty config");
        let mut config = Config::default();
        for name in ["ghnope0", "ghnope1"] {
            let mut i = grammar::config::Interface::default();
            i.ipv4_addresses.insert("10.0.0.1/24".parse().unwrap());
            config.interfaces_mut().insert(name.into(), i);
        }
        let err = dataplane.apply(&config).expect_err("overlapping subnets");
        assert!(err.contains("overlaps"), "{err}");
        assert!(dataplane.show_interfaces(None).is_empty());
    }
}
