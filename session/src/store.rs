//! Server-side session stores: the [`Store`] trait, [`MemoryStore`], and
//! plain maps as stores.
//!
//! # The contract
//!
//! - `get` returns `Ok(None)` for an id it does not know, and may return
//!   `Ok(None)` for a record past its expiry. The engine checks `_expires`
//!   itself, so a store that cannot expire records natively still never
//!   serves an expired session.
//! - `set` inserts or overwrites. The engine only ever writes ids it
//!   generated (192 random bits), so collisions are not the store's concern.
//!   `expires_at` is the record's `_expires`, for backends that can expire
//!   records natively (Redis TTL, an indexed SQL column).
//! - `delete` of an unknown id is not an error.
//! - Errors mean the backend failed: the engine hands them to the caller
//!   (the adapters answer 500), never treats them as "no session".
//! - Every call gets the [`RequestContext`] (method, URI, headers, peer
//!   address), for stores that record the user agent or IP.
//! - Concurrent requests on one session: the last write wins. Stores that
//!   can compare-and-set will be able to refuse a stale write with
//!   [`StoreError::Conflict`].
//!
//! # A custom store
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//! use std::time::SystemTime;
//! use sealed_session::{Record, RequestContext, SessionId, Store, StoreError};
//!
//! /// Keeps records in memory and remembers who wrote them.
//! #[derive(Default)]
//! struct AuditedStore {
//!     records: Mutex<HashMap<String, (Arc<Record>, Option<String>)>>,
//! }
//!
//! impl Store for AuditedStore {
//!     async fn get(&self, id: &SessionId, _: &RequestContext) -> Result<Option<Arc<Record>>, StoreError> {
//!         Ok(self.records.lock().unwrap().get(id.as_str()).map(|(r, _)| Arc::clone(r)))
//!     }
//!     async fn set(
//!         &self,
//!         id: &SessionId,
//!         record: Arc<Record>,
//!         _expires_at: SystemTime,
//!         cx: &RequestContext,
//!     ) -> Result<(), StoreError> {
//!         let agent = cx.user_agent().map(str::to_owned);
//!         self.records.lock().unwrap().insert(id.as_str().to_owned(), (record, agent));
//!         Ok(())
//!     }
//!     async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
//!         self.records.lock().unwrap().remove(id.as_str());
//!         Ok(())
//!     }
//! }
//!
//! let engine = sealed_session::SessionEngine::builder()
//!     .with_store(AuditedStore::default())
//!     .build()?;
//! # Ok::<(), sealed_session::BuildError>(())
//! ```

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, Uri};

use crate::id::SessionId;
use crate::index::{SessionIndex, SessionInfo, record_owner};
use crate::record::{Changes, Record};

/// Where session records live in store mode.
///
/// Three async methods; see the [module docs](crate::store) for the
/// contract and a complete custom store.
pub trait Store: Send + Sync + 'static {
    /// Loads the record stored under `id`.
    fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<Option<Arc<Record>>, StoreError>> + Send;

    /// Inserts or replaces the record under `id`; it may be dropped after
    /// `expires_at`.
    fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the record under `id` (no error if there is none).
    fn delete(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Optimistic write: stores `record` under `id` only if the record
    /// stored there now has `_version` equal to `expected` (`None`: only if
    /// there is no live record), atomically; otherwise
    /// [`StoreError::Conflict`]. Used by engines built
    /// [`with_optimistic_concurrency`](crate::SessionEngineBuilder::with_optimistic_concurrency).
    ///
    /// The default answers [`StoreError::Unsupported`]: stores that cannot
    /// compare and set atomically keep the three-method contract.
    fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (id, record, expires_at, expected, cx);
        async {
            Err(StoreError::Unsupported {
                operation: "compare_and_set",
            })
        }
    }

    /// Whether the store reads the [`RequestContext`] it is handed (default
    /// `true`). A store that says `false` gets an empty context, and the
    /// adapters do not copy the request's method, URI and headers for it.
    fn uses_request_context(&self) -> bool {
        true
    }
}

