//! The store conformance suite: what every [`Store`] must do, written once.
//!
//! [`run`] covers everything a store can be asked through the trait and
//! the engine; the other functions are cases only some stores meet (native
//! or filtered expiry, sweeps) or that need control of the backend (down
//! and recovery). Each `tests/stores_*.rs` file calls them for one backend.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, header};
use sealed_session::{
    Error, Record, RequestContext, SessionEngine, SessionId, SessionIndex, SessionMap, SetCookies,
    Store, StoreError,
};
use sealed_session_stores::DeleteExpired;
use serde_json::{Value, json};

/// A record from a JSON object, with `_expires` one hour ahead unless
/// given.
///
/// # Panics
///
/// When `value` is not an object.
#[must_use]
pub fn record(value: Value) -> Arc<Record> {
    let Value::Object(mut map) = value else {
        panic!("a record is a JSON object")
    };
    map.entry("_expires")
        .or_insert_with(|| json!(ms(SystemTime::now() + Duration::from_secs(3600))));
    Arc::new(map)
}

/// `t` in milliseconds since the epoch.
#[must_use]
pub fn ms(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

/// An hour from now.
#[must_use]
pub fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

fn cx() -> RequestContext {
    RequestContext::default()
}

fn id(text: &str) -> SessionId {
    SessionId::parse(text).unwrap_or_else(|| panic!("{text:?} is a valid id"))
}

/// Every generic case, in order. Call it with a store on a fresh table,
/// key prefix or directory.
///
/// # Panics
///
/// On the first case the store fails, with the case's name.
pub async fn run<S: Store>(store: Arc<S>) {
    round_trip(&*store).await;
    overwrite(&*store).await;
    missing_id(&*store).await;
    delete(&*store).await;
    large_record(&*store).await;
    unicode(&*store).await;
    odd_ids(&*store).await;
    concurrent_writers(Arc::clone(&store)).await;
    engine_round_trip(Arc::clone(&store)).await;
    regenerate_deletes_the_old_id(Arc::clone(&store)).await;
    destroy_deletes_the_record(Arc::clone(&store)).await;
    expired_record_is_not_loaded(Arc::clone(&store)).await;
    bad_cookies_never_reach_the_store(store).await;
}

/// `set` then `get` gives the record back.
pub async fn round_trip<S: Store>(store: &S) {
    let id = SessionId::generate();
    let rec = record(json!({"userId": "42", "count": 3, "ok": true, "list": [1, 2]}));
    store
        .set(&id, Arc::clone(&rec), in_an_hour(), &cx())
        .await
        .expect("round_trip: set");
    let got = store.get(&id, &cx()).await.expect("round_trip: get");
    assert_eq!(
        got.as_deref(),
        Some(&*rec),
        "round_trip: the record read back differs"
    );
}

/// A second `set` replaces the record.
pub async fn overwrite<S: Store>(store: &S) {
    let id = SessionId::generate();
    store
        .set(
            &id,
            record(json!({"v": 1, "gone": "x"})),
            in_an_hour(),
            &cx(),
        )
        .await
        .expect("overwrite: first set");
    let second = record(json!({"v": 2}));
    store
        .set(&id, Arc::clone(&second), in_an_hour(), &cx())
        .await
        .expect("overwrite: second set");
    let got = store.get(&id, &cx()).await.expect("overwrite: get");
    assert_eq!(
        got.as_deref(),
        Some(&*second),
        "overwrite: old record still there"
    );
}

/// An id never written reads as `None`; deleting it is not an error.
pub async fn missing_id<S: Store>(store: &S) {
    let id = SessionId::generate();
    assert!(
        store
            .get(&id, &cx())
            .await
            .expect("missing_id: get")
            .is_none()
    );
    store.delete(&id, &cx()).await.expect("missing_id: delete");
}

/// `delete` removes the record, and only that one.
pub async fn delete<S: Store>(store: &S) {
    let (a, b) = (SessionId::generate(), SessionId::generate());
    for id in [&a, &b] {
        store
            .set(id, record(json!({"k": id.as_str()})), in_an_hour(), &cx())
            .await
            .expect("delete: set");
    }
    store.delete(&a, &cx()).await.expect("delete: delete");
    assert!(store.get(&a, &cx()).await.expect("delete: get").is_none());
    assert!(
        store
            .get(&b, &cx())
            .await
            .expect("delete: get other")
            .is_some(),
        "delete: removed another record"
    );
    store.delete(&a, &cx()).await.expect("delete: delete twice");
}

/// A record of more than 1 MiB goes through whole.
pub async fn large_record<S: Store>(store: &S) {
    let id = SessionId::generate();
    let big: String = "0123456789abcdef".repeat(1024 * 1024 / 16 + 1);
    let rec = record(json!({"data": big, "more": vec!["é"; 1000]}));
    store
        .set(&id, Arc::clone(&rec), in_an_hour(), &cx())
        .await
        .expect("large_record: set");
    let got = store.get(&id, &cx()).await.expect("large_record: get");
    assert!(
        got.as_deref() == Some(&*rec),
        "large_record: the record read back differs"
    );
}

/// Any Unicode, in keys and values, including U+0000 and astral
/// characters, round-trips exactly.
pub async fn unicode<S: Store>(store: &S) {
    let id = SessionId::generate();
    let rec = record(json!({
        "name": "Zoë 🦀 你好 مرحبا עברית",
        "controls": "nul:\u{0} tab:\t nl:\n quote:\" backslash:\\ del:\u{7f}",
        "emoji 🔑 key": "👩🏽‍💻",
        "bmp-edge": "\u{fffd}\u{ffff}\u{10ffff}",
        "nested": {"a": [1, 2.5, -3, true, "ü"], "deep": {"x": "ß"}},
        "big": 9_007_199_254_740_993_u64,
    }));
    store
        .set(&id, Arc::clone(&rec), in_an_hour(), &cx())
        .await
        .expect("unicode: set");
    let got = store.get(&id, &cx()).await.expect("unicode: get");
    assert_eq!(
        got.as_deref(),
        Some(&*rec),
        "unicode: the record read back differs"
    );
}

/// Ids of unusual but valid shapes work and stay apart (ids differing
/// only in case are different sessions); invalid ids are refused before
/// a store can see them.
pub async fn odd_ids<S: Store>(store: &S) {
    let ids = [
        "----------------",
        "________________",
        "AbCdEfGhIjKlMnOpQr",
        "aBcDeFgHiJkLmNoPqR",
        "abcdefghijklmnopqr",
        "0f8e5f3c-6a1d-4c0e-9a7b-2b6f1c3d4e5f",
        &"Z".repeat(128),
    ];
    // Unique per run, so parallel runs on a shared backend never meet.
    let salt = SessionId::generate();
    let ids: Vec<SessionId> = ids
        .iter()
        .map(|raw| {
            let text = format!("{}{}", raw, salt.as_str());
            id(text.get(..text.len().min(128)).unwrap_or(&text))
        })
        .collect();
    for (n, id) in ids.iter().enumerate() {
        store
            .set(id, record(json!({"n": n})), in_an_hour(), &cx())
            .await
            .expect("odd_ids: set");
    }
    for (n, id) in ids.iter().enumerate() {
        let got = store.get(id, &cx()).await.expect("odd_ids: get");
        assert_eq!(
            got.and_then(|r| r.get("n").cloned()),
            Some(json!(n)),
            "odd_ids: {id:?} read another record (case folding?)"
        );
        store.delete(id, &cx()).await.expect("odd_ids: delete");
    }
    for bad in [
        "../../../../etc/passwd",
        "..\\..\\windows\\system32",
        "abcdefghijklmnop/../x",
        "abcdefghijklmnop\0",
        "abcdefghijklmnop%2f",
        "abcdefghijklmnop\u{e9}",
        "abcdefghijklmnop qr",
        "abcdefghijklmnop*",
        "short",
        "",
    ] {
        assert!(
            SessionId::parse(bad).is_none(),
            "odd_ids: {bad:?} was accepted as an id"
        );
    }
    assert!(SessionId::parse(&"a".repeat(129)).is_none());
}

/// Many tasks writing at once: each of their own records is intact, and
/// a record written by all of them holds one of the written values.
pub async fn concurrent_writers<S: Store>(store: Arc<S>) {
    let shared = SessionId::generate();
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let store = Arc::clone(&store);
            let shared = shared.clone();
            tokio::spawn(async move {
                let own = SessionId::generate();
                for round in 0..8 {
                    let rec = record(json!({"task": task, "round": round}));
                    store
                        .set(&own, Arc::clone(&rec), in_an_hour(), &cx())
                        .await
                        .expect("concurrent_writers: set own");
                    store
                        .set(&shared, rec, in_an_hour(), &cx())
                        .await
                        .expect("concurrent_writers: set shared");
                    let _ = store
                        .get(&shared, &cx())
                        .await
                        .expect("concurrent_writers: get");
                }
                (task, own)
            })
        })
        .collect();
    for handle in tasks {
        let (task, own) = handle.await.expect("concurrent_writers: task panicked");
        let got = store
            .get(&own, &cx())
            .await
            .expect("concurrent_writers: get own");
        let got = got.expect("concurrent_writers: own record lost");
        assert_eq!(got.get("task"), Some(&json!(task)));
        assert_eq!(got.get("round"), Some(&json!(7)));
    }
    let last = store
        .get(&shared, &cx())
        .await
        .expect("concurrent_writers: get shared")
        .expect("concurrent_writers: shared record lost");
    assert!(
        last.get("task")
            .and_then(Value::as_u64)
            .is_some_and(|t| t < 16)
    );
    assert!(
        last.get("round")
            .and_then(Value::as_u64)
            .is_some_and(|r| r < 8)
    );
}

