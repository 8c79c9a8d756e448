//! A two-tier store: an in-process cache in front of any store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sealed_session::{
    Record, RequestContext, SessionId, SessionIndex, SessionInfo, Store, StoreError,
};

use crate::sweep::DeleteExpired;
use crate::time::record_expiry;

/// An in-process cache tier in front of a backend store, write-through.
///
/// - `get` asks the cache, then on a miss the backend, and keeps what the
///   backend returned in the cache until the record expires (or for the
///   [cache TTL](Self::with_cache_ttl), when shorter).
/// - `set` writes the backend, then the cache. When the backend fails, the
///   cached copy is dropped and the error returned: the tiers never
///   disagree about a write that failed.
/// - `delete` drops the cached copy, deletes in the backend, then drops the
///   cached copy again (so a concurrent read that refilled the cache in
///   between cannot resurrect the record). [`regenerate`] is a delete and a
///   set, so it is correct across both tiers too.
///
/// Both tiers are [`Store`]s: use [`MemoryStore`](sealed_session::MemoryStore)
/// for an unbounded cache, or `MokaStore` (feature `moka`) for a bounded one.
///
/// # Several instances
///
/// A cache is per process: a session deleted or changed through another
/// instance stays readable here until its cached copy expires. With more
/// than one instance, set a short [cache TTL](Self::with_cache_ttl) (a few
/// seconds) or route each user to one instance.
///
/// [`regenerate`]: sealed_session::Session::regenerate
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{MemoryStore, SessionEngine};
/// use sealed_session_stores::CachingStore;
///
/// let backend = MemoryStore::new(); // a RedisStore or PostgresStore in practice
/// let store = CachingStore::new(MemoryStore::new(), backend)
///     .with_cache_ttl(Duration::from_secs(5));
/// let engine = SessionEngine::builder().with_store(store).build()?;
/// # let _ = engine;
/// # Ok::<(), sealed_session::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CachingStore<C, B> {
    cache: C,
    backend: B,
    cache_ttl: Option<Duration>,
    /// Owned sessions ([`Session::set_owner`](sealed_session::Session::set_owner))
    /// are read from the backend only.
    owned_uncached: bool,
}

impl<C, B> CachingStore<C, B> {
    /// `cache` in front of `backend`.
    #[must_use]
    pub fn new(cache: C, backend: B) -> Self {
        Self {
            cache,
            backend,
            cache_ttl: None,
            owned_uncached: false,
        }
    }

    /// Never serve an owned session (one with an owner, as
    /// [`Session::set_owner`](sealed_session::Session::set_owner) names
    /// it) from the cache: every request on it reads the backend, so a
    /// revocation through any instance ends it everywhere at once. Other
    /// sessions are cached as before.
    ///
    /// Without it, with several instances, a session revoked through
    /// another instance stays readable here until its cached copy
    /// expires (see [`with_cache_ttl`](Self::with_cache_ttl)).
    ///
    /// ```
    /// use sealed_session::MemoryStore;
    /// use sealed_session_stores::CachingStore;
    ///
    /// let store = CachingStore::new(MemoryStore::new(), MemoryStore::new())
    ///     .with_owned_sessions_uncached();
    /// # let _ = store;
    /// ```
    #[must_use]
    pub fn with_owned_sessions_uncached(mut self) -> Self {
        self.owned_uncached = true;
        self
    }

    /// Whether `record` may be served from, or kept in, the cache.
    fn cacheable(&self, record: &Record) -> bool {
        !(self.owned_uncached && sealed_session::record_owner(record).is_some())
    }

    /// The longest a record stays cached (default: until it expires).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl);
        self
    }

    /// The cache tier.
    #[must_use]
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// The backend tier.
    #[must_use]
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// When a record expiring at `expires_at` leaves the cache.
    fn cache_until(&self, expires_at: SystemTime) -> SystemTime {
        match self.cache_ttl {
            Some(ttl) => expires_at.min(SystemTime::now() + ttl),
            None => expires_at,
        }
    }
}

impl<C: Store, B: Store> CachingStore<C, B> {
    /// Puts the record the backend now holds in the cache (or drops the
    /// cached copy when it would already be stale).
    async fn refresh(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        let until = self.cache_until(expires_at);
        if until > SystemTime::now() && self.cacheable(&record) {
            if let Err(error) = self.cache.set(id, record, until, cx).await {
                // A stale copy must not outlive a failed refresh.
                self.cache.delete(id, cx).await?;
                tracing::warn!(error = &error as &dyn std::error::Error, session = %id, "could not cache a session");
            }
        } else {
            self.cache.delete(id, cx).await?;
        }
        Ok(())
    }
}