/// A store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or refused the operation.
    #[error("session store `{backend}` failed; check that it is running and reachable")]
    Backend {
        /// Which backend (`"redis"`, `"postgres"`, …).
        backend: &'static str,
        /// The backend's own error: as given to [`StoreError::backend`],
        /// unless its chain repeated a message (redis and sqlx errors put
        /// their cause's text in their own message and return the cause
        /// from `source()` as well); then the same messages, each once.
        /// [`StoreError::backend_error`] gives the original for
        /// downcasting.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A stored record could not be read or written as JSON.
    #[error("session store `{backend}` holds a record that is not a JSON object")]
    Serialization {
        /// Which backend.
        backend: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Another request wrote the session since it was loaded (stores with
    /// compare-and-set only). Retry the request.
    #[error("the session was changed by a concurrent request; retry the request")]
    Conflict,
    /// The store does not offer this operation (compare-and-set, say).
    #[error(
        "this session store does not support `{operation}`: use a store that does, or turn the option that needs it off"
    )]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
    },
}

impl StoreError {
    /// Wraps a backend's error.
    ///
    /// If the error's message repeats the text of its own `source()` (as
    /// redis and sqlx errors do), the chain is kept with each message
    /// once, so that a chain printer (`anyhow`'s `{:#}`, a `tracing`
    /// field) does not print the cause twice.
    ///
    /// ```
    /// use std::error::Error as _;
    /// use sealed_session::StoreError;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("cannot connect: {0}")] // repeats its source
    /// struct Connect(#[source] std::io::Error);
    ///
    /// let error = StoreError::backend("kv", Connect(std::io::Error::other("refused")));
    /// let cause = error.source().unwrap();
    /// assert_eq!(cause.to_string(), "cannot connect");
    /// assert_eq!(cause.source().unwrap().to_string(), "refused");
    /// assert!(error.backend_error().unwrap().is::<Connect>());
    /// ```
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            backend,
            source: crate::error::without_repeats(source.into()),
        }
    }

    /// The backend's error as the backend returned it, for downcasting
    /// (to `redis::RedisError`, `sqlx::Error`, …); `None` for errors that
    /// are not [`Backend`](Self::Backend).
    #[must_use]
    pub fn backend_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        match self {
            Self::Backend { source, .. } => Some(
                source
                    .downcast_ref::<crate::error::Deduplicated>()
                    .map_or(&**source, crate::error::Deduplicated::original),
            ),
            _ => None,
        }
    }
}

/// What a store may want to know about the request (the Hono context of
/// hono-session's store methods).
///
/// In stateless mode the engine passes an empty context: it is only built
/// when a store will see it.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer_addr: Option<SocketAddr>,
}

impl RequestContext {
    /// A context from the request's parts.
    #[must_use]
    pub fn new(method: Method, uri: Uri, headers: HeaderMap) -> Self {
        Self {
            method,
            uri,
            headers,
            peer_addr: None,
        }
    }

    /// Copies what a store may need from the request's head.
    #[must_use]
    pub fn from_parts(parts: &http::request::Parts) -> Self {
        Self::new(
            parts.method.clone(),
            parts.uri.clone(),
            parts.headers.clone(),
        )
    }

    /// Adds the peer address, when the framework knows it.
    #[must_use]
    pub fn with_peer_addr(mut self, addr: Option<SocketAddr>) -> Self {
        self.peer_addr = addr;
        self
    }

    /// The request method.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request URI.
    #[must_use]
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request path.
    #[must_use]
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The request headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The `User-Agent` header, if it is valid text.
    #[must_use]
    pub fn user_agent(&self) -> Option<&str> {
        self.headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
    }

    /// The client's address, when the framework knows it.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }
}

/// The store of stateless mode: there is none, the record lives in the
/// cookie. An engine whose store type is `NoStore` never calls a store.
#[derive(Debug, Clone, Copy)]
pub enum NoStore {}

impl Store for NoStore {
    async fn get(
        &self,
        _: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        match *self {}
    }
    async fn set(
        &self,
        _: &SessionId,
        _: Arc<Record>,
        _: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        match *self {}
    }
    async fn delete(&self, _: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        match *self {}
    }
    fn uses_request_context(&self) -> bool {
        match *self {}
    }
}

