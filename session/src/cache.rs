//! A small bounded cache of recently opened stateless cookies, so that a
//! cookie the browser sends again is not unsealed again.
//!
//! Each engine has its own cache, so its keyring and encoder are implicitly
//! part of the key; the key proper is the whole cookie value, compared in
//! full. A hit gives back exactly what the encoder returned for that
//! value, and the engine checks the record's expiry on every load, hit or
//! not. Only values the encoder calls [`cacheable`](crate::Encoder::cacheable)
//! are kept.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use crate::record::Record;

/// Entries per set. Four ways make a pool of sessions up to about the
/// cache's capacity fit without two of them taking turns in one place:
/// with 1,000 sessions in 1,024 sets of four, a set overflows for about
/// one session in three hundred, where a direct-mapped table of 1,024
/// slots unsealed 62 % of them again on every visit.
const WAYS: usize = 4;

/// The default number of entries (see
/// [`SessionEngineBuilder::with_cookie_cache_capacity`](crate::SessionEngineBuilder::with_cookie_cache_capacity)).
pub(crate) const DEFAULT_CAPACITY: usize = 4096;

/// The most entries a cache takes, whatever it is asked for: 16 Mi, far
/// beyond one instance's active sessions (the sets alone take 44 bytes an
/// entry before anything is cached).
pub(crate) const MAX_CAPACITY: usize = 1 << 24;

/// The longest cookie value worth keeping (a 4 KiB cookie's value).
const MAX_TOKEN_LEN: usize = 4096;

/// How many bytes, from the end of a value, pick its set. An iron token
/// ends with its HMAC, so its last bytes tell tokens apart; values that
/// share them merely share a set (the full value is compared).
const HASHED_SUFFIX: usize = 48;

/// A set-associative table: a value's hash picks its set of [`WAYS`]
/// entries, and a new value replaces the set's least recently used one
/// (approximately: the clock algorithm). Bounded by construction, one
/// short lock per lookup, no lock shared by all requests.
pub(crate) struct TokenCache {
    /// Seeded at random per cache, so nobody can aim values at a set
    /// (and an entry pushed out costs one unseal, nothing more). foldhash
    /// rather than SipHash: a sixth of the instructions on 48 bytes.
    hasher: foldhash::quality::RandomState,
    sets: Box<[Mutex<Set>]>,
}

#[derive(Default)]
struct Set {
    entries: [Option<Entry>; WAYS],
    /// Where the clock hand points: the next entry to consider replacing.
    hand: u8,
}

struct Entry {
    hash: u64,
    token: Box<str>,
    record: Arc<Record>,
    stale: bool,
    /// Hit since the hand last passed it: spared once.
    used: bool,
}

impl Set {
    /// The way that holds `token` (whose keyed hash is `hash`). The full
    /// comparison only runs when the hashes match, that is for values of
    /// the same length and the same last bytes (an iron token's HMAC):
    /// nothing secret to learn from its timing.
    fn find(&self, hash: u64, token: &str) -> Option<usize> {
        self.entries.iter().position(|e| {
            e.as_ref()
                .is_some_and(|e| e.hash == hash && *e.token == *token)
        })
    }

    /// The way a new entry goes into: an empty one, or the first the
    /// clock hand finds unused since it last passed (at most two turns).
    fn victim(&mut self) -> usize {
        if let Some(free) = self.entries.iter().position(Option::is_none) {
            return free;
        }
        loop {
            let way = usize::from(self.hand) % WAYS;
            // `WAYS` fits a `u8`.
            #[allow(clippy::cast_possible_truncation)]
            {
                self.hand = ((way + 1) % WAYS) as u8;
            }
            match &mut self.entries[way] {
                Some(entry) if entry.used => entry.used = false,
                _ => return way,
            }
        }
    }
}

impl TokenCache {
    /// A cache of about `capacity` entries (rounded up to a power of two
    /// sets of [`WAYS`], at most [`MAX_CAPACITY`]); `0` keeps nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        let sets = sets_for(capacity);
        Self {
            hasher: foldhash::quality::RandomState::default(),
            sets: std::iter::repeat_with(Mutex::default).take(sets).collect(),
        }
    }

    /// How many entries it can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    fn set(&self, hash: u64) -> Option<&Mutex<Set>> {
        // Truncation is intended: the low bits pick the set.
        #[allow(clippy::cast_possible_truncation)]
        let index = hash as usize & self.sets.len().wrapping_sub(1);
        self.sets.get(index)
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
        if token.len() > MAX_TOKEN_LEN || self.sets.is_empty() {
            return None;
        }
        let hash = self.hash(token);
        let mut set = self
            .set(hash)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let way = set.find(hash, token)?;
        let entry = set.entries[way].as_mut()?;
        entry.used = true;
        Some((Arc::clone(&entry.record), entry.stale))
    }

    /// Keeps what `token` opened to, in place of its set's least recently
    /// used entry when the set is full.
    pub(crate) fn insert(&self, token: &str, record: &Arc<Record>, stale: bool) {
        if token.len() > MAX_TOKEN_LEN || self.sets.is_empty() {
            return;
        }
        let hash = self.hash(token);
        let entry = Entry {
            hash,
            token: token.into(),
            record: Arc::clone(record),
            stale,
            used: false,
        };
        let Some(set) = self.set(hash) else { return };
        let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);
        // Two requests that opened the same value at once keep one entry.
        let way = set.find(hash, token).unwrap_or_else(|| set.victim());
        let old = set.entries[way].replace(entry);
        drop(set);
        // The old entry is dropped after the lock is released.
        drop(old);
    }
}