impl<C: Store, B: Store> Store for CachingStore<C, B> {
    /// Whether either tier reads the request.
    fn uses_request_context(&self) -> bool {
        self.cache.uses_request_context() || self.backend.uses_request_context()
    }

    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        match self.cache.get(id, cx).await {
            Ok(Some(record)) if self.cacheable(&record) => return Ok(Some(record)),
            Ok(Some(_)) => {}
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = &error as &dyn std::error::Error, session = %id, "session cache failed; reading the backend");
            }
        }
        let Some(record) = self.backend.get(id, cx).await? else {
            return Ok(None);
        };
        // A record without `_expires` is not cached: there is no bound on
        // how long the copy would be right.
        if let Some(expires_at) = record_expiry(&record).filter(|_| self.cacheable(&record)) {
            let until = self.cache_until(expires_at);
            if until > SystemTime::now()
                && let Err(error) = self.cache.set(id, Arc::clone(&record), until, cx).await
            {
                tracing::warn!(error = &error as &dyn std::error::Error, session = %id, "could not cache a session");
            }
        }
        Ok(Some(record))
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        if let Err(error) = self
            .backend
            .set(id, Arc::clone(&record), expires_at, cx)
            .await
        {
            // The backend may or may not hold the new record: keep no copy.
            let _ = self.cache.delete(id, cx).await;
            return Err(error);
        }
        self.refresh(id, record, expires_at, cx).await
    }

    /// Checked by the backend, which holds the truth; the cache follows.
    /// A conflict means another request or server wrote the record, so
    /// the cached copy is dropped and the retry reads the backend.
    async fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        if let Err(error) = self
            .backend
            .compare_and_set(id, Arc::clone(&record), expires_at, expected, cx)
            .await
        {
            let _ = self.cache.delete(id, cx).await;
            return Err(error);
        }
        self.refresh(id, record, expires_at, cx).await
    }

    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        self.cache.delete(id, cx).await?;
        let result = self.backend.delete(id, cx).await;
        self.cache.delete(id, cx).await?;
        result
    }
}

/// Per-user sessions through the backend's index, which holds the truth:
/// listing reads the backend, revoking deletes there and drops this
/// process's cached copies.
///
/// Another process's cache is not reached: there, a revoked session stays
/// readable until its cached copy expires. With several instances, build
/// the store [`with_owned_sessions_uncached`](Self::with_owned_sessions_uncached)
/// so that no cache keeps a revoked session alive (owned sessions are then
/// read from the backend), or bound the delay with a short
/// [cache TTL](Self::with_cache_ttl); and build the engine
/// [`with_optimistic_concurrency`](sealed_session::SessionEngineBuilder::with_optimistic_concurrency)
/// so that no instance writes a revoked session back.
impl<C: Store, B: SessionIndex> SessionIndex for CachingStore<C, B> {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.backend.sessions_of(owner).await
    }

    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        let cx = RequestContext::default();
        let revoked = self.backend.revoke(owner, id).await?;
        // Dropped whether or not the backend had it: a copy of another
        // owner's session is only ever re-read.
        self.cache.delete(id, &cx).await?;
        Ok(revoked)
    }

    /// One revoke per listed session, so that each revoked id's cached copy
    /// is dropped; sessions that log in meanwhile are revoked by the next
    /// round, until a listing finds none but `except`.
    async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let mut revoked = 0;
        loop {
            let others: Vec<SessionInfo> = self
                .backend
                .sessions_of(owner)
                .await?
                .into_iter()
                .filter(|info| Some(&info.id) != except)
                .collect();
            if others.is_empty() {
                return Ok(revoked);
            }
            let mut progress = false;
            for info in others {
                if self.revoke(owner, &info.id).await? {
                    revoked += 1;
                    progress = true;
                }
            }
            if !progress {
                // Listed but not revocable (expired meanwhile, say): done.
                return Ok(revoked);
            }
        }
    }
}

impl<C, B> DeleteExpired for CachingStore<C, B>
where
    C: Send + Sync + 'static,
    B: DeleteExpired,
{
    /// Sweeps the backend; cache tiers expire their own copies.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.backend.delete_expired().await
    }
}
