//! The framework-agnostic [`SessionEngine`]: load a session from a request,
//! commit it into `Set-Cookie` values and store writes.

use std::borrow::Cow;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tracing::Instrument as _;

use crate::cache::{self, TokenCache};
use crate::clock::{Clock, SystemClock};
use crate::cookie::{
    CookieError, CookieLayer, CookieOptions, CookieSizePolicy, Found, MAX_COOKIE_VALUE_LEN,
};
use crate::data::SessionData;
use crate::encoder::{DecodeError, Encoder, IronEncoder};
use crate::error::{BuildError, Error};
use crate::expiry::ExpiryPolicy;
use crate::id::SessionId;
use crate::index::{SessionIndex, SessionInfo, record_owner};
use crate::record::{
    EXPIRES_KEY, NewRecord, OWNER_KEY, Record, STORE_ID_KEY, VERSION_KEY, read_created,
    read_expires, read_flash_keys, read_version,
};
use crate::secret::{Keyring, Secret};
use crate::session::{Meta, Plan, Session};
use crate::store::{DynStore, NoStore, RequestContext, Store, as_memory_store, time_from_ms};

const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Loads sessions from requests and commits them into responses.
///
/// Built once with [`SessionEngine::builder`], cheap to clone (an `Arc`
/// inside), independent of any web framework. The adapters are glue around
/// its two steps:
///
/// 1. [`load`](Self::load): read the session cookie from the request's
///    headers, open it (stateless mode) or fetch the record (store mode).
///    A missing, tampered, expired or unknown cookie gives a fresh session,
///    never an error; only a failing store is an error.
/// 2. [`commit`](Self::commit): after the handler, turn the session into
///    `Set-Cookie` values (none when nothing changed) and store writes.
///
/// `S` is the store ([`NoStore`]: stateless, the record lives in the cookie)
/// and `E` the encoder of stateless mode ([`IronEncoder`] by default).
///
/// # Examples
///
/// ```
/// use http::{HeaderMap, HeaderValue, header};
/// use sealed_session::{RequestContext, Secret, SessionEngine, SessionMap};
///
/// # tokio_test_block_on(async {
/// let engine = SessionEngine::builder()
///     .with_secret(Secret::new("a-secret-of-at-least-32-characters!!")?)
///     .build()?;
///
/// // First request: no cookie, a new session; the handler logs in.
/// let cx = RequestContext::default();
/// let session = engine.load::<SessionMap>(&HeaderMap::new(), &cx).await?;
/// session.set("userId", "42");
/// let set_cookies = engine.commit(&session, &cx).await?;
/// let sid = set_cookies.iter().next().unwrap().to_str()?.split(';').next().unwrap().to_owned();
///
/// // Second request: the browser sends the cookie back.
/// let mut headers = HeaderMap::new();
/// headers.insert(header::COOKIE, HeaderValue::from_str(&sid)?);
/// let session = engine.load::<SessionMap>(&headers, &cx).await?;
/// assert_eq!(session.get::<String>("userId").as_deref(), Some("42"));
/// assert!(engine.commit(&session, &cx).await?.is_empty()); // unchanged: no Set-Cookie
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct SessionEngine<S = NoStore, E = IronEncoder> {
    inner: Arc<Inner<S, E>>,
}

struct Inner<S, E> {
    store: Option<S>,
    /// Stateless mode: recently opened cookies.
    cache: TokenCache,
    overflow: Option<Arc<dyn DynStore>>,
    /// Stateless mode: per-owner "revoked before" times.
    revocation: Option<Arc<dyn DynStore>>,
    encoder: E,
    keyring: Keyring,
    config: Config,
}

/// The parts of an engine that do not depend on its store or encoder.
pub(crate) struct Config {
    pub(crate) max_age_ms: u64,
    pub(crate) cookies: CookieLayer,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store_mode: bool,
    pub(crate) expiry: ExpiryPolicy,
    pub(crate) save_on_server_error: bool,
    /// Store mode: write with compare-and-set on `_version`.
    pub(crate) optimistic: bool,
    /// A store (the store, or stateless mode's overflow store) will read
    /// the request context, so adapters build it.
    #[cfg_attr(not(adapters), allow(dead_code))]
    pub(crate) context: bool,
}

impl Config {
    /// Whether a store will see the request context (so adapters build it).
    #[cfg_attr(not(adapters), allow(dead_code))]
    pub(crate) fn needs_context(&self) -> bool {
        self.context
    }
}

impl<S, E> Clone for SessionEngine<S, E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S, E> fmt::Debug for SessionEngine<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEngine")
            .field("store", &std::any::type_name::<S>())
            .field("encoder", &std::any::type_name::<E>())
            .field("cookie_name", &self.inner.config.cookies.name)
            .field("max_age_ms", &self.inner.config.max_age_ms)
            .finish_non_exhaustive()
    }
}

impl SessionEngine {
    /// A builder with hono-session's defaults: stateless iron cookies, max
    /// age one day, cookies `sid` and `sx`, `Secure; HttpOnly; Path=/;
    /// SameSite=Lax`.
    pub fn builder() -> SessionEngineBuilder {
        SessionEngineBuilder {
            store: None,
            encoder: IronEncoder,
            keyring: None,
            max_age: DEFAULT_MAX_AGE,
            cookie_name: "sid".to_owned(),
            exists_cookie_name: "sx".to_owned(),
            cookie_options: CookieOptions::new(),
            exists_cookie_options: CookieOptions::new(),
            cookie_size_policy: CookieSizePolicy::Error,
            expiry: ExpiryPolicy::absolute(),
            save_on_server_error: false,
            optimistic: false,
            overflow: None,
            revocation: None,
            cookie_cache_capacity: cache::DEFAULT_CAPACITY,
            clock: Arc::new(SystemClock),
        }
    }
}

