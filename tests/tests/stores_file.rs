//! The conformance suite on `FileStore`, and what only files can get
//! wrong: atomic writes, paths, a directory that goes away.

use std::sync::Arc;
use std::time::Duration;

use sealed_session::{RequestContext, SessionId, Store};
use sealed_session_stores::FileStore;
use sealed_session_tests::conformance::{self, in_an_hour, record};
use sealed_session_tests::services::TempDir;
use serde_json::json;

#[tokio::test]
async fn file_store_conforms() {
    let dir = TempDir::new("file-store");
    let store = Arc::new(FileStore::open(dir.path()).await.unwrap());
    conformance::run(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
}

#[tokio::test]
async fn file_store_sweeps_expired_files() {
    let dir = TempDir::new("file-sweep");
    let store = FileStore::open(dir.path()).await.unwrap();
    conformance::sweep_removes_only_expired(&store).await;
    // Stray files are left alone.
    std::fs::write(dir.path().join("README"), "not a session").unwrap();
    std::fs::write(dir.path().join("junk.json"), "no expiry line").unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert!(dir.path().join("README").exists());
}

#[tokio::test]
async fn files_stay_inside_the_directory_and_no_temporary_file_remains() {
    let dir = TempDir::new("file-paths");
    let store = FileStore::open(dir.path().join("nested/sessions"))
        .await
        .unwrap();
    let cx = RequestContext::default();
    for _ in 0..20 {
        let id = SessionId::generate();
        store
            .set(&id, record(json!({})), in_an_hour(), &cx)
            .await
            .unwrap();
        let path = store.path_of(&id);
        assert_eq!(path.parent(), Some(store.dir()));
        assert!(path.exists());
    }
    let names: Vec<String> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 20);
    assert!(
        names.iter().all(|n| n.len() == 69 && n.ends_with(".json")),
        "{names:?}"
    );
}

#[tokio::test]
async fn readers_never_see_half_a_write() {
    let dir = TempDir::new("file-atomic");
    let store = Arc::new(FileStore::open(dir.path()).await.unwrap());
    let id = SessionId::generate();
    let cx = RequestContext::default();
    store
        .set(
            &id,
            record(json!({"data": "a".repeat(200_000)})),
            in_an_hour(),
            &cx,
        )
        .await
        .unwrap();
    let writer = {
        let (store, id) = (Arc::clone(&store), id.clone());
        tokio::spawn(async move {
            for n in 0..40 {
                let fill = if n % 2 == 0 { "b" } else { "c" };
                let rec = record(json!({"data": fill.repeat(200_000 + n)}));
                store
                    .set(&id, rec, in_an_hour(), &RequestContext::default())
                    .await
                    .unwrap();
            }
        })
    };
    while !writer.is_finished() {
        let got = store.get(&id, &cx).await.expect("a torn read");
        assert!(got.is_some());
    }
    writer.await.unwrap();
}

#[tokio::test]
async fn a_missing_directory_is_an_error_then_recovers() {
    let dir = TempDir::new("file-down");
    let sessions = dir.path().join("sessions");
    let store = Arc::new(FileStore::open(&sessions).await.unwrap());
    // The directory is replaced by a plain file: every operation fails.
    std::fs::remove_dir_all(&sessions).unwrap();
    std::fs::write(&sessions, "in the way").unwrap();
    conformance::assert_unavailable(Arc::clone(&store), "file").await;
    let err = FileStore::open(&sessions).await.unwrap_err();
    conformance::assert_backend_error(&err, "file");
    // And it works again once the directory is back.
    std::fs::remove_file(&sessions).unwrap();
    std::fs::create_dir(&sessions).unwrap();
    conformance::assert_recovers(&*store, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_corrupt_file_is_an_error_not_a_panic() {
    let dir = TempDir::new("file-corrupt");
    let store = FileStore::open(dir.path()).await.unwrap();
    let cx = RequestContext::default();
    let id = SessionId::generate();
    std::fs::write(store.path_of(&id), "garbage").unwrap();
    conformance::assert_backend_error(&store.get(&id, &cx).await.unwrap_err(), "file");
    std::fs::write(store.path_of(&id), "99999999999999\n{not json").unwrap();
    let err = store.get(&id, &cx).await.unwrap_err();
    assert!(
        matches!(
            err,
            sealed_session::StoreError::Serialization {
                backend: "file",
                ..
            }
        ),
        "{err:?}"
    );
}
