//! The network elements of the packet path. Each compiles its section of
//! a committed configuration into nodes at the feature points of the new
//! snapshot (`crate::features`), keeps its own state and counters across
//! commits, and brings its own show and clear commands. The dataplane
//! calls them through [`DataplaneElement`]; adding one is a module and a
//! line in [`registry`].

use crate::bridge::Bridge;
use crate::control_plane::ControlPlane;
use crate::dhcp::{Dhcp, DhcpElement};
use crate::firewall::Firewall;
use crate::lb::LoadBalancer;
use crate::nat::Nat;
use crate::pipeline::Shared;
use crate::snapshot::Snapshot;
use crate::state_sync::StateSyncElement;
use crate::tcp_mss::TcpMssClamp;
use crate::vrrp::Vrrp;
use crate::wireguard::WireGuard;
use grammar::config::Config;
use grammar::Args;
use std::sync::Arc;

/// A `show` command's text from its arguments.
pub type ShowFn = Box<dyn Fn(&Args) -> String + Send + Sync>;
/// An EXEC command's output, or a `%` error.
pub type ExecFn = Box<dyn Fn(&Args) -> Result<String, String> + Send + Sync>;

/// A command an element adds to the CLI.
pub enum ElementCommand {
    /// `show SYNTAX`: the text to print.
    Show {
        syntax: &'static str,
        help: &'static [&'static str],
        run: ShowFn,
    },
    /// A privileged EXEC command (`clear ...`): output or a `%` error.
    Exec {
        syntax: &'static str,
        help: &'static [&'static str],
        run: ExecFn,
    },
}

/// One network element of the packet path.
pub trait DataplaneElement: Send + Sync {
    /// Compiles its section of `config` into `snap` (whose interfaces and
    /// route tables are built): nodes at feature points and their tables.
    /// Err refuses the commit with the message.
    fn compile(&self, config: &Config, snap: &mut Snapshot) -> Result<(), String>;

    /// Its show and clear commands.
    fn commands(self: Arc<Self>) -> Vec<ElementCommand>;

    /// The sizes of the tables it keeps, for metrics (quick: no scan).
    fn table_sizes(&self, _out: &mut Vec<crate::stats::TableSize>) {}
}

/// The packet path's elements; the ones a control-plane service talks to
/// also by name.
pub struct Elements {
    pub all: Vec<Arc<dyn DataplaneElement>>,
    /// Its probes run on the appliance's own stack.
    pub load_balancer: Arc<LoadBalancer>,
    /// Its leases change the configuration the dataplane runs.
    pub dhcp: Arc<Dhcp>,
    /// The HA pair's state sync follows its routers' states.
    pub vrrp: Arc<Vrrp>,
}

/// Every packet-path element, created once per dataplane (`shared` gives
/// them the workers' clock and log).
pub fn registry(shared: &Arc<Shared>) -> Elements {
    let load_balancer = Arc::new(LoadBalancer::new(shared.clone()));
    let dhcp = Arc::new(Dhcp::new(shared.clone()));
    let vrrp = Arc::new(Vrrp::new(shared.clone()));
    Elements {
        all: vec![
            Arc::new(ControlPlane::new(shared.clone())),
            Arc::new(Firewall::new(shared.clone())),
            load_balancer.clone(),
            Arc::new(Nat::new(shared.clone())),
            vrrp.clone(),
            Arc::new(TcpMssClamp),
            Arc::new(WireGuard::new()),
            Arc::new(Bridge::new(shared.clone())),
            Arc::new(DhcpElement(dhcp.clone())),
            Arc::new(StateSyncElement(shared.sync.clone())),
        ],
        load_balancer,
        dhcp,
        vrrp,
    }
}
