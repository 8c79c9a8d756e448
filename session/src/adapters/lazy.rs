//! What every adapter shares: the per-request [`Slot`] that loads the
//! session once, on first use, and the commit after the handler.
//!
//! An adapter only puts a [`Slot`] where its extractor finds it (request
//! extensions, a request-local cache, the depot), hands it the request's
//! `Cookie` headers when a handler asks for the session, and calls
//! [`Slot::commit`] with the response status afterwards. Nothing here
//! knows a framework; the frameworks on `http` 0.2 pass strings.
//!
//! Adapters whose framework drops the request before the response is done
//! (axum, poem) take slots with [`Slot::acquire`] and give them back with
//! [`Slot::release`]: each thread keeps one finished slot for its next
//! request, which saves the slot's allocation. The others keep the request,
//! and so the slot, alive past the commit, and allocate a new one.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use http::StatusCode;

use crate::cookie::{CookieLayer, Found};
use crate::data::SessionData;
use crate::encoder::Encoder;
use crate::engine::{Config, InDebugSpan, LoadFuture, SessionEngine, SetCookies};
use crate::error::Error;
use crate::session::erased::ErasedSession;
use crate::session::{Plan, Session};
use crate::store::{RequestContext, Store};

/// A boxed `Send` future (`futures_util::future::BoxFuture` without the
/// dependency).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The response body when the store failed while loading.
pub(crate) const LOAD_FAILED: &str = "Session store unavailable";
/// The response body when saving failed after the handler ran.
pub(crate) const COMMIT_FAILED: &str = "Session could not be saved";
/// The response body when one request extracted two session types.
pub(crate) const TYPE_MISMATCH: &str = "Session extracted as two different types";

/// An engine with its store and encoder types erased, built once per
/// middleware so that a request costs one `Arc` clone.
#[derive(Clone)]
pub(crate) struct SharedEngine(Arc<dyn ErasedEngine>);

impl SharedEngine {
    pub(crate) fn new<S: Store, E: Encoder>(engine: &SessionEngine<S, E>) -> Self {
        Self(Arc::new(engine.clone()))
    }
}

/// The request's session, loaded on first use, committed once.
pub(crate) struct Slot {
    /// `None` only while the slot waits in its thread's spare, so that a
    /// spare never keeps a dropped router's engine (and store) alive.
    engine: Option<Arc<dyn ErasedEngine>>,
    cell: OnceLock<Entry>,
}

thread_local! {
    /// A finished slot kept for the thread's next request: an untouched
    /// route then costs no allocation of its own.
    static SPARE: Cell<Option<Arc<Slot>>> = const { Cell::new(None) };
}

struct Entry {
    session: ErasedSession,
    /// What stores see of the request; `None` when they see nothing (boxed:
    /// the slot and the futures that carry it stay small).
    cx: Option<Box<RequestContext>>,
    /// Set once the adapter has committed (or skipped) the session.
    taken: AtomicBool,
}

/// Why a handler could not get its session; each adapter wraps it in its
/// own rejection type.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The session was already extracted as another type.
    TypeMismatch { wanted: &'static str },
    /// The store failed.
    Load(Error),
}

/// The response body when another request changed the session first
/// (optimistic concurrency).
pub(crate) const COMMIT_CONFLICT: &str = "Session changed by a concurrent request; retry";

/// The commit could not be written: the adapter answers [`status`](Self::status)
/// with [`body`](Self::body) instead of the handler's response (`500`, or
/// `409` when another request won an optimistic-concurrency race).
#[derive(Debug)]
pub(crate) struct CommitFailed {
    conflict: bool,
}

impl CommitFailed {
    /// `409` for a lost race, else `500`.
    pub(crate) fn status(&self) -> u16 {
        if self.conflict { 409 } else { 500 }
    }

    /// The response body.
    pub(crate) fn body(&self) -> &'static str {
        if self.conflict {
            COMMIT_CONFLICT
        } else {
            COMMIT_FAILED
        }
    }
}

impl Slot {
    /// A slot for one request, loading from `engine`.
    pub(crate) fn new(engine: &SharedEngine) -> Self {
        Self {
            engine: Some(Arc::clone(&engine.0)),
            cell: OnceLock::new(),
        }
    }