fn engine<S: Store>(store: Arc<S>) -> SessionEngine<Arc<S>> {
    SessionEngine::builder()
        .with_store(store)
        .build()
        .expect("engine builds")
}

/// The session id a commit set (`sid=<id>`), if any.
#[must_use]
pub fn sid(set_cookies: &SetCookies) -> Option<String> {
    set_cookies.iter().find_map(|v| {
        let text = v.to_str().ok()?;
        let value = text.strip_prefix("sid=")?.split(';').next()?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Request headers carrying the session cookie `sid`.
///
/// # Panics
///
/// When `sid` cannot be a header value.
#[must_use]
pub fn cookie(sid: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("sid={sid}")).expect("a cookie header"),
    );
    headers
}

/// Through the engine: a session saved in one request is loaded in the
/// next, and an unchanged session writes nothing.
pub async fn engine_round_trip<S: Store>(store: Arc<S>) {
    let engine = engine(Arc::clone(&store));
    let session = engine
        .load::<SessionMap>(&HeaderMap::new(), &cx())
        .await
        .expect("engine: load new");
    session.set("userId", "7");
    let set = engine
        .commit(&session, &cx())
        .await
        .expect("engine: commit");
    let sid = sid(&set).expect("engine: no session cookie set");
    let session = engine
        .load::<SessionMap>(&cookie(&sid), &cx())
        .await
        .expect("engine: load");
    assert_eq!(session.get::<String>("userId").as_deref(), Some("7"));
    assert!(!session.is_new());
    assert!(
        engine
            .commit(&session, &cx())
            .await
            .expect("engine: commit")
            .is_empty()
    );
}

/// `regenerate` moves the data to a new id and deletes the old record.
pub async fn regenerate_deletes_the_old_id<S: Store>(store: Arc<S>) {
    let engine = engine(Arc::clone(&store));
    let session = engine
        .load::<SessionMap>(&HeaderMap::new(), &cx())
        .await
        .expect("regenerate: load new");
    session.set("cart", "3 apples");
    let old = sid(&engine
        .commit(&session, &cx())
        .await
        .expect("regenerate: commit"))
    .expect("regenerate: first cookie");

    let session = engine
        .load::<SessionMap>(&cookie(&old), &cx())
        .await
        .expect("regenerate: load");
    session.regenerate();
    session.set("userId", "1");
    let new = sid(&engine
        .commit(&session, &cx())
        .await
        .expect("regenerate: commit"))
    .expect("regenerate: new cookie");
    assert_ne!(old, new, "regenerate: same id");

    let old_id = id(&old);
    assert!(
        store
            .get(&old_id, &cx())
            .await
            .expect("regenerate: get old")
            .is_none(),
        "regenerate: the old record is still in the store"
    );
    let moved = store
        .get(&id(&new), &cx())
        .await
        .expect("regenerate: get new")
        .expect("regenerate: the new record is missing");
    assert_eq!(moved.get("cart"), Some(&json!("3 apples")));
    assert_eq!(moved.get("userId"), Some(&json!("1")));
    let session = engine
        .load::<SessionMap>(&cookie(&old), &cx())
        .await
        .expect("regenerate: load old");
    assert!(
        session.is_new(),
        "regenerate: the old cookie still opens a session"
    );
}

/// `destroy` deletes the record.
pub async fn destroy_deletes_the_record<S: Store>(store: Arc<S>) {
    let engine = engine(Arc::clone(&store));
    let session = engine
        .load::<SessionMap>(&HeaderMap::new(), &cx())
        .await
        .expect("destroy: load new");
    session.set("userId", "9");
    let sid = sid(&engine
        .commit(&session, &cx())
        .await
        .expect("destroy: commit"))
    .expect("destroy: cookie");
    let session = engine
        .load::<SessionMap>(&cookie(&sid), &cx())
        .await
        .expect("destroy: load");
    session.destroy();
    engine
        .commit(&session, &cx())
        .await
        .expect("destroy: commit");
    assert!(
        store
            .get(&id(&sid), &cx())
            .await
            .expect("destroy: get")
            .is_none()
    );
}

/// A record whose `_expires` is past is not loaded (even from a store that
/// does not expire records itself), and the engine deletes it.
pub async fn expired_record_is_not_loaded<S: Store>(store: Arc<S>) {
    let engine = engine(Arc::clone(&store));
    let sid = SessionId::generate();
    let past = ms(SystemTime::now() - Duration::from_secs(60));
    // The store is told it lives an hour: only `_expires` says it is over.
    store
        .set(
            &sid,
            record(json!({"userId": "x", "_expires": past})),
            in_an_hour(),
            &cx(),
        )
        .await
        .expect("expired: set");
    let session = engine
        .load::<SessionMap>(&cookie(sid.as_str()), &cx())
        .await
        .expect("expired: load");
    assert!(session.is_new(), "expired: an expired session was loaded");
    assert!(session.get::<String>("userId").is_none());
    assert_ne!(
        session.id().as_ref(),
        Some(&sid),
        "expired: the old id was kept"
    );
    assert!(
        store
            .get(&sid, &cx())
            .await
            .expect("expired: get")
            .is_none()
    );
}

/// Cookies that are not ids give a fresh session; the store is never
/// asked for them.
pub async fn bad_cookies_never_reach_the_store<S: Store>(store: Arc<S>) {
    let engine = engine(store);
    for bad in [
        "..%2F..%2Fetc%2Fpasswd",
        "x",
        "a%00bcdefghijklmnopq",
        &"a".repeat(4000),
    ] {
        let session = engine
            .load::<SessionMap>(&cookie(bad), &cx())
            .await
            .expect("bad cookie: load");
        assert!(session.is_new());
    }
}

/// A record set with an expiry in the past is not returned. For stores
/// that expire or filter records themselves (not the plain maps).
///
/// # Panics
///
/// When the store returns it.
pub async fn expired_records_are_not_returned<S: Store>(store: &S) {
    let id = SessionId::generate();
    let past = SystemTime::now() - Duration::from_secs(5);
    store
        .set(&id, record(json!({"_expires": ms(past)})), past, &cx())
        .await
        .expect("expiry: set");
    assert!(
        store.get(&id, &cx()).await.expect("expiry: get").is_none(),
        "expiry: an expired record was returned"
    );
    // Overwriting a live record with an expired one ends it too.
    let live = SessionId::generate();
    store
        .set(&live, record(json!({})), in_an_hour(), &cx())
        .await
        .expect("expiry: set live");
    store
        .set(&live, record(json!({"_expires": ms(past)})), past, &cx())
        .await
        .expect("expiry: set expired");
    assert!(
        store
            .get(&live, &cx())
            .await
            .expect("expiry: get")
            .is_none()
    );
}

/// A record set to expire in `ttl` is returned before and not after.
/// For stores with native expiry; keep `ttl` short (1 s).
pub async fn expires_after<S: Store>(store: &S, ttl: Duration) {
    let id = SessionId::generate();
    let at = SystemTime::now() + ttl;
    store
        .set(&id, record(json!({"_expires": ms(at)})), at, &cx())
        .await
        .expect("ttl: set");
    assert!(store.get(&id, &cx()).await.expect("ttl: get").is_some());
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;
    assert!(
        store.get(&id, &cx()).await.expect("ttl: get").is_none(),
        "ttl: the record outlived its expiry"
    );
}

/// `delete_expired` removes exactly the expired records of a store that
/// holds only this test's records, and returns how many.
pub async fn sweep_removes_only_expired<S: Store + DeleteExpired>(store: &S) {
    let past = SystemTime::now() - Duration::from_secs(5);
    let live = SessionId::generate();
    store
        .set(&live, record(json!({})), in_an_hour(), &cx())
        .await
        .expect("sweep: set live");
    for _ in 0..3 {
        store
            .set(
                &SessionId::generate(),
                record(json!({"_expires": ms(past)})),
                past,
                &cx(),
            )
            .await
            .expect("sweep: set expired");
    }
    let removed = store.delete_expired().await.expect("sweep: delete_expired");
    assert_eq!(removed, 3, "sweep: removed {removed} records, expected 3");
    assert!(
        store
            .get(&live, &cx())
            .await
            .expect("sweep: get live")
            .is_some()
    );
    assert_eq!(store.delete_expired().await.expect("sweep: again"), 0);
}

/// Asserts `error` is a [`StoreError::Backend`] naming `backend`, with the
/// driver's error as its source.
///
/// # Panics
///
/// When it is not.
pub fn assert_backend_error(error: &StoreError, backend: &str) {
    match error {
        StoreError::Backend { backend: b, .. } => {
            assert_eq!(*b, backend, "the error names the wrong backend: {error}");
        }
        other => panic!("expected a backend error from {backend}, got {other:?}"),
    }
    assert!(
        error.source().is_some(),
        "the error lost its cause: {error}"
    );
    assert!(error.to_string().contains(backend), "{error}");
}

/// Every operation on an unreachable store fails with a backend error
/// naming `backend` (no panic, no hang), and so does loading a session
/// through the engine.
///
/// # Panics
///
/// When an operation succeeds or fails otherwise.
pub async fn assert_unavailable<S: Store>(store: Arc<S>, backend: &str) {
    let id = SessionId::generate();
    let err = bounded("get", backend, store.get(&id, &cx()))
        .await
        .expect_err("get on a down store succeeded");
    assert_backend_error(&err, backend);
    let err = bounded(
        "set",
        backend,
        store.set(&id, record(json!({})), in_an_hour(), &cx()),
    )
    .await
    .expect_err("set on a down store succeeded");
    assert_backend_error(&err, backend);
    let err = bounded("delete", backend, store.delete(&id, &cx()))
        .await
        .expect_err("delete on a down store succeeded");
    assert_backend_error(&err, backend);

    let engine = engine(store);
    match engine.load::<SessionMap>(&cookie(id.as_str()), &cx()).await {
        Err(Error::Store(err)) => assert_backend_error(&err, backend),
        other => panic!("loading through the engine: expected a store error, got {other:?}"),
    }
}

async fn bounded<T>(what: &str, backend: &str, op: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), op)
        .await
        .unwrap_or_else(|_| panic!("{what} hung on a down {backend}"))
}