/// An in-process store: records live in a map until they expire or the
/// process exits. Clones share the map.
///
/// Records past their expiry are not returned and are dropped on access;
/// [`delete_expired`](Self::delete_expired) sweeps the rest. When an engine
/// loads from the store (as its store or its overflow store) or compares
/// and sets, expiry is judged by the engine's clock (the one that computed
/// it, a [`ManualClock`](crate::ManualClock) in tests), else by the
/// system's.
///
/// A session loads the record the store holds, not a copy. When an
/// adapter commits a [`SessionMap`](crate::SessionMap) written in the
/// request, its changes are made in that record, in place unless another
/// request holds it at that moment: a write copies and frees no record.
///
/// # Examples
///
/// ```
/// use sealed_session::{MemoryStore, SessionEngine};
///
/// let store = MemoryStore::new();
/// let engine = SessionEngine::builder().with_store(store.clone()).build()?;
/// assert_eq!(store.len(), 0);
/// # Ok::<(), sealed_session::BuildError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    map: Arc<RwLock<HashMap<SessionId, Entry, IdHasher>>>,
    /// Owner → the ids written with that owner ([`SessionIndex`]); locked
    /// only while `map` is, after it.
    owners: Arc<Mutex<HashMap<String, OwnerIds>>>,
}

/// The map's hasher: foldhash, seeded per map, rather than SipHash. Every
/// id inserted here was generated by the engine (192 random bits; ids from
/// cookies are never adopted), so an attacker cannot choose colliding keys,
/// and a lookup of a chosen id costs what any lookup costs.
type IdHasher = foldhash::fast::RandomState;

/// A record and when it expires.
type Entry = (Arc<Record>, SystemTime);

/// The ids written with one owner ([`MemoryStore`]'s index).
#[derive(Debug, Default)]
struct OwnerIds {
    ids: std::collections::HashSet<SessionId, IdHasher>,
    /// How many were left at the last prune: the next one comes when the
    /// set has doubled, so pruning costs O(1) per new entry and the set
    /// holds at most twice the owner's sessions (plus a few).
    pruned_len: usize,
}

/// Stores `entry` under `id`. A session already there (the usual write)
/// is replaced in place: `HashMap::insert` would take a copy of the id
/// only to drop it.
fn replace_or_insert(map: &mut HashMap<SessionId, Entry, IdHasher>, id: &SessionId, entry: Entry) {
    if let Some(slot) = map.get_mut(id) {
        *slot = entry;
    } else {
        map.insert(id.clone(), entry);
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records held (expired ones included until swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether the store holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`Store::set`] of `base` with `changes` made, where `base` is the
    /// record this store holds under `id` (the one the session loaded):
    /// the changes are made there, in place when nothing else holds it,
    /// with no copy of the record and no free of the old one.
    pub(crate) fn set_changed(
        &self,
        id: &SessionId,
        base: Arc<Record>,
        changes: Changes,
        expires_at: SystemTime,
    ) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let owned = match map.get_mut(id) {
            Some((held, expires)) if Arc::ptr_eq(held, &base) => {
                // Without this handle, the store's may be the only one.
                drop(base);
                let held = Arc::make_mut(held);
                changes.apply_to(held);
                *expires = expires_at;
                record_owner(held).is_some()
            }
            // Written, deleted or expired meanwhile: the loaded record with
            // the changes replaces whatever is there, as `set`.
            _ => {
                let record = changes.applied_to(base);
                let owned = record_owner(&record).is_some();
                replace_or_insert(&mut map, id, (record, expires_at));
                owned
            }
        };
        if owned {
            self.index(&map, id);
        }
    }

    /// Adds `id`, just written with an owner, to its owner's set. When the
    /// set has doubled since it was last pruned, the entries whose records
    /// are gone, expired and swept, or owned by someone else now are
    /// dropped first. Takes the held `map` lock, so the index and the
    /// records change together.
    fn index(&self, map: &HashMap<SessionId, Entry, IdHasher>, id: &SessionId) {
        let Some(owner) = map.get(id).and_then(|(record, _)| record_owner(record)) else {
            return;
        };
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = match owners.get_mut(owner) {
            // Written again (the usual case): already listed.
            Some(entry) if entry.ids.contains(id) => return,
            Some(entry) => entry,
            None => owners.entry(owner.to_owned()).or_default(),
        };
        if entry.ids.len() >= 2 * entry.pruned_len.max(8) {
            entry.ids.retain(|other| {
                map.get(other)
                    .is_some_and(|(record, _)| record_owner(record) == Some(owner))
            });
            entry.pruned_len = entry.ids.len();
        }
        entry.ids.insert(id.clone());
    }

    /// [`Store::get`] at `now`: the engine passes the time it read for the
    /// load, which spares a second clock read per request and judges expiry
    /// by the clock that computed it. A record lives up to and including
    /// its `expires_at`, as a session does up to its `_expires`.
    pub(crate) fn get_at(&self, id: &SessionId, now: SystemTime) -> Option<Arc<Record>> {
        let found = {
            let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
            map.get(id).map(|(r, e)| (Arc::clone(r), *e))
        };
        match found {
            Some((_, expires)) if expires < now => {
                self.map
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(id);
                None
            }
            found => found.map(|(r, _)| r),
        }
    }

    /// [`Store::compare_and_set`] at `now`, as [`get_at`](Self::get_at).
    pub(crate) fn compare_and_set_at(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let live = map
            .get(id)
            .filter(|(_, expires)| *expires >= now)
            .map(|(r, _)| &**r);
        if !crate::record::version_matches(live, expected) {
            return Err(StoreError::Conflict);
        }
        let owned = record_owner(&record).is_some();
        replace_or_insert(&mut map, id, (record, expires_at));
        if owned {
            self.index(&map, id);
        }
        Ok(())
    }

    /// Removes every record past its expiry; returns how many.
    pub fn delete_expired(&self) -> usize {
        let now = SystemTime::now();
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let before = map.len();
        map.retain(|_, (_, expires)| *expires >= now);
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners.retain(|owner, entry| {
            entry.ids.retain(|id| {
                map.get(id)
                    .is_some_and(|(record, _)| record_owner(record) == Some(owner.as_str()))
            });
            entry.pruned_len = entry.ids.len();
            !entry.ids.is_empty()
        });
        before - map.len()
    }

    /// The owner's ids whose records are live at `now` and still theirs,
    /// with those records; the others leave the index.
    fn owned(
        map: &HashMap<SessionId, Entry, IdHasher>,
        owners: &mut HashMap<String, OwnerIds>,
        owner: &str,
        now: SystemTime,
    ) -> Vec<(SessionId, Arc<Record>)> {
        let Some(entry) = owners.get_mut(owner) else {
            return Vec::new();
        };
        let mut live = Vec::with_capacity(entry.ids.len());
        entry.ids.retain(|id| match map.get(id) {
            Some((record, expires)) if record_owner(record) == Some(owner) => {
                if *expires >= now {
                    live.push((id.clone(), Arc::clone(record)));
                }
                true
            }
            _ => false,
        });
        entry.pruned_len = entry.ids.len();
        if entry.ids.is_empty() {
            owners.remove(owner);
        }
        live
    }
}

