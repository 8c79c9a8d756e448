//! The conformance suite on `CachingStore`, and that both tiers agree
//! after writes, deletes, regenerations and failures.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use sealed_session::{
    MemoryStore, RequestContext, SessionEngine, SessionId, SessionMap, Store, StoreError,
};
use sealed_session_stores::drivers::sqlx;
use sealed_session_stores::{CachingStore, MokaStore, SqliteStore};
use sealed_session_tests::conformance::{self, cookie, in_an_hour, record, sid};
use serde_json::json;

fn cx() -> RequestContext {
    RequestContext::default()
}

#[tokio::test]
async fn memory_over_memory_conforms() {
    let store = Arc::new(CachingStore::new(MemoryStore::new(), MemoryStore::new()));
    conformance::run(Arc::clone(&store)).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    conformance::session_index(Arc::clone(&store)).await;
}

/// A revoked session leaves this process's cache with the backend's
/// record: the next load finds nothing, though the copy had not expired.
#[tokio::test]
async fn revoking_drops_the_cached_copy() {
    let store = Arc::new(CachingStore::new(MemoryStore::new(), MemoryStore::new()));
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&store))
        .build()
        .unwrap();
    let sid = conformance::index::login(&engine, "ada", "phone").await;
    let id = SessionId::parse(&sid).unwrap();
    // Loading fills the cache.
    engine
        .load::<SessionMap>(&cookie(&sid), &cx())
        .await
        .unwrap();
    assert!(store.cache().get(&id, &cx()).await.unwrap().is_some());

    assert!(engine.revoke("ada", &id).await.unwrap());
    assert!(store.cache().get(&id, &cx()).await.unwrap().is_none());
    assert!(store.backend().get(&id, &cx()).await.unwrap().is_none());
    let session = engine
        .load::<SessionMap>(&cookie(&sid), &cx())
        .await
        .unwrap();
    assert!(session.is_new(), "a revoked session still loads");

    let kept = conformance::index::login(&engine, "ada", "laptop").await;
    let gone = conformance::index::login(&engine, "ada", "tablet").await;
    for sid in [&kept, &gone] {
        engine
            .load::<SessionMap>(&cookie(sid), &cx())
            .await
            .unwrap();
    }
    let kept_id = SessionId::parse(&kept).unwrap();
    assert_eq!(engine.revoke_all("ada", Some(&kept_id)).await.unwrap(), 1);
    let gone_id = SessionId::parse(&gone).unwrap();
    assert!(store.cache().get(&gone_id, &cx()).await.unwrap().is_none());
    assert!(store.cache().get(&kept_id, &cx()).await.unwrap().is_some());
}

#[tokio::test]
async fn owned_sessions_uncached_conforms() {
    let store = Arc::new(
        CachingStore::new(MemoryStore::new(), MemoryStore::new()).with_owned_sessions_uncached(),
    );
    conformance::run(Arc::clone(&store)).await;
    conformance::session_index(Arc::clone(&store)).await;
}

/// Two servers, each with its own cache over one backend: a write from a
/// stale cached copy is a conflict, which drops the copy, and the retry
/// reads the backend and succeeds.
#[tokio::test]
async fn a_write_from_a_stale_cached_copy_is_a_conflict_then_the_retry_wins() {
    let backend = Arc::new(MemoryStore::new());
    let a = CachingStore::new(MemoryStore::new(), Arc::clone(&backend));
    let b = CachingStore::new(MemoryStore::new(), Arc::clone(&backend));
    let cx = RequestContext::default();
    let id = SessionId::generate();
    let v = |n: u64| record(json!({"_version": n, "_expires": conformance::ms(in_an_hour())}));

    a.compare_and_set(&id, v(1), in_an_hour(), None, &cx)
        .await
        .unwrap();
    assert!(
        b.get(&id, &cx).await.unwrap().is_some(),
        "b caches version 1"
    );
    a.compare_and_set(&id, v(2), in_an_hour(), Some(1), &cx)
        .await
        .unwrap();

    let stale = b.get(&id, &cx).await.unwrap().unwrap();
    assert_eq!(stale["_version"], 1, "b's cache is stale");
    let err = b
        .compare_and_set(&id, v(2), in_an_hour(), Some(1), &cx)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err}");
    let fresh = b.get(&id, &cx).await.unwrap().unwrap();
    assert_eq!(fresh["_version"], 2, "the conflict dropped b's stale copy");
    b.compare_and_set(&id, v(3), in_an_hour(), Some(2), &cx)
        .await
        .unwrap();
    assert_eq!(
        a.get(&id, &cx).await.unwrap().unwrap()["_version"],
        2,
        "a's own copy"
    );
    assert_eq!(backend.get(&id, &cx).await.unwrap().unwrap()["_version"], 3);
}