    /// A slot for one request, loading from `engine`: the thread's spare
    /// when [`release`](Self::release) left one, else a new one. (The
    /// adapters whose middleware owns the slot for the whole request, axum
    /// and poem, pool slots this way.)
    #[cfg_attr(not(any(feature = "axum", feature = "poem")), allow(dead_code))]
    pub(crate) fn acquire(engine: &SharedEngine) -> Arc<Self> {
        if let Some(mut slot) = SPARE.try_with(Cell::take).ok().flatten()
            && let Some(spare) = Arc::get_mut(&mut slot)
        {
            spare.engine = Some(Arc::clone(&engine.0));
            return slot;
        }
        Arc::new(Self::new(engine))
    }

    /// Keeps `slot` as the thread's spare once the request is done with it,
    /// empty and without its engine; a slot still shared elsewhere (a
    /// handler kept the request's extensions) is simply dropped.
    #[cfg_attr(not(any(feature = "axum", feature = "poem")), allow(dead_code))]
    pub(crate) fn release(mut slot: Arc<Self>) {
        if let Some(done) = Arc::get_mut(&mut slot) {
            done.engine = None;
            done.cell = OnceLock::new();
            // Fails only while the thread is exiting; the slot is dropped.
            let _ = SPARE.try_with(|spare| spare.set(Some(slot)));
        }
    }

    /// The engine; every slot outside the spare has one.
    fn engine(&self) -> &dyn ErasedEngine {
        self.engine
            .as_deref()
            .expect("a slot in use has its engine")
    }

    /// Whether stores see the request (so the adapter should build a
    /// [`RequestContext`]).
    fn needs_context(&self) -> bool {
        self.engine().config().needs_context()
    }

    /// The session, loaded on the first call from the session cookie that
    /// `find` finds in the request's `Cookie` headers (with
    /// [`CookieLayer::find`] on `http` 1 headers, else
    /// [`CookieLayer::find_all`] on their text); `context` is called only
    /// when a store will see the request.
    pub(crate) async fn session<'h, T: SessionData>(
        &self,
        find: impl FnOnce(&CookieLayer) -> Found<'h>,
        context: impl FnOnce() -> RequestContext,
    ) -> Result<Session<T>, LoadError> {
        let entry = match self.cell.get() {
            Some(entry) => entry,
            None => {
                let entry = self.load::<T>(find, context).await.map_err(|error| {
                    tracing::error!(
                        error = &error as &dyn std::error::Error,
                        "session unavailable: the store failed while loading"
                    );
                    LoadError::Load(error)
                })?;
                // Loading only reads, so when two tasks of one request
                // loaded at once (a handler that shares the request's
                // extensions), the first to finish wins and the other's
                // copy is dropped: every handle sees the same session.
                self.cell.get_or_init(|| entry)
            }
        };
        entry.session.session::<T>().ok_or_else(|| {
            let wanted = std::any::type_name::<T>();
            tracing::error!(
                wanted,
                "session unavailable: already extracted as another type in this request"
            );
            LoadError::TypeMismatch { wanted }
        })
    }

    /// Loads the session from the cookie `find` finds, as `T`.
    async fn load<'h, T: SessionData>(
        &self,
        find: impl FnOnce(&CookieLayer) -> Found<'h>,
        context: impl FnOnce() -> RequestContext,
    ) -> Result<Entry, Error> {
        let engine = self.engine();
        let cx = self.needs_context().then(|| Box::new(context()));
        let found = find(&engine.config().cookies);
        let loaded = engine.load(found, context_or_empty(cx.as_deref())).await?;
        let session = Session::<T>::from_loaded(loaded, engine.config());
        Ok(Entry {
            session: ErasedSession::new(&session),
            cx,
            taken: AtomicBool::new(false),
        })
    }

    /// Commits the session after the handler answered with `status`: the
    /// `Set-Cookie` values to add (none when the session was never loaded,
    /// did not change, or the status is a 5xx the engine does not save on).
    ///
    /// Only the first call commits; later ones return no cookies.
    #[cfg_attr(
        not(any(
            feature = "actix-web",
            feature = "rocket",
            feature = "poem",
            feature = "salvo"
        )),
        allow(dead_code)
    )]
    pub(crate) async fn commit(&self, status: u16) -> Result<SetCookies, CommitFailed> {
        match self.plan_commit(status)? {
            Some(plan) => self.execute(plan).await,
            None => Ok(SetCookies::default()),
        }
    }

    /// The synchronous half of [`commit`](Self::commit): what to write, or
    /// `None` when there is nothing to do (never loaded, already committed,
    /// unchanged, or a 5xx the engine does not save on). An adapter that
    /// gets `None` answers without allocating a commit future.
    #[inline]
    pub(crate) fn plan_commit(&self, status: u16) -> Result<Option<Plan>, CommitFailed> {
        // Inlined into each adapter's response path, so that a request that
        // never loaded the session costs one check here.
        match self.take() {
            None => Ok(None),
            Some(entry) => self.plan_loaded(entry, status),
        }
    }

    /// [`plan_commit`](Self::plan_commit) for a session the request loaded.
    fn plan_loaded(&self, entry: &Entry, status: u16) -> Result<Option<Plan>, CommitFailed> {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if !self.engine().should_commit(status) {
            tracing::debug!(%status, "server error: session not saved");
            return Ok(None);
        }
        match entry.session.plan_final() {
            Ok(Plan::Unchanged) => Ok(None),
            Ok(plan) => Ok(Some(plan)),
            Err(error) => Err(commit_failed(&Error::Serialize(error))),
        }
    }

    /// The asynchronous half of [`commit`](Self::commit): writes what
    /// [`plan_commit`](Self::plan_commit) planned.
    pub(crate) async fn execute(&self, plan: Plan) -> Result<SetCookies, CommitFailed> {
        // A plan comes from `plan_commit`, which found the entry.
        let Some(entry) = self.cell.get() else {
            return Ok(SetCookies::default());
        };
        self.engine()
            .execute(plan, context_or_empty(entry.cx.as_deref()))
            .await
            .map_err(|error| commit_failed(&error))
    }

    #[inline]
    fn take(&self) -> Option<&Entry> {
        let entry = self.cell.get()?;
        (!entry.taken.swap(true, Ordering::AcqRel)).then_some(entry)
    }
}

