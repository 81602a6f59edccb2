//! Per-thread front cache.
//!
//! Each thread keeps its own copy of recently served tokens (a separate allocation, so handing
//! one out bumps a reference count no other core touches). A copy is used only while its entry's
//! generation is unchanged and its refresh time has not come; otherwise the caller takes the
//! shared path, which refreshes the copy.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::key::ScopeList;
use super::partition::{Cached, Entry};
use crate::AccessToken;

/// Per-thread front cache size.
const FRONT_SLOTS: usize = 8;

pub(super) struct FrontSlot {
    pub(super) partition: u64,
    /// Copies of the key's parts, so matching reads the slot itself instead of chasing pointers
    /// into the shared entry (`first_scope` is the only scope in the common one-scope case).
    pub(super) cae: bool,
    pub(super) tenant: Option<Box<str>>,
    pub(super) scope_count: usize,
    pub(super) first_scope: Box<str>,
    pub(super) entry: Arc<Entry>,
    pub(super) generation: u64,
    pub(super) refresh_at: i64,
    pub(super) token: AccessToken,
}

pub(super) struct Front {
    pub(super) slots: Vec<FrontSlot>,
    pub(super) next_victim: usize,
}

thread_local! {
    static FRONT: RefCell<Front> = const {
        RefCell::new(Front { slots: Vec::new(), next_victim: 0 })
    };
}

#[inline(always)]
pub(super) fn front_lookup(
    partition: u64,
    scopes: &[&str],
    tenant: Option<&str>,
    cae: bool,
    now: i64,
) -> Option<AccessToken> {
    FRONT
        .try_with(|front| {
            let front = front.try_borrow().ok()?;
            let slot = front.slots.iter().find(|s| {
                s.partition == partition
                    && s.cae == cae
                    && s.tenant.as_deref() == tenant
                    && match scopes {
                        [one] => s.scope_count == 1 && *one == &*s.first_scope,
                        _ => scopes_match(scopes, &s.entry.key.scopes),
                    }
            })?;
            let current = slot.entry.generation.load(Ordering::Acquire) == slot.generation;
            (current && now < slot.refresh_at).then(|| slot.token.clone())
        })
        .ok()
        .flatten()
}

/// Whether a caller's scopes, in any order and with repeats, are the key's sorted set.
#[inline]
pub(super) fn scopes_match(requested: &[&str], key: &[Box<str>]) -> bool {
    match (requested, key) {
        ([one], [k]) => *one == &**k,
        _ => {
            let list = ScopeList::new(requested);
            let sorted = list.as_slice();
            sorted.len() == key.len() && sorted.iter().zip(key).all(|(a, b)| *a == &**b)
        }
    }
}

pub(super) fn front_store(partition: u64, entry: &Arc<Entry>, generation: u64, cached: &Cached) {
    let _ = FRONT.try_with(|front| {
        let Ok(mut front) = front.try_borrow_mut() else {
            return;
        };
        let key = &entry.key;
        let slot = FrontSlot {
            partition,
            cae: key.cae,
            tenant: key.tenant.clone(),
            scope_count: key.scopes.len(),
            first_scope: key.scopes.first().cloned().unwrap_or_default(),
            entry: entry.clone(),
            generation,
            refresh_at: cached.refresh_at,
            token: cached.token.deep_copy(),
        };
        if let Some(i) = front
            .slots
            .iter()
            .position(|s| Arc::ptr_eq(&s.entry, entry))
        {
            front.slots[i] = slot;
        } else if front.slots.len() < FRONT_SLOTS {
            front.slots.push(slot);
        } else {
            let victim = front.next_victim;
            front.slots[victim] = slot;
            front.next_victim = (victim + 1) % FRONT_SLOTS;
        }
    });
}