/// Polls until the store answers again (up to `within`), then checks it
/// works: the recovery half of a down/up test.
///
/// # Panics
///
/// When it does not recover in time.
pub async fn assert_recovers<S: Store>(store: &S, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let id = SessionId::generate();
    loop {
        match store
            .set(&id, record(json!({"back": true})), in_an_hour(), &cx())
            .await
        {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not recover within {within:?}: {e}"),
        }
    }
    let got = store.get(&id, &cx()).await.expect("recovered: get");
    assert_eq!(got.and_then(|r| r.get("back").cloned()), Some(json!(true)));
    round_trip(store).await;
}

/// [`Store::compare_and_set`] as its docs say: `None` writes only where no
/// live record is (an expired one is replaced), `Some(v)` only over a live
/// record whose `_version` is `v`; anything else is a conflict and leaves
/// the stored record alone.
///
/// # Panics
///
/// When the store breaks the contract.
pub async fn compare_and_set_contract<S: Store>(store: &S) {
    async fn cas<S: Store>(
        store: &S,
        id: &SessionId,
        value: Value,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        store
            .compare_and_set(id, record(value), in_an_hour(), expected, &cx())
            .await
    }
    async fn version<S: Store>(store: &S, id: &SessionId) -> Option<Value> {
        let stored = store.get(id, &cx()).await.expect("cas: get");
        stored.and_then(|r| r.get("_version").cloned())
    }
    fn conflict(result: Result<(), StoreError>, what: &str) {
        assert!(
            matches!(result, Err(StoreError::Conflict)),
            "cas: {what}: {result:?}"
        );
    }

    let id = SessionId::generate();
    cas(store, &id, json!({"_version": 1}), None)
        .await
        .expect("cas: insert where nothing is");
    conflict(
        cas(store, &id, json!({"_version": 1}), None).await,
        "insert over a live record",
    );
    conflict(
        cas(store, &id, json!({"_version": 8}), Some(7)).await,
        "update from another version",
    );
    assert_eq!(
        version(store, &id).await,
        Some(json!(1)),
        "cas: a conflict wrote"
    );
    cas(store, &id, json!({"_version": 2}), Some(1))
        .await
        .expect("cas: update from the stored version");
    assert_eq!(version(store, &id).await, Some(json!(2)));
    conflict(
        cas(store, &id, json!({"_version": 2}), Some(1)).await,
        "update from the version before",
    );
    conflict(
        cas(
            store,
            &SessionId::generate(),
            json!({"_version": 1}),
            Some(0),
        )
        .await,
        "update where nothing is",
    );

    // An expired record is no record: an insert replaces it, an update
    // from its version is a conflict.
    let expired = SessionId::generate();
    let past = SystemTime::now() - Duration::from_secs(5);
    store
        .set(&expired, record(json!({"_version": 5})), past, &cx())
        .await
        .expect("cas: set expired");
    conflict(
        cas(store, &expired, json!({"_version": 6}), Some(5)).await,
        "update of an expired record",
    );
    cas(store, &expired, json!({"_version": 1}), None)
        .await
        .expect("cas: insert over an expired record");
    assert_eq!(version(store, &expired).await, Some(json!(1)));
}