/// A session cookie value loaded but not yet typed.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) id: Option<SessionId>,
    pub(crate) record: Option<Arc<Record>>,
    pub(crate) reseal: bool,
    /// Chunk cookies the request carried.
    pub(crate) chunks: u8,
    /// The overflow store's id, when the cookie pointed there.
    pub(crate) overflow_id: Option<SessionId>,
    /// The clock's time at load (ms), read once for the whole load.
    pub(crate) now_ms: u64,
}

impl<S: Store, E: Encoder> SessionEngine<S, E> {
    /// Whether sessions live in the cookie (no store).
    #[must_use]
    pub fn is_stateless(&self) -> bool {
        self.inner.store.is_none()
    }

    /// The store, in store mode.
    #[must_use]
    pub fn store(&self) -> Option<&S> {
        self.inner.store.as_ref()
    }

    /// The secrets cookies are sealed with.
    #[must_use]
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The session cookie's name.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.inner.config.cookies.name
    }

    /// The session's max age.
    #[must_use]
    pub fn max_age(&self) -> Duration {
        Duration::from_millis(self.inner.config.max_age_ms)
    }

    #[cfg_attr(not(adapters), allow(dead_code))]
    pub(crate) fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The session cookie's value in these request headers, if any.
    #[must_use]
    pub fn session_cookie<'a>(&self, headers: &'a HeaderMap) -> Option<Cow<'a, str>> {
        self.inner.config.cookies.find(headers).value
    }

    pub(crate) fn find_cookie<'a>(&self, headers: &'a HeaderMap) -> Found<'a> {
        self.inner.config.cookies.find(headers)
    }

    /// Loads the request's session from its headers.
    ///
    /// `cx` is handed to the store; in stateless mode an empty
    /// `RequestContext::default()` will do.
    ///
    /// # Errors
    ///
    /// Only [`Error::Store`]: the store failed. A bad cookie is a fresh
    /// session, not an error.
    pub async fn load<T: SessionData>(
        &self,
        headers: &HeaderMap,
        cx: &RequestContext,
    ) -> Result<Session<T>, Error> {
        let found = self.find_cookie(headers);
        let loaded = self.load_record(found, cx).await?;
        Ok(Session::from_loaded(loaded, &self.inner.config))
    }

    /// Loads the session from the text of a `Cookie` header.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub async fn load_from_cookie_header<T: SessionData>(
        &self,
        cookie_header: Option<&str>,
        cx: &RequestContext,
    ) -> Result<Session<T>, Error> {
        let found = cookie_header
            .map(|h| self.inner.config.cookies.find_in(h))
            .unwrap_or_default();
        let loaded = self.load_record(found, cx).await?;
        Ok(Session::from_loaded(loaded, &self.inner.config))
    }

    /// Loads the session from the session cookie's (percent-decoded) value.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub async fn load_cookie_value<T: SessionData>(
        &self,
        value: Option<&str>,
        cx: &RequestContext,
    ) -> Result<Session<T>, Error> {
        let found = Found {
            value: value.map(Cow::Borrowed),
            chunks: 0,
        };
        let loaded = self.load_record(found, cx).await?;
        Ok(Session::from_loaded(loaded, &self.inner.config))
    }

    /// The untyped half of loading, shared by every `T`, in a `session.load`
    /// span.
    pub(crate) fn load_record<'a>(
        &'a self,
        found: Found<'a>,
        cx: &'a RequestContext,
    ) -> InDebugSpan<impl Future<Output = Result<Loaded, Error>> + 'a> {
        InDebugSpan::in_span(self.load_span(), self.load_record_inner(found, cx))
    }

    /// The `session.load` span, when something listens at `debug`.
    fn load_span(&self) -> Option<tracing::Span> {
        debug_span(|| tracing::debug_span!("session.load", mode = self.mode()))
    }

    /// `future` (a commit) in a `session.commit` span.
    pub(crate) fn in_commit_span<F: Future>(&self, future: F) -> InDebugSpan<F> {
        InDebugSpan::new(
            || tracing::debug_span!("session.commit", mode = self.mode()),
            future,
        )
    }

    fn mode(&self) -> &'static str {
        if self.inner.store.is_some() {
            "store"
        } else {
            "stateless"
        }
    }

    async fn load_record_inner(
        &self,
        found: Found<'_>,
        cx: &RequestContext,
    ) -> Result<Loaded, Error> {
        let now = self.inner.config.clock.now_ms();
        match self.begin_load(&found, now) {
            Ok(loaded) => Ok(loaded),
            Err(pending) => self.finish_load(pending, found.chunks, now, cx).await,
        }
    }

    /// A load for the type-erased adapters: when the cookie alone decides
    /// (no cookie, a stateless cookie, a `MemoryStore` session), a future
    /// that is ready at once, with nothing boxed; else the store call
    /// left, boxed. Both in a `session.load` span, which the synchronous
    /// part runs in too.
    #[cfg_attr(not(adapters), allow(dead_code))]
    pub(crate) fn load_erased<'a>(
        &'a self,
        found: Found<'_>,
        cx: &'a RequestContext,
    ) -> InDebugSpan<LoadFuture<'a>> {
        let span = self.load_span();
        let now = self.inner.config.clock.now_ms();
        let begun = match &span {
            Some(span) => span.in_scope(|| self.begin_load(&found, now)),
            None => self.begin_load(&found, now),
        };
        let future = match begun {
            Ok(loaded) => LoadFuture::Ready {
                loaded: Some(loaded),
            },
            Err(pending) => LoadFuture::Pending {
                future: Box::pin(self.finish_load(pending, found.chunks, now, cx)),
            },
        };
        InDebugSpan::in_span(span, future)
    }

    /// What a load can do without waiting: the whole load, or the store
    /// call still to make.
    fn begin_load(&self, found: &Found<'_>, now: u64) -> Result<Loaded, PendingLoad> {
        let config = &self.inner.config;
        let fresh = || self.fresh(found.chunks, now);
        let Some(value) = found.value.as_deref().filter(|v| !v.is_empty()) else {
            tracing::trace!(outcome = "new", "no session cookie");
            return Ok(fresh());
        };
        if value.len() > MAX_COOKIE_VALUE_LEN {
            tracing::debug!(
                outcome = "rejected",
                len = value.len(),
                "session cookie too large; starting a fresh session"
            );
            return Ok(fresh());
        }
        match &self.inner.store {
            None => match self.decode(value) {
                Ok((record, stale)) => {
                    if !is_live(&record, now, config.expiry) {
                        tracing::debug!(
                            outcome = "expired",
                            "session cookie expired; starting a fresh session"
                        );
                        return Ok(fresh());
                    }
                    if record.contains_key(STORE_ID_KEY) {
                        return Err(PendingLoad::Overflow { record, stale });
                    }
                    if let Some(check) = self.revocation_check(&record) {
                        return Err(PendingLoad::Revocation {
                            record,
                            stale,
                            check,
                        });
                    }
                    Ok(self.opened(record, stale, found.chunks, now))
                }
                Err(error) => {
                    tracing::debug!(
                        outcome = "tampered",
                        error = &error as &dyn std::error::Error,
                        "session cookie rejected; starting a fresh session"
                    );
                    Ok(fresh())
                }
            },
            Some(store) => {
                let Some(id) = SessionId::parse(value) else {
                    tracing::debug!(
                        outcome = "rejected",
                        "session cookie is not a session id; starting a fresh session"
                    );
                    return Ok(fresh());
                };
                // A memory store judges expiry by this load's clock reading.
                match as_memory_store(store) {
                    Some(memory) => {
                        let record = memory.get_at(&id, time_from_ms(now));
                        self.stored(id, record, found.chunks, now)
                            .map_err(PendingLoad::DeleteExpired)
                    }
                    None => Err(PendingLoad::Get(id)),
                }
            }
        }
    }

    /// The store call [`begin_load`](Self::begin_load) left, and the rest
    /// of the load.
    async fn finish_load(
        &self,
        pending: PendingLoad,
        chunks: u8,
        now: u64,
        cx: &RequestContext,
    ) -> Result<Loaded, Error> {
        let fresh = || self.fresh(chunks, now);
        match pending {
            PendingLoad::Overflow { record, stale } => {
                let pointer = &record[STORE_ID_KEY];
                self.load_overflow(pointer, stale, chunks, now, cx)
                    .await
                    .map(|loaded| loaded.unwrap_or_else(fresh))
            }
            PendingLoad::Revocation {
                record,
                stale,
                check,
            } => {
                if self.is_revoked(check, now, cx).await? {
                    return Ok(fresh());
                }
                Ok(self.opened(record, stale, chunks, now))
            }
            PendingLoad::Get(id) => {
                // `begin_load` asks for a `Get` in store mode only.
                let Some(store) = &self.inner.store else {
                    return Ok(fresh());
                };
                let record = store.get(&id, cx).await?;
                match self.stored(id, record, chunks, now) {
                    Ok(loaded) => Ok(loaded),
                    Err(expired) => Ok(self.delete_expired(&expired, chunks, now, cx).await),
                }
            }
            PendingLoad::DeleteExpired(id) => Ok(self.delete_expired(&id, chunks, now, cx).await),
        }
    }

    /// Deletes a stored session found expired; a fresh session replaces it.
    async fn delete_expired(
        &self,
        id: &SessionId,
        chunks: u8,
        now: u64,
        cx: &RequestContext,
    ) -> Loaded {
        if let Some(store) = &self.inner.store
            && let Err(error) = store.delete(id, cx).await
        {
            tracing::warn!(error = &error as &dyn std::error::Error, session = %id, "could not delete an expired session");
        }
        self.fresh(chunks, now)
    }

    /// A fresh session (with a new id in store mode).
    fn fresh(&self, chunks: u8, now: u64) -> Loaded {
        Loaded {
            id: self.inner.config.store_mode.then(SessionId::generate),
            record: None,
            reseal: false,
            chunks,
            overflow_id: None,
            now_ms: now,
        }
    }

    /// A stateless cookie's record, opened and live.
    fn opened(&self, record: Arc<Record>, stale: bool, chunks: u8, now: u64) -> Loaded {
        tracing::trace!(
            outcome = "loaded",
            stale_key = stale,
            "session cookie opened"
        );
        Loaded {
            id: None,
            record: Some(record),
            reseal: stale,
            chunks,
            overflow_id: None,
            now_ms: now,
        }
    }

    /// What the store answered for `id`: the session or a fresh one, or
    /// `Err(id)` when the session expired and is still to delete.
    fn stored(
        &self,
        id: SessionId,
        record: Option<Arc<Record>>,
        chunks: u8,
        now: u64,
    ) -> Result<Loaded, SessionId> {
        match record {
            None => {
                tracing::debug!(outcome = "unknown", session = %id, "unknown session id; starting a fresh session with a new id");
                Ok(self.fresh(chunks, now))
            }
            Some(record) if !is_live(&record, now, self.inner.config.expiry) => {
                tracing::debug!(outcome = "expired", session = %id, "stored session expired; starting a fresh session");
                Err(id)
            }
            Some(record) => {
                tracing::trace!(outcome = "loaded", session = %id, "session loaded from store");
                Ok(Loaded {
                    id: Some(id),
                    record: Some(record),
                    reseal: false,
                    chunks,
                    overflow_id: None,
                    now_ms: now,
                })
            }
        }
    }

    /// Opens a stateless cookie value, or takes what it opened to last time
    /// from the cache: the record, and whether it was sealed with an old
    /// key.
    fn decode(&self, value: &str) -> Result<(Arc<Record>, bool), DecodeError> {
        let inner = &self.inner;
        if let Some(hit) = inner.cache.get(value) {
            return Ok(hit);
        }
        let decoded = inner.encoder.decode(value, &inner.keyring)?;
        let record = Arc::new(decoded.record);
        if inner.encoder.cacheable(value) {
            inner.cache.insert(value, &record, decoded.stale);
        }
        Ok((record, decoded.stale))
    }

    /// Stateless mode with a revocation store: what to look up to know
    /// whether `record` was revoked (its owner's revocation key, and the
    /// owner's login time); `None`, with no store read to make, without a
    /// revocation store or for a record without an owner.
    fn revocation_check(&self, record: &Record) -> Option<(SessionId, u64)> {
        self.inner.revocation.as_ref()?;
        let owner = record_owner(record)?;
        let since = record[OWNER_KEY]
            .get("since")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Some((revocation_key(owner), since))
    }

    /// Whether the owner revoked their sessions after `since`, the login
    /// time [`revocation_check`](Self::revocation_check) found.
    async fn is_revoked(
        &self,
        (key, since): (SessionId, u64),
        now: u64,
        cx: &RequestContext,
    ) -> Result<bool, Error> {
        let Some(revocation) = &self.inner.revocation else {
            return Ok(false);
        };
        let before = revocation
            .get_at(&key, time_from_ms(now), cx)
            .await?
            .and_then(|r| r.get(REVOKED_BEFORE).and_then(serde_json::Value::as_u64));
        let revoked = before.is_some_and(|before| since < before);
        if revoked {
            tracing::debug!(
                outcome = "revoked",
                "session cookie revoked by its owner; starting a fresh session"
            );
        }
        Ok(revoked)
    }

    /// A stateless cookie that points into the overflow store.
    async fn load_overflow(
        &self,
        pointer: &serde_json::Value,
        reseal: bool,
        chunks: u8,
        now: u64,
        cx: &RequestContext,
    ) -> Result<Option<Loaded>, Error> {
        let (Some(overflow), Some(id)) = (
            &self.inner.overflow,
            pointer.as_str().and_then(SessionId::parse),
        ) else {
            tracing::debug!(
                outcome = "rejected",
                "cookie points to an overflow store this engine does not have"
            );
            return Ok(None);
        };
        let found = overflow.get_at(&id, time_from_ms(now), cx).await?;
        if let Some(check) = found.as_deref().and_then(|r| self.revocation_check(r))
            && self.is_revoked(check, now, cx).await?
        {
            return Ok(None);
        }
        match found {
            Some(record) if is_live(&record, now, self.inner.config.expiry) => {
                tracing::trace!(outcome = "loaded", session = %id, "session loaded from the overflow store");
                Ok(Some(Loaded {
                    id: None,
                    record: Some(record),
                    reseal,
                    chunks,
                    overflow_id: Some(id),
                    now_ms: now,
                }))
            }
            _ => {
                tracing::debug!(outcome = "unknown", session = %id, "overflow record missing or expired");
                Ok(None)
            }
        }
    }

    /// Whether a response with `status` should commit the session: always,
    /// except 5xx responses unless
    /// [`with_save_on_server_error`](SessionEngineBuilder::with_save_on_server_error)
    /// says so. Adapters ask this before [`commit`](Self::commit).
    #[must_use]
    pub fn should_commit(&self, status: http::StatusCode) -> bool {
        !status.is_server_error() || self.inner.config.save_on_server_error
    }

    /// Commits the session: the store writes it needs, and the `Set-Cookie`
    /// values to add to the response (none when nothing changed).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails, [`Error::Encode`] or
    /// [`Error::Serialize`] when the record cannot be written. The response
    /// should then be a 500: the browser keeps its old cookie.
    pub async fn commit<T: SessionData>(
        &self,
        session: &Session<T>,
        cx: &RequestContext,
    ) -> Result<SetCookies, Error> {
        let plan = session.plan().map_err(Error::Serialize)?;
        self.execute(plan, cx).await
    }

    pub(crate) fn execute<'a>(
        &'a self,
        plan: Plan,
        cx: &'a RequestContext,
    ) -> InDebugSpan<impl Future<Output = Result<SetCookies, Error>> + 'a> {
        self.in_commit_span(self.execute_inner(plan, cx))
    }

    pub(crate) async fn execute_inner(
        &self,
        plan: Plan,
        cx: &RequestContext,
    ) -> Result<SetCookies, Error> {
        let cookies = &self.inner.config.cookies;
        let store = self.inner.store.as_ref();
        let mut out = Vec::new();
        match plan {
            Plan::Unchanged => {
                tracing::trace!(outcome = "unchanged", "session not written");
            }
            Plan::Destroy {
                id,
                chunks,
                overflow_id,
            } => {
                if let (Some(store), Some(id)) = (store, &id) {
                    store.delete(id, cx).await?;
                }
                if let (Some(overflow), Some(id)) = (&self.inner.overflow, &overflow_id) {
                    overflow.delete(id, cx).await?;
                }
                cookies.delete(chunks, &mut out);
                tracing::debug!(outcome = "destroyed", "session destroyed");
            }
            Plan::Write {
                record,
                id,
                regenerated,
                expires_ms,
                mut chunks,
                mut overflow_id,
                expected_version,
            } => {
                if let Some(old) = regenerated {
                    // hono-session's wire order: expire, then set anew.
                    cookies.delete(chunks, &mut out);
                    chunks = 0;
                    if let (Some(store), Some(old)) = (store, &old) {
                        store.delete(old, cx).await?;
                    }
                    if let (Some(overflow), Some(old)) = (&self.inner.overflow, overflow_id.take())
                    {
                        overflow.delete(&old, cx).await?;
                    }
                }
                match store {
                    Some(store) => {
                        let id = id.unwrap_or_else(SessionId::generate);
                        let expires_at = time_from_ms(expires_ms);
                        if self.inner.config.optimistic {
                            let mut record = record.into_whole();
                            let next = expected_version.map_or(1, |v| v.saturating_add(1));
                            Arc::make_mut(&mut record).insert(VERSION_KEY.to_owned(), next.into());
                            if let Some(memory) = as_memory_store(store) {
                                // Live by the engine's clock, as at load.
                                let now = time_from_ms(self.inner.config.clock.now_ms());
                                memory.compare_and_set_at(
                                    &id,
                                    record,
                                    expires_at,
                                    expected_version,
                                    now,
                                )?;
                            } else {
                                store
                                    .compare_and_set(&id, record, expires_at, expected_version, cx)
                                    .await?;
                            }
                        } else {
                            match (record, as_memory_store(store)) {
                                // The memory store holds the loaded record:
                                // the changes are made in it, without a copy
                                // when nothing else holds it.
                                (NewRecord::Changed { base, changes }, Some(memory)) => {
                                    memory.set_changed(&id, base, changes, expires_at);
                                }
                                (record, _) => {
                                    store.set(&id, record.into_whole(), expires_at, cx).await?;
                                }
                            }
                        }
                        cookies
                            .set(id.as_str(), chunks, &mut out)
                            .map_err(cookie_error)?;
                        tracing::debug!(outcome = "written", session = %id, "session saved to store");
                    }
                    None => {
                        let record = record.into_whole();
                        let mut token = self.inner.encoder.encode(&record, &self.inner.keyring)?;
                        match &self.inner.overflow {
                            Some(overflow) if !cookies.fits(&token) => {
                                // Too big for the cookie: the record moves to
                                // the overflow store, the cookie seals its id.
                                let id = overflow_id.unwrap_or_else(SessionId::generate);
                                overflow
                                    .set(&id, record, time_from_ms(expires_ms), cx)
                                    .await?;
                                let mut pointer = Record::new();
                                pointer.insert(STORE_ID_KEY.to_owned(), id.as_str().into());
                                pointer.insert(EXPIRES_KEY.to_owned(), expires_ms.into());
                                token = self.inner.encoder.encode(&pointer, &self.inner.keyring)?;
                                tracing::debug!(outcome = "overflowed", session = %id, "session moved to the overflow store");
                            }
                            Some(overflow) => {
                                // Fits again: the overflow record is stale.
                                if let Some(old) = &overflow_id {
                                    overflow.delete(old, cx).await?;
                                }
                            }
                            None => {}
                        }
                        cookies
                            .set(&token, chunks, &mut out)
                            .map_err(cookie_error)?;
                        tracing::debug!(
                            outcome = "written",
                            len = token.len(),
                            "session sealed into cookie"
                        );
                    }
                }
            }
        }
        Ok(SetCookies(out))
    }
}

