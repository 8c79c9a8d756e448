//! `store_from_url`, as the demo's `SESSION_STORE` uses it, for every
//! kind of store.

use sealed_session::Store as _;
use sealed_session_stores::{Error, store_from_url};
use sealed_session_tests::conformance;
use sealed_session_tests::services::{
    CLOSED_PORT, MYSQL_URL, POSTGRES_URL, REDIS_URL, TempDir, service_url,
};

#[tokio::test]
async fn local_specs_open_working_stores() {
    let dir = TempDir::new("any");
    let db = dir.path().join("s.db");
    for (spec, kind) in [
        ("memory".to_owned(), "memory"),
        (
            format!("file:{}", dir.path().join("files").display()),
            "file",
        ),
        ("sqlite::memory:".to_owned(), "sqlite"),
        (format!("sqlite:{}", db.display()), "sqlite"),
        (format!("sqlite://{}", db.display()), "sqlite"),
    ] {
        let store = store_from_url(&spec)
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(store.kind(), kind, "{spec}");
        conformance::round_trip(&store).await;
        // None reads the request, so the adapters never copy it for them.
        assert!(!store.uses_request_context(), "{spec}");
    }
}

/// `AnyStore` passes compare-and-set through to the stores that have it.
#[tokio::test]
async fn any_store_forwards_compare_and_set() {
    let dir = TempDir::new("any-cas");
    let file = format!("file:{}", dir.path().display());
    for spec in ["memory", "sqlite::memory:", &file] {
        let store = std::sync::Arc::new(store_from_url(spec).await.unwrap());
        conformance::optimistic_concurrency(store).await;
    }
}

/// `AnyStore` passes the session index through to the chosen store.
#[tokio::test]
async fn any_store_forwards_the_session_index() {
    let dir = TempDir::new("any-index");
    let file = format!("file:{}", dir.path().display());
    let mut specs = vec!["memory".to_owned(), "sqlite::memory:".to_owned(), file];
    specs.extend(service_url(REDIS_URL));
    for spec in &specs {
        let store = std::sync::Arc::new(store_from_url(spec).await.unwrap());
        conformance::session_index(store).await;
    }
}

#[tokio::test]
async fn service_specs_open_working_stores() {
    for var in [POSTGRES_URL, MYSQL_URL, REDIS_URL] {
        let Some(url) = service_url(var) else {
            continue;
        };
        let store = store_from_url(&url)
            .await
            .unwrap_or_else(|e| panic!("{var}: {e}"));
        conformance::round_trip(&store).await;
        assert!(!store.uses_request_context(), "{var}");
        conformance::compare_and_set_contract(&store).await;
    }
}

#[tokio::test]
async fn bad_specs_are_errors_that_keep_passwords_out() {
    for spec in [
        "",
        "memcached://h",
        "file:",
        "sqlite:",
        "redis+cluster://",
        "ftp://u:secret@h",
    ] {
        let err = store_from_url(spec).await.unwrap_err();
        assert!(matches!(err, Error::UnknownStore { .. }), "{spec}: {err:?}");
        assert!(!err.to_string().contains("secret"));
    }
    for (spec, backend) in [
        (
            format!("postgres://u:secret@127.0.0.1:{CLOSED_PORT}/db"),
            "postgres",
        ),
        (
            format!("mysql://u:secret@127.0.0.1:{CLOSED_PORT}/db"),
            "mysql",
        ),
        (format!("redis://:secret@127.0.0.1:{CLOSED_PORT}"), "redis"),
    ] {
        match store_from_url(&spec).await {
            Err(Error::Store(err)) => conformance::assert_backend_error(&err, backend),
            other => panic!("{spec}: {other:?}"),
        }
    }
}
