//! IPv4 fragmentation on output (RFC 791 2.3, 3.2): a packet larger than
//! its egress interface's MTU, with DF clear, leaves as fragments. The frame
//! itself becomes the first fragment (it keeps every option); the others are
//! written into preallocated frames and carry only the options whose copied
//! flag is set. Fragment data comes in multiples of 8 bytes; a packet that
//! is already a fragment is cut again at its own offset, and its last piece
//! keeps its MF flag.
//!
//! There is no reassembly: the appliance forwards fragments as they are.
//! Local delivery of fragments is a separate concern.

use super::{Stage, Verdict};
use crate::counters::Counter;
use crate::frame::{Batch, Frame};
use crate::snapshot::{Iface, Snapshot};
use crate::wire::*;

/// The copied flag of an option type: the option goes into every fragment.
const OPTION_COPIED: u8 = 0x80;
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
/// The largest IPv4 header (IHL 15).
const IPV4_MAX_HEADER: usize = 60;
/// Frames one encapsulation depth may fill with fragments per batch: a full
/// batch of 1500-byte packets into a 1280-byte MTU needs one each.
const CAPACITY: usize = 512;

/// Fragments (after the first) made while a batch is processed, with their
/// verdicts; sent and emptied with the batch.
pub(super) struct Fragments {
    pub(super) frames: Batch,
    pub(super) verdicts: Vec<Verdict>,
}

impl Fragments {
    fn new(capacity: usize) -> Fragments {
        Fragments {
            frames: Batch::new(capacity),
            verdicts: Vec::with_capacity(capacity),
        }
    }

    pub(super) fn clear(&mut self) {
        self.frames.clear();
        self.verdicts.clear();
    }
}

/// One set per encapsulation depth: while an inner packet's fragments are
/// sent (depth 0), each one's VXLAN outer packet may need fragmenting too
/// (depth 1), into the other set.
pub(super) fn sets() -> [Fragments; 2] {
    [Fragments::new(CAPACITY), Fragments::new(CAPACITY)]
}

/// Writes the options of `options` that have the copied flag into `out`
/// and zero-pads them to 32 bits; their padded length, or None when an
/// option's length is malformed.
fn copied_options(options: &[u8], out: &mut [u8]) -> Option<usize> {
    let (mut at, mut copied) = (0, 0);
    while at < options.len() {
        let len = match (options[at], options.get(at + 1)) {
            (OPTION_END, _) => break,
            (OPTION_NOP, _) => 1,
            (_, Some(&len)) if len >= 2 => usize::from(len),
            _ => return None,
        };
        if at + len > options.len() {
            return None;
        }
        if options[at] & OPTION_COPIED != 0 {
            out[copied..copied + len].copy_from_slice(&options[at..at + len]);
            copied += len;
        }
        at += len;
    }
    let padded = copied.next_multiple_of(4);
    out[copied..padded].fill(OPTION_END);
    Some(padded)
}

/// Completes a fragment whose header (of `header_len` bytes) and data are
/// in place: IHL, total length, MF and offset (in bytes), checksum.
fn finish_header(fragment: &mut [u8], header_len: usize, offset: usize, more: u16) {
    fragment[0] = 0x40 | (header_len / 4) as u8;
    put_be16(fragment, 2, fragment.len() as u16);
    put_be16(fragment, IPV4_FLAGS, more | (offset / 8) as u16);
    put_be16(fragment, IPV4_CHECKSUM, 0);
    let sum = checksum(&fragment[..header_len]);
    put_be16(fragment, IPV4_CHECKSUM, sum);
}

