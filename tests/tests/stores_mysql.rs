//! The conformance suite on `MySqlStore`, against the MariaDB or MySQL
//! server named by `SESSION_TEST_MYSQL_URL`. Each test uses a table of its
//! own.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sealed_session_stores::MySqlStore;
use sealed_session_stores::drivers::sqlx::mysql::{
    MySqlConnectOptions, MySqlPool, MySqlPoolOptions,
};
use sealed_session_stores::drivers::sqlx::{self, AssertSqlSafe};
use sealed_session_tests::conformance;
use sealed_session_tests::services::{CLOSED_PORT, MYSQL_URL, service_url, unique_name};

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
