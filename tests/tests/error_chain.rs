//! Real store failures print each message of their chain once: no error's
//! `Display` repeats the text of its `source()` (redis and sqlx errors do
//! on their own; `StoreError::backend` keeps each message once).

use std::error::Error as StdError;
use std::sync::Arc;

use sealed_session::{Error, RequestContext, SessionEngine, SessionId, SessionMap, StoreError};
use sealed_session_stores::{RedisStore, SqliteStore, store_from_url};
use sealed_session_tests::conformance;
use sealed_session_tests::services::{CLOSED_PORT, MYSQL_URL, POSTGRES_URL, TempDir, service_url};

/// Each message of `error`'s chain, outermost first.
fn messages(error: &(dyn StdError + 'static)) -> Vec<String> {
    std::iter::successors(Some(error), |&e| e.source())
        .map(ToString::to_string)
        .collect()
}

/// The chain has a cause, no message contains its source's text, and the
/// driver's `cause` (lowercase) is said exactly once in the whole chain.
fn assert_said_once(error: &(dyn StdError + 'static), cause: &str) {
    let messages = messages(error);
    assert!(
        messages.len() >= 2,
        "the error lost its cause: {messages:?}"
    );
    for pair in messages.windows(2) {
        assert!(
            !pair[0].contains(pair[1].as_str()),
            "`{}` repeats its source `{}` (chain: {messages:?})",
            pair[0],
            pair[1]
        );
    }
    let printed = messages.join(": ").to_lowercase();
    assert_eq!(
        printed.matches(cause).count(),
        1,
        "`{cause}` is not said exactly once in `{printed}`"
    );
    // The outermost message still tells the user what to do.
    assert!(
        messages[0].contains("check that it is running and reachable"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn sqlite_in_a_missing_directory() {
    let dir = TempDir::new("error-chain");
    let path = dir.path().join("no-such-dir").join("sessions.db");
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(
            err,
            sealed_session_stores::Error::Store(StoreError::Backend { .. })
        ),
        "{err:?}"
    );
    assert_said_once(&err, "unable to open database file");

    // The same through the URL form.
    let spec = format!("sqlite:{}", path.display());
    let err = store_from_url(&spec).await.unwrap_err();
    assert_said_once(&err, "unable to open database file");
}

#[tokio::test]
async fn redis_on_a_closed_port() {
    let url = format!("redis://127.0.0.1:{CLOSED_PORT}");
    let err = RedisStore::connect(&url).await.unwrap_err();
    assert_said_once(&err, "refused");
    let Some(original) = err.backend_error() else {
        panic!("a backend error: {err:?}");
    };
    assert!(
        original
            .downcast_ref::<sealed_session_stores::drivers::redis::RedisError>()
            .is_some_and(|e| e.is_connection_refusal()),
        "the driver's own error stays reachable: {original:?}"
    );

    // Through the engine, as an adapter logs it.
    let store = Arc::new(RedisStore::connect_lazy(&url).unwrap());
    let engine = SessionEngine::builder().with_store(store).build().unwrap();
    let cookie = conformance::cookie(SessionId::generate().as_str());
    match engine
        .load::<SessionMap>(&cookie, &RequestContext::default())
        .await
    {
        Err(err @ Error::Store(_)) => assert_said_once(&err, "refused"),
        other => panic!("expected a store error, got {other:?}"),
    }
}

#[tokio::test]
async fn sql_servers_without_the_database() {
    // A missing database is the server's own error, which sqlx repeats
    // in its own message (a closed port: the next test).
    for (service, cause) in [
        (POSTGRES_URL, "does not exist"),
        (MYSQL_URL, "unknown database"),
    ] {
        let Some(url) = service_url(service) else {
            continue;
        };
        let (server, _) = url.rsplit_once('/').expect("a URL with a database");
        let spec = format!("{server}/no_such_database_for_sessions");
        match store_from_url(&spec).await {
            Err(err @ sealed_session_stores::Error::Store(_)) => assert_said_once(&err, cause),
            other => panic!("{spec}: expected a store error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sql_servers_on_a_closed_port() {
    // sqlx retries a refused connection until the pool's acquire timeout
    // and then says only "pool timed out"; the store reports the refusal.
    for scheme in ["postgres://postgres", "mysql://root"] {
        let spec = format!("{scheme}@127.0.0.1:{CLOSED_PORT}/test");
        match store_from_url(&spec).await {
            Err(err @ sealed_session_stores::Error::Store(_)) => {
                assert_said_once(&err, "refused");
                assert!(
                    !err.to_string().to_lowercase().contains("timed out"),
                    "{err}"
                );
            }
            other => panic!("{spec}: expected a store error, got {other:?}"),
        }
    }
}