#[tokio::test]
async fn moka_over_sqlite_conforms() {
    let backend = SqliteStore::in_memory().await.unwrap();
    let store = Arc::new(CachingStore::new(MokaStore::new(1000), backend));
    conformance::run(Arc::clone(&store)).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
}

#[tokio::test]
async fn moka_on_its_own_conforms() {
    let store = Arc::new(MokaStore::new(10_000));
    conformance::run(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    conformance::expires_after(&*store, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn caching_sweeps_the_backend() {
    let store = CachingStore::new(MokaStore::new(100), SqliteStore::in_memory().await.unwrap());
    conformance::sweep_removes_only_expired(&store).await;
}

#[tokio::test]
async fn writes_and_deletes_reach_both_tiers() {
    let store = CachingStore::new(MokaStore::new(100), MemoryStore::new());
    let id = SessionId::generate();
    store
        .set(&id, record(json!({"v": 1})), in_an_hour(), &cx())
        .await
        .unwrap();
    assert!(store.cache().get(&id, &cx()).await.unwrap().is_some());
    assert!(store.backend().get(&id, &cx()).await.unwrap().is_some());
    store.delete(&id, &cx()).await.unwrap();
    assert!(store.cache().get(&id, &cx()).await.unwrap().is_none());
    assert!(store.backend().get(&id, &cx()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_backend_read_fills_the_cache() {
    let store = CachingStore::new(MemoryStore::new(), MemoryStore::new());
    let id = SessionId::generate();
    store
        .backend()
        .set(&id, record(json!({"v": 1})), in_an_hour(), &cx())
        .await
        .unwrap();
    assert!(store.cache().is_empty());
    assert!(store.get(&id, &cx()).await.unwrap().is_some());
    assert!(store.cache().get(&id, &cx()).await.unwrap().is_some());
}

#[tokio::test]
async fn regenerate_clears_the_old_id_in_both_tiers() {
    let store = Arc::new(CachingStore::new(MokaStore::new(100), MemoryStore::new()));
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&store))
        .build()
        .unwrap();
    let session = engine
        .load::<SessionMap>(&HeaderMap::new(), &cx())
        .await
        .unwrap();
    session.set("userId", "anon");
    let old = sid(&engine.commit(&session, &cx()).await.unwrap()).unwrap();
    let session = engine
        .load::<SessionMap>(&cookie(&old), &cx())
        .await
        .unwrap();
    session.regenerate();
    let new = sid(&engine.commit(&session, &cx()).await.unwrap()).unwrap();
    let (old, new) = (
        SessionId::parse(&old).unwrap(),
        SessionId::parse(&new).unwrap(),
    );
    assert!(store.cache().get(&old, &cx()).await.unwrap().is_none());
    assert!(store.backend().get(&old, &cx()).await.unwrap().is_none());
    assert!(store.cache().get(&new, &cx()).await.unwrap().is_some());
    assert!(store.backend().get(&new, &cx()).await.unwrap().is_some());
}

#[tokio::test]
async fn a_failed_backend_write_leaves_no_stale_copy() {
    let backend = SqliteStore::in_memory().await.unwrap();
    let store = CachingStore::new(MemoryStore::new(), backend.clone());
    let id = SessionId::generate();
    store
        .set(&id, record(json!({"v": 1})), in_an_hour(), &cx())
        .await
        .unwrap();
    sqlx::query("DROP TABLE sessions")
        .execute(backend.pool())
        .await
        .unwrap();
    let err = store
        .set(&id, record(json!({"v": 2})), in_an_hour(), &cx())
        .await
        .unwrap_err();
    conformance::assert_backend_error(&err, "sqlite");
    assert!(
        store.cache().get(&id, &cx()).await.unwrap().is_none(),
        "the cache kept a copy the backend may not have"
    );
}

#[tokio::test]
async fn the_cache_ttl_bounds_staleness() {
    let store = CachingStore::new(MemoryStore::new(), MemoryStore::new())
        .with_cache_ttl(Duration::from_millis(200));
    let id = SessionId::generate();
    store
        .set(&id, record(json!({"v": 1})), in_an_hour(), &cx())
        .await
        .unwrap();
    // Another instance deletes it in the shared backend.
    store.backend().delete(&id, &cx()).await.unwrap();
    assert!(
        store.get(&id, &cx()).await.unwrap().is_some(),
        "served from the cache"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.get(&id, &cx()).await.unwrap().is_none(),
        "the stale copy outlived the TTL"
    );
}

#[tokio::test]
async fn an_expired_write_is_not_cached() {
    let store = CachingStore::new(MemoryStore::new(), MemoryStore::new());
    let id = SessionId::generate();
    let past = SystemTime::now() - Duration::from_secs(1);
    store
        .set(&id, record(json!({"v": 1})), in_an_hour(), &cx())
        .await
        .unwrap();
    store
        .set(&id, record(json!({"v": 2})), past, &cx())
        .await
        .unwrap();
    assert!(store.cache().get(&id, &cx()).await.unwrap().is_none());
}

/// Two instances, each with its own cache over one backend. A session
/// revoked through one stays readable from the other's cache, unless the
/// stores keep owned sessions uncached: then it ends everywhere at once,
/// while unowned sessions are still cached.
#[tokio::test]
async fn owned_sessions_uncached_make_a_revocation_reach_every_instance() {
    for uncached in [false, true] {
        let backend = Arc::new(MemoryStore::new());
        let node = |backend: &Arc<MemoryStore>| {
            let store = CachingStore::new(MemoryStore::new(), Arc::clone(backend));
            let store = if uncached {
                store.with_owned_sessions_uncached()
            } else {
                store
            };
            let store = Arc::new(store);
            let engine = SessionEngine::builder()
                .with_store(Arc::clone(&store))
                .build()
                .unwrap();
            (store, engine)
        };
        let (_, a) = node(&backend);
        let (b_store, b) = node(&backend);

        let sid = conformance::index::login(&a, "ada", "phone").await;
        let id = SessionId::parse(&sid).unwrap();
        let user = |engine: SessionEngine<Arc<CachingStore<MemoryStore, Arc<MemoryStore>>>>| {
            let sid = sid.clone();
            async move {
                engine
                    .load::<SessionMap>(&cookie(&sid), &cx())
                    .await
                    .unwrap()
                    .get::<String>("userId")
            }
        };
        assert_eq!(user(b.clone()).await.as_deref(), Some("ada"));
        assert_eq!(
            b_store.cache().get(&id, &cx()).await.unwrap().is_some(),
            !uncached,
            "uncached = {uncached}: an owned session in b's cache"
        );

        assert!(a.revoke("ada", &id).await.unwrap());
        let on_b = user(b.clone()).await;
        if uncached {
            assert_eq!(on_b, None, "a revoked session still opens on b");
        } else {
            assert_eq!(
                on_b.as_deref(),
                Some("ada"),
                "b's cached copy, until its TTL"
            );
        }

        // Unowned sessions are cached either way.
        let session = b
            .load::<SessionMap>(&HeaderMap::new(), &cx())
            .await
            .unwrap();
        session.set("cart", 1);
        let anon = sid_of(&b.commit(&session, &cx()).await.unwrap());
        let anon = SessionId::parse(&anon).unwrap();
        assert!(b_store.cache().get(&anon, &cx()).await.unwrap().is_some());
    }
}

fn sid_of(set: &sealed_session::SetCookies) -> String {
    sid(set).expect("a session cookie")
}
