//! A bounded in-process store on `moka`, the cache tier of choice for
//! [`CachingStore`](crate::CachingStore).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moka::Expiry;
use moka::future::Cache;
use sealed_session::{Record, RequestContext, SessionId, Store, StoreError};

#[derive(Clone)]
struct Entry {
    record: Arc<Record>,
    expires_at: SystemTime,
}

struct ExpireAt;

impl ExpireAt {
    fn remaining(entry: &Entry) -> Option<Duration> {
        Some(
            entry
                .expires_at
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

impl Expiry<SessionId, Entry> for ExpireAt {
    fn expire_after_create(
        &self,
        _key: &SessionId,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Self::remaining(value)
    }

    fn expire_after_update(
        &self,
        _key: &SessionId,
        value: &Entry,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Self::remaining(value)
    }
}

/// A bounded in-process store: at most `max_capacity` records, the least
/// useful evicted first (moka's TinyLFU), each dropped at its expiry.
///
/// Mostly the cache tier of a [`CachingStore`](crate::CachingStore); on its
/// own it is a [`MemoryStore`](sealed_session::MemoryStore) that cannot
/// grow without bound (an evicted session is simply logged out). Clones
/// share the cache.
///
/// # Examples
///
/// ```
/// use sealed_session::MemoryStore;
/// use sealed_session_stores::{CachingStore, MokaStore};
///
/// let store = CachingStore::new(MokaStore::new(10_000), MemoryStore::new());
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct MokaStore {
    cache: Cache<SessionId, Entry>,
}

impl std::fmt::Debug for MokaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MokaStore")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl MokaStore {
    /// A store holding at most `max_capacity` records.
    #[must_use]
    pub fn new(max_capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(max_capacity)
                .expire_after(ExpireAt)
                .build(),
        }
    }

    /// Roughly how many records are held (moka counts lazily).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}

impl Store for MokaStore {
    /// Never reads the request, so the adapters do not copy it.
    fn uses_request_context(&self) -> bool {
        false
    }

    async fn get(
        &self,
        id: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        Ok(self
            .cache
            .get(id)
            .await
            .filter(|e| e.expires_at > SystemTime::now())
            .map(|e| e.record))
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        if expires_at <= SystemTime::now() {
            self.cache.invalidate(id).await;
        } else {
            self.cache
                .insert(id.clone(), Entry { record, expires_at })
                .await;
        }
        Ok(())
    }

    async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        self.cache.invalidate(id).await;
        Ok(())
    }
}