/// Per-user session management, for stores with an index from owner to
/// sessions ([`SessionIndex`]; see [`crate::index`]).
impl<S: SessionIndex, E: Encoder> SessionEngine<S, E> {
    /// The owner's live sessions ("your devices"), named at login with
    /// [`Session::set_owner`].
    ///
    /// # Errors
    ///
    /// [`Error::Store`]: the store failed.
    ///
    /// [`Error::Stateless`] in stateless mode: cookies are not listed anywhere.
    pub async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, Error> {
        match self.store() {
            Some(store) => Ok(store.sessions_of(owner).await?),
            None => Err(Error::Stateless {
                operation: "sessions_of",
            }),
        }
    }

    /// Logs out one of the owner's sessions (`id` as
    /// [`sessions_of`](Self::sessions_of) lists it); `false` when the owner
    /// has no such session.
    ///
    /// # Errors
    ///
    /// [`Error::Store`]: the store failed, and the session may still be
    /// live. [`Error::Stateless`] in stateless mode, where sessions have no
    /// ids: use [`revoke_all`](Self::revoke_all).
    pub async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, Error> {
        let Some(store) = self.store() else {
            return Err(Error::Stateless {
                operation: "revoke",
            });
        };
        let revoked = store.revoke(owner, id).await?;
        tracing::info!(owner, revoked, "session revoked");
        Ok(revoked)
    }

