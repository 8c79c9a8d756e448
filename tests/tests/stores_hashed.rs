//! The conformance suite on `HashedIds` ("hash ids at rest") over several
//! stores, and what it keeps out of the store.

use std::sync::Arc;

use sealed_session::{MemoryStore, RequestContext, SessionId, Store};
use sealed_session_stores::{HashedIds, SqliteStore};
use sealed_session_tests::conformance::{self, in_an_hour, record};
use sealed_session_tests::services::TempDir;
use serde_json::json;

const KEY: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn hashed_memory_conforms() {
    let store = Arc::new(HashedIds::new(MemoryStore::new(), &KEY).unwrap());
    conformance::run(Arc::clone(&store)).await;
    // Compare-and-set passes through, under the hashed id.
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    assert!(!store.uses_request_context());
}

#[tokio::test]
async fn hashed_sqlite_conforms_and_sweeps() {
    let store = Arc::new(HashedIds::new(SqliteStore::in_memory().await.unwrap(), &KEY).unwrap());
    conformance::run(Arc::clone(&store)).await;
    let fresh = HashedIds::new(SqliteStore::in_memory().await.unwrap(), &KEY).unwrap();
    conformance::sweep_removes_only_expired(&fresh).await;
}

#[tokio::test]
async fn hashed_file_store_conforms() {
    let dir = TempDir::new("hashed-file");
    let inner = sealed_session_stores::FileStore::open(dir.path())
        .await
        .unwrap();
    let store = Arc::new(HashedIds::new(inner, &KEY).unwrap());
    conformance::run(Arc::clone(&store)).await;
    conformance::optimistic_concurrency(store).await;
}

#[tokio::test]
async fn the_store_never_sees_the_cookie_id() {
    let store = HashedIds::new(MemoryStore::new(), &KEY).unwrap();
    let cx = RequestContext::default();
    let id = SessionId::generate();
    store
        .set(&id, record(json!({"u": 1})), in_an_hour(), &cx)
        .await
        .unwrap();
    // Not under the id itself: a leaked store cannot be replayed as cookies.
    assert!(store.inner().get(&id, &cx).await.unwrap().is_none());
    assert!(
        store
            .inner()
            .get(&store.storage_id(&id), &cx)
            .await
            .unwrap()
            .is_some()
    );
    // Another key finds nothing.
    let other = HashedIds::new(store.inner().clone(), &[9; 32]).unwrap();
    assert!(other.get(&id, &cx).await.unwrap().is_none());
}