/// The index is kept as records are written, under the same lock: listing
/// and revoking are exact, and a revoke racing a login either sees the new
/// session or happens before it.
impl SessionIndex for MemoryStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let live = Self::owned(&map, &mut owners, owner, SystemTime::now());
        Ok(live
            .iter()
            .filter_map(|(id, record)| SessionInfo::from_record(id, record))
            .collect())
    }

    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let owned = map
            .get(id)
            .is_some_and(|(record, _)| record_owner(record) == Some(owner));
        if owned {
            map.remove(id);
        }
        Ok(owned)
    }

    async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        let live = Self::owned(&map, &mut owners, owner, SystemTime::now());
        let mut revoked = 0;
        for (id, _) in live {
            if Some(&id) != except {
                map.remove(&id);
                revoked += 1;
            }
        }
        if let Some(entry) = owners.get_mut(owner) {
            entry.ids.retain(|id| Some(id) == except);
            entry.pruned_len = entry.ids.len();
            if entry.ids.is_empty() {
                owners.remove(owner);
            }
        }
        Ok(revoked)
    }
}

impl Store for MemoryStore {
    async fn get(
        &self,
        id: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        Ok(self.get_at(id, SystemTime::now()))
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        let owned = record_owner(&record).is_some();
        replace_or_insert(&mut map, id, (record, expires_at));
        if owned {
            self.index(&map, id);
        }
        Ok(())
    }

    async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        Ok(())
    }
    async fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        self.compare_and_set_at(id, record, expires_at, expected, SystemTime::now())
    }

    fn uses_request_context(&self) -> bool {
        false
    }
}

