//! NIC settings a port makes, through the ethtool ioctls, so that it sees
//! every frame as it was on the wire.
//!
//! GRO (in the kernel) and LRO/hardware GRO (in the NIC, or in the host for
//! virtio guests) merge TCP segments into one large packet before packet
//! sockets and generic XDP see it: ports switch them off. An AF_XDP socket
//! serves one receive queue, so that port also makes sure the NIC has a
//! queue for each of the workers (or, alone, folds them into one).

use super::sys;
use std::io;
use std::os::fd::AsRawFd;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_SCHANNELS: u32 = 0x3d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// The kernel's names of the features that coalesce received packets.
const COALESCING: [&str; 5] = [
    "rx-gro",
    "rx-lro",
    "rx-gro-hw",
    "rx-gro-list",
    "rx-udp-gro-forwarding",
];

/// Switches off every coalescing feature the interface has. Features a
/// driver cannot change are left alone (the kernel ignores the request).
pub fn disable_receive_coalescing(ifname: &str) -> io::Result<()> {
    disable_features(ifname, &COALESCING)
        .map_err(|e| io::Error::new(e.kind(), format!("turning off receive coalescing: {e}")))
}

/// Issues one ethtool command; `request` starts with the command number and
/// is laid out as the command's struct.
fn ethtool(ifname: &str, request: &mut [u32]) -> io::Result<()> {
    // SAFETY: plain socket creation.
    let sock = sys::owned_fd(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) })?;
    let mut req = sys::ifreq_for(ifname)?;
    req.ifr_ifru.ifru_data = request.as_mut_ptr().cast();
    // SAFETY: ifr_data points at a buffer sized for the command it holds.
    sys::check(unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL, &mut req) }).map(drop)
}

fn disable_features(ifname: &str, features: &[&str]) -> io::Result<()> {
    // struct ethtool_sset_info: cmd, reserved, u64 mask (x86_64 is little
    // endian: low word first), then one count.
    let mut info = [ETHTOOL_GSSET_INFO, 0, 1 << ETH_SS_FEATURES, 0, 0];
    ethtool(ifname, &mut info)?;
    let count = info[4] as usize;

    // struct ethtool_gstrings: cmd, string set, count, then the names.
    let mut strings = vec![0u32; 3 + count * ETH_GSTRING_LEN / 4];
    strings[..3].copy_from_slice(&[ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count as u32]);
    ethtool(ifname, &mut strings)?;
    let names: Vec<u8> = strings[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();

    // struct ethtool_sfeatures: cmd, block count, then (valid, requested)
    // pairs of 32-feature blocks; a valid bit with a clear requested bit
    // turns that feature off.
    let blocks = count.div_ceil(32);
    let mut request = vec![0u32; 2 + 2 * blocks];
    request[..2].copy_from_slice(&[ETHTOOL_SFEATURES, blocks as u32]);
    let mut any = false;
    for (bit, name) in names.chunks_exact(ETH_GSTRING_LEN).enumerate() {
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        if features.iter().any(|c| c.as_bytes() == name) {
            request[2 + 2 * (bit / 32)] |= 1 << (bit % 32);
            any = true;
        }
    }
    if any {
        ethtool(ifname, &mut request)?;
    }
    Ok(())
}

/// Asks the NIC for exactly `wanted` receive queues (as `ethtool -L`
/// does, within the driver's maximum) and returns how many queues an
/// AF_XDP socket can now bind: as many as have both a receive and a
/// transmit side, since a socket with both rings needs its queue id below
/// both counts. The count stays as it was where the driver refuses the
/// change; a driver without the channel commands is counted from
/// `/sys/class/net/IF/queues`.
///
/// Fewer queues is not always fewer paths in: a veth's peer keeps its
/// transmit queues, and what it sends on a queue beyond ours reaches the
/// kernel's stack without meeting the XDP program.
pub fn use_receive_queues(ifname: &str, wanted: u32) -> io::Result<u32> {
    change_queues(ifname, wanted, |now| now != wanted)
}

/// Like `use_receive_queues`, but only ever raises the count: a NIC with
/// `wanted` queues or more keeps them all.
pub fn use_at_least_receive_queues(ifname: &str, wanted: u32) -> io::Result<u32> {
    change_queues(ifname, wanted, |now| now < wanted)
}

/// Asks for `wanted` queues if `change` says so of the current count.
fn change_queues(ifname: &str, wanted: u32, change: impl Fn(u32) -> bool) -> io::Result<u32> {
    let Some(mut channels) = Channels::read(ifname)? else {
        return Ok(queues_in_sysfs(ifname));
    };
    if change(channels.bindable()) {
        // A refusal leaves the count as it was; the caller sees the count.
        if channels.ask(wanted).write(ifname).is_ok() {
            channels = Channels::read(ifname)?.unwrap_or(channels);
        }
    }
    Ok(channels.bindable())
}

/// `struct ethtool_channels`: the command, the maxima of rx, tx, other and
/// combined channels, then their current counts.
#[derive(Clone, Copy)]
struct Channels([u32; 9]);

impl Channels {
    const MAX_RX: usize = 1;
    const MAX_TX: usize = 2;
    const MAX_COMBINED: usize = 4;
    const RX: usize = 5;
    const TX: usize = 6;
    const COMBINED: usize = 8;

    /// The current channels; None if the driver lacks the command.
    fn read(ifname: &str) -> io::Result<Option<Channels>> {
        let mut channels = Channels([ETHTOOL_GCHANNELS, 0, 0, 0, 0, 0, 0, 0, 0]);
        match ethtool(ifname, &mut channels.0) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(None),
            Err(e) => Err(e),
            Ok(()) => Ok(Some(channels)),
        }
    }

    /// Queues with a receive and a transmit side.
    fn bindable(&self) -> u32 {
        let c = &self.0;
        c[Self::RX].min(c[Self::TX]) + c[Self::COMBINED]
    }

    /// The request for `wanted` queues, within the maxima: combined
    /// channels where the NIC has them (most hardware), else as many
    /// receive and at least as many transmit channels (veth).
    fn ask(mut self, wanted: u32) -> Channels {
        let c = &mut self.0;
        c[0] = ETHTOOL_SCHANNELS;
        if c[Self::MAX_COMBINED] > 0 {
            c[Self::COMBINED] = wanted.min(c[Self::MAX_COMBINED]);
            c[Self::RX] = 0;
        } else {
            c[Self::RX] = wanted.min(c[Self::MAX_RX]);
            c[Self::TX] = c[Self::TX].max(wanted).min(c[Self::MAX_TX]);
        }
        self
    }

    fn write(mut self, ifname: &str) -> io::Result<()> {
        ethtool(ifname, &mut self.0)
    }
}

/// Queues with both sides as `/sys/class/net/IF/queues` lists them
/// (`rx-N`, `tx-N`); 1 if it cannot be read.
fn queues_in_sysfs(ifname: &str) -> u32 {
    let Ok(entries) = std::fs::read_dir(format!("/sys/class/net/{ifname}/queues")) else {
        return 1;
    };
    let (mut rx, mut tx) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        rx += u32::from(name.starts_with("rx-"));
        tx += u32::from(name.starts_with("tx-"));
    }
    rx.min(tx).max(1)
}