    /// Logs out every session of the owner but `except` (pass the current
    /// session's [`id`](Session::id) for "log out my other sessions", or
    /// `None` after a password reset or a ban); returns how many.
    ///
    /// Stateless mode, with a
    /// [revocation store](SessionEngineBuilder::with_revocation_store):
    /// every cookie of the owner whose owner was set before now opens as an
    /// empty session from now on. Cookies are not counted (the result is
    /// 0) and `except` does not apply: to keep the current session, set
    /// its owner anew after (`session.clear_owner(); session.set_owner(owner)`).
    ///
    /// # Errors
    ///
    /// [`Error::Store`]: the store failed; sessions it did not reach are
    /// still live, and calling it again finishes the job.
    /// [`Error::Stateless`]: stateless mode without a revocation store.
    pub async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, Error> {
        let Some(store) = self.store() else {
            return self.revoke_cookies(owner).await.map(|()| 0);
        };
        let revoked = store.revoke_all(owner, except).await?;
        tracing::info!(owner, revoked, "sessions of owner revoked");
        Ok(revoked)
    }
}

impl<S: Store, E: Encoder> SessionEngine<S, E> {
    /// Stateless `revoke_all`: the owner's sessions set before now are
    /// revoked, for as long as any of them could live.
    async fn revoke_cookies(&self, owner: &str) -> Result<(), Error> {
        let Some(revocation) = &self.inner.revocation else {
            return Err(Error::Stateless {
                operation: "revoke_all",
            });
        };
        let config = &self.inner.config;
        let now = config.clock.now_ms();
        let expires = now.saturating_add(config.max_age_ms);
        let mut record = Record::new();
        record.insert(REVOKED_BEFORE.to_owned(), now.into());
        record.insert(EXPIRES_KEY.to_owned(), expires.into());
        revocation
            .set(
                &revocation_key(owner),
                Arc::new(record),
                time_from_ms(expires),
                &RequestContext::default(),
            )
            .await?;
        tracing::info!(owner, "stateless sessions of owner revoked");
        Ok(())
    }
}