/// How many sets hold `capacity` entries: a power of two, within
/// [`MAX_CAPACITY`].
fn sets_for(capacity: usize) -> usize {
    if capacity == 0 {
        0
    } else {
        capacity
            .min(MAX_CAPACITY)
            .div_ceil(WAYS)
            .next_power_of_two()
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &self.capacity())
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

    fn held(cache: &TokenCache) -> usize {
        cache
            .sets
            .iter()
            .map(|s| s.lock().unwrap().entries.iter().flatten().count())
            .sum()
    }

    #[test]
    fn hits_only_the_exact_value() {
        let cache = TokenCache::new(DEFAULT_CAPACITY);
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
        let cache = TokenCache::new(DEFAULT_CAPACITY);
        for n in 0..(DEFAULT_CAPACITY as u64 * 4) {
            cache.insert(&format!("token-{n}"), &record(n), n % 2 == 0);
        }
        // Never more than the capacity (and, after four times as many
        // values, nearly every entry in use: how many depends on the seed).
        let held = held(&cache);
        assert!(held <= DEFAULT_CAPACITY, "{held} entries");
        assert!(held * 100 >= DEFAULT_CAPACITY * 99, "{held} entries");
        // The newest value is always there.
        let last = DEFAULT_CAPACITY as u64 * 4 - 1;
        assert_eq!(cache.get(&format!("token-{last}")).unwrap().0, record(last));
    }

    #[test]
    fn capacity_rounds_up_to_whole_sets() {
        assert_eq!(
            TokenCache::new(DEFAULT_CAPACITY).capacity(),
            DEFAULT_CAPACITY
        );
        assert_eq!(TokenCache::new(1).capacity(), WAYS);
        assert_eq!(TokenCache::new(1000).capacity(), 1024);
        assert_eq!(TokenCache::new(0).capacity(), 0);
        assert_eq!(sets_for(usize::MAX) * WAYS, MAX_CAPACITY);
        // What `MAX_CAPACITY`'s docs say an empty entry costs.
        assert!(std::mem::size_of::<Mutex<Set>>() <= 44 * WAYS);
    }

    #[test]
    fn a_zero_capacity_keeps_nothing() {
        let cache = TokenCache::new(0);
        cache.insert("Fe26.2**abc", &record(1), false);
        assert!(cache.get("Fe26.2**abc").is_none());
    }

    /// The pool of sessions the socket bench rotates: with a direct-mapped
    /// table of as many slots, 62 % of them collided and missed.
    #[test]
    fn a_pool_of_a_quarter_of_the_capacity_stays_cached() {
        let cache = TokenCache::new(DEFAULT_CAPACITY);
        let pool = DEFAULT_CAPACITY / 4;
        for n in 0..pool {
            cache.insert(&format!("Fe26.2**session-{n}"), &record(n as u64), false);
        }
        let hits = (0..pool)
            .filter(|n| cache.get(&format!("Fe26.2**session-{n}")).is_some())
            .count();
        // A set of four overflows for a few sessions in a thousand (about
        // 4 of these 1,024 on average, depending on the seed); a
        // direct-mapped table of the same capacity keeps 63 % of them.
        assert!(hits * 100 >= pool * 97, "{hits} of {pool} cached");
    }

    #[test]
    fn a_used_entry_outlives_an_unused_one() {
        // One set, so every value shares it.
        let cache = TokenCache::new(WAYS);
        for n in 0..WAYS {
            cache.insert(&format!("v{n}"), &record(n as u64), false);
        }
        assert!(cache.get("v0").is_some());
        cache.insert("new", &record(99), false);
        assert!(
            cache.get("v0").is_some(),
            "the entry just read was replaced"
        );
        assert!(cache.get("new").is_some());
        assert_eq!(held(&cache), WAYS);
    }

    #[test]
    fn the_same_value_twice_takes_one_entry() {
        let cache = TokenCache::new(WAYS);
        cache.insert("v", &record(1), false);
        cache.insert("v", &record(2), true);
        assert_eq!(held(&cache), 1);
        assert_eq!(cache.get("v").unwrap(), (record(2), true));
    }

    #[test]
    fn oversized_values_are_not_kept() {
        let cache = TokenCache::new(DEFAULT_CAPACITY);
        let big = "x".repeat(MAX_TOKEN_LEN + 1);
        cache.insert(&big, &record(1), false);
        assert!(cache.get(&big).is_none());
    }
}
