//! The conformance suite on `MySqlStore`, against the MariaDB or MySQL
//! server named by `SESSION_TEST_MYSQL_URL`. Each test uses a table of its
//! own.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sealed_session::{Error, RequestContext, SessionEngine, SessionId, Store};
use sealed_session_stores::MySqlStore;
use sealed_session_stores::drivers::sqlx::mysql::{
    MySqlConnectOptions, MySqlPool, MySqlPoolOptions,
};
use sealed_session_stores::drivers::sqlx::{self, AssertSqlSafe};
use sealed_session_tests::conformance::{self, in_an_hour, ms, record};
use sealed_session_tests::services::{CLOSED_PORT, MYSQL_URL, service_url, unique_name};
use serde_json::json;

async fn pool(url: &str, max: u32) -> MySqlPool {
    MySqlPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {MYSQL_URL}: {e}"))
}

async fn fresh_store(pool: MySqlPool) -> (MySqlStore, String) {
    let store = MySqlStore::new(pool)
        .with_table_name(&unique_name("sessions"))
        .unwrap();
    store.migrate().await.unwrap();
    let drop = format!("DROP TABLE IF EXISTS {}", store.qualified_table_name());
    (store, drop)
}

async fn cleanup(pool: &MySqlPool, sql: String) {
    let _ = sqlx::query(AssertSqlSafe(sql)).execute(pool).await;
}

#[tokio::test]
async fn mysql_conforms() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    let pool = pool(&url, 8).await;
    let (store, drop) = fresh_store(pool.clone()).await;
    let store = Arc::new(store);
    conformance::run(Arc::clone(&store)).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    conformance::session_index(Arc::clone(&store)).await;
    cleanup(&pool, drop).await;
}

#[tokio::test]
async fn mysql_sweeps_expired_rows() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    let pool = pool(&url, 2).await;
    let (store, drop) = fresh_store(pool.clone()).await;
    conformance::sweep_removes_only_expired(&store).await;
    cleanup(&pool, drop).await;
}

#[tokio::test]
async fn mysql_schema_and_table_are_configurable() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    let pool = pool(&url, 2).await;
    let (db,): (String,) = sqlx::query_as("SELECT DATABASE()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let table = unique_name("web_sessions");
    let store = MySqlStore::new(pool.clone())
        .with_schema(&db)
        .unwrap()
        .with_table_name(&table)
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    conformance::round_trip(&store).await;
    let indexed: Vec<(String,)> = sqlx::query_as(
        "SELECT index_name FROM information_schema.statistics \
         WHERE table_schema = ? AND table_name = ? AND column_name = 'expires_at'",
    )
    .bind(&db)
    .bind(&table)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!indexed.is_empty(), "no index on expires_at");
    cleanup(
        &pool,
        format!("DROP TABLE IF EXISTS {}", store.qualified_table_name()),
    )
    .await;
}

#[tokio::test]
async fn mysql_down_is_an_error_naming_the_backend() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    let options = MySqlConnectOptions::from_str(&url)
        .unwrap()
        .host("127.0.0.1")
        .port(CLOSED_PORT);
    let pool = MySqlPoolOptions::new()
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options);
    conformance::assert_unavailable(Arc::new(MySqlStore::new(pool)), "mysql").await;
}

#[tokio::test]
async fn mysql_recovers_after_its_connection_is_killed() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    let admin = pool(&url, 1).await;
    let (store, drop) = fresh_store(pool(&url, 1).await).await;
    conformance::round_trip(&store).await;
    let (conn_id,): (u64,) = sqlx::query_as("SELECT CONNECTION_ID()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    // As a server restart does: the store's only connection dies.
    sqlx::query(AssertSqlSafe(format!("KILL {conn_id}")))
        .execute(&admin)
        .await
        .unwrap();
    conformance::assert_recovers(&store, Duration::from_secs(15)).await;
    cleanup(&admin, drop).await;
}

