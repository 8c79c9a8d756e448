//! The engine's contract with stores, counted rather than timed: at most
//! one read and one write per request, none when the session is untouched.
//! Any backend (Redis, Postgres) inherits these counts: its `get`, `set` and
//! `delete` are each one round trip.
//!
//! Also: the cache of opened stateless cookies never outlives `_expires`.
#![cfg(feature = "axum")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, header};
use sealed_session::adapters::axum::SessionLayer;
use sealed_session::{
    ManualClock, MemoryStore, Record, RequestContext, Secret, Session, SessionEngine, SessionId,
    SessionMap, Store, StoreError,
};
use tower::ServiceExt;

/// A `MemoryStore` that counts its calls, and records whether it was handed
/// the request's headers.
#[derive(Clone, Default)]
struct Counting {
    inner: MemoryStore,
    gets: Arc<AtomicUsize>,
    sets: Arc<AtomicUsize>,
    deletes: Arc<AtomicUsize>,
    saw_headers: Arc<AtomicBool>,
    uses_context: bool,
}

impl Counting {
    /// (gets, sets, deletes) since the last call.
    fn take(&self) -> (usize, usize, usize) {
        (
            self.gets.swap(0, Ordering::SeqCst),
            self.sets.swap(0, Ordering::SeqCst),
            self.deletes.swap(0, Ordering::SeqCst),
        )
    }

    fn note(&self, cx: &RequestContext) {
        if !cx.headers().is_empty() {
            self.saw_headers.store(true, Ordering::SeqCst);
        }
    }
}

impl Store for Counting {
    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.note(cx);
        self.inner.get(id, cx).await
    }
    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        self.sets.fetch_add(1, Ordering::SeqCst);
        self.note(cx);
        self.inner.set(id, record, expires_at, cx).await
    }
    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        self.deletes.fetch_add(1, Ordering::SeqCst);
        self.note(cx);
        self.inner.delete(id, cx).await
    }
    fn uses_request_context(&self) -> bool {
        self.uses_context
    }
}

async fn read(session: Session<SessionMap>) -> String {
    session.get::<String>("userId").unwrap_or_default()
}

async fn write(session: Session<SessionMap>) -> String {
    let n = session.get::<u64>("n").unwrap_or(0) + 1;
    session.set("userId", "alice");
    session.set("n", n);
    n.to_string()
}

async fn read_twice(a: Session<SessionMap>, b: Session<SessionMap>) -> String {
    format!("{:?}{:?}", a.get::<String>("userId"), b.get::<u64>("n"))
}

fn app(store: &Counting) -> Router {
    let engine = SessionEngine::builder()
        .with_secret(Secret::new(common::SECRET).unwrap())
        .with_store(store.clone())
        .build()
        .unwrap();
    Router::new()
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/twice", get(read_twice))
        .route("/plain", get(|| async { "no session" }))
        .layer(SessionLayer::new(engine))
}

/// Sends a request, returns the `sid=…` pair it set, if any.
async fn send(app: &Router, uri: &str, cookie: Option<&str>) -> Option<String> {
    let mut request = Request::get(uri)
        .header(header::USER_AGENT, "counting-test")
        .body(Body::empty())
        .unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert(header::COOKIE, cookie.parse().unwrap());
    }
    let response = app.clone().oneshot(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "{uri}: {}",
        response.status()
    );
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sid="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

#[tokio::test]
async fn each_kind_of_request_costs_at_most_one_read_and_one_write() {
    let store = Counting::default();
    let app = app(&store);

    // No cookie, read-only: nothing to read, nothing to write.
    assert_eq!(send(&app, "/read", None).await, None);
    assert_eq!(store.take(), (0, 0, 0), "new session, read-only");

    // No cookie, write: no read, one write.
    let sid = send(&app, "/write", None).await.expect("a session cookie");
    assert_eq!(store.take(), (0, 1, 0), "new session, write");

    // Untouched route: no store call at all.
    assert_eq!(send(&app, "/plain", Some(&sid)).await, None);
    assert_eq!(store.take(), (0, 0, 0), "untouched");

    // Read-only: one read, no write, no Set-Cookie.
    assert_eq!(send(&app, "/read", Some(&sid)).await, None);
    assert_eq!(store.take(), (1, 0, 0), "read-only");

    // Two extractors in one handler: still one read.
    assert_eq!(send(&app, "/twice", Some(&sid)).await, None);
    assert_eq!(store.take(), (1, 0, 0), "read-only, two extractors");

    // Write: one read, one write, under the same id.
    assert_eq!(send(&app, "/write", Some(&sid)).await, Some(sid.clone()));
    assert_eq!(store.take(), (1, 1, 0), "write");

    // An unknown id: one read that finds nothing, then one write.
    let unknown = "sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let fresh = send(&app, "/write", Some(unknown)).await;
    assert!(fresh.is_some_and(|f| f != unknown));
    assert_eq!(store.take(), (1, 1, 0), "unknown id, write");
}

