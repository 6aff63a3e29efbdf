//! Why a WireGuard interface refused or could not send a packet, counted
//! per interface for `show wireguard`.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! rejects {
    ($($variant:ident => $name:literal,)*) => {
        /// A reason a packet was not taken or not sent.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Reject { $($variant,)* }

        impl Reject {
            pub const ALL: &'static [Reject] = &[$(Reject::$variant,)*];
            pub fn name(self) -> &'static str {
                match self { $(Reject::$variant => $name,)* }
            }
        }
    };
}

rejects! {
    Invalid => "malformed",
    UnknownPeer => "unknown-peer",
    Authentication => "authentication-failed",
    Replay => "replayed",
    NoSession => "no-session",
    UnderLoad => "cookie-sent",
    SourceNotAllowed => "source-not-allowed",
    NoPeer => "no-peer-for-destination",
    NoEndpoint => "no-endpoint",
    NoRoute => "no-route-to-endpoint",
    TooBig => "too-big",
}

/// One interface's counts.
#[derive(Default)]
pub struct WgCounters {
    rejects: [AtomicU64; Reject::ALL.len()],
    /// Handshakes answered or completed.
    pub handshakes: AtomicU64,
}

impl WgCounters {
    pub fn count(&self, reason: Reject) {
        self.rejects[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, reason: Reject) -> u64 {
        self.rejects[reason as usize].load(Ordering::Relaxed)
    }
}
