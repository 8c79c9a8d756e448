//! A small bounded cache of recently opened stateless cookies, so that a
//! cookie the browser sends again is not unsealed again.
//!
//! Each engine has its own cache, so its keyring and encoder are implicitly
//! part of the key; the key proper is the whole cookie value, compared in
//! full. A hit gives back exactly what the encoder returned for that
//! value, and the engine checks the record's expiry on every load, hit or
//! not. Only values the encoder calls [`cacheable`](crate::Encoder::cacheable)
//! are kept.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use crate::record::Record;

/// Number of entries; a power of two.
const SLOTS: usize = 1024;

/// The longest cookie value worth keeping (a 4 KiB cookie's value).
const MAX_TOKEN_LEN: usize = 4096;

/// How many bytes, from the end of a value, pick its slot. An iron token
/// ends with its HMAC, so its last bytes tell tokens apart; values that
/// share them merely share a slot (the full value is compared).
const HASHED_SUFFIX: usize = 48;

/// A direct-mapped table: a value's hash picks its one slot, a newer value
/// replaces an older one. Bounded by construction, one short lock per
/// lookup, no lock shared by all requests.
pub(crate) struct TokenCache {
    /// Keyed with process-random keys, so nobody can aim values at a slot.
    hasher: RandomState,
    slots: Box<[Mutex<Option<Entry>>]>,
}

struct Entry {
    hash: u64,
    token: Box<str>,
    record: Arc<Record>,
    stale: bool,
}

impl TokenCache {
    pub(crate) fn new() -> Self {
        Self {
            hasher: RandomState::new(),
            slots: std::iter::repeat_with(|| Mutex::new(None))
                .take(SLOTS)
                .collect(),
        }
    }

    fn slot(&self, hash: u64) -> &Mutex<Option<Entry>> {
        // Truncation is intended: the low bits pick the slot.
        #[allow(clippy::cast_possible_truncation)]
        let index = hash as usize & (SLOTS - 1);
        &self.slots[index]
    }

    fn hash(&self, token: &str) -> u64 {
        let bytes = token.as_bytes();
        let suffix = bytes
            .get(bytes.len().saturating_sub(HASHED_SUFFIX)..)
            .unwrap_or_default();
        self.hasher.hash_one((bytes.len(), suffix))
    }

    /// The record and staleness cached for `token`, if any.
    pub(crate) fn get(&self, token: &str) -> Option<(Arc<Record>, bool)> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let hash = self.hash(token);
        let slot = self
            .slot(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The full comparison only runs when the keyed hashes match, that
        // is for values of the same length and the same last bytes (an
        // iron token's HMAC): nothing secret to learn from its timing.
        slot.as_ref()
            .filter(|e| e.hash == hash && *e.token == *token)
            .map(|e| (Arc::clone(&e.record), e.stale))
    }

    /// Keeps what `token` opened to, replacing whatever shared its slot.
    pub(crate) fn insert(&self, token: &str, record: &Arc<Record>, stale: bool) {
        if token.len() > MAX_TOKEN_LEN {
            return;
        }
        let hash = self.hash(token);
        let entry = Entry {
            hash,
            token: token.into(),
            record: Arc::clone(record),
            stale,
        };
        // The old entry is dropped after the lock is released.
        let old = self
            .slot(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(entry);
        drop(old);
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> Arc<Record> {
        let mut r = Record::new();
        r.insert("n".to_owned(), n.into());
        Arc::new(r)
    }

    #[test]
    fn hits_only_the_exact_value() {
        let cache = TokenCache::new();
        cache.insert("Fe26.2**abc", &record(1), false);
        let (hit, stale) = cache.get("Fe26.2**abc").unwrap();
        assert_eq!(hit, record(1));
        assert!(!stale);
        assert!(cache.get("Fe26.2**abd").is_none());
        assert!(cache.get("Fe26.2**ab").is_none());
        assert!(cache.get("").is_none());
    }

    #[test]
    fn stays_bounded() {
        let cache = TokenCache::new();
        for n in 0..(SLOTS as u64 * 4) {
            cache.insert(&format!("token-{n}"), &record(n), n % 2 == 0);
        }
        let held = cache
            .slots
            .iter()
            .filter(|s| s.lock().unwrap().is_some())
            .count();
        assert!(held <= SLOTS);
        // The newest value is always there.
        let last = SLOTS as u64 * 4 - 1;
        assert_eq!(cache.get(&format!("token-{last}")).unwrap().0, record(last));
    }

    #[test]
    fn oversized_values_are_not_kept() {
        let cache = TokenCache::new();
        let big = "x".repeat(MAX_TOKEN_LEN + 1);
        cache.insert(&big, &record(1), false);
        assert!(cache.get(&big).is_none());
    }
}
