//! The conformance suite on `PostgresStore`, against the server named by
//! `SESSION_TEST_POSTGRES_URL`. Each test uses a table of its own.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sealed_session_stores::PostgresStore;
use sealed_session_stores::drivers::sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sealed_session_stores::drivers::sqlx::{self, AssertSqlSafe};
use sealed_session_tests::conformance;
use sealed_session_tests::services::{CLOSED_PORT, POSTGRES_URL, service_url, unique_name};

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL}: {e}"))
}

/// A store on a fresh table, and the SQL to drop it.
async fn fresh_store(pool: PgPool) -> (PostgresStore, String) {
    let store = PostgresStore::new(pool)
        .with_table_name(&unique_name("sessions"))
        .unwrap();
    store.migrate().await.unwrap();
    let drop = format!("DROP TABLE IF EXISTS {}", store.qualified_table_name());
    (store, drop)
}

async fn cleanup(pool: &PgPool, sql: String) {
    let _ = sqlx::query(AssertSqlSafe(sql)).execute(pool).await;
}

#[tokio::test]
async fn postgres_conforms() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    let pool = pool(&url).await;
    let (store, drop) = fresh_store(pool.clone()).await;
    let store = Arc::new(store);
    conformance::run(Arc::clone(&store)).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    cleanup(&pool, drop).await;
}

#[tokio::test]
async fn postgres_sweeps_expired_rows() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    let pool = pool(&url).await;
    let (store, drop) = fresh_store(pool.clone()).await;
    conformance::sweep_removes_only_expired(&store).await;
    cleanup(&pool, drop).await;
}

#[tokio::test]
async fn postgres_schema_and_table_are_configurable_and_migrate_is_safe_to_repeat() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    let pool = pool(&url).await;
    let schema = unique_name("auth");
    let store = PostgresStore::new(pool.clone())
        .with_schema(&schema)
        .unwrap()
        .with_table_name("web_sessions")
        .unwrap();
    // Several processes starting at once all migrate.
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for run in runs {
        run.await.unwrap().expect("concurrent migrate");
    }
    store.migrate().await.unwrap();
    conformance::round_trip(&store).await;
    let index: Option<(String,)> = sqlx::query_as(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = 'web_sessions' \
         AND indexdef LIKE '%expires_at%'",
    )
    .bind(&schema)
    .fetch_optional(&pool)
    .await
    .unwrap();
    assert!(index.is_some(), "no index on expires_at");
    cleanup(&pool, format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE")).await;
}

#[tokio::test]
async fn postgres_down_is_an_error_naming_the_backend() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .host("127.0.0.1")
        .port(CLOSED_PORT);
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options);
    conformance::assert_unavailable(Arc::new(PostgresStore::new(pool)), "postgres").await;
}

#[tokio::test]
async fn postgres_recovers_after_its_connections_are_killed() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    let admin = pool(&url).await;
    let app = unique_name("app");
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .application_name(&app);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .unwrap();
    let (store, drop) = fresh_store(pool).await;
    conformance::round_trip(&store).await;
    // As a server restart does: every connection of the store dies.
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&app)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "no connection to kill");
    conformance::assert_recovers(&store, Duration::from_secs(15)).await;
    cleanup(&admin, drop).await;
}