impl Stage {
    /// Sends an IPv4 packet (DF clear) too big for `out` to `mac` as
    /// fragments; returns the first one's verdict. All or nothing: a packet
    /// whose fragments do not all find a frame is dropped and counted.
    pub(super) fn fragment_output(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame,
        out: &Iface,
        mac: &Mac,
        depth: u8,
    ) -> Verdict {
        let d = frame.data();
        let header_len = ipv4_header_len(d);
        let total = usize::from(be16(d, 2)).min(d.len());
        let word = be16(d, IPV4_FLAGS);
        let offset = usize::from(word & IPV4_FRAGMENT_OFFSET) * 8;
        let mut later_header = [0; IPV4_MAX_HEADER];
        let copied = match d.get(IPV4_HEADER..header_len) {
            Some(options) if total > header_len && offset + total <= usize::from(u16::MAX) => {
                copied_options(options, &mut later_header[IPV4_HEADER..])
            }
            _ => None,
        };
        let Some(copied) = copied else {
            return self.count(out.id, Counter::Ipv4FragmentMalformed);
        };
        later_header[..IPV4_HEADER].copy_from_slice(&d[..IPV4_HEADER]);
        let later_len = IPV4_HEADER + copied;
        let mtu = usize::from(out.mtu);
        // Data per fragment: what fits, in whole 8-byte units.
        let first_data = mtu.saturating_sub(header_len) & !7;
        let later_data = mtu.saturating_sub(later_len) & !7;
        if first_data == 0 || later_data == 0 {
            return self.count(out.id, Counter::Ipv4MtuExceeded);
        }
        let data_len = total - header_len;
        let later = data_len.saturating_sub(first_data).div_ceil(later_data);
        // MF of a piece ending at `end`: the last one keeps the packet's own.
        let more = |end: usize| match end >= data_len {
            true => word & IPV4_MF,
            false => IPV4_MF,
        };
        // The set is moved out while its frames run through the stages
        // (which need `self`); an empty batch holds no allocation.
        let Some(set) = self.fragments.get_mut(usize::from(depth)) else {
            return self.count(out.id, Counter::Ipv4FragmentNoBuffer);
        };
        let mut set = std::mem::replace(set, Fragments::new(0));
        if set.frames.capacity() - set.frames.len() < later {
            self.fragments[usize::from(depth)] = set;
            return self.count(out.id, Counter::Ipv4FragmentNoBuffer);
        }
        for start in (first_data..data_len).step_by(later_data) {
            let len = later_data.min(data_len - start);
            let Some(f) = set.frames.next_free() else {
                break; // Not reached: the room was checked above.
            };
            let bytes = f.reset(later_len + len);
            bytes[..later_len].copy_from_slice(&later_header[..later_len]);
            let data = &frame.data()[header_len + start..header_len + start + len];
            bytes[later_len..].copy_from_slice(data);
            finish_header(bytes, later_len, offset + start, more(start + len));
            let v = self.l2_output(snap, f, out, mac, ETHERTYPE_IPV4, depth);
            set.frames.push_filled();
            set.verdicts.push(v);
            self.counters.event(Counter::Ipv4FragmentsCreated);
        }
        self.fragments[usize::from(depth)] = set;
        frame.truncate(header_len + first_data.min(data_len));
        finish_header(frame.data_mut(), header_len, offset, more(first_data));
        self.counters.event(Counter::Ipv4FragmentsCreated);
        self.counters.event(Counter::Ipv4Fragmented);
        self.l2_output(snap, frame, out, mac, ETHERTYPE_IPV4, depth)
    }
}

#[cfg(test)]
mod tests {
    use super::copied_options;

    #[test]
    fn only_options_with_the_copied_flag_are_kept_and_padded() {
        // NOP, record route (not copied, 7 bytes), a copied 3-byte option
        // (security-like, type 0x82), end of list.
        let options = [1, 7, 7, 4, 0, 0, 0, 0, 0x82, 3, 9, 0];
        let mut out = [0xff; 40];
        assert_eq!(copied_options(&options, &mut out), Some(4));
        assert_eq!(out[..4], [0x82, 3, 9, 0]);
        assert_eq!(copied_options(&[0x82, 9, 1], &mut out), None, "overrun");
        assert_eq!(copied_options(&[0x83, 0], &mut out), None, "zero length");
        assert_eq!(copied_options(&[0x83], &mut out), None, "no length byte");
        assert_eq!(copied_options(&[], &mut out), Some(0));
    }
}
