//! The appliance itself: the shell engine wired to the dataplane, with the
//! CLI on the console and over SSH. Used by the image's init and by hosted mode.

use crate::install::trial::{self, Trial};
use crate::ssh;
use crate::watchdog::Watchdog;
use grammar::config::Config;
use kernel_bypass::elements::ElementCommand;
use kernel_bypass::io::Backend;
use kernel_bypass::local::{serve_echo, serve_status};
use kernel_bypass::{Dataplane, DataplaneOptions};
use russh::keys::PrivateKey;
use shell::{run_stream, run_terminal, Session, Shell, ShellBuilder};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

/// TCP port of the built-in status page on the appliance's own addresses.
pub const STATUS_PORT: u16 = 80;
/// TCP port of the built-in echo service.
pub const ECHO_PORT: u16 = 7;

/// What the host system lets the CLI do besides configuring it.
pub struct PowerControl {
    pub reload: Arc<dyn Fn() + Send + Sync>,
    pub poweroff: Arc<dyn Fn() + Send + Sync>,
}

pub struct ApplianceOptions {
    /// Where `write memory` saves and the startup config is read from.
    pub startup_config: PathBuf,
    pub backend: Backend,
    /// Forwarding worker threads.
    pub workers: usize,
    pub power: Option<PowerControl>,
    /// What `show version` names as the system image (the boot slot).
    pub image: String,
    /// The configuration used when the startup file does not exist.
    pub factory_config: Option<&'static str>,
    /// Fed once the appliance has started (the image's softdog).
    pub watchdog: Option<Watchdog>,
}

/// The image's configuration until one is saved: the first NIC asks DHCP,
/// so a box on a network with a DHCP server (QEMU's user network) is
/// reachable at once.
pub const FACTORY_CONFIG: &str = "interface eth0\n ip address dhcp\n";

/// A running appliance: the dataplane, the shell all sessions share, and
/// the async runtime its own services (status, echo) run on.
pub struct Appliance {
    shell: Arc<Shell>,
    _dataplane: Arc<Dataplane>,
    _runtime: tokio::runtime::Runtime,
}

impl Appliance {
    /// Starts the dataplane, loads the startup config into it through the
    /// shell's commit hook, and starts the built-in services and the SSH
    /// server. Returns the appliance and the startup report (problems to
    /// show the operator).
    pub fn start(mut options: ApplianceOptions) -> Result<(Appliance, Vec<String>), String> {
        let (host_key, key_problem) = host_key(&options.startup_config)?;
        let watchdog = options.watchdog.take();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gatehouse-ctl")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the control runtime: {e}"))?;
        let dataplane = Arc::new(Dataplane::start(
            &Config::default(),
            DataplaneOptions {
                backend: options.backend,
                workers: options.workers,
            },
            runtime.handle().clone(),
        )?);
        let ssh_sessions = ssh::Sessions::default();
        // The committed configuration, for the services that follow it.
        let (committed, config) = watch::channel(Config::default());
        let ntp = crate::ntp::Ntp::default();
        let iot = crate::iot::Gateway::default();
        let bgp = crate::bgp::Bgp::default();
        let redundancy = crate::redundancy::Redundancy::default();
        let cpu = crate::processes::CpuMonitor::default();
        runtime.spawn(crate::processes::sample(cpu.clone()));
        let services = ServiceCommands {
            ssh_sessions: &ssh_sessions,
            ntp: &ntp,
            iot: &iot,
            bgp: &bgp,
            redundancy: &redundancy,
            cpu: &cpu,
            runtime: runtime.handle().clone(),
        };
        let (shell, mut report) = build_shell(&dataplane, options, &host_key, committed, services)
            .map_err(|e| format!("cannot register the dataplane's commands: {e}"))?;
        report.extend(key_problem);
        if !shell.has_administrator() {
            report.extend(
                ssh::FIRST_BOOT_HINT
                    .lines()
                    .map(|l| l.trim_end().to_string()),
            );
        }
        let stack = dataplane.local_stack();
        let status_shell = Arc::downgrade(&shell);
        runtime.spawn(serve_echo(stack.clone(), ECHO_PORT));
        runtime.spawn(crate::slb_probes::serve(
            stack.clone(),
            dataplane.load_balancer(),
        ));
        runtime.spawn(crate::metrics::serve(
            stack.clone(),
            dataplane.clone(),
            config.clone(),
        ));
        runtime.spawn(crate::syslog::serve(
            stack.clone(),
            dataplane.clone(),
            config.clone(),
        ));
        runtime.spawn(crate::ntp::serve(
            stack.clone(),
            dataplane.clone(),
            ntp,
            config.clone(),
        ));
        runtime.spawn(crate::iot::serve(
            stack.clone(),
            dataplane.clone(),
            iot,
            config.clone(),
        ));
        runtime.spawn(crate::bgp::serve(
            stack.clone(),
            dataplane.clone(),
            bgp,
            config.clone(),
        ));
        runtime.spawn(crate::redundancy::serve(
            stack.clone(),
            dataplane.clone(),
            redundancy,
            config.clone(),
        ));
        runtime.spawn(ssh::serve(
            stack.clone(),
            ssh::SSH_PORT,
            shell.clone(),
            host_key,
            ssh_sessions,
        ));
        runtime.spawn(follow_leases(dataplane.clone()));
        runtime.spawn(follow_links(dataplane.clone()));
        runtime.spawn(crate::dataplane_events::watch(dataplane.clone()));
        if let Some(watchdog) = watchdog {
            runtime.spawn(watchdog.feed());
        }
        runtime.spawn(serve_status(stack, STATUS_PORT, move || {
            status_shell
                .upgrade()
                .map(|shell| status_page(&shell))
                .unwrap_or_default()
        }));
        let appliance = Appliance {
            shell,
            _dataplane: dataplane,
            _runtime: runtime,
        };
        Ok((appliance, report))
    }

    /// Runs one CLI session on this process's standard input and output:
    /// with line editing on a terminal, as a plain byte stream otherwise.
    pub fn console_session(&self, plain: bool) -> io::Result<()> {
        let mut session = Session::new(self.shell.clone(), "console", false);
        if !plain && io::stdin().is_terminal() {
            run_terminal(&mut session).map_err(io::Error::other)
        } else {
            run_stream(&mut session, io::stdin(), io::stdout())
        }
    }
}

