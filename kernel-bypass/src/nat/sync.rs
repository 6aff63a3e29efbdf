//! NAT's and the load balancer's translation tables as the HA pair keeps
//! them alike (`crate::state_sync`): a dynamic translation comes with its
//! public endpoint's mapping ([`NatState`]), a load-balancer session
//! without one ([`TranslationTable`]).

use super::address::Address;
use super::node::NatState;
use super::table::{Translation, TranslationTable};
use crate::sessions::{TcpState, Timeouts};
use crate::state_sync::{Kind, SyncRecord, Synced};
use std::marker::PhantomData;
use std::sync::Arc;

/// What holds translations of family `A` and takes in the peer's.
pub trait TranslationStore<A: Address>: Send + Sync {
    fn translations(&self) -> &TranslationTable<A>;
    /// Whether the peer's translation was taken.
    fn adopt(&self, tr: &Translation<A>, tcp: TcpState, times: (u32, &Timeouts)) -> bool;
}

impl<A: Address> TranslationStore<A> for NatState<A> {
    fn translations(&self) -> &TranslationTable<A> {
        &self.table
    }

    fn adopt(&self, tr: &Translation<A>, tcp: TcpState, times: (u32, &Timeouts)) -> bool {
        NatState::adopt(self, tr, tcp, times)
    }
}

impl<A: Address> TranslationStore<A> for TranslationTable<A> {
    fn translations(&self) -> &TranslationTable<A> {
        self
    }

    fn adopt(&self, tr: &Translation<A>, tcp: TcpState, times: (u32, &Timeouts)) -> bool {
        // Sessions opened from the outside hold no mapping to give back.
        let mut released = Vec::new();
        TranslationTable::adopt(self, tr, tcp, times, &mut released).is_ok()
    }
}

/// One store of one family, as the pair's sync sees it.
pub struct SyncedTranslations<A, S> {
    kind: Kind,
    store: Arc<S>,
    family: PhantomData<A>,
}

impl<A: Address, S: TranslationStore<A>> SyncedTranslations<A, S> {
    pub fn new(kind: Kind, store: Arc<S>) -> Arc<Self> {
        Arc::new(SyncedTranslations {
            kind,
            store,
            family: PhantomData,
        })
    }
}

impl<A: Address, S: TranslationStore<A> + 'static> Synced for SyncedTranslations<A, S> {
    fn kind(&self) -> Kind {
        self.kind
    }

    fn own_in_shard(&self, at: usize, times: (u32, &Timeouts), f: &mut dyn FnMut(SyncRecord)) {
        let kind = self.kind;
        (self.store.translations()).own_in_shard(at, times, &mut |tr, tcp| {
            f(SyncRecord::of_translation(kind, tr, tcp))
        });
    }

    fn adopt(&self, record: &SyncRecord, times: (u32, &Timeouts)) -> Option<bool> {
        let tr = record.translation::<A>()?;
        Some(self.store.adopt(&tr, record.tcp, times))
    }
}