/// The field of a revocation record: sessions whose owner was set before
/// this time (ms) are revoked.
const REVOKED_BEFORE: &str = "revokedBefore";

/// The revocation store's key for `owner`: a hash, so that any owner name
/// makes a valid id and the store does not learn user names.
fn revocation_key(owner: &str) -> SessionId {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(b"sealed-session revocation\0")
        .chain_update(owner.as_bytes())
        .finalize();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    SessionId::from_trusted(format!("rv{encoded}"))
}

fn cookie_error(error: CookieError) -> Error {
    match error {
        CookieError::TooLarge { size, limit } => Error::CookieTooLarge { size, limit },
        CookieError::InvalidValue => Error::InvalidCookieValue,
    }
}

/// The store call a load still has to make once the cookie is read.
pub(crate) enum PendingLoad {
    /// A stateless record that points into the overflow store.
    Overflow { record: Arc<Record>, stale: bool },
    /// A stateless record whose owner may have revoked it.
    Revocation {
        record: Arc<Record>,
        stale: bool,
        check: (SessionId, u64),
    },
    /// A session id to look up in the store.
    Get(SessionId),
    /// A stored session found expired, to delete.
    DeleteExpired(SessionId),
}

/// A load's future: ready at once when the cookie alone decided, else the
/// store call, boxed (see [`SessionEngine::load_erased`]).
#[cfg_attr(not(adapters), allow(dead_code))]
pub(crate) enum LoadFuture<'a> {
    Ready {
        loaded: Option<Loaded>,
    },
    Pending {
        future: Pin<Box<dyn Future<Output = Result<Loaded, Error>> + Send + 'a>>,
    },
}