#[tokio::test]
async fn the_request_head_is_copied_only_for_stores_that_read_it() {
    for uses_context in [false, true] {
        let store = Counting {
            uses_context,
            ..Counting::default()
        };
        let app = app(&store);
        let sid = send(&app, "/write", None).await.unwrap();
        send(&app, "/read", Some(&sid)).await;
        assert_eq!(store.saw_headers.load(Ordering::SeqCst), uses_context);
    }
}

#[tokio::test]
async fn a_cached_stateless_cookie_still_expires() {
    let clock = ManualClock::new(common::T0);
    let engine = SessionEngine::builder()
        .with_secret(Secret::new(common::SECRET).unwrap())
        .with_max_age(Duration::from_secs(60))
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let mut browser = common::Browser::default();
    browser.request(&engine, |s| s.set("userId", "alice")).await;
    let sealed = browser.sid().unwrap().to_owned();
    // Opened once (and cached), then again from the cache.
    for _ in 0..2 {
        let user = browser
            .request(&engine, |s| s.get::<String>("userId"))
            .await;
        assert_eq!(user.as_deref(), Some("alice"));
        assert_eq!(
            browser.sid(),
            Some(sealed.as_str()),
            "read-only: no re-seal"
        );
    }
    clock.advance(Duration::from_secs(61));
    let user = browser
        .request(&engine, |s| s.get::<String>("userId"))
        .await;
    assert_eq!(user, None, "expired, cached or not");
}

/// The iron encoder, counting its decodes.
#[derive(Clone, Default)]
struct CountingIron {
    decodes: Arc<AtomicUsize>,
}

impl sealed_session::Encoder for CountingIron {
    fn encode(
        &self,
        record: &Record,
        keyring: &sealed_session::Keyring,
    ) -> Result<String, sealed_session::EncodeError> {
        sealed_session::IronEncoder.encode(record, keyring)
    }
    fn decode(
        &self,
        token: &str,
        keyring: &sealed_session::Keyring,
    ) -> Result<sealed_session::Decoded, sealed_session::DecodeError> {
        self.decodes.fetch_add(1, Ordering::SeqCst);
        sealed_session::IronEncoder.decode(token, keyring)
    }
    fn cacheable(&self, token: &str) -> bool {
        sealed_session::IronEncoder.cacheable(token)
    }
}

/// Logs in `users` browsers, then has each read its session `rounds`
/// times in turn, as many users' requests interleave; the decodes that
/// took.
async fn decodes_for(capacity: Option<usize>, users: usize, rounds: usize) -> usize {
    let encoder = CountingIron::default();
    let mut builder = SessionEngine::builder()
        .with_encoder(encoder.clone())
        .with_secret(Secret::new(common::SECRET).unwrap());
    if let Some(capacity) = capacity {
        builder = builder.with_cookie_cache_capacity(capacity);
    }
    let engine = builder.build().unwrap();
    let mut browsers = Vec::new();
    for n in 0..users {
        let mut browser = common::Browser::default();
        browser
            .request(&engine, |s| s.set("userId", n.to_string()))
            .await;
        browsers.push(browser);
    }
    encoder.decodes.store(0, Ordering::SeqCst);
    for _ in 0..rounds {
        for (n, browser) in browsers.iter_mut().enumerate() {
            let user = browser
                .request(&engine, |s| s.get::<String>("userId"))
                .await;
            assert_eq!(user, Some(n.to_string()));
        }
    }
    encoder.decodes.load(Ordering::SeqCst)
}

#[tokio::test]
async fn the_cache_of_opened_cookies_keeps_a_pool_of_users_and_can_be_turned_off() {
    // The default capacity (4,096) holds 1,000 interleaved users: each
    // cookie is opened once, but for the few sets of four that five of
    // them share (about 4 sets, depending on the seed), whose cookies are
    // opened again every round in this strict rotation. A direct-mapped
    // table of 1,024 slots opened 62 % of them again every round (about
    // 2,240 decodes here).
    let opened = decodes_for(None, 1000, 3).await;
    assert!((1000..1150).contains(&opened), "{opened} decodes");
    // Without the cache, every request opens its cookie.
    assert_eq!(decodes_for(Some(0), 50, 3).await, 150);
    // A cache smaller than the pool still bounds itself and serves what
    // it holds: between one decode per user and one per request.
    let small = decodes_for(Some(64), 200, 3).await;
    assert!((200..=600).contains(&small), "{small} decodes");
}
