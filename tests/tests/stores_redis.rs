//! The conformance suite on `RedisStore`, against the server named by
//! `SESSION_TEST_REDIS_URL` (a key prefix per test), and down/recovery
//! against a throwaway `redis-server` this test starts and kills.

use std::sync::Arc;
use std::time::Duration;

use sealed_session::{Error, RequestContext, SessionEngine, SessionId, SessionIndex, Store};
use sealed_session_stores::RedisStore;
use sealed_session_stores::drivers::redis;
use sealed_session_tests::conformance::{self, in_an_hour, record};
use sealed_session_tests::services::{
    CLOSED_PORT, REDIS_URL, RedisServer, service_url, unique_name,
};
use serde_json::json;

async fn store(url: &str) -> RedisStore {
    RedisStore::connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {REDIS_URL}: {e}"))
        .with_prefix(&format!("{}:", unique_name("test-session")))
}

#[tokio::test]
async fn redis_conforms() {
    let Some(url) = service_url(REDIS_URL) else {
        return;
    };
    let store = Arc::new(store(&url).await);
    conformance::run(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
}

#[tokio::test]
async fn redis_keeps_a_session_index() {
    let Some(url) = service_url(REDIS_URL) else {
        return;
    };
    conformance::session_index(Arc::new(store(&url).await)).await;
}

/// A record with an owner, as `Session::set_owner` writes it.
fn owned(owner: &str) -> Arc<sealed_session::Record> {
    record(json!({"_owner": {"id": owner, "since": 1, "seen": 1}}))
}

/// The owner's set expires with its longest-lived session (its TTL moves
/// later, never earlier), and each indexed write drops the entries that
/// expired; unowned writes leave it alone.
#[tokio::test]
async fn redis_owner_sets_expire_and_drop_expired_entries() {
    let Some(url) = service_url(REDIS_URL) else {
        return;
    };
    let store = store(&url).await;
    let cx = RequestContext::default();
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let set = store.owner_key("ada");
    assert_eq!(set, format!("{}owner:{{ada}}", store.prefix()));
    let pttl = |raw: &mut redis::aio::MultiplexedConnection| {
        let mut raw = raw.clone();
        let set = set.clone();
        async move {
            redis::cmd("PTTL")
                .arg(&set)
                .query_async::<i64>(&mut raw)
                .await
                .unwrap()
        }
    };

    // An unowned write creates no set.
    store
        .set(&SessionId::generate(), record(json!({})), in_an_hour(), &cx)
        .await
        .unwrap();
    assert_eq!(pttl(&mut raw).await, -2, "no set without an owner");

    let first = SessionId::generate();
    store
        .set(&first, owned("ada"), in_an_hour(), &cx)
        .await
        .unwrap();
    let ttl = pttl(&mut raw).await;
    assert!((3_590_000..=3_600_000).contains(&ttl), "PTTL {ttl}");

    // A longer session moves the set's expiry; a shorter one does not.
    let two_hours = std::time::SystemTime::now() + Duration::from_secs(7_200);
    store
        .set(&SessionId::generate(), owned("ada"), two_hours, &cx)
        .await
        .unwrap();
    let ttl = pttl(&mut raw).await;
    assert!((7_190_000..=7_200_000).contains(&ttl), "PTTL {ttl}");
    let ten_minutes = std::time::SystemTime::now() + Duration::from_secs(600);
    store
        .set(&SessionId::generate(), owned("ada"), ten_minutes, &cx)
        .await
        .unwrap();
    let ttl = pttl(&mut raw).await;
    assert!(
        ttl > 7_000_000,
        "a shorter session shortened the set: {ttl}"
    );

    // An entry scored in the past (its session expired) leaves at the
    // next indexed write.
    let _: () = redis::cmd("ZADD")
        .arg(&set)
        .arg(1_000)
        .arg("expired-session-id-000")
        .query_async(&mut raw)
        .await
        .unwrap();
    store
        .set(&first, owned("ada"), in_an_hour(), &cx)
        .await
        .unwrap();
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(&set)
        .arg("expired-session-id-000")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(score, None, "the expired entry is still in the set");
    let count: i64 = redis::cmd("ZCARD")
        .arg(&set)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(count, 3);
    assert_eq!(store.sessions_of("ada").await.unwrap().len(), 3);

    // Revoking them all leaves an empty set, which Redis removes.
    assert_eq!(store.revoke_all("ada", None).await.unwrap(), 3);
    assert_eq!(pttl(&mut raw).await, -2, "the empty set is gone");
    assert!(store.get(&first, &cx).await.unwrap().is_none());
}

/// A compare-and-set of an owned record indexes it as `set` does (on one
/// server inside the script); a refused one leaves no listed session.
#[tokio::test]
async fn redis_compare_and_set_keeps_the_index() {
    let Some(url) = service_url(REDIS_URL) else {
        return;
    };
    let store = store(&url).await;
    let cx = RequestContext::default();
    let owned = record(json!({"_version": 1, "_owner": {"id": "bob", "since": 1, "seen": 1}}));
    let id = SessionId::generate();
    store
        .compare_and_set(&id, Arc::clone(&owned), in_an_hour(), None, &cx)
        .await
        .unwrap();
    let other = SessionId::generate();
    let refused = store
        .compare_and_set(&other, owned, in_an_hour(), Some(7), &cx)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, sealed_session::StoreError::Conflict),
        "{refused:?}"
    );
    let listed: Vec<SessionId> = store
        .sessions_of("bob")
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.id)
        .collect();
    assert_eq!(listed, std::slice::from_ref(&id));
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: Result<i64, _> = redis::cmd("PTTL")
        .arg(store.owner_key("bob"))
        .query_async(&mut raw)
        .await;
    let ttl = ttl.unwrap();
    assert!((3_590_000..=3_600_000).contains(&ttl), "PTTL {ttl}");
    assert!(store.revoke("bob", &id).await.unwrap());
}