/// `cx`, or an empty context for stores that do not look at the request.
fn context_or_empty(cx: Option<&RequestContext>) -> &RequestContext {
    static EMPTY: OnceLock<RequestContext> = OnceLock::new();
    cx.unwrap_or_else(|| EMPTY.get_or_init(RequestContext::default))
}

/// Logs a failed commit and says how to answer it.
fn commit_failed(error: &Error) -> CommitFailed {
    let conflict = error.is_conflict();
    if conflict {
        tracing::debug!(
            error = error as &dyn std::error::Error,
            "session write lost a race"
        );
    } else {
        tracing::error!(
            error = error as &dyn std::error::Error,
            "could not save the session"
        );
    }
    CommitFailed { conflict }
}

/// A [`RequestContext`] from the parts of a request on `http` 0.2 (actix-web,
/// Rocket): what does not convert is left out, never an error.
#[cfg(any(feature = "actix-web", feature = "rocket"))]
pub(crate) fn context_from_text(
    method: &str,
    uri: &str,
    headers: http::HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> RequestContext {
    let method = http::Method::from_bytes(method.as_bytes()).unwrap_or_default();
    let uri = uri.parse::<http::Uri>().unwrap_or_default();
    RequestContext::new(method, uri, headers).with_peer_addr(peer)
}

/// Appends one header given as text, skipping what does not convert.
#[cfg(any(feature = "actix-web", feature = "rocket"))]
pub(crate) fn append_header(headers: &mut http::HeaderMap, name: &str, value: &[u8]) {
    if let (Ok(name), Ok(value)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        http::HeaderValue::from_bytes(value),
    ) {
        headers.append(name, value);
    }
}

/// The engine, minus its store and encoder types.
trait ErasedEngine: Send + Sync {
    // The span is outside the box, so that the engine's future is built
    // straight into it rather than moved into a span and then into a box;
    // a load the cookie alone decides boxes nothing.
    fn load<'a>(&'a self, found: Found<'_>, cx: &'a RequestContext) -> InDebugSpan<LoadFuture<'a>>;
    fn execute<'a>(
        &'a self,
        plan: Plan,
        cx: &'a RequestContext,
    ) -> InDebugSpan<BoxFuture<'a, Result<SetCookies, Error>>>;
    fn should_commit(&self, status: StatusCode) -> bool;
    fn config(&self) -> &Config;
}

impl<S: Store, E: Encoder> ErasedEngine for SessionEngine<S, E> {
    fn load<'a>(&'a self, found: Found<'_>, cx: &'a RequestContext) -> InDebugSpan<LoadFuture<'a>> {
        self.load_erased(found, cx)
    }
    fn execute<'a>(
        &'a self,
        plan: Plan,
        cx: &'a RequestContext,
    ) -> InDebugSpan<BoxFuture<'a, Result<SetCookies, Error>>> {
        self.in_commit_span(Box::pin(self.execute_inner(plan, cx)))
    }
    fn should_commit(&self, status: StatusCode) -> bool {
        SessionEngine::should_commit(self, status)
    }
    fn config(&self) -> &Config {
        SessionEngine::config(self)
    }
}
