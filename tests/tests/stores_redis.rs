//! The conformance suite on `RedisStore`, against the server named by
//! `SESSION_TEST_REDIS_URL` (a key prefix per test), and down/recovery
//! against a throwaway `redis-server` this test starts and kills.

use std::sync::Arc;
use std::time::Duration;

use sealed_session::{RequestContext, SessionId, Store};
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
