//! The few frames the tests speak: ARP, ICMP echo, numbered test frames.

use super::ports::{PORT_IP, PORT_MAC, TEST_ETHERTYPE};

const ETH_ARP: u16 = 0x0806;
const ETH_IPV4: u16 = 0x0800;

fn ethertype(frame: &[u8]) -> Option<u16> {
    frame.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]))
}

/// An ARP request from the port asking who has `target`.
pub fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&PORT_MAC);
    f.extend_from_slice(&ETH_ARP.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&PORT_MAC);
    f.extend_from_slice(&PORT_IP);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

/// If `frame` is an ARP reply telling the port where `sender` is.
pub fn is_arp_reply_from(frame: &[u8], sender: [u8; 4]) -> bool {
    ethertype(frame) == Some(ETH_ARP)
        && frame.len() >= 42
        && frame[20..22] == [0, 2]
        && frame[28..32] == sender
        && frame[32..38] == PORT_MAC
}

/// The answer of a host owning `PORT_IP` to an ARP request or ICMP echo
/// request for it; None for any other frame.
pub fn answer(frame: &[u8]) -> Option<Vec<u8>> {
    match ethertype(frame)? {
        ETH_ARP if frame.len() >= 42 && frame[20..22] == [0, 1] && frame[38..42] == PORT_IP => {
            let mut reply = frame[..42].to_vec();
            reply[0..6].copy_from_slice(&frame[6..12]);
            reply[6..12].copy_from_slice(&PORT_MAC);
            reply[21] = 2;
            reply[22..28].copy_from_slice(&PORT_MAC);
            reply[28..32].copy_from_slice(&PORT_IP);
            reply[32..42].copy_from_slice(&frame[22..32]);
            Some(reply)
        }
        ETH_IPV4 => echo_reply(frame),
        _ => None,
    }
}

fn echo_reply(frame: &[u8]) -> Option<Vec<u8>> {
    let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]));
    let icmp = 14 + ihl;
    let is_echo_to_port = frame.get(23) == Some(&1)
        && frame.get(30..34) == Some(&PORT_IP[..])
        && frame.get(icmp) == Some(&8);
    if !is_echo_to_port || frame.len() < 14 + total || total < ihl + 8 {
        return None;
    }
    let mut reply = frame[..14 + total].to_vec();
    reply[0..6].copy_from_slice(&frame[6..12]);
    reply[6..12].copy_from_slice(&PORT_MAC);
    // Swapping the addresses keeps the IPv4 header checksum valid.
    reply[26..30].copy_from_slice(&frame[30..34]);
    reply[30..34].copy_from_slice(&frame[26..30]);
    reply[icmp] = 0;
    reply[icmp + 2..icmp + 4].copy_from_slice(&[0, 0]);
    let sum = checksum(&reply[icmp..]);
    reply[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
    Some(reply)
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 64-byte broadcast test frame carrying `seq`.
pub fn numbered(seq: u32) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&PORT_MAC);
    f[12..14].copy_from_slice(&TEST_ETHERTYPE.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    f
}

/// The sequence number of a test frame, None for other traffic.
pub fn sequence(frame: &[u8]) -> Option<u32> {
    if ethertype(frame) != Some(TEST_ETHERTYPE) {
        return None;
    }
    frame
        .get(14..18)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// `frame` with an 802.1Q tag for `vid` after the MAC addresses.
pub fn with_vlan(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut tagged = frame[..12].to_vec();
    tagged.extend_from_slice(&0x8100u16.to_be_bytes());
    tagged.extend_from_slice(&vid.to_be_bytes());
    tagged.extend_from_slice(&frame[12..]);
    tagged
}

/// If `frame` is an IPv4 UDP datagram whose checksum verifies (or is unset).
pub fn udp_checksum_ok(frame: &[u8]) -> Option<bool> {
    if ethertype(frame)? != ETH_IPV4 || *frame.get(23)? != 17 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let udp = frame.get(14 + ihl..14 + total)?;
    if udp.get(6..8)? == [0, 0] {
        return Some(true);
    }
    let mut pseudo = frame[26..34].to_vec();
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(udp);
    Some(checksum(&pseudo) == 0)
}

/// If `frame` is an IPv4 TCP segment: whether its IPv4 header checksum and
/// TCP checksum verify, and its payload.
pub fn tcp_segment(frame: &[u8]) -> Option<(bool, &[u8])> {
    if ethertype(frame)? != ETH_IPV4 || *frame.get(23)? != 6 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    let header_ok = checksum(frame.get(14..14 + ihl)?) == 0;
    let tcp = frame.get(14 + ihl..14 + total)?;
    let data_offset = usize::from(tcp.get(12)? >> 4) * 4;
    let mut pseudo = frame[26..34].to_vec();
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(tcp);
    Some((header_ok && checksum(&pseudo) == 0, tcp.get(data_offset..)?))
}