/// The SSH host key kept beside the startup config; if it cannot be read or
/// saved, a key for this run only and the problem to report.
fn host_key(startup: &Path) -> Result<(PrivateKey, Option<String>), String> {
    match ssh::load_or_create(&ssh::host_key_path(startup)) {
        Ok(key) => Ok((key, None)),
        Err(problem) => {
            let key = ssh::random_key()?;
            Ok((
                key,
                Some(format!("% {problem}: using a key for this run only")),
            ))
        }
    }
}

/// The control-plane services that bring commands of their own.
struct ServiceCommands<'a> {
    ssh_sessions: &'a ssh::Sessions,
    ntp: &'a crate::ntp::Ntp,
    iot: &'a crate::iot::Gateway,
    bgp: &'a crate::bgp::Bgp,
    redundancy: &'a crate::redundancy::Redundancy,
    cpu: &'a crate::processes::CpuMonitor,
    /// Where `ping` and `traceroute` run.
    runtime: tokio::runtime::Handle,
}

fn build_shell(
    dataplane: &Arc<Dataplane>,
    options: ApplianceOptions,
    host_key: &PrivateKey,
    committed: watch::Sender<Config>,
    services: ServiceCommands<'_>,
) -> Result<(Arc<Shell>, Vec<String>), grammar::SyntaxError> {
    let dp = dataplane.clone();
    let about_dp = dataplane.clone();
    let image = options.image;
    let mut builder = ShellBuilder::new().startup_path(options.startup_config);
    if let Some(factory) = options.factory_config {
        builder = builder.factory_config(factory);
    }
    builder = builder
        .hook(move |config: &Config| {
            dp.apply(config)?;
            committed.send_replace(config.clone());
            Ok(())
        })
        .on_commit({
            let dp = dataplane.clone();
            move |r| {
                dp.log(format!(
                    "%SYS-5-CONFIG_I: Configured by {} ({}, commit {})",
                    r.by, r.label, r.id
                ))
            }
        })
        .version(trial::release_of_this_image())
        .login_notice(trial::fallback_notice)
        .about(move || about(&image, &about_dp));
    builder = ssh::register_commands(builder, host_key, services.ssh_sessions)?;
    builder = crate::ntp::register_commands(builder, services.ntp)?;
    builder = crate::iot::register_commands(builder, services.iot)?;
    builder = crate::bgp::register_commands(builder, services.bgp)?;
    builder = crate::redundancy::register_commands(builder, services.redundancy)?;
    builder = crate::processes::register_commands(builder, services.cpu, dataplane)?;
    let stack = dataplane.local_stack();
    builder = crate::ping::register_commands(builder, stack.clone(), services.runtime.clone())?;
    let reload = options.power.as_ref().map(|power| power.reload.clone());
    builder = crate::install::register_commands(builder, stack, services.runtime, reload)?;
    for show in kernel_bypass::commands::SHOWS {
        let dp = dataplane.clone();
        builder = builder.show(show.syntax, show.help, move |args| (show.render)(&dp, args))?;
    }
    for command in dataplane.element_commands() {
        builder = match command {
            ElementCommand::Show { syntax, help, run } => builder.show(syntax, help, run)?,
            ElementCommand::Exec { syntax, help, run } => builder.exec(syntax, help, run)?,
        };
    }
    if let Some(power) = options.power {
        let PowerControl { reload, poweroff } = power;
        builder = builder
            .exec("reload", &["Halt and perform a cold restart"], move |_| {
                reload();
                Ok(String::new())
            })?
            .exec(
                "poweroff",
                &["Halt the appliance and power it off"],
                move |_| {
                    poweroff();
                    Ok(String::new())
                },
            )?;
    }
    Ok(builder.build())
}

