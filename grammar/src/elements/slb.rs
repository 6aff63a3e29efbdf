//! The server load balancing element, in IOS SLB's words: health probes
//! (`ip slb probe NAME tcp|http` opens `(config-slb-probe)`), server farms
//! (`ip slb serverfarm NAME` opens `(config-slb-sfarm)`, where `real
//! ADDRESS [port N]` opens `(config-slb-real)` for that real's `weight` and
//! `inservice`), virtual servers (`ip slb vserver NAME` opens
//! `(config-slb-vserver)`) and the size of the Maglev lookup table (`ip
//! slb maglev table-size N`).
//!
//! The real's mode is nested in its farm's: its object names both
//! ([`real_mode_object`]), and it takes the farm's commands too
//! ([`SubMode::parent`]), so the next `real` of a farm's running-config
//! block reads back. `exit` leaves it for the global mode, as it leaves
//! every mode.
//!
//! Values are kept as typed (None: the default, not typed), so the running
//! config shows what the operator wrote; [`SlbProbe::effective`],
//! [`Slb::table_size`] and [`Real`]'s default give what is in force.

use crate::commands::{
    change_if, check_name, required, set_or_clear, CommandDef, ConfigContext, Edit, Mode, SubMode,
    INCOMPLETE,
};
use crate::config::Config;
use crate::render::Block;
use crate::tree::Args;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// `(config-slb-probe)#`, opened by `ip slb probe NAME tcp|http`.
pub static PROBE_MODE: SubMode = SubMode {
    prompt: "slb-probe",
    parent: None,
};
/// `(config-slb-sfarm)#`, opened by `ip slb serverfarm NAME`.
pub static SFARM_MODE: SubMode = SubMode {
    prompt: "slb-sfarm",
    parent: None,
};
/// `(config-slb-real)#`, opened by `real ADDRESS [port N]` in a farm.
pub static REAL_MODE: SubMode = SubMode {
    prompt: "slb-real",
    parent: Some(&SFARM_MODE),
};
/// `(config-slb-vserver)#`, opened by `ip slb vserver NAME`.
pub static VSERVER_MODE: SubMode = SubMode {
    prompt: "slb-vserver",
    parent: None,
};

/// The Maglev lookup table's size when none is configured (the paper's).
pub const DEFAULT_MAGLEV_TABLE_SIZE: u32 = 65537;
/// The sizes `ip slb maglev table-size` takes (primes only).
const MAGLEV_TABLE_SIZES: RangeInclusive<u32> = 1009..=655_373;
/// A real's weight until `weight` is typed (IOS's).
pub const DEFAULT_REAL_WEIGHT: u32 = 8;
/// The longest `request url`.
const MAX_URL: usize = 255;

/// The load balancing section of the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Slb {
    pub probes: BTreeMap<String, SlbProbe>,
    pub farms: BTreeMap<String, ServerFarm>,
    pub vservers: BTreeMap<String, VirtualServer>,
    /// `ip slb maglev table-size N`: a prime in 1009..=655373.
    pub maglev_table_size: Option<u32>,
}

impl Slb {
    /// The Maglev table size in force.
    pub fn table_size(&self) -> u32 {
        self.maglev_table_size.unwrap_or(DEFAULT_MAGLEV_TABLE_SIZE)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// A TCP connection that opens.
    Tcp,
    /// An HTTP GET answered with the expected status.
    Http,
}

impl ProbeKind {
    pub fn word(self) -> &'static str {
        match self {
            ProbeKind::Tcp => "tcp",
            ProbeKind::Http => "http",
        }
    }
}

/// `ip slb probe NAME tcp|http` as typed; None is the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlbProbe {
    pub kind: ProbeKind,
    /// Default: the real's port.
    pub port: Option<u16>,
    /// Seconds between probes, default 5.
    pub interval: Option<u32>,
    /// Seconds to wait for an answer, default 2.
    pub timeout: Option<u32>,
    /// Successes in a row that bring a real back, default 2.
    pub rise: Option<u32>,
    /// Failures in a row that take a real out, default 3.
    pub fall: Option<u32>,
    /// http only, default "/".
    pub url: Option<String>,
    /// http only, default 200.
    pub expect_status: Option<u16>,
}

/// A probe's settings in force, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    pub kind: ProbeKind,
    /// None: the real's port.
    pub port: Option<u16>,
    pub interval: u32,
    pub timeout: u32,
    pub rise: u32,
    pub fall: u32,
    pub url: String,
    pub expect_status: u16,
}

impl SlbProbe {
    /// A probe of `kind` with every setting at its default.
    pub fn new(kind: ProbeKind) -> SlbProbe {
        SlbProbe {
            kind,
            port: None,
            interval: None,
            timeout: None,
            rise: None,
            fall: None,
            url: None,
            expect_status: None,
        }
    }

    /// The settings in force.
    pub fn effective(&self) -> ProbeSettings {
        ProbeSettings {
            kind: self.kind,
            port: self.port,
            interval: self.interval.unwrap_or(5),
            timeout: self.timeout.unwrap_or(2),
            rise: self.rise.unwrap_or(2),
            fall: self.fall.unwrap_or(3),
            url: self.url.clone().unwrap_or_else(|| "/".to_string()),
            expect_status: self.expect_status.unwrap_or(200),
        }
    }
}

