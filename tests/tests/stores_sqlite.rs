//! The conformance suite on `SqliteStore`, in memory and on a file.

use std::sync::Arc;
use std::time::Duration;

use sealed_session::{RequestContext, SessionEngine, SessionId, Store};
use sealed_session_stores::drivers::sqlx::{self, AssertSqlSafe};
use sealed_session_stores::{Error, SqliteStore};
use sealed_session_tests::conformance::{self, in_an_hour, index, ms, record};
use sealed_session_tests::services::{TempDir, unique_name};
use serde_json::json;

#[tokio::test]
async fn sqlite_in_memory_conforms() {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    conformance::run(Arc::clone(&store)).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    conformance::session_index(Arc::clone(&store)).await;
}

#[tokio::test]
async fn sqlite_file_conforms_and_persists() {
    let dir = TempDir::new("sqlite");
    let path = dir.path().join("sessions.db");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    conformance::run(Arc::clone(&store)).await;
    // Several connections in WAL mode: the guarded statements still
    // serialise on SQLite's write lock.
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::session_index(Arc::clone(&store)).await;

    let id = SessionId::generate();
    let cx = RequestContext::default();
    store
        .set(&id, record(json!({"kept": 1})), in_an_hour(), &cx)
        .await
        .unwrap();
    store.pool().close().await;
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    let got = reopened
        .get(&id, &cx)
        .await
        .unwrap()
        .expect("the record survived a reopen");
    assert_eq!(got.get("kept"), Some(&json!(1)));
}

#[tokio::test]
async fn sqlite_sweeps_expired_rows() {
    let store = SqliteStore::in_memory().await.unwrap();
    conformance::sweep_removes_only_expired(&store).await;
}

#[tokio::test]
async fn sqlite_table_name_is_configurable_and_checked() {
    let base = SqliteStore::in_memory().await.unwrap();
    let table = unique_name("custom");
    let store = base.clone().with_table_name(&table).unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent
    conformance::round_trip(&store).await;
    assert_eq!(store.table_name(), table);
    for bad in ["x\"; DROP TABLE sessions; --", "1abc", "", "a b"] {
        assert!(matches!(
            base.clone().with_table_name(bad),
            Err(Error::InvalidIdentifier { .. })
        ));
    }
}

#[tokio::test]
async fn sqlite_errors_name_the_backend_and_recover() {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    // The table disappears: every operation fails with the cause kept.
    sqlx::query("DROP TABLE sessions")
        .execute(store.pool())
        .await
        .unwrap();
    conformance::assert_unavailable(Arc::clone(&store), "sqlite").await;
    store.migrate().await.unwrap();
    conformance::assert_recovers(&*store, Duration::from_secs(5)).await;
    // A closed pool is an error too, not a panic.
    store.pool().close().await;
    conformance::assert_unavailable(store, "sqlite").await;
}

#[tokio::test]
async fn sqlite_cannot_open_a_directory() {
    let dir = TempDir::new("sqlite-dir");
    let err = SqliteStore::open(dir.path()).await.unwrap_err();
    match err {
        Error::Store(e) => conformance::assert_backend_error(&e, "sqlite"),
        other => panic!("{other:?}"),
    }
}

/// A table created before per-user sessions (no `owner` column): `migrate`
/// adds the column and its index, keeps the rows, and the index works.
#[tokio::test]
async fn sqlite_migrate_adds_the_owner_column_to_an_old_table() {
    let base = SqliteStore::in_memory().await.unwrap();
    let table = unique_name("old");
    // The DDL of the versions before per-user sessions.
    for sql in [
        format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (id TEXT PRIMARY KEY NOT NULL, \
             record TEXT NOT NULL, expires_at INTEGER NOT NULL)"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS \"{table}_expires_at_idx\" ON \"{table}\" (expires_at)"
        ),
    ] {
        sqlx::query(AssertSqlSafe(sql))
            .execute(base.pool())
            .await
            .unwrap();
    }
    let old = SessionId::generate();
    let old_record = record(json!({"kept": 1}));
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO \"{table}\" (id, record, expires_at) VALUES (?1, ?2, ?3)"
    )))
    .bind(old.as_str())
    .bind(serde_json::to_string(&*old_record).unwrap())
    .bind(i64::try_from(ms(in_an_hour())).unwrap())
    .execute(base.pool())
    .await
    .unwrap();

    let store = base.with_table_name(&table).unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent on the upgraded table
    let columns: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info(?1)")
        .bind(&table)
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(
        columns.iter().any(|(name,)| name == "owner"),
        "no owner column: {columns:?}"
    );
    let indexes: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_index_list(?1)")
        .bind(&table)
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(
        indexes
            .iter()
            .any(|(name,)| *name == format!("{table}_owner_idx")),
        "no index on owner: {indexes:?}"
    );
    let cx = RequestContext::default();
    assert_eq!(
        store.get(&old, &cx).await.unwrap().as_deref(),
        Some(&*old_record),
        "the old row was lost"
    );
    conformance::session_index(Arc::new(store)).await;
}

/// The database gone during `revoke_all`: a store error naming SQLite, and
/// nothing revoked; once it is back, `revoke_all` finishes the job.
#[tokio::test]
async fn sqlite_down_during_revoke_all_is_an_error_and_revokes_nothing() {
    let dir = TempDir::new("sqlite-revoke");
    let path = dir.path().join("sessions.db");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&store))
        .build()
        .unwrap();
    for device in ["phone", "laptop", "tablet"] {
        index::login(&engine, "ada", device).await;
    }
    store.pool().close().await;
    match engine.revoke_all("ada", None).await {
        Err(sealed_session::Error::Store(e)) => conformance::assert_backend_error(&e, "sqlite"),
        other => panic!("revoke_all on a closed pool: {other:?}"),
    }
    match engine.sessions_of("ada").await {
        Err(sealed_session::Error::Store(e)) => conformance::assert_backend_error(&e, "sqlite"),
        other => panic!("sessions_of on a closed pool: {other:?}"),
    }

    let reopened = SessionEngine::builder()
        .with_store(SqliteStore::open(&path).await.unwrap())
        .build()
        .unwrap();
    assert_eq!(
        reopened.sessions_of("ada").await.unwrap().len(),
        3,
        "a failed revoke_all revoked sessions"
    );
    assert_eq!(reopened.revoke_all("ada", None).await.unwrap(), 3);
    assert!(reopened.sessions_of("ada").await.unwrap().is_empty());
}
