//! The axum adapter: lazy loading, no work for untouched routes, errors.
#![cfg(feature = "axum")]

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sealed_session::adapters::axum::{SessionLayer, SessionRejection};
use sealed_session::{
    MemoryStore, Record, RequestContext, Secret, Session, SessionEngine, SessionId, SessionMap,
    Store, StoreError,
};
use tower::ServiceExt;

/// A store that counts calls and can be switched to fail.
#[derive(Clone, Default)]
struct CountingStore {
    inner: MemoryStore,
    gets: Arc<AtomicUsize>,
    sets: Arc<AtomicUsize>,
    fail_get: Arc<std::sync::atomic::AtomicBool>,
    fail_set: Arc<std::sync::atomic::AtomicBool>,
}

fn down() -> StoreError {
    StoreError::backend(
        "test",
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "down"),
    )
}

impl Store for CountingStore {
    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        if self.fail_get.load(Ordering::SeqCst) {
            return Err(down());
        }
        self.inner.get(id, cx).await
    }
    async fn set(
        &self,
        id: &SessionId,
        r: Arc<Record>,
        e: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        self.sets.fetch_add(1, Ordering::SeqCst);
        if self.fail_set.load(Ordering::SeqCst) {
            return Err(down());
        }
        self.inner.set(id, r, e, cx).await
    }
    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        self.inner.delete(id, cx).await
    }
}

async fn me(session: Session<SessionMap>) -> (StatusCode, String) {
    match session.get::<String>("userId") {
        Some(user) => (StatusCode::OK, user),
        None => (StatusCode::UNAUTHORIZED, "Unauthorised".into()),
    }
}

async fn login(session: Session<SessionMap>) -> StatusCode {
    session.regenerate();
    session.set("userId", "alice");
    StatusCode::NO_CONTENT
}

async fn twice(a: Session<SessionMap>, b: Session<SessionMap>) -> String {
    a.set("n", 1);
    b.get::<u32>("n").unwrap_or(0).to_string()
}

async fn tolerant(
    session: Result<Session<SessionMap>, SessionRejection>,
) -> (StatusCode, &'static str) {
    match session {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(SessionRejection::Load(_)) => (StatusCode::SERVICE_UNAVAILABLE, "try later"),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "other"),
    }
}

fn routes() -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/login", post(login))
        .route("/twice", get(twice))
        .route("/tolerant", get(tolerant))
        .route("/plain", get(|| async { "no session here" }))
        .route("/renew", post(renew))
        .route("/flash", post(flash))
        .route("/reflash", post(reflash))
}

async fn renew(session: Session<SessionMap>) -> StatusCode {
    session.renew();
    StatusCode::NO_CONTENT
}

async fn flash(session: Session<SessionMap>) -> StatusCode {
    session.flash("message", "saved");
    StatusCode::NO_CONTENT
}

async fn reflash(session: Session<SessionMap>) -> String {
    session.reflash();
    session.get::<String>("message").unwrap_or_default()
}

/// An engine over `store`, with the tests' secret.
fn engine(store: &CountingStore) -> SessionEngine<CountingStore> {
    SessionEngine::builder()
        .with_secret(Secret::new(common::SECRET).unwrap())
        .with_store(store.clone())
        .build()
        .unwrap()
}

fn app(store: &CountingStore) -> Router {
    routes().layer(SessionLayer::new(engine(store)))
}

async fn send<S>(
    app: &S,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
) -> (StatusCode, Vec<String>, String)
where
    S: tower::Service<Request<Body>, Response = axum::response::Response, Error = Infallible>
        + Clone,
{
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let cookies = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, cookies, String::from_utf8(body.to_vec()).unwrap())
}