/// A real server in a farm: its address and port (None: the virtual
/// server's port).
pub type RealKey = (IpAddr, Option<u16>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerFarm {
    pub reals: BTreeMap<RealKey, Real>,
    /// The probe that checks the reals; without one they are always up.
    pub probe: Option<String>,
    /// `nat client`: full NAT (the client's address translated to the
    /// appliance's, so reals need no route back); without it only the
    /// destination is translated.
    pub nat_client: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Real {
    /// 1-255: its share of new connections.
    pub weight: u32,
    /// A new real takes no connections until `inservice` (IOS); `no
    /// inservice` drains it (its connections go on, no new ones come).
    pub inservice: bool,
}

impl Default for Real {
    fn default() -> Real {
        Real {
            weight: DEFAULT_REAL_WEIGHT,
            inservice: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SlbProtocol {
    Tcp,
    Udp,
}

impl SlbProtocol {
    pub fn word(self) -> &'static str {
        match self {
            SlbProtocol::Tcp => "tcp",
            SlbProtocol::Udp => "udp",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VirtualServer {
    /// `virtual ADDRESS tcp|udp PORT`.
    pub virtual_address: Option<(IpAddr, SlbProtocol, u16)>,
    /// `serverfarm NAME`.
    pub farm: Option<String>,
    /// `vrf NAME`: the table the virtual address and the reals are in;
    /// None for the global table.
    pub vrf: Option<String>,
    pub inservice: bool,
}

/// `ADDRESS [port N]`: a real as typed after `real` and rendered.
fn real_words((address, port): &RealKey) -> String {
    match port {
        Some(port) => format!("{address} port {port}"),
        None => address.to_string(),
    }
}

/// The object of `(config-slb-real)`: `FARM ADDRESS [PORT]` (a farm's
/// name has no blank).
pub fn real_mode_object(farm: &str, (address, port): &RealKey) -> String {
    match port {
        Some(port) => format!("{farm} {address} {port}"),
        None => format!("{farm} {address}"),
    }
}

/// The farm and the real of a [`real_mode_object`].
pub fn parse_real_mode_object(object: &str) -> Option<(String, RealKey)> {
    let mut words = object.split(' ');
    let farm = words.next()?.to_string();
    let address = words.next()?.parse().ok()?;
    let port = match words.next() {
        Some(port) => Some(port.parse().ok()?),
        None => None,
    };
    words.next().is_none().then_some((farm, (address, port)))
}

pub struct Element;

static SUB_MODES: &[&SubMode] = &[&PROBE_MODE, &SFARM_MODE, &REAL_MODE, &VSERVER_MODE];

/// The help of `ip slb`, which every global command starts with.
macro_rules! slb_help {
    ($($rest:expr),*) => {
        &["Global IP configuration", "Server load balancing", $($rest),*]
    };
}

const COMMANDS: &[CommandDef] = &[
    CommandDef {
        mode: Mode::Global,
        syntax: "ip slb probe WORD$name (tcp|http)",
        help: slb_help!(
            "Configure a health probe",
            "Probe name",
            "Probe by opening a TCP connection",
            "Probe by an HTTP GET"
        ),
        handler: probe,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip slb serverfarm WORD$name",
        help: slb_help!("Configure a server farm", "Server farm name"),
        handler: serverfarm,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip slb vserver WORD$name",
        help: slb_help!("Configure a virtual server", "Virtual server name"),
        handler: vserver,
    },
    CommandDef {
        mode: Mode::Global,
        syntax: "ip slb maglev table-size <1009-655373>$size",
        help: slb_help!(
            "Maglev consistent hashing",
            "Size of the lookup table (default 65537)",
            "A prime number"
        ),
        handler: table_size,
    },
    CommandDef {
        mode: Mode::Sub(&PROBE_MODE),
        syntax: "port <1-65535>$value",
        help: &["Port to probe (default: the real server's)", "Port"],
        handler: probe_setting,
    },
    CommandDef {
        mode: Mode::Sub(&PROBE_MODE),
        syntax: "interval <1-3600>$value",
        help: &["Time between probes (default 5)", "Seconds"],
        handler: probe_setting,
    },
    CommandDef {
        mode: Mode::Sub(&PROBE_MODE),
        syntax: "timeout <1-3600>$value",
        help: &["Time to wait for an answer (default 2)", "Seconds"],
        handler: probe_setting,
    },
    CommandDef {
        mode: Mode::Sub(&PROBE_MODE),
        syntax: "rise <1-64>$value",
        help: &[
            "Successes in a row that bring a real server back (default 2)",
            "Probes",
        ],
        handler: probe_setting,
    },
    CommandDef {
        mode: Mode::Sub(&PROBE_MODE),
        syntax: "fall <1-64>$value",
        help: &[
            "Failures in a row that take a real server out (default 3)",
            "Probes",
        ],
        handler: probe_setting,
    },
    CommandDef {
        mode: Mode::Sub(&PROBE_MODE),
        syntax: "request url WORD$url",
        help: &[
            "HTTP request of the probe (http probes)",
            "Path to get (default /)",
            "Path starting with /",
        ],
        handler: probe_setting,
    },
    CommandDef {
        mode: Mode::Sub(&PROBE_MODE),
        syntax: "expect status <100-599>$value",
        help: &[
            "HTTP answer that passes (http probes)",
            "Status code (default 200)",
            "Status code",
        ],
        handler: probe_setting,
    },
    CommandDef {
        mode: Mode::Sub(&SFARM_MODE),
        syntax: "real (A.B.C.D$address|X:X::X:X$address) [port <1-65535>$port]",
        help: &[
            "Configure a real server",
            "IPv4 address",
            "IPv6 address",
            "Port of the real server (default: the virtual server's)",
            "Port",
        ],
        handler: real,
    },
    CommandDef {
        mode: Mode::Sub(&SFARM_MODE),
        syntax: "probe WORD$name",
        help: &["Health probe of the real servers", "Probe name"],
        handler: farm_probe,
    },
    CommandDef {
        mode: Mode::Sub(&SFARM_MODE),
        syntax: "nat client",
        help: &[
            "Address translation",
            "Translate the client's address too, to the appliance's (full NAT)",
        ],
        handler: nat_client,
    },
    CommandDef {
        mode: Mode::Sub(&REAL_MODE),
        syntax: "weight <1-255>$weight",
        help: &["Share of new connections (default 8)", "Weight"],
        handler: weight,
    },
    CommandDef {
        mode: Mode::Sub(&REAL_MODE),
        syntax: "inservice",
        help: &["Give the real server new connections (no: drain it)"],
        handler: real_inservice,
    },
    CommandDef {
        mode: Mode::Sub(&VSERVER_MODE),
        syntax: "virtual (A.B.C.D$address|X:X::X:X$address) (tcp|udp) <1-65535>$port",
        help: &[
            "Address clients connect to",
            "IPv4 address",
            "IPv6 address",
            "Transmission Control Protocol",
            "User Datagram Protocol",
            "Port",
        ],
        handler: virtual_address,
    },
    CommandDef {
        mode: Mode::Sub(&VSERVER_MODE),
        syntax: "serverfarm WORD$name",
        help: &["Server farm of the real servers", "Server farm name"],
        handler: vserver_reference,
    },
    CommandDef {
        mode: Mode::Sub(&VSERVER_MODE),
        syntax: "vrf WORD$name",
        help: &[
            "VRF of the virtual address and the real servers",
            "VRF name",
        ],
        handler: vserver_reference,
    },
    CommandDef {
        mode: Mode::Sub(&VSERVER_MODE),
        syntax: "inservice",
        help: &["Take new connections"],
        handler: vserver_inservice,
    },
];

static DECLARATION: super::Declaration = super::Declaration {
    name: "slb",
    commands: COMMANDS,
    sub_modes: SUB_MODES,
};

impl super::NetworkElement for Element {
    fn declaration(&self) -> &'static super::Declaration {
        &DECLARATION
    }

    /// Probes, farms, virtual servers (what is named before what names
    /// it), then the table size.
    fn blocks(&self, config: &Config, out: &mut Vec<Block>) {
        let slb = &config.slb;
        for (name, p) in &slb.probes {
            let mut body = Vec::new();
            body.extend(p.port.map(|port| format!("port {port}")));
            body.extend(p.url.as_ref().map(|url| format!("request url {url}")));
            body.extend(p.expect_status.map(|s| format!("expect status {s}")));
            body.extend(p.interval.map(|s| format!("interval {s}")));
            body.extend(p.timeout.map(|s| format!("timeout {s}")));
            body.extend(p.rise.map(|n| format!("rise {n}")));
            body.extend(p.fall.map(|n| format!("fall {n}")));
            out.push(Block {
                header: format!("ip slb probe {name} {}", p.kind.word()),
                body,
            });
        }
        for (name, farm) in &slb.farms {
            let mut body = Vec::new();
            if farm.nat_client {
                body.push("nat client".to_string());
            }
            body.extend(farm.probe.as_ref().map(|p| format!("probe {p}")));
            for (key, real) in &farm.reals {
                body.push(format!("real {}", real_words(key)));
                // One blank more: the lines of the real's own mode.
                if real.weight != DEFAULT_REAL_WEIGHT {
                    body.push(format!(" weight {}", real.weight));
                }
                if real.inservice {
                    body.push(" inservice".to_string());
                }
            }
            out.push(Block {
                header: format!("ip slb serverfarm {name}"),
                body,
            });
        }
        for (name, v) in &slb.vservers {
            let mut body = Vec::new();
            body.extend(v.virtual_address.map(|(address, protocol, port)| {
                format!("virtual {address} {} {port}", protocol.word())
            }));
            body.extend(v.vrf.as_ref().map(|vrf| format!("vrf {vrf}")));
            body.extend(v.farm.as_ref().map(|farm| format!("serverfarm {farm}")));
            if v.inservice {
                body.push("inservice".to_string());
            }
            out.push(Block {
                header: format!("ip slb vserver {name}"),
                body,
            });
        }
        if let Some(size) = slb.maglev_table_size {
            out.push(Block::line(format!("ip slb maglev table-size {size}")));
        }
    }

    fn check(&self, config: &Config, problems: &mut Vec<String>) {
        let slb = &config.slb;
        if let Some(Err(problem)) = slb.maglev_table_size.map(check_table_size) {
            problems.push(problem);
        }
        for (name, farm) in &slb.farms {
            if let Some(probe) = farm.probe.as_ref().filter(|p| !slb.probes.contains_key(*p)) {
                problems.push(format!(
                    "% ip slb serverfarm {name}: probe {probe} is not defined"
                ));
            }
        }
        // The first in-service virtual server of each (vrf, address,
        // protocol, port), which a second one may not share.
        let mut listening = BTreeMap::new();
        for (name, v) in &slb.vservers {
            let what = format!("ip slb vserver {name}");
            let farm = v.farm.as_ref().map(|f| (f, slb.farms.get(f)));
            if let Some((farm, None)) = farm {
                problems.push(format!("% {what}: serverfarm {farm} is not defined"));
            }
            if let Some(vrf) =
                (v.vrf.as_ref()).filter(|vrf| !config.vrfs.definitions.contains_key(*vrf))
            {
                problems.push(format!("% {what}: VRF {vrf} is not defined"));
            }
            if let (Some((address, _, _)), Some((farm_name, Some(farm)))) =
                (v.virtual_address, farm)
            {
                let other_family = farm
                    .reals
                    .keys()
                    .filter(|k| k.0.is_ipv4() != address.is_ipv4());
                for key in other_family {
                    problems.push(format!(
                        "% {what}: real {} of serverfarm {farm_name} is not in the family of virtual address {address}",
                        real_words(key)
                    ));
                }
            }
            if !v.inservice {
                continue;
            }
            if v.farm.is_none() {
                problems.push(format!("% {what}: in service without a serverfarm"));
            }
            let Some((address, protocol, port)) = v.virtual_address else {
                problems.push(format!("% {what}: in service without a virtual address"));
                continue;
            };
            let listener = (v.vrf.as_deref(), address, protocol, port);
            match listening.get(&listener) {
                Some(first) => problems.push(format!(
                    "% {what}: virtual {address} {} {port} is in service in vserver {first} already",
                    protocol.word()
                )),
                None => {
                    listening.insert(listener, name);
                }
            }
        }
    }

    fn unchanged(&self, old: &Config, new: &Config) -> bool {
        super::same(&old.slb, &new.slb) && super::same(&old.vrfs, &new.vrfs)
    }

    #[cfg(test)]
    fn arbitrary_text(&self) -> proptest::strategy::BoxedStrategy<String> {
        generate::slb()
    }
}

/// One of the section's maps of named objects, for the handlers that
/// create, change and remove its objects.
struct Named<V: 'static> {
    /// In messages: `probe`, `serverfarm`, `vserver`.
    what: &'static str,
    map: fn(&Slb) -> &BTreeMap<String, V>,
    map_mut: fn(&mut Slb) -> &mut BTreeMap<String, V>,
    mode: &'static SubMode,
}

const PROBES: Named<SlbProbe> = Named {
    what: "probe",
    map: |s| &s.probes,
    map_mut: |s| &mut s.probes,
    mode: &PROBE_MODE,
};
const FARMS: Named<ServerFarm> = Named {
    what: "serverfarm",
    map: |s| &s.farms,
    map_mut: |s| &mut s.farms,
    mode: &SFARM_MODE,
};
const VSERVERS: Named<VirtualServer> = Named {
    what: "vserver",
    map: |s| &s.vservers,
    map_mut: |s| &mut s.vservers,
    mode: &VSERVER_MODE,
};

impl<V: Clone + PartialEq> Named<V> {
    fn missing(&self, name: &str) -> String {
        format!("% No {} {name}", self.what)
    }

    /// `ip slb probe|serverfarm|vserver NAME`: makes the object with
    /// `new` if there is none and enters its mode; `no ...` removes it
    /// (what still names it is refused at commit).
    fn enter_or_remove(&self, edit: &mut Edit<'_>, new: impl FnOnce() -> V) -> Result<(), String> {
        let name = name_arg(self.what, edit.args)?;
        let slb = &mut edit.config.slb;
        let exists = (self.map)(slb).contains_key(&name);
        if edit.negated {
            if !exists {
                return Err(self.missing(&name));
            }
            (self.map_mut)(Arc::make_mut(slb)).remove(&name);
            return Ok(());
        }
        // Entering an object that exists must not copy the section.
        change_if(slb, !exists, |s| {
            (self.map_mut)(s).insert(name.clone(), new());
        });
        edit.enter = Some(ConfigContext::Sub(self.mode, name));
        Ok(())
    }

    /// Applies `change` to the object `name`, copying the section only when
    /// the object really changes.
    fn change(
        &self,
        slb: &mut Arc<Slb>,
        name: &str,
        change: impl FnOnce(&mut V) -> Result<(), String>,
    ) -> Result<(), String> {
        let old = (self.map)(slb)
            .get(name)
            .ok_or_else(|| self.missing(name))?;
        let mut new = old.clone();
        change(&mut new)?;
        let needed = new != *old;
        change_if(slb, needed, |s| {
            (self.map_mut)(s).insert(name.to_string(), new);
        });
        Ok(())
    }

    /// [`Named::change`] on the object of the current sub-mode.
    fn change_current(
        &self,
        edit: &mut Edit<'_>,
        change: impl FnOnce(&mut V) -> Result<(), String>,
    ) -> Result<(), String> {
        let name = edit.object(self.mode)?;
        self.change(&mut edit.config.slb, &name, change)
    }
}

/// The name typed as `$name`, refused unless it reads back as one word.
fn name_arg(what: &str, args: &Args) -> Result<String, String> {
    let name = required(args, "name")?;
    check_name(what, name)?;
    Ok(name.to_string())
}

/// The address typed as `$address`: a unicast one, since clients connect
/// to it or it answers them.
fn address_arg(args: &Args) -> Result<IpAddr, String> {
    let address = (args.ipv4("address").map(IpAddr::V4))
        .or_else(|| args.ipv6("address").map(IpAddr::V6))
        .ok_or(INCOMPLETE)?;
    let broadcast = address == IpAddr::V4(std::net::Ipv4Addr::BROADCAST);
    match address.is_unspecified() || address.is_multicast() || broadcast {
        true => Err(format!("% {address} is not a unicast address")),
        false => Ok(address),
    }
}

/// `ip slb probe NAME tcp|http`: a probe's kind cannot change (as on IOS:
/// its settings differ by kind); remove it first.
fn probe(edit: &mut Edit<'_>) -> Result<(), String> {
    let kind = match edit.args.has("http") {
        true => ProbeKind::Http,
        false => ProbeKind::Tcp,
    };
    let name = edit.args.text("name").unwrap_or_default();
    let existing = edit.config.slb.probes.get(name);
    if let Some(p) = existing.filter(|p| !edit.negated && p.kind != kind) {
        return Err(format!(
            "% Probe {name} is a {} probe: remove it first to make it {}",
            p.kind.word(),
            kind.word()
        ));
    }
    PROBES.enter_or_remove(edit, || SlbProbe::new(kind))
}

fn serverfarm(edit: &mut Edit<'_>) -> Result<(), String> {
    FARMS.enter_or_remove(edit, ServerFarm::default)
}

fn vserver(edit: &mut Edit<'_>) -> Result<(), String> {
    VSERVERS.enter_or_remove(edit, VirtualServer::default)
}

/// Whether Maglev can use `size`: a prime (so that every offset/skip
/// permutation covers the table) within the range the command takes.
fn check_table_size(size: u32) -> Result<(), String> {
    let prime = (2u64..)
        .take_while(|d| d * d <= u64::from(size))
        .all(|d| u64::from(size) % d != 0);
    match MAGLEV_TABLE_SIZES.contains(&size) && prime {
        true => Ok(()),
        false => Err(format!(
            "% Maglev table size {size} is not a prime from {} to {}",
            MAGLEV_TABLE_SIZES.start(),
            MAGLEV_TABLE_SIZES.end()
        )),
    }
}

/// `ip slb maglev table-size N`; `no ...` restores the default.
fn table_size(edit: &mut Edit<'_>) -> Result<(), String> {
    let size = set_or_clear(edit.negated, || {
        let size = edit.args.number("size").ok_or(INCOMPLETE)? as u32;
        check_table_size(size).map(|()| size)
    })?;
    let needed = edit.config.slb.maglev_table_size != size;
    change_if(&mut edit.config.slb, needed, |s| s.maglev_table_size = size);
    Ok(())
}

/// A `request url` path: `/` first, printable, no blank (it is sent as
/// typed in the request line).
fn url_arg(args: &Args) -> Result<String, String> {
    let url = required(args, "url")?;
    let valid =
        url.starts_with('/') && url.len() <= MAX_URL && url.chars().all(|c| c.is_ascii_graphic());
    match valid {
        true => Ok(url.to_string()),
        false => Err(format!(
            "% Invalid url \"{url}\": a path starting with /, printable, without blanks, up to {MAX_URL} characters"
        )),
    }
}

/// Every `(config-slb-probe)` command; `no` restores the default. The
/// http lines are refused on a tcp probe.
fn probe_setting(edit: &mut Edit<'_>) -> Result<(), String> {
    let (args, negated) = (edit.args, edit.negated);
    let number = || {
        set_or_clear(negated, || {
            args.number("value").ok_or(INCOMPLETE.to_string())
        })
    };
    PROBES.change_current(edit, |p| {
        let http_only = |what: &str| match (negated, p.kind) {
            (false, ProbeKind::Tcp) => Err(format!("% {what} applies only to http probes")),
            _ => Ok(()),
        };
        if args.has("url") {
            http_only("request url")?;
            p.url = set_or_clear(negated, || url_arg(args))?;
        } else if args.has("status") {
            http_only("expect status")?;
            p.expect_status = number()?.map(|n| n as u16);
        } else if args.has("port") {
            p.port = number()?.map(|n| n as u16);
        } else {
            let n = number()?.map(|n| n as u32);
            match () {
                _ if args.has("interval") => p.interval = n,
                _ if args.has("timeout") => p.timeout = n,
                _ if args.has("rise") => p.rise = n,
                _ => p.fall = n,
            }
        }
        Ok(())
    })
}

/// The farm the current mode edits: `(config-slb-sfarm)`'s, or in
/// `(config-slb-real)` the farm of the real (its object leads with it).
fn current_farm(context: &ConfigContext) -> Result<String, String> {
    (context.object_of(&SFARM_MODE))
        .map(str::to_string)
        .ok_or_else(|| format!("% Not in config-{} mode", SFARM_MODE.prompt))
}

fn no_real(farm: &str, key: &RealKey) -> String {
    format!("% No real {} in serverfarm {farm}", real_words(key))
}

/// `real ADDRESS [port N]` adds the real (out of service, as on IOS) if
/// new and enters its mode; `no real ADDRESS [port N]` removes it.
fn real(edit: &mut Edit<'_>) -> Result<(), String> {
    let farm = current_farm(edit.context)?;
    let port = edit.args.number("port").map(|p| p as u16);
    if edit.args.has("port") && port.is_none() {
        // `no real A port`: a `no` form stopped after the keyword.
        return Err(INCOMPLETE.to_string());
    }
    let key = (address_arg(edit.args)?, port);
    let negated = edit.negated;
    FARMS.change(&mut edit.config.slb, &farm, |f| match negated {
        true => (f.reals.remove(&key).map(drop)).ok_or_else(|| no_real(&farm, &key)),
        false => {
            f.reals.entry(key).or_default();
            Ok(())
        }
    })?;
    if !negated {
        edit.enter = Some(ConfigContext::Sub(
            &REAL_MODE,
            real_mode_object(&farm, &key),
        ));
    }
    Ok(())
}

/// `probe NAME` in a farm; `no probe` leaves the reals unprobed (always up).
fn farm_probe(edit: &mut Edit<'_>) -> Result<(), String> {
    let probe = set_or_clear(edit.negated, || name_arg("probe", edit.args))?;
    let farm = current_farm(edit.context)?;
    FARMS.change(&mut edit.config.slb, &farm, |f| {
        f.probe = probe;
        Ok(())
    })
}

fn nat_client(edit: &mut Edit<'_>) -> Result<(), String> {
    let on = !edit.negated;
    let farm = current_farm(edit.context)?;
    FARMS.change(&mut edit.config.slb, &farm, |f| {
        f.nat_client = on;
        Ok(())
    })
}

/// Applies `change` to the real of the current `(config-slb-real)` mode.
fn change_real(edit: &mut Edit<'_>, change: impl FnOnce(&mut Real)) -> Result<(), String> {
    let object = edit.object(&REAL_MODE)?;
    let (farm, key) = parse_real_mode_object(&object)
        .ok_or_else(|| format!("% Not in config-{} mode", REAL_MODE.prompt))?;
    FARMS.change(&mut edit.config.slb, &farm, |f| {
        let real = f.reals.get_mut(&key).ok_or_else(|| no_real(&farm, &key))?;
        change(real);
        Ok(())
    })
}

/// `weight N`; `no weight` restores the default.
fn weight(edit: &mut Edit<'_>) -> Result<(), String> {
    let weight = match edit.negated {
        true => DEFAULT_REAL_WEIGHT,
        false => edit.args.number("weight").ok_or(INCOMPLETE)? as u32,
    };
    change_real(edit, |r| r.weight = weight)
}

fn real_inservice(edit: &mut Edit<'_>) -> Result<(), String> {
    let on = !edit.negated;
    change_real(edit, |r| r.inservice = on)
}

/// `virtual ADDRESS tcp|udp PORT`; `no virtual` removes the address.
fn virtual_address(edit: &mut Edit<'_>) -> Result<(), String> {
    let args = edit.args;
    let address = set_or_clear(edit.negated, || {
        let protocol = match args.has("udp") {
            true => SlbProtocol::Udp,
            false => SlbProtocol::Tcp,
        };
        let port = args.number("port").ok_or(INCOMPLETE)? as u16;
        Ok((address_arg(args)?, protocol, port))
    })?;
    VSERVERS.change_current(edit, |v| {
        v.virtual_address = address;
        Ok(())
    })
}

/// `serverfarm NAME` and `vrf NAME` (checked at commit: they may be
/// typed before what they name); `no serverfarm`, `no vrf`.
fn vserver_reference(edit: &mut Edit<'_>) -> Result<(), String> {
    let vrf = edit.args.has("vrf");
    let what = if vrf { "VRF" } else { "serverfarm" };
    let name = set_or_clear(edit.negated, || name_arg(what, edit.args))?;
    VSERVERS.change_current(edit, |v| {
        match vrf {
            true => v.vrf = name,
            false => v.farm = name,
        }
        Ok(())
    })
}

fn vserver_inservice(edit: &mut Edit<'_>) -> Result<(), String> {
    let on = !edit.negated;
    VSERVERS.change_current(edit, |v| {
        v.inservice = on;
        Ok(())
    })
}

#[cfg(test)]
mod generate {
    use proptest::prelude::*;
    use proptest::sample::select;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9_.-]{0,8}"
    }

    /// A unicast address of either family.
    fn address() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            (1u8..224, any::<[u8; 3]>())
                .prop_map(|(a, [b, c, d])| IpAddr::V4(Ipv4Addr::new(a, b, c, d))),
            (0x2000u128..0x4000, any::<u128>())
                .prop_map(|(top, low)| IpAddr::V6(Ipv6Addr::from(top << 112 | low >> 16))),
        ]
    }

    /// `ip slb probe` blocks; http lines only in http probes.
    fn probes() -> impl Strategy<Value = String> {
        let settings = (
            proptest::option::of(1u16..),
            proptest::option::of(1u32..=3600),
            proptest::option::of(1u32..=3600),
            proptest::option::of(1u32..=64),
            proptest::option::of(1u32..=64),
            proptest::option::of("/[!#-~]{0,20}"),
            proptest::option::of(100u16..600),
        );
        let probe = (any::<bool>(), settings).prop_map(
            |(http, (port, interval, timeout, rise, fall, url, status))| {
                let mut text = format!("{}\n", if http { "http" } else { "tcp" });
                let mut line = |words: Option<String>| {
                    text.extend(words.map(|w| format!(" {w}\n")));
                };
                line(port.map(|p| format!("port {p}")));
                line(interval.map(|s| format!("interval {s}")));
                line(timeout.map(|s| format!("timeout {s}")));
                line(rise.map(|n| format!("rise {n}")));
                line(fall.map(|n| format!("fall {n}")));
                if http {
                    line(url.map(|u| format!("request url {u}")));
                    line(status.map(|s| format!("expect status {s}")));
                }
                text
            },
        );
        proptest::collection::btree_map(name(), probe, 0..3).prop_map(|probes| {
            probes
                .iter()
                .map(|(name, body)| format!("ip slb probe {name} {body}"))
                .collect()
        })
    }

    /// `ip slb serverfarm` blocks, reals with their own lines.
    fn farms() -> impl Strategy<Value = String> {
        let real = (
            address(),
            proptest::option::of(1u16..),
            proptest::option::of(1u32..=255),
            any::<bool>(),
        )
            .prop_map(|(address, port, weight, inservice)| {
                let mut text = format!(" real {address}");
                text.extend(port.map(|p| format!(" port {p}")));
                text.push('\n');
                text.extend(weight.map(|w| format!("  weight {w}\n")));
                if inservice {
                    text.push_str("  inservice\n");
                }
                text
            });
        let farm = (
            any::<bool>(),
            proptest::option::of(name()),
            proptest::collection::vec(real, 0..4),
        );
        proptest::collection::btree_map(name(), farm, 0..3).prop_map(|farms| {
            let mut text = String::new();
            for (name, (nat_client, probe, reals)) in farms {
                text.push_str(&format!("ip slb serverfarm {name}\n"));
                if nat_client {
                    text.push_str(" nat client\n");
                }
                text.extend(probe.map(|p| format!(" probe {p}\n")));
                text.push_str(&reals.concat());
            }
            text
        })
    }

    /// `ip slb vserver` blocks.
    fn vservers() -> impl Strategy<Value = String> {
        let vserver = (
            proptest::option::of((address(), select(&["tcp", "udp"][..]), 1u16..)),
            proptest::option::of(name()),
            proptest::option::of("[A-C]"),
            any::<bool>(),
        );
        proptest::collection::btree_map(name(), vserver, 0..3).prop_map(|vservers| {
            let mut text = String::new();
            for (name, (address, farm, vrf, inservice)) in vservers {
                text.push_str(&format!("ip slb vserver {name}\n"));
                text.extend(address.map(|(a, p, port)| format!(" virtual {a} {p} {port}\n")));
                text.extend(farm.map(|f| format!(" serverfarm {f}\n")));
                text.extend(vrf.map(|v| format!(" vrf {v}\n")));
                if inservice {
                    text.push_str(" inservice\n");
                }
            }
            text
        })
    }

    pub fn slb() -> BoxedStrategy<String> {
        let size = proptest::option::of(select(&[1009u32, 2039, 65537, 655_373][..]));
        (probes(), farms(), vservers(), size)
            .prop_map(|(probes, farms, vservers, size)| {
                let size =
                    size.map_or(String::new(), |s| format!("ip slb maglev table-size {s}\n"));
                [probes, farms, vservers, size].concat()
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::config_trees;
    use crate::{apply_text, parse_config, render, validate, validate_change};

    const EXAMPLE: &str = "\
ip slb probe WEB-CHECK http
 port 80
 request url /health
 expect status 200
 interval 2
ip slb serverfarm WEB
 nat client
 probe WEB-CHECK
 real 10.0.0.1 port 80
  weight 16
  inservice
 real 10.0.0.2
  inservice
ip slb vserver SITE
 virtual 203.0.113.10 tcp 80
 vrf A
 serverfarm WEB
 inservice
ip slb maglev table-size 65537
";

    fn messages(errors: &[crate::LineError]) -> Vec<&str> {
        errors.iter().map(|e| e.error.message.as_str()).collect()
    }

    fn address(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_ios_example_builds_the_model_and_renders_back_exactly() {
        let (config, errors) = parse_config(EXAMPLE);
        assert_eq!(errors, []);
        let slb = &config.slb;
        let probe = &slb.probes["WEB-CHECK"];
        assert_eq!(
            probe.effective(),
            ProbeSettings {
                kind: ProbeKind::Http,
                port: Some(80),
                interval: 2,
                timeout: 2,
                rise: 2,
                fall: 3,
                url: "/health".into(),
                expect_status: 200
            }
        );
        let farm = &slb.farms["WEB"];
        assert!(farm.nat_client);
        assert_eq!(farm.probe.as_deref(), Some("WEB-CHECK"));
        let reals: Vec<_> = farm.reals.iter().map(|(k, r)| (*k, *r)).collect();
        assert_eq!(
            reals,
            [
                (
                    (address("10.0.0.1"), Some(80)),
                    Real {
                        weight: 16,
                        inservice: true
                    }
                ),
                (
                    (address("10.0.0.2"), None),
                    Real {
                        weight: 8,
                        inservice: true
                    }
                ),
            ]
        );
        let site = &slb.vservers["SITE"];
        assert_eq!(
            site.virtual_address,
            Some((address("203.0.113.10"), SlbProtocol::Tcp, 80))
        );
        assert_eq!(
            (site.farm.as_deref(), site.vrf.as_deref(), site.inservice),
            (Some("WEB"), Some("A"), true)
        );
        assert_eq!(slb.table_size(), 65537);
        let blocks_as_typed = EXAMPLE.replace("\nip slb", "\n!\nip slb");
        assert_eq!(render(&config), format!("!\n{blocks_as_typed}!\nend\n"));
    }

    #[test]
    fn defaults_are_ios_and_the_papers() {
        assert_eq!(
            SlbProbe::new(ProbeKind::Tcp).effective(),
            ProbeSettings {
                kind: ProbeKind::Tcp,
                port: None,
                interval: 5,
                timeout: 2,
                rise: 2,
                fall: 3,
                url: "/".into(),
                expect_status: 200
            }
        );
        assert_eq!(Slb::default().table_size(), DEFAULT_MAGLEV_TABLE_SIZE);
        let (config, errors) = parse_config("ip slb serverfarm F\n real 2001:db8::7\n");
        assert_eq!(errors, []);
        assert_eq!(
            config.slb.farms["F"].reals[&(address("2001:db8::7"), None)],
            Real {
                weight: 8,
                inservice: false
            },
            "a new real is out of service until inservice"
        );
        for size in [1009, 65537, 655_373] {
            assert_eq!(check_table_size(size), Ok(()), "{size}");
        }
    }

    #[test]
    fn bad_lines_are_refused_and_change_nothing() {
        let (mut config, errors) = parse_config(&format!(
            "{EXAMPLE}ip slb probe PING tcp\nip slb vserver V6\n"
        ));
        assert_eq!(errors, []);
        let before = config.clone();
        let cases = [
            ("ip slb probe PING tcp\n request url /x", "% request url applies only to http probes"),
            ("ip slb probe PING tcp\n expect status 204", "% expect status applies only to http probes"),
            ("ip slb probe PING http", "% Probe PING is a tcp probe: remove it first to make it http"),
            ("ip slb probe WEB-CHECK http\n request url health", "% Invalid url \"health\": a path starting with /, printable, without blanks, up to 255 characters"),
            ("ip slb probe WEB-CHECK http\n request url \"/a b\"", "% Invalid url \"/a b\": a path starting with /, printable, without blanks, up to 255 characters"),
            ("ip slb maglev table-size 65536", "% Maglev table size 65536 is not a prime from 1009 to 655373"),
            ("ip slb maglev table-size 1008", "% Invalid input detected at '^' marker."),
            ("ip slb probe a/b tcp", "% Invalid probe name \"a/b\": up to 64 letters, digits, '-', '_' and '.'"),
            ("ip slb serverfarm \"a b\"", "% Invalid serverfarm name \"a b\": up to 64 letters, digits, '-', '_' and '.'"),
            (&format!("ip slb vserver {}", "v".repeat(65)), "% Invalid vserver name \"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\": up to 64 letters, digits, '-', '_' and '.'"),
            ("ip slb serverfarm WEB\n probe x:y", "% Invalid probe name \"x:y\": up to 64 letters, digits, '-', '_' and '.'"),
            ("ip slb serverfarm WEB\n real 224.0.0.1", "% 224.0.0.1 is not a unicast address"),
            ("ip slb serverfarm WEB\n no real 10.0.0.9", "% No real 10.0.0.9 in serverfarm WEB"),
            ("ip slb serverfarm WEB\n no real 10.0.0.1", "% No real 10.0.0.1 in serverfarm WEB"),
            ("ip slb serverfarm WEB\n no real 10.0.0.1 port", "% Incomplete command."),
            ("ip slb serverfarm WEB\n real 10.0.0.1 port 80\n weight 0", "% Invalid input detected at '^' marker."),
            ("ip slb vserver V6\n virtual :: tcp 80", "% :: is not a unicast address"),
            ("ip slb vserver SITE\n virtual 203.0.113.10 sctp 80", "% Invalid input detected at '^' marker."),
            ("ip slb vserver SITE\n vrf \"A B\"", "% Invalid VRF name \"A B\": up to 64 letters, digits, '-', '_' and '.'"),
            ("no ip slb vserver NOPE", "% No vserver NOPE"),
        ];
        for (lines, message) in cases {
            let errors = apply_text(&mut config, &format!("{lines}\n"));
            assert_eq!(messages(&errors), [message], "{lines}");
        }
        // Entering existing objects (the first line of most cases) changed nothing either.
        assert_eq!(config, before);
    }

    #[test]
    fn no_forms_restore_defaults_and_remove_objects() {
        let (mut config, errors) = parse_config(EXAMPLE);
        assert_eq!(errors, []);
        let errors = apply_text(
            &mut config,
            "ip slb probe WEB-CHECK http\n no port\n no request url\n no expect status 200\n \
             no interval\n timeout 9\n no timeout\n rise 4\n no rise\n fall 4\n no fall 4\n\
             ip slb serverfarm WEB\n no nat client\n no probe\n real 10.0.0.1 port 80\n \
             no weight\n no inservice\n no real 10.0.0.2\n\
             ip slb vserver SITE\n no virtual\n no vrf\n no serverfarm WEB\n no inservice\n\
             no ip slb maglev table-size\n",
        );
        assert_eq!(errors, []);
        assert_eq!(
            render(&config),
            "!\nip slb probe WEB-CHECK http\n!\nip slb serverfarm WEB\n real 10.0.0.1 port 80\n\
             !\nip slb vserver SITE\n!\nend\n"
        );
        let errors = apply_text(
            &mut config,
            "ip slb serverfarm WEB\n no real 10.0.0.1 port 80\n\
             no ip slb probe WEB-CHECK\nno ip slb serverfarm WEB\nno ip slb vserver SITE\n",
        );
        assert_eq!(errors, []);
        assert_eq!(*config.slb, Slb::default());
    }

    #[test]
    fn a_real_has_a_mode_of_its_own_inside_its_farms() {
        let trees = config_trees();
        let labels = |line: &str| -> Vec<String> {
            let items = trees.sub[REAL_MODE.prompt].help(line).unwrap();
            items.into_iter().map(|i| i.label).collect()
        };
        assert_eq!(
            labels(""),
            ["inservice", "nat", "no", "probe", "real", "weight"],
            "the farm's commands are typed in a real's mode too"
        );
        let mut config = Config::default();
        let mut context = ConfigContext::Global;
        for line in ["ip slb serverfarm F", "real 2001:db8::1 port 443"] {
            crate::apply_line(&mut config, &mut context, line).unwrap();
        }
        let object = context.object_of(&REAL_MODE).unwrap();
        assert_eq!(object, "F 2001:db8::1 443");
        let real = (address("2001:db8::1"), Some(443));
        assert_eq!(parse_real_mode_object(object), Some(("F".into(), real)));
        let key = (address("10.0.0.1"), None);
        assert_eq!(
            parse_real_mode_object(&real_mode_object("F", &key)),
            Some(("F".into(), key))
        );
        for bad in ["F", "F 10.0.0.1 x", "F 10.0.0.1 80 9", "F nope"] {
            assert_eq!(parse_real_mode_object(bad), None, "{bad}");
        }
        for line in [
            "probe P",
            "real 10.0.0.1",
            "weight 3",
            "no real 10.0.0.1",
            "weight 4",
        ] {
            let result = crate::apply_line(&mut config, &mut context, line);
            if line == "weight 4" {
                let error = result.unwrap_err().message;
                assert_eq!(
                    error, "% No real 10.0.0.1 in serverfarm F",
                    "its real is gone"
                );
            } else {
                result.unwrap();
            }
        }
        assert_eq!(config.slb.farms["F"].probe.as_deref(), Some("P"));
        assert_eq!(config.slb.farms["F"].reals.len(), 1);
    }

    #[test]
    fn commit_checks_name_what_is_missing_mixed_or_listening_twice() {
        let (config, errors) = parse_config(
            "ip slb serverfarm WEB\n probe NOPROBE\n real 10.0.0.1\n real 2001:db8::1\n\
             ip slb vserver A\n virtual 203.0.113.10 tcp 80\n serverfarm WEB\n inservice\n\
             ip slb vserver B\n virtual 203.0.113.10 tcp 80\n serverfarm NOFARM\n vrf NOVRF\n inservice\n\
             ip slb vserver C\n virtual 203.0.113.10 tcp 80\n serverfarm WEB\n inservice\n\
             ip slb vserver D\n inservice\n\
             ip slb vserver E\n virtual 203.0.113.10 tcp 80\n serverfarm WEB\n\
             ip slb vserver F\n virtual 2001:db8::80 tcp 80\n serverfarm WEB\n",
        );
        assert_eq!(errors, []);
        assert_eq!(
            validate(&config),
            [
                "% ip slb serverfarm WEB: probe NOPROBE is not defined",
                "% ip slb vserver A: real 2001:db8::1 of serverfarm WEB is not in the family of virtual address 203.0.113.10",
                "% ip slb vserver B: serverfarm NOFARM is not defined",
                "% ip slb vserver B: VRF NOVRF is not defined",
                "% ip slb vserver C: real 2001:db8::1 of serverfarm WEB is not in the family of virtual address 203.0.113.10",
                "% ip slb vserver C: virtual 203.0.113.10 tcp 80 is in service in vserver A already",
                "% ip slb vserver D: in service without a serverfarm",
                "% ip slb vserver D: in service without a virtual address",
                "% ip slb vserver E: real 2001:db8::1 of serverfarm WEB is not in the family of virtual address 203.0.113.10",
                "% ip slb vserver F: real 10.0.0.1 of serverfarm WEB is not in the family of virtual address 2001:db8::80",
            ]
        );
        let mut config = Config::default();
        Arc::make_mut(&mut config.slb).maglev_table_size = Some(65536);
        assert_eq!(
            validate(&config),
            ["% Maglev table size 65536 is not a prime from 1009 to 655373"]
        );
    }

    #[test]
    fn the_same_listener_in_other_vrfs_or_protocols_is_fine_and_vrfs_are_rechecked() {
        let text = "vrf definition A\nip slb serverfarm WEB\n real 10.0.0.1\n\
            ip slb vserver G\n virtual 203.0.113.10 tcp 80\n serverfarm WEB\n inservice\n\
            ip slb vserver U\n virtual 203.0.113.10 udp 80\n serverfarm WEB\n inservice\n\
            ip slb vserver T\n virtual 203.0.113.10 tcp 80\n vrf A\n serverfarm WEB\n inservice\n";
        let (old, errors) = parse_config(text);
        assert_eq!(errors, []);
        assert_eq!(validate(&old), Vec::<String>::new());
        let mut new = old.clone();
        assert_eq!(apply_text(&mut new, "no vrf definition A\n"), []);
        assert_eq!(
            validate_change(&old, &new),
            ["% ip slb vserver T: VRF A is not defined"]
        );
    }

    #[test]
    fn lines_that_change_nothing_keep_the_section_shared() {
        let (mut config, errors) = parse_config(EXAMPLE);
        assert_eq!(errors, []);
        let before = config.slb.clone();
        let again =
            "ip slb probe WEB-CHECK http\n interval 2\nip slb serverfarm WEB\n nat client\n\
            real 10.0.0.1 port 80\n weight 16\nip slb vserver SITE\n inservice\n\
            ip slb maglev table-size 65537\n";
        assert_eq!(apply_text(&mut config, again), []);
        assert!(Arc::ptr_eq(&before, &config.slb));
    }
}