impl Future for LoadFuture<'_> {
    type Output = Result<Loaded, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            Self::Ready { loaded } => Poll::Ready(Ok(loaded
                .take()
                .expect("LoadFuture polled after completion"))),
            Self::Pending { future } => future.as_mut().poll(cx),
        }
    }
}

/// The span `make_span` builds, when something listens at `debug`.
fn debug_span(make_span: impl FnOnce() -> tracing::Span) -> Option<tracing::Span> {
    use tracing::level_filters::{LevelFilter, STATIC_MAX_LEVEL};
    let debug = LevelFilter::DEBUG;
    if debug <= STATIC_MAX_LEVEL && debug <= LevelFilter::current() {
        let span = make_span();
        if !span.is_disabled() {
            return Some(span);
        }
    }
    None
}

pin_project_lite::pin_project! {
    /// A future run in a span, or bare when nothing listens at `debug`:
    /// even a disabled span costs an enter and an exit per poll (and, with
    /// tracing's `log` feature, a `log` check when built).
    ///
    /// A plain type rather than an `async fn`: an `async fn` wrapper keeps
    /// its argument future beside the one it awaits, doubling the size of
    /// every load and commit future, which are moved into a box per request.
    #[project = InDebugSpanProj]
    pub(crate) enum InDebugSpan<F> {
        Bare { #[pin] future: F },
        Spanned { #[pin] future: tracing::instrument::Instrumented<F> },
    }
}

impl<F: Future> InDebugSpan<F> {
    /// `future`, in the span `make_span` builds when `debug` is enabled.
    fn new(make_span: impl FnOnce() -> tracing::Span, future: F) -> Self {
        Self::in_span(debug_span(make_span), future)
    }

    /// `future`, in `span` when there is one.
    fn in_span(span: Option<tracing::Span>, future: F) -> Self {
        match span {
            Some(span) => Self::Spanned {
                future: future.instrument(span),
            },
            None => Self::Bare { future },
        }
    }
}

impl<F: Future> Future for InDebugSpan<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        match self.project() {
            InDebugSpanProj::Bare { future } => future.poll(cx),
            InDebugSpanProj::Spanned { future } => future.poll(cx),
        }
    }
}

/// `_expires` is a number not in the past, or absent (as hono-session, a
/// record without expiry is accepted and given one). `_expires` of another
/// type is refused, where hono-session would keep the session forever.
/// A record is also dead once its `_created` is further back than the
/// policy's max lifetime.
fn is_live(record: &Record, now_ms: u64, policy: ExpiryPolicy) -> bool {
    // `_created` is only looked up when sessions have a max lifetime.
    let within_lifetime = policy.max_lifetime_ms().is_none_or(|lifetime| {
        read_created(record).is_none_or(|created| created.saturating_add(lifetime) >= now_ms)
    });
    within_lifetime
        && match read_expires(record) {
            Some(Some(expires)) => expires >= now_ms,
            Some(None) => true,
            None => false,
        }
}

impl<T: SessionData> Session<T> {
    pub(crate) fn from_loaded(loaded: Loaded, config: &Config) -> Self {
        let now = loaded.now_ms;
        let mut meta =
            Meta::new_session_at(Arc::clone(&config.clock), config.max_age_ms, loaded.id, now);
        meta.chunks_seen = loaded.chunks;
        let Some(record) = loaded.record else {
            apply_policy(&mut meta, None, config, now);
            meta.initial_expires_ms = meta.expires_ms;
            return Self::from_state(T::default(), meta);
        };
        let data = match T::from_record(&record) {
            Ok(data) => data,
            Err(error) => {
                tracing::debug!(
                    error = &error as &dyn std::error::Error,
                    outcome = "mismatch",
                    "session record does not fit the session type; starting a fresh session"
                );
                if config.store_mode {
                    meta.id = Some(SessionId::generate());
                }
                apply_policy(&mut meta, None, config, now);
                meta.initial_expires_ms = meta.expires_ms;
                return Self::from_state(T::default(), meta);
            }
        };
        if let Some(Some(expires)) = read_expires(&record) {
            meta.expires_ms = expires;
            meta.initial_expires_ms = expires;
        }
        let flash_keys = read_flash_keys(&record);
        meta.old_flash_keys.clone_from(&flash_keys);
        meta.initial_flash_keys = flash_keys;
        meta.reseal = loaded.reseal;
        meta.overflow_id = loaded.overflow_id;
        if config.optimistic {
            meta.loaded_version = read_version(&record);
        }
        apply_policy(&mut meta, Some(&record), config, now);
        meta.loaded = Some(record);
        Self::from_state(data, meta)
    }
}

