//! The XDP program that steers an interface's frames into AF_XDP sockets,
//! built and attached with the bpf() syscall alone (no libbpf):
//!
//! ```text
//! r2 = ctx->rx_queue_index
//! return bpf_redirect_map(&xsks, r2, XDP_PASS)   // no socket: to the kernel
//! ```
//!
//! One program and one socket map (XSKMAP, one entry per queue) serve all
//! of an interface's AF_XDP sockets: an interface holds one XDP program,
//! and the queue index picks the socket. It is attached through a BPF
//! link, so the kernel detaches it when the link's descriptor closes,
//! including when the process dies.

use super::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_ATTACH_XDP: u32 = 37;
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const XDP_PASS: i32 = 2;
/// Offset of `rx_queue_index` in `struct xdp_md`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;

/// The most queues one interface's map holds sockets for.
pub const MAX_QUEUES: u32 = 64;

/// How the program is attached to the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (native XDP) where supported, else generic.
    Auto,
    /// Native XDP in the driver; needed for zero-copy.
    Driver,
    /// Generic (SKB) XDP, which every interface supports.
    Generic,
}

/// `union bpf_attr`, filled field by field at the kernel's offsets.
#[repr(C, align(8))]
struct Attr([u8; 144]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 144])
    }

    fn u32_at(mut self, offset: usize, value: u32) -> Attr {
        self.0[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn u64_at(mut self, offset: usize, value: u64) -> Attr {
        self.0[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
        self
    }

    fn name_at(mut self, offset: usize, name: &str) -> Attr {
        self.0[offset..offset + name.len()].copy_from_slice(name.as_bytes());
        self
    }

    fn call(&self, cmd: libc::c_long) -> io::Result<libc::c_int> {
        // SAFETY: the attribute buffer is valid for its whole length and every
        // pointer stored in it outlives the call.
        let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, self.0.as_ptr(), self.0.len()) };
        sys::check(ret as libc::c_int)
    }
}

/// One eBPF instruction in its wire encoding.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut raw = [0u8; 8];
    raw[0] = code;
    raw[1] = dst | (src << 4);
    raw[2..4].copy_from_slice(&off.to_le_bytes());
    raw[4..8].copy_from_slice(&imm.to_le_bytes());
    raw
}

/// The redirect program for the XSKMAP `map_fd`.
fn redirect_program(map_fd: RawFd) -> [[u8; 8]; 6] {
    [
        // r2 = *(u32 *)(r1 + rx_queue_index)
        insn(0x61, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        // r1 = map (a 64-bit immediate spanning two slots)
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // r3 = XDP_PASS, the verdict when the queue has no socket
        insn(0xb7, 3, 0, 0, XDP_PASS),
        insn(0x85, 0, 0, 0, BPF_FUNC_REDIRECT_MAP),
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// The program attached to one interface, with its socket map; the
/// interface's ports share it. Dropping it detaches the program.
pub struct XdpRedirect {
    // Declared first so the program is detached before the rest closes.
    _link: OwnedFd,
    _prog: OwnedFd,
    map: OwnedFd,
}

impl XdpRedirect {
    /// Attaches the program with a map for rx queues `0..queues`; frames
    /// of queues without a socket (or beyond the map) go to the kernel.
    pub fn attach(ifindex: u32, mode: XdpMode, queues: u32) -> io::Result<XdpRedirect> {
        let map = Attr::new()
            .u32_at(0, BPF_MAP_TYPE_XSKMAP)
            .u32_at(4, 4)
            .u32_at(8, 4)
            .u32_at(12, queues)
            .name_at(28, "gatehouse_xsks")
            .call(BPF_MAP_CREATE);
        let map = sys::owned_fd(map.map_err(|e| context("creating the XSKMAP", e))?)?;

        let program = redirect_program(map.as_raw_fd());
        let license = c"MIT";
        let prog = Attr::new()
            .u32_at(0, BPF_PROG_TYPE_XDP)
            .u32_at(4, program.len() as u32)
            .u64_at(8, program.as_ptr() as u64)
            .u64_at(16, license.as_ptr() as u64)
            .name_at(48, "gatehouse_xdp")
            .u32_at(68, BPF_ATTACH_XDP)
            .call(BPF_PROG_LOAD);
        let prog = sys::owned_fd(prog.map_err(|e| context("loading the XDP program", e))?)?;

        let link = |flags| {
            Attr::new()
                .u32_at(0, prog.as_raw_fd() as u32)
                .u32_at(4, ifindex)
                .u32_at(8, BPF_ATTACH_XDP)
                .u32_at(12, flags)
                .call(BPF_LINK_CREATE)
        };
        let link = match mode {
            XdpMode::Driver => link(XDP_FLAGS_DRV_MODE),
            XdpMode::Generic => link(XDP_FLAGS_SKB_MODE),
            XdpMode::Auto => link(XDP_FLAGS_DRV_MODE).or_else(|_| link(XDP_FLAGS_SKB_MODE)),
        };
        let link = sys::owned_fd(link.map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY | libc::EEXIST) => context(
                "attaching the XDP program",
                io::Error::new(e.kind(), "another XDP program is attached"),
            ),
            _ => context("attaching the XDP program", e),
        })?)?;
        Ok(XdpRedirect {
            _link: link,
            _prog: prog,
            map,
        })
    }

    /// Steers frames of rx queue `queue` to the AF_XDP socket `xsk`.
    pub fn register(&self, queue: u32, xsk: RawFd) -> io::Result<()> {
        let key = queue;
        let value = xsk as u32;
        Attr::new()
            .u32_at(0, self.map.as_raw_fd() as u32)
            .u64_at(8, &key as *const u32 as u64)
            .u64_at(16, &value as *const u32 as u64)
            .call(BPF_MAP_UPDATE_ELEM)
            .map(drop)
            .map_err(|e| context("registering the socket in the XSKMAP", e))
    }
}

fn context(step: &str, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{step}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_use_the_kernel_encoding() {
        // r1 = *(u32 *)(r2 + 16): opcode, dst in the low nibble, src high.
        assert_eq!(insn(0x61, 1, 2, 16, 0), [0x61, 0x21, 16, 0, 0, 0, 0, 0]);
        assert_eq!(insn(0x85, 0, 0, 0, 51), [0x85, 0, 0, 0, 51, 0, 0, 0]);
        assert_eq!(
            insn(0xb7, 3, 0, -1, -2)[2..],
            [0xff, 0xff, 0xfe, 0xff, 0xff, 0xff]
        );
    }
}