/// Redis going away while sessions are revoked is an error that names the
/// backend, never `Ok` with a partial count; once it is back, revoking
/// works again.
#[tokio::test]
async fn redis_down_during_revoke_all_is_an_error() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = Arc::new(RedisStore::connect(&server.url()).await.unwrap());
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&store))
        .build()
        .unwrap();
    for device in ["phone", "laptop"] {
        conformance::index::login(&engine, "ada", device).await;
    }
    assert_eq!(engine.sessions_of("ada").await.unwrap().len(), 2);

    server.kill();
    match engine.revoke_all("ada", None).await {
        Err(Error::Store(err)) => conformance::assert_backend_error(&err, "redis"),
        other => panic!("revoke_all on a down Redis: {other:?}"),
    }
    let id = SessionId::generate();
    conformance::assert_backend_error(&store.revoke("ada", &id).await.unwrap_err(), "redis");
    conformance::assert_backend_error(&store.sessions_of("ada").await.unwrap_err(), "redis");

    server.restart();
    conformance::assert_recovers(&*store, Duration::from_secs(15)).await;
    // A fresh server: the sessions went with the old one.
    conformance::index::login(&engine, "ada", "tablet").await;
    assert_eq!(engine.revoke_all("ada", None).await.unwrap(), 1);
}

#[tokio::test]
async fn redis_expires_records_natively() {
    let Some(url) = service_url(REDIS_URL) else {
        return;
    };
    let store = store(&url).await;
    conformance::expires_after(&store, Duration::from_secs(1)).await;

    // The key carries the time left itself (PX), under the prefix.
    let id = SessionId::generate();
    store
        .set(
            &id,
            record(json!({})),
            in_an_hour(),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = store.key_of(&id);
    assert!(key.starts_with(store.prefix()) && key.ends_with(id.as_str()));
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((3_590_000..=3_600_000).contains(&pttl), "PTTL {pttl}");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
}

#[tokio::test]
async fn redis_down_is_an_error_naming_the_backend() {
    let url = format!("redis://127.0.0.1:{CLOSED_PORT}");
    let err = RedisStore::connect(&url).await.unwrap_err();
    conformance::assert_backend_error(&err, "redis");
    let lazy = RedisStore::connect_lazy(&url).unwrap();
    conformance::assert_unavailable(Arc::new(lazy), "redis").await;
    let bad = RedisStore::connect_lazy("not a url").unwrap_err();
    conformance::assert_backend_error(&bad, "redis");
}

#[tokio::test]
async fn redis_recovers_after_a_restart() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = Arc::new(RedisStore::connect(&server.url()).await.unwrap());
    conformance::round_trip(&*store).await;

    server.kill();
    conformance::assert_unavailable(Arc::clone(&store), "redis").await;

    server.restart();
    conformance::assert_recovers(&*store, Duration::from_secs(15)).await;
}