/// For stores that implement [`Store::compare_and_set`]: the contract
/// itself, then, with optimistic concurrency, of twenty requests that
/// loaded the same version only one write wins, the others get
/// [`StoreError::Conflict`]; retrying them all loses no update; a record
/// written behind the engine's back is a conflict.
pub async fn optimistic_concurrency<S: Store>(store: Arc<S>) {
    compare_and_set_contract(&*store).await;
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&store))
        .with_optimistic_concurrency(true)
        .build()
        .expect("optimistic: build");
    let first = engine
        .load::<SessionMap>(&HeaderMap::new(), &cx())
        .await
        .expect("optimistic: load new");
    first.set("count", 0);
    let sid = sid(&engine
        .commit(&first, &cx())
        .await
        .expect("optimistic: first write"))
    .expect("optimistic: cookie");
    let headers = cookie(&sid);

    let mut loaded = Vec::new();
    for _ in 0..20 {
        loaded.push(
            engine
                .load::<SessionMap>(&headers, &cx())
                .await
                .expect("optimistic: load"),
        );
    }
    let mut outcomes = (0, 0);
    for session in &loaded {
        let n = session.get::<u32>("count").expect("optimistic: count") + 1;
        session.set("count", n);
        match engine.commit(session, &cx()).await {
            Ok(_) => outcomes.0 += 1,
            Err(e) if e.is_conflict() => outcomes.1 += 1,
            Err(e) => panic!("optimistic: {e}"),
        }
    }
    assert_eq!(outcomes, (1, 19), "optimistic: (won, conflicts)");

    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (engine, headers) = (engine.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let session = engine
                    .load::<SessionMap>(&headers, &cx())
                    .await
                    .expect("optimistic: load");
                let n = session.get::<u32>("count").expect("optimistic: count") + 1;
                session.set("count", n);
                tokio::task::yield_now().await;
                match engine.commit(&session, &cx()).await {
                    Ok(_) => return,
                    Err(e) if e.is_conflict() => {}
                    Err(e) => panic!("optimistic: {e}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("optimistic: task");
    }
    let session = engine
        .load::<SessionMap>(&headers, &cx())
        .await
        .expect("optimistic: load");
    assert_eq!(
        session.get::<u32>("count"),
        Some(11),
        "optimistic: an update was lost"
    );

    // A write behind the engine's back (another server without the option).
    let stale = engine
        .load::<SessionMap>(&headers, &cx())
        .await
        .expect("optimistic: load");
    store
        .set(
            &id(&sid),
            record(json!({"count": 100, "_version": 999})),
            in_an_hour(),
            &cx(),
        )
        .await
        .expect("optimistic: plain set");
    stale.set("count", 12);
    let err = engine
        .commit(&stale, &cx())
        .await
        .expect_err("optimistic: stale write accepted");
    assert!(
        matches!(err, Error::Store(StoreError::Conflict)),
        "optimistic: {err}"
    );
}

/// Per-user sessions ([`SessionIndex`]): listing, revoking one, revoking
/// all but one, the index following owner changes, and revoke-all racing
/// logins. Call it with a store on a fresh table, key prefix or directory.
///
/// Sessions are told apart by their labels, not their ids, so that stores
/// that keep ids in another form ([`HashedIds`](sealed_session_stores::HashedIds))
/// pass too.
///
/// # Panics
///
/// On the first case the store fails, with the case's name.
pub async fn session_index<S: SessionIndex>(store: Arc<S>) {
    index::listing(Arc::clone(&store)).await;
    index::revoke_one(Arc::clone(&store)).await;
    index::revoke_all_but_one(Arc::clone(&store)).await;
    index::follows_the_records(Arc::clone(&store)).await;
    index::reads_write_nothing_and_writes_are_seen(Arc::clone(&store)).await;
    index::revoke_all_racing_logins(store).await;
}

/// The cases of [`session_index`].
pub mod index {
    use super::*;

    /// A unique owner name per call: the cases share one store.
    fn owner(case: &str) -> String {
        format!(
            "{case}-{}",
            SessionId::generate().as_str().get(..8).unwrap_or("x")
        )
    }

    /// Logs `owner` in on a new session labelled `label`; the cookie.
    ///
    /// # Panics
    ///
    /// When the engine fails.
    pub async fn login<S: Store>(
        engine: &SessionEngine<Arc<S>>,
        owner: &str,
        label: &str,
    ) -> String {
        let session = engine
            .load::<SessionMap>(&HeaderMap::new(), &cx())
            .await
            .expect("index: load new");
        session.set("userId", owner);
        session.set_owner(owner);
        session.set_owner_label(label);
        sid(&engine
            .commit(&session, &cx())
            .await
            .expect("index: commit login"))
        .expect("index: a login sets a cookie")
    }

    /// The user the cookie's session is logged in as (`None`: a new session).
    async fn user<S: Store>(engine: &SessionEngine<Arc<S>>, sid: &str) -> Option<String> {
        let session = engine
            .load::<SessionMap>(&cookie(sid), &cx())
            .await
            .expect("index: load");
        session.get::<String>("userId")
    }

    /// The owner's sessions' labels, sorted.
    async fn labels<S: SessionIndex>(engine: &SessionEngine<Arc<S>>, owner: &str) -> Vec<String> {
        let mut labels: Vec<String> = engine
            .sessions_of(owner)
            .await
            .expect("index: sessions_of")
            .into_iter()
            .map(|info| {
                assert_eq!(info.owner, owner, "index: listed under another owner");
                info.label.expect("index: the label was set")
            })
            .collect();
        labels.sort();
        labels
    }

    /// Each owner sees their own sessions, with login time, last write,
    /// expiry and label; unowned sessions are listed nowhere.
    pub async fn listing<S: SessionIndex>(store: Arc<S>) {
        let engine = engine(store);
        let (ada, bob) = (owner("ada"), owner("bob"));
        let before = SystemTime::now() - Duration::from_secs(1);
        login(&engine, &ada, "phone").await;
        login(&engine, &ada, "laptop").await;
        login(&engine, &bob, "tablet").await;
        let session = engine
            .load::<SessionMap>(&HeaderMap::new(), &cx())
            .await
            .expect("listing: load");
        session.set("anonymous", true);
        engine
            .commit(&session, &cx())
            .await
            .expect("listing: commit");

        assert_eq!(labels(&engine, &ada).await, ["laptop", "phone"]);
        assert_eq!(labels(&engine, &bob).await, ["tablet"]);
        assert!(
            engine
                .sessions_of(&owner("nobody"))
                .await
                .expect("listing")
                .is_empty()
        );
        let after = SystemTime::now() + Duration::from_secs(1);
        for info in engine.sessions_of(&ada).await.expect("listing") {
            assert!(
                info.created > before && info.created < after,
                "listing: {info:?}"
            );
            assert!(info.last_seen >= info.created, "listing: {info:?}");
            let expires_in = info.expires.duration_since(before).unwrap_or_default();
            assert!(
                expires_in > engine.max_age() - Duration::from_secs(5),
                "listing: the expiry is the session's: {info:?}"
            );
        }
    }

    /// `revoke` logs out one session of the owner, and refuses another
    /// owner's.
    pub async fn revoke_one<S: SessionIndex>(store: Arc<S>) {
        let engine = engine(store);
        let (ada, eve) = (owner("ada"), owner("eve"));
        let phone = login(&engine, &ada, "phone").await;
        let laptop = login(&engine, &ada, "laptop").await;
        let eves = login(&engine, &eve, "eve's").await;

        let infos = engine.sessions_of(&ada).await.expect("revoke: list");
        let phone_id = infos
            .iter()
            .find(|i| i.label.as_deref() == Some("phone"))
            .map(|i| i.id.clone())
            .expect("revoke: the phone is listed");
        assert!(
            !engine.revoke(&eve, &phone_id).await.expect("revoke"),
            "revoke: another owner's session was revoked"
        );
        assert_eq!(user(&engine, &phone).await.as_deref(), Some(ada.as_str()));

        assert!(engine.revoke(&ada, &phone_id).await.expect("revoke"));
        assert_eq!(
            user(&engine, &phone).await,
            None,
            "revoke: the phone still logs in"
        );
        assert_eq!(user(&engine, &laptop).await.as_deref(), Some(ada.as_str()));
        assert_eq!(user(&engine, &eves).await.as_deref(), Some(eve.as_str()));
        assert_eq!(labels(&engine, &ada).await, ["laptop"]);
        assert!(
            !engine.revoke(&ada, &phone_id).await.expect("revoke again"),
            "revoke: a second revoke found the session"
        );
    }

    /// `revoke_all` with `except`: "log out my other sessions".
    pub async fn revoke_all_but_one<S: SessionIndex>(store: Arc<S>) {
        let engine = engine(Arc::clone(&store));
        let ada = owner("ada");
        let here = login(&engine, &ada, "here").await;
        let others = [
            login(&engine, &ada, "other-1").await,
            login(&engine, &ada, "other-2").await,
        ];
        let here_id = engine
            .load::<SessionMap>(&cookie(&here), &cx())
            .await
            .expect("revoke_all: load")
            .id()
            .expect("store mode: an id");
        assert_eq!(
            engine
                .revoke_all(&ada, Some(&here_id))
                .await
                .expect("revoke_all"),
            2
        );
        assert_eq!(user(&engine, &here).await.as_deref(), Some(ada.as_str()));
        for other in &others {
            assert_eq!(
                user(&engine, other).await,
                None,
                "revoke_all: still logged in"
            );
        }
        assert_eq!(labels(&engine, &ada).await, ["here"]);
        assert_eq!(engine.revoke_all(&ada, None).await.expect("revoke_all"), 1);
        assert_eq!(user(&engine, &here).await, None);
        assert!(labels(&engine, &ada).await.is_empty());
        assert_eq!(engine.revoke_all(&ada, None).await.expect("revoke_all"), 0);
    }

    /// The index follows the records: a cleared owner, a new owner, a
    /// destroyed or regenerated session.
    pub async fn follows_the_records<S: SessionIndex>(store: Arc<S>) {
        let engine = engine(store);
        let (ada, bob) = (owner("ada"), owner("bob"));
        let cleared = login(&engine, &ada, "cleared").await;
        let moved = login(&engine, &ada, "moved").await;
        let destroyed = login(&engine, &ada, "destroyed").await;
        let regenerated = login(&engine, &ada, "regenerated").await;

        let session = engine
            .load::<SessionMap>(&cookie(&cleared), &cx())
            .await
            .expect("load");
        session.clear_owner();
        assert!(session.owner().is_none());
        engine.commit(&session, &cx()).await.expect("commit");

        let session = engine
            .load::<SessionMap>(&cookie(&moved), &cx())
            .await
            .expect("load");
        session.set_owner(&bob);
        session.set_owner_label("moved");
        engine.commit(&session, &cx()).await.expect("commit");

        let session = engine
            .load::<SessionMap>(&cookie(&destroyed), &cx())
            .await
            .expect("load");
        session.destroy();
        engine.commit(&session, &cx()).await.expect("commit");

        let session = engine
            .load::<SessionMap>(&cookie(&regenerated), &cx())
            .await
            .expect("load");
        assert_eq!(session.owner().as_deref(), Some(ada.as_str()));
        session.regenerate();
        let new = sid(&engine.commit(&session, &cx()).await.expect("commit"))
            .expect("regenerate sets a cookie");

        assert_eq!(labels(&engine, &ada).await, ["regenerated"]);
        assert_eq!(labels(&engine, &bob).await, ["moved"]);
        let listed = engine.sessions_of(&ada).await.expect("list");
        assert_eq!(listed.len(), 1);
        // The regenerated session is listed under its new id: revoking it
        // logs the new cookie out.
        assert!(engine.revoke(&ada, &listed[0].id).await.expect("revoke"));
        assert_eq!(user(&engine, &new).await, None);
        assert_eq!(user(&engine, &cleared).await.as_deref(), Some(ada.as_str()));
    }

    /// A request that only reads an owned session writes nothing (the index
    /// costs no store call); one that writes a minute later moves
    /// `last_seen` (it is kept to the minute).
    pub async fn reads_write_nothing_and_writes_are_seen<S: SessionIndex>(store: Arc<S>) {
        let clock = sealed_session::ManualClock::new(ms(SystemTime::now()));
        let engine = SessionEngine::builder()
            .with_store(store)
            .with_clock(clock.clone())
            .build()
            .expect("engine builds");
        let ada = owner("ada");
        let sid = login(&engine, &ada, "phone").await;
        let seen = |infos: Vec<sealed_session::SessionInfo>| {
            assert_eq!(infos.len(), 1, "seen: one session listed");
            infos[0].last_seen
        };
        let first = seen(engine.sessions_of(&ada).await.expect("seen: list"));

        let session = engine
            .load::<SessionMap>(&cookie(&sid), &cx())
            .await
            .expect("load");
        assert_eq!(session.owner().as_deref(), Some(ada.as_str()));
        assert!(!session.has_changed());
        assert!(
            engine
                .commit(&session, &cx())
                .await
                .expect("commit")
                .is_empty(),
            "seen: a read-only request on an owned session wrote"
        );

        let write = |n: u32| {
            let engine = engine.clone();
            let sid = sid.clone();
            async move {
                let session = engine
                    .load::<SessionMap>(&cookie(&sid), &cx())
                    .await
                    .expect("load");
                session.set("cart", n);
                engine.commit(&session, &cx()).await.expect("commit");
            }
        };
        clock.advance(Duration::from_secs(1));
        write(1).await;
        let soon = seen(engine.sessions_of(&ada).await.expect("seen: list"));
        assert_eq!(soon, first, "seen: moved by a write within the minute");
        clock.advance(Duration::from_secs(60));
        write(2).await;
        let later = seen(engine.sessions_of(&ada).await.expect("seen: list"));
        assert!(
            later > first,
            "seen: a write a minute later did not move last_seen"
        );
    }

    /// `revoke_all` racing logins: afterwards no session of the owner is
    /// live without being listed, and a second `revoke_all` leaves none.
    pub async fn revoke_all_racing_logins<S: SessionIndex>(store: Arc<S>) {
        let engine = engine(store);
        let ada = owner("ada");
        let logins: Vec<_> = (0..12)
            .map(|n| {
                let engine = engine.clone();
                let ada = ada.clone();
                tokio::spawn(async move { login(&engine, &ada, &format!("device-{n:02}")).await })
            })
            .collect();
        let revoker = {
            let engine = engine.clone();
            let ada = ada.clone();
            tokio::spawn(async move { engine.revoke_all(&ada, None).await })
        };
        let mut cookies = Vec::new();
        for login in logins {
            cookies.push(login.await.expect("race: a login panicked"));
        }
        revoker
            .await
            .expect("race: revoke_all panicked")
            .expect("race: revoke_all");

        let listed = labels(&engine, &ada).await;
        for (n, sid) in cookies.iter().enumerate() {
            if user(&engine, sid).await.is_some() {
                let label = format!("device-{n:02}");
                assert!(
                    listed.contains(&label),
                    "race: {label} is live but not listed"
                );
            }
        }
        engine
            .revoke_all(&ada, None)
            .await
            .expect("race: revoke_all again");
        for sid in &cookies {
            assert_eq!(user(&engine, sid).await, None, "race: a session survived");
        }
        assert!(labels(&engine, &ada).await.is_empty());
    }
}
