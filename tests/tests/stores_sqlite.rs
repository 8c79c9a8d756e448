//! The conformance suite on `SqliteStore`, in memory and on a file.

use std::sync::Arc;
use std::time::Duration;

use sealed_session::{RequestContext, SessionId, Store};
use sealed_session_stores::drivers::sqlx;
use sealed_session_stores::{Error, SqliteStore};
use sealed_session_tests::conformance::{self, in_an_hour, record};
use sealed_session_tests::services::{TempDir, unique_name};
use serde_json::json;

#[tokio::test]
async fn sqlite_in_memory_conforms() {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    conformance::run(Arc::clone(&store)).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
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
