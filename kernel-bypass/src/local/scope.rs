//! Where the operator's tools send from: a VRF's table, a chosen source
//! (an own address or an interface's), and whether routers may fragment
//! their echoes. The dataplane tells the stack its interfaces of every
//! table (`OwnTables`); a scope is resolved against them at each send, so
//! a commit that renumbers the VRFs or readdresses an interface is
//! followed.

use crate::snapshot::{VrfId, GLOBAL_TABLE};
use ipnet::IpNet;
use std::io;
use std::net::IpAddr;

/// A tool's source: an own address, or an interface's (its first address
/// of the destination's family).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Address(IpAddr),
    Interface(String),
}

/// Where a tool's socket sends from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The VRF (None: the global table).
    pub vrf: Option<String>,
    pub source: Option<Source>,
    /// Keep IPv4's DF bit; without it routers may fragment (IOS's ping
    /// default).
    pub dont_fragment: bool,
}

/// An up interface with its table and addresses (link-local included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnInterface {
    pub name: String,
    pub table: VrfId,
    pub addresses: Vec<IpNet>,
}

/// The VRFs (name and table) and the up interfaces of a committed config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnTables {
    pub vrfs: Vec<(String, VrfId)>,
    pub interfaces: Vec<OwnInterface>,
}

fn not_available(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::AddrNotAvailable, message)
}

impl OwnTables {
    /// The table of VRF `name` (None: the global table).
    pub fn table(&self, name: Option<&str>) -> io::Result<VrfId> {
        let Some(name) = name else {
            return Ok(GLOBAL_TABLE);
        };
        let found = self.vrfs.iter().find(|(vrf, _)| vrf == name);
        found.map(|(_, id)| *id).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("VRF {name} does not exist"),
            )
        })
    }

    /// The own addresses of table `table`.
    pub fn addresses(&self, table: VrfId) -> impl Iterator<Item = &IpNet> {
        let interfaces = self.interfaces.iter().filter(move |i| i.table == table);
        interfaces.flat_map(|i| i.addresses.iter())
    }

    /// The address `source` names in table `table`, of `destination`'s
    /// family (and link-local only towards a link-local peer).
    pub fn source(&self, source: &Source, table: VrfId, destination: IpAddr) -> io::Result<IpAddr> {
        let link_local = |ip: IpAddr| matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local());
        let fits = |ip: IpAddr| {
            ip.is_ipv4() == destination.is_ipv4() && link_local(ip) == link_local(destination)
        };
        match source {
            Source::Address(address) => {
                if address.is_ipv4() != destination.is_ipv4() {
                    return Err(not_available(format!(
                        "{address} cannot reach {destination}"
                    )));
                }
                if self.addresses(table).any(|net| net.addr() == *address) {
                    Ok(*address)
                } else {
                    Err(not_available(format!(
                        "{address} is not an address of the appliance in this table"
                    )))
                }
            }
            Source::Interface(name) => {
                let interface = (self.interfaces.iter())
                    .find(|i| i.name.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        not_available(format!("{name} is not an interface that is up"))
                    })?;
                if interface.table != table {
                    return Err(not_available(format!("{name} is in another routing table")));
                }
                (interface.addresses.iter().map(IpNet::addr))
                    .find(|ip| fits(*ip))
                    .ok_or_else(|| {
                        not_available(format!("{name} has no address to reach {destination} from"))
                    })
            }
        }
    }
}
