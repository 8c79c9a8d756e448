//! The conformance suite on `PostgresStore`, against the server named by
//! `SESSION_TEST_POSTGRES_URL`. Each test uses a table of its own.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sealed_session::{Error, RequestContext, SessionEngine, SessionId, Store};
use sealed_session_stores::PostgresStore;
use sealed_session_stores::drivers::sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sealed_session_stores::drivers::sqlx::{self, AssertSqlSafe};
use sealed_session_tests::conformance::{self, in_an_hour, index, ms, record};
use sealed_session_tests::services::{CLOSED_PORT, POSTGRES_URL, service_url, unique_name};
use serde_json::json;

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
    conformance::session_index(Arc::clone(&store)).await;
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

/// A table created before per-user sessions (no `owner` column): `migrate`
/// (several at once, as servers starting together run it) adds the column
/// and its index, keeps the rows, and the index works.
#[tokio::test]
async fn postgres_migrate_adds_the_owner_column_to_an_old_table() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    let pool = pool(&url).await;
    let table = unique_name("old_sessions");
    // The DDL of the versions before per-user sessions.
    for sql in [
        format!(
            "CREATE TABLE \"{table}\" (id TEXT PRIMARY KEY NOT NULL, record JSON NOT NULL, \
             expires_at TIMESTAMPTZ NOT NULL)"
        ),
        format!("CREATE INDEX \"{table}_expires_at_idx\" ON \"{table}\" (expires_at)"),
    ] {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    let old = SessionId::generate();
    let old_record = record(json!({"kept": 1}));
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO \"{table}\" (id, record, expires_at) \
         VALUES ($1, $2::json, to_timestamp($3::float8 / 1000))"
    )))
    .bind(old.as_str())
    .bind(serde_json::to_string(&*old_record).unwrap())
    .bind(i64::try_from(ms(in_an_hour())).unwrap())
    .execute(&pool)
    .await
    .unwrap();

    let store = PostgresStore::new(pool.clone())
        .with_table_name(&table)
        .unwrap();
    let runs: Vec<_> = (0..4)
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
    let (column,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
         WHERE table_name = $1 AND column_name = 'owner')",
    )
    .bind(&table)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(column, "no owner column");
    let (indexed,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = $1 \
         AND indexdef LIKE '%(owner)%')",
    )
    .bind(&table)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(indexed, "no index on owner");
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

/// PostgreSQL unreachable: listing and revoking fail with a store error
/// naming the backend.
#[tokio::test]
async fn postgres_down_during_revoke_is_an_error_naming_the_backend() {
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
    let engine = SessionEngine::builder()
        .with_store(PostgresStore::new(pool))
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
            Err(Error::Store(e)) => conformance::assert_backend_error(&e, "postgres"),
            other => panic!("expected a store error, got {other:?}"),
        }
    }
}

/// `revoke_all` failing (another transaction holds the table locked past
/// the store's `lock_timeout`): a store error, and not one session
/// revoked; once the lock is gone, it revokes them all.
#[tokio::test]
async fn postgres_failed_revoke_all_revokes_nothing() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    let admin = pool(&url).await;
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("lock_timeout", "200ms")]);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .unwrap();
    let (store, drop) = fresh_store(pool).await;
    let engine = SessionEngine::builder()
        .with_store(Arc::new(store.clone()))
        .build()
        .unwrap();
    for device in ["phone", "laptop", "tablet"] {
        index::login(&engine, "ada", device).await;
    }

    // SHARE mode: others read the table, nobody writes or deletes.
    let mut lock = admin.begin().await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "LOCK TABLE {} IN SHARE MODE",
        store.qualified_table_name()
    )))
    .execute(&mut *lock)
    .await
    .unwrap();
    match engine.revoke_all("ada", None).await {
        Err(Error::Store(e)) => conformance::assert_backend_error(&e, "postgres"),
        other => panic!("revoke_all on a locked table: {other:?}"),
    }
    assert_eq!(
        engine.sessions_of("ada").await.unwrap().len(),
        3,
        "a failed revoke_all revoked sessions"
    );
    lock.rollback().await.unwrap();

    assert_eq!(engine.revoke_all("ada", None).await.unwrap(), 3);
    assert!(engine.sessions_of("ada").await.unwrap().is_empty());
    cleanup(&admin, drop).await;
}
