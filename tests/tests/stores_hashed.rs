//! The conformance suite on `HashedIds` ("hash ids at rest") over several
//! stores, and what it keeps out of the store.

use std::sync::Arc;

use sealed_session::{MemoryStore, RequestContext, SessionId, SessionIndex, Store};
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
    let fresh = Arc::new(HashedIds::new(MemoryStore::new(), &KEY).unwrap());
    conformance::session_index(fresh).await;
}

/// The index holds the hashed ids: listing gives them, `revoke` takes
/// them, and `revoke_all`'s `except` is the cookie's id.
#[tokio::test]
async fn hashed_index_lists_hashed_ids_and_keeps_the_cookies_session() {
    let store = Arc::new(HashedIds::new(MemoryStore::new(), &KEY).unwrap());
    let cx = RequestContext::default();
    let owned = record(json!({"_owner": {"id": "ada", "since": 1, "seen": 1}}));
    let (here, there) = (SessionId::generate(), SessionId::generate());
    for id in [&here, &there] {
        store
            .set(id, Arc::clone(&owned), in_an_hour(), &cx)
            .await
            .unwrap();
    }
    let mut listed: Vec<SessionId> = store
        .sessions_of("ada")
        .await
        .unwrap()
        .into_iter()
        .map(|info| info.id)
        .collect();
    listed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut hashed = vec![store.storage_id(&here), store.storage_id(&there)];
    hashed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(listed, hashed, "the listing gives the stored (hashed) ids");
    assert!(
        !store.revoke("ada", &there).await.unwrap(),
        "a cookie id is not a listed id"
    );
    assert_eq!(store.revoke_all("ada", Some(&here)).await.unwrap(), 1);
    assert!(
        store.get(&here, &cx).await.unwrap().is_some(),
        "except is the cookie's id"
    );
    assert!(store.get(&there, &cx).await.unwrap().is_none());
    assert!(store.revoke("ada", &store.storage_id(&here)).await.unwrap());
    assert!(store.get(&here, &cx).await.unwrap().is_none());
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
    let dir = TempDir::new("hashed-file-index");
    let inner = sealed_session_stores::FileStore::open(dir.path())
        .await
        .unwrap();
    conformance::session_index(Arc::new(HashedIds::new(inner, &KEY).unwrap())).await;
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
