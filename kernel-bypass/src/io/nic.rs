//! NIC settings a port makes, through the ethtool ioctls, so that it sees
//! every frame as it was on the wire.
//!
//! GRO (in the kernel) and LRO/hardware GRO (in the NIC, or in the host for
//! virtio guests) merge TCP segments into one large packet before packet
//! sockets and generic XDP see it: ports switch them off. An AF_XDP socket
//! serves one receive queue, so that port also folds the NIC's receive
//! queues into one.

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

/// Makes the NIC deliver every received frame on queue 0, where an AF_XDP
/// port's socket is, by reducing its receive queues to one. A driver
/// without the channel commands is taken to have a single queue.
pub fn use_one_receive_queue(ifname: &str) -> io::Result<()> {
    // struct ethtool_channels: cmd, max rx/tx/other/combined, then the
    // current rx, tx, other and combined counts.
    const RX: usize = 5;
    const COMBINED: usize = 8;
    let mut channels = [ETHTOOL_GCHANNELS, 0, 0, 0, 0, 0, 0, 0, 0];
    match ethtool(ifname, &mut channels) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(()),
        other => other?,
    }
    let queues = channels[RX] + channels[COMBINED];
    if queues <= 1 {
        return Ok(());
    }
    channels[0] = ETHTOOL_SCHANNELS;
    if channels[COMBINED] > 0 {
        channels[COMBINED] = 1;
        channels[RX] = 0;
    } else {
        channels[RX] = 1;
    }
    ethtool(ifname, &mut channels).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{queues} receive queues cannot be reduced to the one AF_XDP serves: {e}"),
        )
    })
}
