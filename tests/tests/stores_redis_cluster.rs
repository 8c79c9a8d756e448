//! The conformance suite on `RedisStore` over a Redis Cluster, the nodes
//! named by `SESSION_TEST_REDIS_CLUSTER_URLS` (started by
//! `scripts/redis-cluster.sh start`).

use std::sync::Arc;
use std::time::Duration;

use sealed_session::{RequestContext, SessionId, Store};
use sealed_session_stores::drivers::redis;
use sealed_session_stores::{RedisStore, store_from_url};
use sealed_session_tests::conformance::{self, in_an_hour, record};
use sealed_session_tests::services::{CLOSED_PORT, REDIS_CLUSTER_URLS, service_url, unique_name};
use serde_json::json;

fn nodes(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

async fn store(urls: &str) -> RedisStore {
    RedisStore::connect_cluster(nodes(urls))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the cluster in {REDIS_CLUSTER_URLS}: {e}"))
        .with_prefix(&format!("{}:", unique_name("test-session")))
}

#[tokio::test]
async fn redis_cluster_conforms() {
    let Some(urls) = service_url(REDIS_CLUSTER_URLS) else {
        return;
    };
    let store = Arc::new(store(&urls).await);
    conformance::run(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    conformance::expires_after(&*store, Duration::from_secs(1)).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
}

#[tokio::test]
async fn redis_cluster_spreads_sessions_over_the_nodes() {
    let Some(urls) = service_url(REDIS_CLUSTER_URLS) else {
        return;
    };
    let store = store(&urls).await;
    let cx = RequestContext::default();
    let ids: Vec<SessionId> = (0..60).map(|_| SessionId::generate()).collect();
    for id in &ids {
        store
            .set(id, record(json!({})), in_an_hour(), &cx)
            .await
            .unwrap();
    }
    let mut holding = 0;
    for node in nodes(&urls) {
        let mut conn = redis::Client::open(node.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mut found = 0;
        for id in &ids {
            let slot: u16 = redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(store.key_of(id))
                .query_async(&mut conn)
                .await
                .unwrap();
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            found += usize::from(keys.contains(&store.key_of(id)));
        }
        holding += usize::from(found > 0);
    }
    assert!(holding >= 2, "all sessions landed on one node");
    for id in &ids {
        store.delete(id, &cx).await.unwrap();
    }
}

#[tokio::test]
async fn redis_cluster_from_a_spec() {
    let Some(urls) = service_url(REDIS_CLUSTER_URLS) else {
        return;
    };
    let hosts: Vec<String> = nodes(&urls)
        .iter()
        .map(|u| u.trim_start_matches("redis://").to_owned())
        .collect();
    let store = store_from_url(&format!("redis+cluster://{}", hosts.join(",")))
        .await
        .unwrap();
    assert_eq!(store.kind(), "redis");
    conformance::round_trip(&store).await;
}

#[tokio::test]
async fn redis_cluster_down_is_an_error_naming_the_backend() {
    let err = RedisStore::connect_cluster([format!("redis://127.0.0.1:{CLOSED_PORT}")])
        .await
        .unwrap_err();
    conformance::assert_backend_error(&err, "redis-cluster");
}
