//! The conformance suite on `FileStore`, and what only files can get
//! wrong: atomic writes, paths, a directory that goes away.

use std::sync::Arc;
use std::time::Duration;

use sealed_session::{RequestContext, SessionId, SessionIndex, Store};
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
    conformance::optimistic_concurrency(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_keeps_a_session_index() {
    let dir = TempDir::new("file-index");
    let store = Arc::new(FileStore::open(dir.path()).await.unwrap());
    conformance::session_index(store).await;
}

/// The entries in `dir`, by name (none when it is missing).
fn names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |read| {
            read.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        },
    )
}

/// Index entries of sessions that ended leave with the next indexed write
/// or the sweep; an owner without sessions is left without a directory.
#[tokio::test]
async fn dead_index_entries_are_pruned_by_writes_and_the_sweep() {
    let dir = TempDir::new("file-index-prune");
    let store = FileStore::open(dir.path()).await.unwrap();
    let cx = RequestContext::default();
    let owned = record(json!({"_owner": {"id": "ada/../..", "since": 1, "seen": 1}}));
    let index = store.index_dir_of("ada/../..");
    assert_eq!(index.parent().and_then(|p| p.parent()), Some(store.dir()));

    // Unowned writes make no index.
    store
        .set(&SessionId::generate(), record(json!({})), in_an_hour(), &cx)
        .await
        .unwrap();
    assert!(!index.exists());

    let (a, b, c) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    for id in [&a, &b] {
        store
            .set(id, Arc::clone(&owned), in_an_hour(), &cx)
            .await
            .unwrap();
    }
    assert_eq!(names(&index).len(), 2);
    // `a` ends; the next write of the owner's drops its entry.
    store.delete(&a, &cx).await.unwrap();
    store
        .set(&c, Arc::clone(&owned), in_an_hour(), &cx)
        .await
        .unwrap();
    assert_eq!(names(&index).len(), 2, "{:?}", names(&index));
    assert_eq!(store.sessions_of("ada/../..").await.unwrap().len(), 2);

    // `b` expires and `c` is deleted: the sweep removes both entries and
    // the emptied directory.
    let expired = std::time::SystemTime::now() - Duration::from_secs(1);
    std::fs::write(
        store.path_of(&b),
        format!(
            "{}\n{}",
            conformance::ms(expired),
            serde_json::to_string(&*owned).unwrap()
        ),
    )
    .unwrap();
    store.delete(&c, &cx).await.unwrap();
    assert_eq!(names(&index).len(), 2);
    assert_eq!(store.delete_expired().await.unwrap(), 1);
    assert!(!index.exists(), "{:?}", names(&index));
    assert!(store.sessions_of("ada/../..").await.unwrap().is_empty());
}

/// Two stores on one directory stand for two processes: each write opens
/// its lock file anew, so they exclude each other as processes would.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compare_and_set_is_atomic_across_store_instances() {
    let dir = TempDir::new("file-cas");
    let stores = [
        Arc::new(FileStore::open(dir.path()).await.unwrap()),
        Arc::new(FileStore::open(dir.path()).await.unwrap()),
    ];
    let id = SessionId::generate();
    let cx = RequestContext::default();
    stores[0]
        .compare_and_set(
            &id,
            record(json!({"n": 0, "_version": 0})),
            in_an_hour(),
            None,
            &cx,
        )
        .await
        .unwrap();
    // Each task increments until its write wins; none may be lost.
    let mut tasks = Vec::new();
    for task in 0..16 {
        let (store, id) = (Arc::clone(&stores[task % 2]), id.clone());
        tasks.push(tokio::spawn(async move {
            let cx = RequestContext::default();
            let mut conflicts = 0u32;
            loop {
                let current = store.get(&id, &cx).await.unwrap().unwrap();
                let version = sealed_session::read_version(&current).unwrap();
                let n = current["n"].as_u64().unwrap();
                let next = record(json!({"n": n + 1, "_version": version + 1}));
                match store
                    .compare_and_set(&id, next, in_an_hour(), Some(version), &cx)
                    .await
                {
                    Ok(()) => return conflicts,
                    Err(sealed_session::StoreError::Conflict) => conflicts += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last = stores[1].get(&id, &cx).await.unwrap().unwrap();
    assert_eq!(last["n"], json!(16), "an increment was lost");
    assert_eq!(sealed_session::read_version(&last), Some(16));
}

#[tokio::test]
async fn a_session_deleted_meanwhile_is_not_brought_back() {
    let dir = TempDir::new("file-cas-delete");
    let store = FileStore::open(dir.path()).await.unwrap();
    let id = SessionId::generate();
    let cx = RequestContext::default();
    store
        .compare_and_set(&id, record(json!({"_version": 1})), in_an_hour(), None, &cx)
        .await
        .unwrap();
    store.delete(&id, &cx).await.unwrap();
    let err = store
        .compare_and_set(
            &id,
            record(json!({"_version": 2})),
            in_an_hour(),
            Some(1),
            &cx,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, sealed_session::StoreError::Conflict),
        "{err:?}"
    );
    assert!(store.get(&id, &cx).await.unwrap().is_none());
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
    let (locks, names): (Vec<String>, Vec<String>) = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .partition(|n| n.starts_with(".lock-"));
    // At most one lock file per first hex digit of a file name.
    assert!(
        !locks.is_empty()
            && locks.len() <= 16
            && locks
                .iter()
                .all(|n| n.len() == 7 && n.as_bytes()[6].is_ascii_hexdigit()),
        "{locks:?}"
    );
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
