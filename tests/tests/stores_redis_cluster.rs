//! The conformance suite on `RedisStore` over a Redis Cluster, the nodes
//! named by `SESSION_TEST_REDIS_CLUSTER_URLS` (started by
//! `scripts/redis-cluster.sh start`); and a failover, on a cluster with
//! replicas that the test starts itself (`redis-server`, `redis-cli`).

use std::sync::Arc;
use std::time::Duration;

use sealed_session::{RequestContext, SessionId, SessionIndex, Store};
use sealed_session_stores::drivers::redis;
use sealed_session_stores::{RedisStore, store_from_url};
use sealed_session_tests::conformance::{self, in_an_hour, record};
use sealed_session_tests::services::{
    CLOSED_PORT, REDIS_CLUSTER_URLS, RedisServer, service_url, unique_name,
};
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
async fn redis_cluster_keeps_a_session_index() {
    let Some(urls) = service_url(REDIS_CLUSTER_URLS) else {
        return;
    };
    conformance::session_index(Arc::new(store(&urls).await)).await;
}

/// A compare-and-set of an owned record indexes it as `set` does (on one
/// server inside the script); a refused one leaves no listed session.
#[tokio::test]
async fn redis_cluster_compare_and_set_keeps_the_index() {
    let Some(url) = service_url(REDIS_CLUSTER_URLS) else {
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
    let mut raw = redis::Client::open(nodes(&url)[0].as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: Result<i64, _> = redis::cmd("PTTL")
        .arg(store.owner_key("bob"))
        .query_async(&mut raw)
        .await;
    // The node asked holds the set's slot, or answers MOVED.
    if let Ok(ttl) = ttl {
        assert!((3_590_000..=3_600_000).contains(&ttl), "PTTL {ttl}");
    }
    assert!(store.revoke("bob", &id).await.unwrap());
}

/// An owner's set has a TTL on a cluster too, and its sessions, spread
/// over the nodes, are listed and revoked from it.
#[tokio::test]
async fn redis_cluster_owner_sets_expire_and_reach_every_node() {
    let Some(urls) = service_url(REDIS_CLUSTER_URLS) else {
        return;
    };
    let store = store(&urls).await;
    let cx = RequestContext::default();
    let owned = record(json!({"_owner": {"id": "ada", "since": 1, "seen": 1}}));
    let ids: Vec<SessionId> = (0..12).map(|_| SessionId::generate()).collect();
    for id in &ids {
        store
            .set(id, Arc::clone(&owned), in_an_hour(), &cx)
            .await
            .unwrap();
    }
    let mut ttl = None;
    for node in nodes(&urls) {
        let mut conn = redis::Client::open(node.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        // Only the node holding the set's slot answers other than MOVED.
        if let Ok(pttl) = redis::cmd("PTTL")
            .arg(store.owner_key("ada"))
            .query_async::<i64>(&mut conn)
            .await
        {
            ttl = Some(pttl);
        }
    }
    let ttl = ttl.expect("a node holds the owner's set");
    assert!((3_590_000..=3_600_000).contains(&ttl), "PTTL {ttl}");
    assert_eq!(store.sessions_of("ada").await.unwrap().len(), ids.len());
    assert_eq!(
        store.revoke_all("ada", Some(&ids[0])).await.unwrap(),
        ids.len() - 1
    );
    for id in &ids[1..] {
        assert!(store.get(id, &cx).await.unwrap().is_none());
    }
    assert!(store.revoke("ada", &ids[0]).await.unwrap());
    assert!(store.sessions_of("ada").await.unwrap().is_empty());
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

/// `INFO replication` of the node on `port`, as `key:value` lines.
async fn replication(port: u16) -> String {
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut conn)
        .await
        .unwrap()
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
}

/// Polls `check` every 100 ms until it holds, failing after `limit`.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A master of a cluster of the test's own dies; once its replica has
/// taken over, every session is read back and written again through the
/// same store, without reconnecting. Meanwhile operations fail with
/// errors naming the backend, never a panic or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_survives_a_master_failover() {
    let dir = sealed_session_tests::services::TempDir::new("redis-failover");
    let Some(first) = RedisServer::start_cluster_node(dir.path()) else {
        return;
    };
    let mut servers = vec![first];
    for _ in 0..5 {
        servers.push(RedisServer::start_cluster_node(dir.path()).expect("redis-server"));
    }
    let created = std::process::Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(servers.iter().map(|s| format!("127.0.0.1:{}", s.port())))
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .expect("redis-cli (apt-get install redis-tools)");
    assert!(
        created.status.success(),
        "cluster create failed: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    // Every master has its replica in sync before anything is written.
    let ports: Vec<u16> = servers.iter().map(RedisServer::port).collect();
    let mut masters = Vec::new();
    for &port in &ports {
        let info = replication(port).await;
        if field(&info, "role") == Some("master") {
            masters.push(port);
        }
    }
    assert_eq!(masters.len(), 3, "three masters, three replicas");
    for &port in &masters {
        eventually("replicas online", Duration::from_secs(20), || async move {
            let info = replication(port).await;
            field(&info, "slave0").is_some_and(|s| s.contains("state=online"))
        })
        .await;
    }

    let urls: Vec<String> = masters
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let store = RedisStore::connect_cluster(&urls).await.unwrap();
    let cx = RequestContext::default();
    let ids: Vec<SessionId> = (0..30).map(|_| SessionId::generate()).collect();
    for (n, id) in ids.iter().enumerate() {
        store
            .set(id, record(json!({ "n": n })), in_an_hour(), &cx)
            .await
            .unwrap();
    }

    // The victim: a master whose replica has every write.
    let victim = masters[0];
    eventually(
        "replica caught up",
        Duration::from_secs(10),
        || async move {
            let info = replication(victim).await;
            let offset = field(&info, "master_repl_offset").unwrap_or("?").to_owned();
            field(&info, "slave0").is_some_and(|s| s.contains(&format!("offset={offset},")))
        },
    )
    .await;
    let replica = {
        let info = replication(victim).await;
        let slave = field(&info, "slave0").unwrap().to_owned();
        slave
            .split(',')
            .find_map(|kv| kv.strip_prefix("port="))
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap()
    };
    let index = ports.iter().position(|&p| p == victim).unwrap();
    servers[index].kill();

    // Until the replica takes over, some operations fail, cleanly.
    let read_all = || {
        let (store, ids) = (&store, &ids);
        async move {
            for (n, id) in ids.iter().enumerate() {
                match store.get(id, &RequestContext::default()).await {
                    Ok(Some(found)) => assert_eq!(found["n"], json!(n), "a session changed"),
                    Ok(None) => panic!("a session was lost in the failover"),
                    Err(err) => {
                        conformance::assert_backend_error(&err, "redis-cluster");
                        return false;
                    }
                }
            }
            true
        }
    };
    eventually(
        "every session read after the failover",
        Duration::from_secs(60),
        read_all,
    )
    .await;
    assert_eq!(field(&replication(replica).await, "role"), Some("master"));
    for id in &ids {
        store
            .set(id, record(json!({ "after": true })), in_an_hour(), &cx)
            .await
            .unwrap();
        let found = store.get(id, &cx).await.unwrap().unwrap();
        assert_eq!(found["after"], json!(true));
    }
}