fn sid_pair(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .rev()
        .find(|c| c.starts_with("sid="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn route_without_session_costs_no_store_call_and_no_cookie() {
    let store = CountingStore::default();
    let app = app(&store);
    let (_, cookies, _) = send(&app, "POST", "/login", None).await;
    let sid = sid_pair(&cookies);
    let before = (
        store.gets.load(Ordering::SeqCst),
        store.sets.load(Ordering::SeqCst),
    );
    let (status, cookies, body) = send(&app, "GET", "/plain", Some(&sid)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "no session here"));
    assert!(cookies.is_empty());
    assert_eq!(
        before,
        (
            store.gets.load(Ordering::SeqCst),
            store.sets.load(Ordering::SeqCst)
        )
    );
}

#[tokio::test]
async fn login_then_me_through_the_layer() {
    let store = CountingStore::default();
    let app = app(&store);
    let (status, _, body) = send(&app, "GET", "/me", None).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "Unauthorised")
    );
    let (status, cookies, _) = send(&app, "POST", "/login", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let sid = sid_pair(&cookies);
    let (status, cookies, body) = send(&app, "GET", "/me", Some(&sid)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    assert!(cookies.is_empty(), "read-only: no Set-Cookie");
}

#[tokio::test]
async fn the_layer_also_works_around_the_whole_router() {
    use tower::Layer as _;
    let store = CountingStore::default();
    let app = SessionLayer::new(engine(&store)).layer(routes());
    let (status, cookies, _) = send(&app, "POST", "/login", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let sid = sid_pair(&cookies);
    let (status, _, body) = send(&app, "GET", "/me", Some(&sid)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    let calls = || {
        (
            store.gets.load(Ordering::SeqCst),
            store.sets.load(Ordering::SeqCst),
        )
    };
    let before = calls();
    // Routes that never ask, and paths no route matches, cost nothing.
    for path in ["/plain", "/nowhere"] {
        let (_, cookies, _) = send(&app, "GET", path, Some(&sid)).await;
        assert!(cookies.is_empty(), "{path}: no Set-Cookie");
    }
    assert_eq!(calls(), before);
}

#[tokio::test]
async fn two_extractions_share_one_load() {
    let store = CountingStore::default();
    let app = app(&store);
    let (_, cookies, _) = send(&app, "POST", "/login", None).await;
    let gets = store.gets.load(Ordering::SeqCst);
    let (_, _, body) = send(&app, "GET", "/twice", Some(&sid_pair(&cookies))).await;
    assert_eq!(body, "1", "both handles see one state");
    assert_eq!(store.gets.load(Ordering::SeqCst), gets + 1);
}

#[tokio::test]
async fn tampered_cookie_is_401_not_500() {
    let store = CountingStore::default();
    let app = app(&store);
    for cookie in [
        "sid=not-an-id",
        "sid=%ff%fe",
        "sid=",
        "sid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let (status, _, _) = send(&app, "GET", "/me", Some(cookie)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cookie}");
    }
}

#[tokio::test]
async fn store_failure_on_load_is_a_clear_500() {
    let store = CountingStore::default();
    let app = app(&store);
    let (_, cookies, _) = send(&app, "POST", "/login", None).await;
    store.fail_get.store(true, Ordering::SeqCst);
    let sid = sid_pair(&cookies);
    let (status, cookies, body) = send(&app, "GET", "/me", Some(&sid)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, "Session store unavailable");
    assert!(cookies.is_empty());
    let (status, _, body) = send(&app, "GET", "/tolerant", Some(&sid)).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "try later")
    );
}

#[tokio::test]
async fn store_failure_on_commit_replaces_the_response_with_500() {
    let store = CountingStore::default();
    store.fail_set.store(true, Ordering::SeqCst);
    let app = app(&store);
    let (status, cookies, body) = send(&app, "POST", "/login", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, "Session could not be saved");
    assert!(
        cookies.is_empty(),
        "no cookie for a session that was not saved"
    );
}

#[tokio::test]
async fn missing_layer_says_what_to_do() {
    let app = routes();
    let (status, _, body) = send(&app, "GET", "/me", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("SessionLayer is not installed"), "{body}");
    assert!(
        SessionRejection::MissingLayer
            .to_string()
            .contains(".layer(SessionLayer::new(engine))")
    );
}

/// A handler that sends a request of its own, with no cookie, into a
/// router without the layer.
async fn nested_into_routes_without_layer() -> String {
    let request = Request::get("/me").body(Body::empty()).unwrap();
    let response = routes().oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn a_nested_request_without_the_layer_does_not_see_the_outer_session() {
    // The session belongs to the request, not to whatever runs while the
    // layer polls the handler (as a task-local would make it).
    let app = routes()
        .route("/nested", get(nested_into_routes_without_layer))
        .layer(SessionLayer::new(engine(&CountingStore::default())));
    let (_, cookies, _) = send(&app, "POST", "/login", None).await;
    let sid = sid_pair(&cookies);
    let (status, _, body) = send(&app, "GET", "/nested", Some(&sid)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("SessionLayer is not installed"), "{body}");
}

#[tokio::test]
async fn a_handler_run_on_a_task_of_its_own_still_gets_the_session() {
    // A middleware inside the layer may move the rest of the request onto
    // another task (to isolate a panic, say): the session goes with the
    // request.
    async fn spawn_the_rest(
        request: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        tokio::spawn(next.run(request)).await.unwrap()
    }
    let app = routes()
        .layer(axum::middleware::from_fn(spawn_the_rest))
        .layer(SessionLayer::new(engine(&CountingStore::default())));
    let (status, cookies, _) = send(&app, "POST", "/login", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let sid = sid_pair(&cookies);
    let (status, _, body) = send(&app, "GET", "/me", Some(&sid)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
}

async fn fail_after_change(session: Session<SessionMap>) -> StatusCode {
    session.set("userId", "mallory");
    StatusCode::INTERNAL_SERVER_ERROR
}

#[tokio::test]
async fn server_error_skips_the_save_unless_asked() {
    for save in [false, true] {
        let store = CountingStore::default();
        let engine = SessionEngine::builder()
            .with_store(store.clone())
            .with_save_on_server_error(save)
            .build()
            .unwrap();
        let app = Router::new()
            .route("/fail", post(fail_after_change))
            .layer(SessionLayer::new(engine));
        let (status, cookies, _) = send(&app, "POST", "/fail", None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(!cookies.is_empty(), save, "save={save}: {cookies:?}");
        assert_eq!(store.sets.load(Ordering::SeqCst), usize::from(save));
    }
}

#[tokio::test]
async fn oversized_stateless_session_is_a_500_not_a_dropped_cookie() {
    async fn put(session: Session<SessionMap>, body: String) -> StatusCode {
        session.set("data", body);
        StatusCode::NO_CONTENT
    }
    let engine = SessionEngine::builder().build().unwrap();
    let app = Router::new()
        .route("/data", axum::routing::put(put))
        .layer(SessionLayer::new(engine));
    let req = Request::builder()
        .method("PUT")
        .uri("/data")
        .body(Body::from("x".repeat(5_000)))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.headers().get(header::SET_COOKIE).is_none());
}

/// The adapter's last commit moves a map's record rather than copying it;
/// a map that was only renewed or reflashed, and still shares the loaded
/// record, must keep every field, in either mode.
#[tokio::test]
async fn renew_and_reflash_without_a_write_keep_the_data() {
    let store = CountingStore::default();
    let stateless = SessionEngine::builder()
        .with_secret(Secret::new(common::SECRET).unwrap())
        .build()
        .unwrap();
    let apps = [app(&store), routes().layer(SessionLayer::new(stateless))];
    for app in &apps {
        let (_, cookies, _) = send(app, "POST", "/login", None).await;
        let mut sid = sid_pair(&cookies);
        let (status, cookies, _) = send(app, "POST", "/renew", Some(&sid)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        sid = sid_pair(&cookies);
        let (_, _, body) = send(app, "GET", "/me", Some(&sid)).await;
        assert_eq!(body, "alice", "renewed");

        let (_, cookies, _) = send(app, "POST", "/flash", Some(&sid)).await;
        sid = sid_pair(&cookies);
        // Reflashing what the last request flashed leaves the record as it
        // was loaded: no write, the browser keeps its cookie.
        let (_, cookies, body) = send(app, "POST", "/reflash", Some(&sid)).await;
        assert_eq!(body, "saved");
        if cookies.iter().any(|c| c.starts_with("sid=")) {
            sid = sid_pair(&cookies);
        }
        let (_, _, body) = send(app, "GET", "/me", Some(&sid)).await;
        assert_eq!(body, "alice", "reflashed");
    }
}

async fn count(session: Session<SessionMap>) -> String {
    let n = session.get::<u64>("count").unwrap_or(0) + 1;
    session.set("count", n);
    n.to_string()
}

/// The routes with `/count` on `store`, and the cookie of a login.
async fn counting_app(store: impl Store) -> (Router, String) {
    let engine = SessionEngine::builder().with_store(store).build().unwrap();
    let app = routes()
        .route("/count", post(count))
        .layer(SessionLayer::new(engine));
    let (_, cookies, _) = send(&app, "POST", "/login", None).await;
    (app, sid_pair(&cookies))
}

/// With the memory store, a write to a loaded session is made in the
/// record the store holds (no copy of the record, no free of the old one),
/// and what the next request reads is the written value.
#[tokio::test]
async fn a_memory_store_write_changes_the_stored_record_in_place() {
    let store = MemoryStore::new();
    let (app, sid) = counting_app(store.clone()).await;
    let id = SessionId::parse(sid.strip_prefix("sid=").unwrap()).unwrap();
    let cx = RequestContext::default();
    // The address only: holding the record would force a copy. A copy
    // is made while the old record lives, so it never gets its address.
    let address = |record: Arc<Record>| Arc::as_ptr(&record) as usize;
    let before = address(store.get(&id, &cx).await.unwrap().unwrap());

    for n in 1..=3 {
        let (status, cookies, body) = send(&app, "POST", "/count", Some(&sid)).await;
        assert_eq!((status, body), (StatusCode::OK, n.to_string()));
        assert_eq!(sid_pair(&cookies), sid, "same session id");
    }
    let record = store.get(&id, &cx).await.unwrap().unwrap();
    assert_eq!(record.get("count"), Some(&serde_json::json!(3)));
    assert_eq!(record.get("userId"), Some(&serde_json::json!("alice")));
    assert_eq!(address(record), before, "written in place");
}

/// A store that hands out a fresh record on every `get`, as a store that
/// deserialises (Redis, SQL) does, and notes the addresses it gave and got.
#[derive(Clone, Default)]
struct DeserialisingStore {
    inner: MemoryStore,
    given: Arc<std::sync::Mutex<Vec<usize>>>,
    got: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl Store for DeserialisingStore {
    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        let fresh = self
            .inner
            .get(id, cx)
            .await?
            .map(|record| Arc::new((*record).clone()));
        if let Some(record) = &fresh {
            self.given
                .lock()
                .unwrap()
                .push(Arc::as_ptr(record) as usize);
        }
        Ok(fresh)
    }
    async fn set(
        &self,
        id: &SessionId,
        r: Arc<Record>,
        e: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        self.got.lock().unwrap().push(Arc::as_ptr(&r) as usize);
        // The copy keeps the record handed over alive only for this call.
        self.inner.set(id, Arc::new((*r).clone()), e, cx).await
    }
    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        self.inner.delete(id, cx).await
    }
}

/// With any other store, a write to a loaded session is made in the
/// record the store gave: `set` gets the loaded record itself, changed,
/// not a copy of it.
#[tokio::test]
async fn a_write_changes_the_loaded_record_itself() {
    let store = DeserialisingStore::default();
    let (app, sid) = counting_app(store.clone()).await;
    for n in 1..=2 {
        let (_, _, body) = send(&app, "POST", "/count", Some(&sid)).await;
        assert_eq!(body, n.to_string());
    }
    let given = store.given.lock().unwrap().clone();
    let got = store.got.lock().unwrap().clone();
    // The login's write, then one per request, each of the record loaded.
    assert_eq!(given.len(), 2);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1..], given[..], "written in the loaded record");
}

// The layer keeps one finished per-request slot per thread for the next
// request (`#[tokio::test]` runs every request of a test on one thread).
// These check that a reused slot starts empty, loads through the engine of
// the router now serving, and never keeps a dropped router's store alive.

#[tokio::test]
async fn a_reused_slot_starts_with_a_fresh_session() {
    let store = CountingStore::default();
    let app = app(&store);
    let (_, cookies, _) = send(&app, "POST", "/login", None).await;
    let sid = sid_pair(&cookies);
    // Read-only: the slot is released with alice's session still loaded.
    let (status, _, body) = send(&app, "GET", "/me", Some(&sid)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    // Same thread, no cookie: the previous request's session must not show.
    let (status, cookies, body) = send(&app, "GET", "/me", None).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "Unauthorised")
    );
    assert!(cookies.is_empty());
}

#[tokio::test]
async fn a_reused_slot_loads_through_the_router_now_serving() {
    let (first, second) = (CountingStore::default(), CountingStore::default());
    let (a, b) = (app(&first), app(&second));
    let (_, cookies, _) = send(&a, "POST", "/login", None).await;
    let sid = sid_pair(&cookies);
    let (status, _, body) = send(&a, "GET", "/me", Some(&sid)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    let gets = first.gets.load(Ordering::SeqCst);
    // The second router's store has never seen this id.
    let (status, _, _) = send(&b, "GET", "/me", Some(&sid)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(first.gets.load(Ordering::SeqCst), gets);
    assert_eq!(second.gets.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_dropped_router_drops_its_store_even_after_serving() {
    let store = CountingStore::default();
    let app = app(&store);
    let (_, cookies, _) = send(&app, "POST", "/login", None).await;
    let sid = sid_pair(&cookies);
    send(&app, "GET", "/me", Some(&sid)).await;
    send(&app, "GET", "/plain", Some(&sid)).await;
    // The engine holds a clone of the store, and with it of `gets`.
    assert!(Arc::strong_count(&store.gets) > 1);
    drop(app);
    assert_eq!(
        Arc::strong_count(&store.gets),
        1,
        "the thread's spare slot kept the engine (and its store) alive"
    );
}