/// `show version`'s lines after the uptime, as IOS's: the image, the
/// memory, the interfaces.
fn about(image: &str, dataplane: &Dataplane) -> String {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kilobytes = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .map_or("unknown ", |kb| kb.trim().trim_end_matches("kB").trim());
    format!(
        "System image file is \"{image}\"\nGatehouse ({}) processor with {kilobytes}K bytes of memory.\n{}",
        std::env::consts::ARCH,
        dataplane.interface_counts()
    )
}

/// The text of the built-in status page.
fn status_page(shell: &Shell) -> String {
    let running = shell.running();
    format!(
        "gatehouse {}\nhostname {}\ninterfaces {}\n",
        env!("CARGO_PKG_VERSION"),
        running.hostname_or_default(),
        running.interfaces.len()
    )
}

/// Re-applies the configuration whenever a DHCP lease is granted, moves or
/// ends, so the interface's address and default route follow the lease.
async fn follow_leases(dataplane: Arc<Dataplane>) {
    loop {
        dataplane.lease_changed().await;
        if let Err(e) = dataplane.apply_leases() {
            dataplane.log(format!("%DHCP-3-APPLY: the lease cannot be applied: {e}"));
        }
    }
}

/// Follows the NICs' links: an interface whose link goes down is down in
/// the dataplane until it comes back (checked twice a second).
async fn follow_links(dataplane: Arc<Dataplane>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        match dataplane.follow_links() {
            Ok(changes) => {
                for (name, up) in changes {
                    let state = if up { "up" } else { "down" };
                    dataplane.log(format!(
                        "%LINK-3-UPDOWN: Interface {name}, changed state to {state}"
                    ));
                }
            }
            Err(e) => dataplane.log(format!("%LINK-3-APPLY: link state not applied: {e}")),
        }
    }
}

/// What the image's init hands to [`run_console`].
pub struct ConsoleOptions {
    pub startup_config: PathBuf,
    /// Messages to show before the first prompt (e.g. a config partition that failed to mount).
    pub boot_messages: Vec<String>,
    pub power: Option<PowerControl>,
    /// The system image `show version` names (`slot A`).
    pub image: String,
    /// This boot is a new slot's trial: it proves itself by starting.
    pub trial: Option<Trial>,
    pub watchdog: Option<Watchdog>,
}

/// Starts the appliance and runs console sessions one after another for
/// ever; returns only if the appliance cannot start. `TERM=dumb` (settable on
/// the kernel command line) gives a plain byte-stream console without line
/// editing, which is what scripts driving the serial console want.
pub fn run_console(options: ConsoleOptions) {
    for message in &options.boot_messages {
        println!("{message}");
    }
    let reload = options.power.as_ref().map(|power| power.reload.clone());
    let started = Appliance::start(ApplianceOptions {
        startup_config: options.startup_config,
        backend: Backend::AfPacket,
        // The appliance owns the machine: a forwarding worker per CPU (idle
        // workers sleep in poll(), so the control plane still gets its turn).
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        power: options.power,
        image: options.image,
        factory_config: Some(FACTORY_CONFIG),
        watchdog: options.watchdog,
    });
    let appliance = match started {
        Ok((appliance, report)) => {
            report.iter().for_each(|line| println!("{line}"));
            if let Some(trial) = options.trial {
                println!("gatehouse: {}", trial.passed());
            }
            appliance
        }
        Err(e) => {
            println!("% gatehouse: {e}");
            if let (Some(trial), Some(reload)) = (options.trial, reload) {
                trial.failed(&e, &*reload);
            }
            return;
        }
    };
    let plain = std::env::var("TERM").is_ok_and(|term| term == "dumb");
    loop {
        if let Err(e) = appliance.console_session(plain) {
            println!("% console: {e}");
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