/// A table created before per-user sessions (no `owner` column): `migrate`
/// (several at once, as servers starting together run it) adds the column
/// and its index, keeps the rows, and the index works. The catalog is
/// asked first, so this works on MySQL 8, which has no
/// `ADD COLUMN IF NOT EXISTS`, as on MariaDB.
#[tokio::test]
async fn mysql_migrate_adds_the_owner_column_to_an_old_table() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    let pool = pool(&url, 8).await;
    let table = unique_name("old_sessions");
    // The DDL of the versions before per-user sessions.
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE `{table}` (\
             id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
             record LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
             expires_at BIGINT NOT NULL, \
             INDEX `{table}_expires_at_idx` (expires_at)\
         ) ENGINE = InnoDB"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let old = SessionId::generate();
    let old_record = record(json!({"kept": 1}));
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO `{table}` (id, record, expires_at) VALUES (?, ?, ?)"
    )))
    .bind(old.as_str())
    .bind(serde_json::to_string(&*old_record).unwrap())
    .bind(i64::try_from(ms(in_an_hour())).unwrap())
    .execute(&pool)
    .await
    .unwrap();

    let store = MySqlStore::new(pool.clone())
        .with_table_name(&table)
        .unwrap();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for run in runs {
        run.await
            .unwrap()
            .expect("concurrent migrate of an old table");
    }
    store.migrate().await.unwrap();
    let indexed: Vec<(String,)> = sqlx::query_as(
        "SELECT index_name FROM information_schema.statistics \
         WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'owner'",
    )
    .bind(&table)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(indexed.len(), 1, "one index on owner: {indexed:?}");
    assert_eq!(
        store
            .get(&old, &RequestContext::default())
            .await
            .unwrap()
            .as_deref(),
        Some(&*old_record),
        "the old row was lost"
    );
    let drop = format!("DROP TABLE IF EXISTS {}", store.qualified_table_name());
    conformance::session_index(Arc::new(store)).await;
    cleanup(&pool, drop).await;
}

/// An owner id longer than the index's 191-character prefix: stored whole,
/// listed and revoked by its exact value, not by a shared prefix.
#[tokio::test]
async fn mysql_long_owner_ids_match_exactly() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    let pool = pool(&url, 2).await;
    let (store, drop) = fresh_store(pool.clone()).await;
    let engine = SessionEngine::builder()
        .with_store(Arc::new(store))
        .build()
        .unwrap();
    let prefix = "o".repeat(300);
    let (ada, bob) = (format!("{prefix}-ada"), format!("{prefix}-bob"));
    conformance::index::login(&engine, &ada, "phone").await;
    conformance::index::login(&engine, &bob, "laptop").await;
    let listed = engine.sessions_of(&ada).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].owner, ada);
    assert_eq!(engine.revoke_all(&ada, None).await.unwrap(), 1);
    assert_eq!(engine.sessions_of(&bob).await.unwrap().len(), 1);
    cleanup(&pool, drop).await;
}

/// The server unreachable: listing and revoking fail with a store error
/// naming the backend.
#[tokio::test]
async fn mysql_down_during_revoke_is_an_error_naming_the_backend() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    let options = MySqlConnectOptions::from_str(&url)
        .unwrap()
        .host("127.0.0.1")
        .port(CLOSED_PORT);
    let pool = MySqlPoolOptions::new()
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options);
    let engine = SessionEngine::builder()
        .with_store(MySqlStore::new(pool))
        .build()
        .unwrap();
    let id = SessionId::generate();
    let errors = [
        engine.revoke_all("ada", None).await.map(drop),
        engine.revoke_all("ada", Some(&id)).await.map(drop),
        engine.revoke("ada", &id).await.map(drop),
        engine.sessions_of("ada").await.map(drop),
    ];
    for result in errors {
        match result {
            Err(Error::Store(e)) => conformance::assert_backend_error(&e, "mysql"),
            other => panic!("expected a store error, got {other:?}"),
        }
    }
}
