//! Per-operation latency of `get` and `set` for each store.
//!
//! ```text
//! cargo bench -p sealed-session-stores --features full
//! ```
//!
//! Network stores are measured when their variable is set
//! (`SESSION_TEST_POSTGRES_URL`, `SESSION_TEST_MYSQL_URL`,
//! `SESSION_TEST_REDIS_URL`, `SESSION_TEST_REDIS_CLUSTER_URLS`), and
//! skipped with a note otherwise. Backends whose feature is off are left
//! out.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use sealed_session::{MemoryStore, Record, RequestContext, SessionId, Store};
use serde_json::json;
use tokio::runtime::Runtime;

fn record() -> Arc<Record> {
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let ms = expires
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let json = json!({"userId": "42", "count": 7, "message": "welcome back", "_expires": ms});
    match json {
        serde_json::Value::Object(map) => Arc::new(map),
        _ => Arc::new(Record::new()),
    }
}

fn bench_store<S: Store>(c: &mut Criterion, rt: &Runtime, name: &str, store: S) {
    let cx = RequestContext::default();
    let rec = record();
    let expires = SystemTime::now() + Duration::from_secs(3600);
    let id = SessionId::generate();
    if let Err(e) = rt.block_on(store.set(&id, Arc::clone(&rec), expires, &cx)) {
        let cause = std::error::Error::source(&e).map(ToString::to_string);
        eprintln!("{name}: skipped, the store failed: {e} ({cause:?})");
        return;
    }
    let mut group = c.benchmark_group(name);
    group.bench_function("get", |b| {
        b.iter(|| rt.block_on(store.get(&id, &cx)).map(|r| r.is_some()));
    });
    group.bench_function("set", |b| {
        b.iter(|| rt.block_on(store.set(&id, Arc::clone(&rec), expires, &cx)));
    });
    group.finish();
    let _ = rt.block_on(store.delete(&id, &cx));
}

#[cfg_attr(
    not(any(
        feature = "postgres",
        feature = "mysql",
        feature = "redis",
        feature = "redis-cluster"
    )),
    allow(dead_code)
)]
fn env(var: &str) -> Option<String> {
    let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    if value.is_none() {
        eprintln!("note: {var} is not set; its store is not measured");
    }
    value
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    bench_store(c, &rt, "memory", MemoryStore::new());

    #[cfg(feature = "file")]
    {
        let dir = std::env::temp_dir().join(format!("bench-sessions-{}", std::process::id()));
        match rt.block_on(sealed_session_stores::FileStore::open(&dir)) {
            Ok(store) => bench_store(c, &rt, "file", store),
            Err(e) => eprintln!("file: skipped: {e}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(feature = "sqlite")]
    {
        let path = std::env::temp_dir().join(format!("bench-sessions-{}.db", std::process::id()));
        match rt.block_on(sealed_session_stores::SqliteStore::open(&path)) {
            Ok(store) => bench_store(c, &rt, "sqlite-file", store),
            Err(e) => eprintln!("sqlite: skipped: {e}"),
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        match rt.block_on(sealed_session_stores::SqliteStore::in_memory()) {
            Ok(store) => bench_store(c, &rt, "sqlite-memory", store),
            Err(e) => eprintln!("sqlite: skipped: {e}"),
        }
    }

    #[cfg(all(feature = "sqlite", feature = "moka"))]
    {
        if let Ok(backend) = rt.block_on(sealed_session_stores::SqliteStore::in_memory()) {
            let store = sealed_session_stores::CachingStore::new(
                sealed_session_stores::MokaStore::new(10_000),
                backend,
            );
            bench_store(c, &rt, "moka-over-sqlite", store);
        }
    }

    #[cfg(feature = "postgres")]
    if let Some(url) = env("SESSION_TEST_POSTGRES_URL") {
        match rt.block_on(sealed_session_stores::store_from_url(&url)) {
            Ok(store) => bench_store(c, &rt, "postgres", store),
            Err(e) => eprintln!("postgres: skipped: {e}"),
        }
    }

    #[cfg(feature = "mysql")]
    if let Some(url) = env("SESSION_TEST_MYSQL_URL") {
        match rt.block_on(sealed_session_stores::store_from_url(&url)) {
            Ok(store) => bench_store(c, &rt, "mysql", store),
            Err(e) => eprintln!("mysql: skipped: {e}"),
        }
    }

    #[cfg(feature = "redis")]
    if let Some(url) = env("SESSION_TEST_REDIS_URL") {
        match rt.block_on(sealed_session_stores::RedisStore::connect(&url)) {
            Ok(store) => bench_store(c, &rt, "redis", store.with_prefix("bench-session:")),
            Err(e) => eprintln!("redis: skipped: {e}"),
        }
    }

    #[cfg(feature = "redis-cluster")]
    if let Some(urls) = env("SESSION_TEST_REDIS_CLUSTER_URLS") {
        let nodes: Vec<&str> = urls.split(',').collect();
        match rt.block_on(sealed_session_stores::RedisStore::connect_cluster(nodes)) {
            Ok(store) => bench_store(c, &rt, "redis-cluster", store.with_prefix("bench-session:")),
            Err(e) => eprintln!("redis-cluster: skipped: {e}"),
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = stores
}
criterion_main!(benches);