/// The expiry policy at load: cap by the max lifetime, refresh a rolling
/// session running low. Moving `_expires` makes the session changed, which
/// is what writes it.
fn apply_policy(meta: &mut Meta, record: Option<&Record>, config: &Config, now: u64) {
    let policy = config.expiry;
    if let Some(lifetime) = policy.max_lifetime_ms() {
        let created = record.and_then(read_created).unwrap_or(now);
        let cap = created.saturating_add(lifetime);
        meta.created_ms = Some(created);
        meta.expiry_cap_ms = Some(cap);
        meta.expires_ms = meta.expires_ms.min(cap);
    }
    if policy.is_rolling()
        && record.is_some()
        && meta.expires_ms.saturating_sub(now) < policy.refresh_below_ms(config.max_age_ms)
    {
        let target = now.saturating_add(config.max_age_ms);
        let target = meta.expiry_cap_ms.map_or(target, |cap| target.min(cap));
        meta.expires_ms = meta.expires_ms.max(target);
    }
}

/// The `Set-Cookie` header values a commit produced, in order.
///
/// # Examples
///
/// ```
/// # use sealed_session::SetCookies;
/// let mut response = http::Response::new(());
/// SetCookies::default().apply_to(response.headers_mut());
/// assert!(response.headers().get(http::header::SET_COOKIE).is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetCookies(Vec<HeaderValue>);

impl SetCookies {
    /// Whether there is nothing to set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values, in order.
    pub fn iter(&self) -> impl Iterator<Item = &HeaderValue> {
        self.0.iter()
    }

    /// Appends each value as a `Set-Cookie` header.
    pub fn apply_to(self, headers: &mut HeaderMap) {
        for value in self.0 {
            headers.append(http::header::SET_COOKIE, value);
        }
    }
}

impl IntoIterator for SetCookies {
    type Item = HeaderValue;
    type IntoIter = std::vec::IntoIter<HeaderValue>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Configures a [`SessionEngine`]; see [`SessionEngine::builder`].
#[must_use]
pub struct SessionEngineBuilder<S = NoStore, E = IronEncoder> {
    store: Option<S>,
    encoder: E,
    keyring: Option<Keyring>,
    max_age: Duration,
    cookie_name: String,
    exists_cookie_name: String,
    cookie_options: CookieOptions,
    exists_cookie_options: CookieOptions,
    cookie_size_policy: CookieSizePolicy,
    expiry: ExpiryPolicy,
    save_on_server_error: bool,
    optimistic: bool,
    overflow: Option<Arc<dyn DynStore>>,
    revocation: Option<Arc<dyn DynStore>>,
    cookie_cache_capacity: usize,
    clock: Arc<dyn Clock>,
}

impl<S, E> fmt::Debug for SessionEngineBuilder<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEngineBuilder")
            .field("store", &std::any::type_name::<S>())
            .field("encoder", &std::any::type_name::<E>())
            .field("keyring", &self.keyring)
            .field("max_age", &self.max_age)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

impl<S: Store, E: Encoder> SessionEngineBuilder<S, E> {
    /// Keeps records in `store` and puts only a random id in the cookie
    /// (default: no store, the sealed record is the cookie).
    pub fn with_store<S2: Store>(self, store: S2) -> SessionEngineBuilder<S2, E> {
        SessionEngineBuilder {
            store: Some(store),
            encoder: self.encoder,
            keyring: self.keyring,
            max_age: self.max_age,
            cookie_name: self.cookie_name,
            exists_cookie_name: self.exists_cookie_name,
            cookie_options: self.cookie_options,
            exists_cookie_options: self.exists_cookie_options,
            cookie_size_policy: self.cookie_size_policy,
            expiry: self.expiry,
            save_on_server_error: self.save_on_server_error,
            optimistic: self.optimistic,
            overflow: self.overflow,
            revocation: self.revocation,
            cookie_cache_capacity: self.cookie_cache_capacity,
            clock: self.clock,
        }
    }

    /// Seals stateless cookies with `encoder` (default [`IronEncoder`]).
    pub fn with_encoder<E2: Encoder>(self, encoder: E2) -> SessionEngineBuilder<S, E2> {
        SessionEngineBuilder {
            store: self.store,
            encoder,
            keyring: self.keyring,
            max_age: self.max_age,
            cookie_name: self.cookie_name,
            exists_cookie_name: self.exists_cookie_name,
            cookie_options: self.cookie_options,
            exists_cookie_options: self.exists_cookie_options,
            cookie_size_policy: self.cookie_size_policy,
            expiry: self.expiry,
            save_on_server_error: self.save_on_server_error,
            optimistic: self.optimistic,
            overflow: self.overflow,
            revocation: self.revocation,
            cookie_cache_capacity: self.cookie_cache_capacity,
            clock: self.clock,
        }
    }

    /// The secret cookies are sealed with (default: a random one).
    ///
    /// # Warning
    ///
    /// Without a secret, a random one is made at build and a warning is
    /// logged: stateless sessions end when the process restarts and are
    /// not shared between instances.
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.keyring = Some(Keyring::single(secret));
        self
    }