/// Stateless engines have no store: [`SessionEngine`](crate::SessionEngine)'s
/// per-user methods answer [`Error::Stateless`](crate::Error::Stateless),
/// or revoke through the engine's
/// [revocation store](crate::SessionEngineBuilder::with_revocation_store).
impl SessionIndex for NoStore {
    async fn sessions_of(&self, _: &str) -> Result<Vec<SessionInfo>, StoreError> {
        match *self {}
    }
    async fn revoke(&self, _: &str, _: &SessionId) -> Result<bool, StoreError> {
        match *self {}
    }
    async fn revoke_all(&self, _: &str, _: Option<&SessionId>) -> Result<usize, StoreError> {
        match *self {}
    }
}

/// A plain `Mutex<HashMap<String, Arc<Record>>>` is a store, as a JS `Map`
/// is for hono-session. It does not expire records by itself (the engine
/// still refuses expired ones, and deletes them when it meets them).
impl Store for Mutex<HashMap<String, Arc<Record>>> {
    async fn get(
        &self,
        id: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        let map = self.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(id.as_str()).cloned())
    }
    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        _: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        let mut map = self.lock().unwrap_or_else(PoisonError::into_inner);
        map.insert(id.as_str().to_owned(), record);
        Ok(())
    }
    async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        let mut map = self.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(id.as_str());
        Ok(())
    }

    fn uses_request_context(&self) -> bool {
        false
    }
}

/// A plain `RwLock<HashMap<String, Arc<Record>>>` is a store too.
impl Store for RwLock<HashMap<String, Arc<Record>>> {
    async fn get(
        &self,
        id: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        let map = self.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(id.as_str()).cloned())
    }
    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        _: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        let mut map = self.write().unwrap_or_else(PoisonError::into_inner);
        map.insert(id.as_str().to_owned(), record);
        Ok(())
    }
    async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        let mut map = self.write().unwrap_or_else(PoisonError::into_inner);
        map.remove(id.as_str());
        Ok(())
    }

    fn uses_request_context(&self) -> bool {
        false
    }
}

/// A shared store is a store: `Arc<Mutex<HashMap<..>>>` works, and so does
/// keeping an `Arc` to inspect the store from tests.
impl<S: Store> Store for Arc<S> {
    fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<Option<Arc<Record>>, StoreError>> + Send {
        (**self).get(id, cx)
    }
    fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).set(id, record, expires_at, cx)
    }
    fn delete(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).delete(id, cx)
    }
    fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        cx: &RequestContext,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).compare_and_set(id, record, expires_at, expected, cx)
    }

    fn uses_request_context(&self) -> bool {
        (**self).uses_request_context()
    }
}

/// A boxed future, for stores behind `dyn`.
pub(crate) type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `store` as a [`MemoryStore`], which the engine hands its clock reading
/// (the clock that computed `expires_at`) and its changes in place.
pub(crate) fn as_memory_store<S: Store>(store: &S) -> Option<&MemoryStore> {
    (store as &dyn std::any::Any).downcast_ref()
}

/// [`Store`] made object-safe, for the overflow store of stateless mode.
pub(crate) trait DynStore: Send + Sync {
    /// [`Store::get`], judging expiry by `now` where the store can
    /// ([`MemoryStore::get_at`]).
    fn get_at<'a>(
        &'a self,
        id: &'a SessionId,
        now: SystemTime,
        cx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<Option<Arc<Record>>, StoreError>>;
    fn set<'a>(
        &'a self,
        id: &'a SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn delete<'a>(
        &'a self,
        id: &'a SessionId,
        cx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn uses_request_context(&self) -> bool;
}

impl<S: Store> DynStore for S {
    fn get_at<'a>(
        &'a self,
        id: &'a SessionId,
        now: SystemTime,
        cx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<Option<Arc<Record>>, StoreError>> {
        match as_memory_store(self) {
            Some(memory) => Box::pin(std::future::ready(Ok(memory.get_at(id, now)))),
            None => Box::pin(Store::get(self, id, cx)),
        }
    }
    fn set<'a>(
        &'a self,
        id: &'a SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(Store::set(self, id, record, expires_at, cx))
    }
    fn delete<'a>(
        &'a self,
        id: &'a SessionId,
        cx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(Store::delete(self, id, cx))
    }
    fn uses_request_context(&self) -> bool {
        Store::uses_request_context(self)
    }
}