    /// Several secrets, newest first, for key rotation (see [`Keyring`]).
    pub fn with_keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// How long a session lasts (default one day). It does not move on use:
    /// call [`Session::renew`] to extend it.
    ///
    /// # Warning
    ///
    /// Long sessions widen the window in which a stolen cookie works; in
    /// stateless mode a cookie cannot be revoked before it expires.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The session cookie's name (default `sid`).
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// The exists cookie's name (default `sx`): a cookie readable by scripts
    /// that tells whether a session exists.
    pub fn with_exists_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.exists_cookie_name = name.into();
        self
    }

    /// Attributes of the session cookie (default `Secure; HttpOnly; Path=/;
    /// SameSite=Lax; Max-Age=<max age>`).
    pub fn with_cookie_options(mut self, options: CookieOptions) -> Self {
        self.cookie_options = options;
        self
    }

    /// Attributes of the exists cookie, over the session cookie's (it is
    /// never `HttpOnly`).
    pub fn with_exists_cookie_options(mut self, options: CookieOptions) -> Self {
        self.exists_cookie_options = options;
        self
    }

    /// Stateless mode: when a sealed session no longer fits in a cookie,
    /// move its record to `store` and seal only its id into the cookie
    /// (small sessions stay in the cookie, with no store round trip). This
    /// takes precedence over the [`CookieSizePolicy`] for oversized
    /// sessions. Ignored in store mode.
    pub fn with_overflow_store(mut self, store: impl Store) -> Self {
        self.overflow = Some(Arc::new(store));
        self
    }

    /// Stateless mode: make [`SessionEngine::revoke_all`] work for cookie
    /// sessions. `store` keeps, per owner, when their sessions were last
    /// revoked; a cookie whose owner was set ([`Session::set_owner`])
    /// before that time then opens as an empty session.
    ///
    /// It costs one `store` read per request that carries an owned
    /// session (unowned sessions cost nothing), and one write per
    /// revocation; each record lives for the max age. Servers sharing
    /// cookies must share `store` (Redis, say) and keep their clocks in
    /// step. Ignored in store mode, where the store revokes natively.
    ///
    /// ```
    /// use sealed_session::{MemoryStore, SessionEngine};
    ///
    /// let engine = SessionEngine::builder()
    ///     .with_revocation_store(MemoryStore::new())
    ///     .build()?;
    /// # let _ = engine;
    /// # Ok::<(), sealed_session::BuildError>(())
    /// ```
    pub fn with_revocation_store(mut self, store: impl Store) -> Self {
        self.revocation = Some(Arc::new(store));
        self
    }

    /// Store mode: refuse lost updates. Each write checks, atomically,
    /// that the record is still the version this request loaded (the
    /// reserved field `_version`); when another request wrote it first, the
    /// commit fails with [`StoreError::Conflict`](crate::StoreError::Conflict)
    /// (the axum adapter answers 409) and the request can be retried.
    /// Default off: the last write wins. The store must implement
    /// [`Store::compare_and_set`]: `MemoryStore` does, and so do the SQLite,
    /// PostgreSQL, MySQL and Redis stores of `sealed-session-stores`.
    pub fn with_optimistic_concurrency(mut self, on: bool) -> Self {
        self.optimistic = on;
        self
    }

    /// Whether a response with a 5xx status still saves the session
    /// (default `false`: a failed request leaves the session as it was, as
    /// Django does; hono-session saves regardless).
    pub fn with_save_on_server_error(mut self, save: bool) -> Self {
        self.save_on_server_error = save;
        self
    }

    /// How expiry moves (default [`ExpiryPolicy::absolute`]: only on
    /// `renew()`).
    pub fn with_expiry_policy(mut self, policy: ExpiryPolicy) -> Self {
        self.expiry = policy;
        self
    }

    /// What to do when a sealed session outgrows a cookie (default
    /// [`CookieSizePolicy::Error`]).
    pub fn with_cookie_size_policy(mut self, policy: CookieSizePolicy) -> Self {
        self.cookie_size_policy = policy;
        self
    }

    /// Stateless mode: how many opened cookies to keep (default 4,096), so
    /// that a cookie the browser sends again is not unsealed again; `0`
    /// unseals every request's cookie.
    ///
    /// A hit saves the unseal (two key derivations, an HMAC and an AES
    /// decryption: most of a read-only request's cost), and is checked for
    /// expiry like a fresh unseal. Size it to the sessions active within a
    /// few minutes on one instance: each entry holds the cookie's value and
    /// its opened record, about 1.2 KiB for a session of five short fields
    /// (measured by the allocations bench), so the default stays under
    /// 5 MiB for such sessions. The capacity is rounded up to a power of
    /// two sets of four entries (at most 16,777,216 entries); a full set
    /// replaces the entry read least recently.
    ///
    /// ```
    /// use sealed_session::{Secret, SessionEngine};
    ///
    /// let engine = SessionEngine::builder()
    ///     .with_secret(Secret::new("a secret of at least thirty-two characters")?)
    ///     .with_cookie_cache_capacity(50_000) // a busy instance
    ///     .build()?;
    /// # let _ = engine;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_cookie_cache_capacity(mut self, entries: usize) -> Self {
        self.cookie_cache_capacity = entries;
        self
    }

    /// The clock for expiry (default the system clock); tests pass a
    /// [`ManualClock`](crate::ManualClock).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Checks the configuration and builds the engine.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming what is wrong: cookie names, cookie
    /// attributes breaking browser rules (`__Host-`, `SameSite=None`
    /// without `Secure`), a max age of zero or over 400 days.
    pub fn build(self) -> Result<SessionEngine<S, E>, BuildError> {
        if self.max_age.is_zero() {
            return Err(BuildError::MaxAgeZero);
        }
        let cookies = CookieLayer::new(
            &self.cookie_name,
            &self.exists_cookie_name,
            &self.cookie_options,
            &self.exists_cookie_options,
            self.max_age,
            self.cookie_size_policy,
        )?;
        let store_mode = self.store.is_some();
        let context = match (&self.store, &self.overflow) {
            (Some(store), _) => store.uses_request_context(),
            (None, Some(overflow)) => overflow.uses_request_context(),
            (None, None) => false,
        };
        let keyring = self.keyring.unwrap_or_else(|| {
            if !store_mode {
                tracing::warn!(
                    "no session secret configured: using a random one, so sessions will not survive a restart \
                     and are not shared between instances; set a secret of at least 32 characters"
                );
            }
            Keyring::single(Secret::random())
        });
        Ok(SessionEngine {
            inner: Arc::new(Inner {
                // Store mode never opens a cookie.
                cache: TokenCache::new(if store_mode {
                    0
                } else {
                    self.cookie_cache_capacity
                }),
                overflow: if store_mode { None } else { self.overflow },
                revocation: if store_mode { None } else { self.revocation },
                store: self.store,
                encoder: self.encoder,
                keyring,
                config: Config {
                    max_age_ms: u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX),
                    cookies,
                    clock: self.clock,
                    store_mode,
                    expiry: self.expiry,
                    save_on_server_error: self.save_on_server_error,
                    optimistic: self.optimistic,
                    context,
                },
            }),
        })
    }
}