/// Milliseconds since the epoch as a `SystemTime`.
pub(crate) fn time_from_ms(ms: u64) -> SystemTime {
    // Saturates rather than overflow where `SystemTime` is narrower than
    // the milliseconds a record may carry.
    UNIX_EPOCH
        .checked_add(std::time::Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH + std::time::Duration::from_secs(i32::MAX as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: serde_json::Value) -> Record {
        value.as_object().cloned().unwrap()
    }

    /// An owner's set of ids stays within twice their live sessions
    /// (plus a few) however many of their sessions come and go, and a
    /// rewrite of a listed session does not grow it.
    #[tokio::test]
    async fn an_owners_set_stays_bounded() {
        let store = MemoryStore::new();
        let cx = RequestContext::default();
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        let owned = Arc::new(record(
            json!({"_owner": {"id": "ada", "since": 1, "seen": 1}}),
        ));
        let mut live = Vec::new();
        for round in 0..50 {
            for _ in 0..20 {
                let id = SessionId::generate();
                Store::set(&store, &id, Arc::clone(&owned), later, &cx)
                    .await
                    .unwrap();
                Store::set(&store, &id, Arc::clone(&owned), later, &cx)
                    .await
                    .unwrap();
                live.push(id);
            }
            // Most sessions end (logout), a few stay.
            for id in live.drain(2..) {
                Store::delete(&store, &id, &cx).await.unwrap();
            }
            let len = store.owners.lock().unwrap()["ada"].ids.len();
            assert!(
                len <= 2 * live.len() + 40,
                "round {round}: {len} ids for {} sessions",
                live.len()
            );
        }
        assert_eq!(store.sessions_of("ada").await.unwrap().len(), 2);
        assert_eq!(store.owners.lock().unwrap()["ada"].ids.len(), 2);
    }

    /// A store holding `{"a": 1, "keep": "x"}` under an id, and the record
    /// a session would load from it.
    async fn loaded() -> (MemoryStore, SessionId, Arc<Record>) {
        let store = MemoryStore::new();
        let id = SessionId::generate();
        let cx = RequestContext::default();
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        let initial = Arc::new(record(json!({"a": 1, "keep": "x"})));
        Store::set(&store, &id, initial, later, &cx).await.unwrap();
        let base = Store::get(&store, &id, &cx).await.unwrap().unwrap();
        (store, id, base)
    }

    fn changes() -> Changes {
        let mut changes = Changes::default();
        changes.set("a", Some(json!(2)));
        changes.set("b", Some(json!(3)));
        changes
    }

    async fn held(store: &MemoryStore, id: &SessionId) -> Arc<Record> {
        let cx = RequestContext::default();
        Store::get(store, id, &cx).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn changes_to_a_record_held_alone_are_made_in_place() {
        let (store, id, base) = loaded().await;
        let at = Arc::as_ptr(&base);
        let later = SystemTime::now() + std::time::Duration::from_secs(120);
        store.set_changed(&id, base, changes(), later);
        let now = held(&store, &id).await;
        assert_eq!(Arc::as_ptr(&now), at, "the same allocation, not a copy");
        assert_eq!(*now, record(json!({"a": 2, "b": 3, "keep": "x"})));
        let expires = store.map.read().unwrap().get(&id).unwrap().1;
        assert_eq!(expires, later, "the new expiry is kept");
    }

    #[tokio::test]
    async fn a_record_another_request_holds_is_copied() {
        let (store, id, base) = loaded().await;
        let reader = Arc::clone(&base);
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        store.set_changed(&id, base, changes(), later);
        assert_eq!(*reader, record(json!({"a": 1, "keep": "x"})), "untouched");
        let now = held(&store, &id).await;
        assert!(!Arc::ptr_eq(&now, &reader));
        assert_eq!(*now, record(json!({"a": 2, "b": 3, "keep": "x"})));
    }

    #[tokio::test]
    async fn a_record_written_or_deleted_meanwhile_is_replaced_as_by_set() {
        let (store, id, base) = loaded().await;
        let cx = RequestContext::default();
        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        let other = Arc::new(record(json!({"other": true})));
        Store::set(&store, &id, other, later, &cx).await.unwrap();
        store.set_changed(&id, Arc::clone(&base), changes(), later);
        assert_eq!(
            *held(&store, &id).await,
            record(json!({"a": 2, "b": 3, "keep": "x"})),
            "the loaded record with the changes, not a merge"
        );

        Store::delete(&store, &id, &cx).await.unwrap();
        store.set_changed(&id, base, changes(), later);
        assert_eq!(
            *held(&store, &id).await,
            record(json!({"a": 2, "b": 3, "keep": "x"}))
        );
    }
}
