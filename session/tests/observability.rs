//! What the engine logs: outcomes at debug/trace, never secrets, tokens or
//! full session ids.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Browser, SECRET};
use sealed_session::{MemoryStore, Secret, SessionEngine};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything logged on this thread, at every level, until the guard drops.
fn capture_logs() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn logs_name_outcomes_but_never_secrets_tokens_or_ids() {
    let (capture, _guard) = capture_logs();

    let stateless = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .build()
        .unwrap();
    let stored = SessionEngine::builder()
        .with_store(MemoryStore::new())
        .build()
        .unwrap();

    let mut a = Browser::default();
    a.request(&stateless, |s| s.set("userId", "1")).await;
    let token = a.sid().unwrap().to_owned();
    a.request(&stateless, |s| s.get::<String>("userId")).await;
    let mut tampered = a.clone();
    tampered.jar.insert("sid".into(), format!("{token}x"));
    tampered.request(&stateless, |_| ()).await;

    let mut b = Browser::default();
    b.request(&stored, |s| s.set("userId", "1")).await;
    let id = b.sid().unwrap().to_owned();
    b.request(&stored, |s| s.regenerate()).await;
    let new_id = b.sid().unwrap().to_owned();
    b.request(&stored, |s| s.destroy()).await;

    let logs = capture.text();
    for outcome in [
        "new",
        "loaded",
        "written",
        "unchanged",
        "tampered",
        "destroyed",
    ] {
        assert!(
            logs.contains(&format!("outcome=\"{outcome}\"")),
            "no {outcome} in:\n{logs}"
        );
    }
    assert!(
        logs.contains("session.load") && logs.contains("session.commit"),
        "spans:\n{logs}"
    );
    assert!(
        logs.contains(&id[..6]),
        "a short id prefix is logged to correlate"
    );
    for secret in [SECRET, &token, &id, &new_id, &token[..40]] {
        assert!(!logs.contains(secret), "logged {secret:.12}…:\n{logs}");
    }
}

/// Through the axum adapter (which boxes the engine's futures behind an
/// erased engine, and decides a load without a store call before it polls
/// anything), loads and commits still run in their spans, and the outcome
/// events are logged inside them.
#[cfg(feature = "axum")]
#[tokio::test]
async fn adapter_loads_and_commits_in_spans() {
    use axum::body::Body;
    use axum::response::Response;
    use axum::routing::get;
    use sealed_session::adapters::axum::SessionLayer;
    use sealed_session::{Session, SessionMap};
    use tower::ServiceExt as _;

    /// One route that sets a field.
    fn routes() -> axum::Router {
        axum::Router::new().route(
            "/",
            get(|session: Session<SessionMap>| async move {
                session.set("userId", "1");
                "ok"
            }),
        )
    }
    async fn send(router: &axum::Router, cookie: Option<&str>) -> Response {
        let mut request = http::Request::get("/");
        if let Some(cookie) = cookie {
            request = request.header(http::header::COOKIE, cookie);
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), http::StatusCode::OK);
        response
    }
    /// The `name=value` of the response's first `Set-Cookie`.
    fn session_cookie(response: &Response) -> String {
        let set_cookie = response.headers()[http::header::SET_COOKIE].to_str();
        set_cookie.unwrap().split(';').next().unwrap().to_owned()
    }

    let (capture, _guard) = capture_logs();

    // A new session in a store, then the same one again.
    let stored = routes().layer(SessionLayer::new(
        SessionEngine::builder()
            .with_store(MemoryStore::new())
            .build()
            .unwrap(),
    ));
    let cookie = session_cookie(&send(&stored, None).await);
    send(&stored, Some(&cookie)).await;

    // A stateless cookie, opened without a store call.
    let stateless = routes().layer(SessionLayer::new(
        SessionEngine::builder()
            .with_secret(Secret::new(SECRET).unwrap())
            .build()
            .unwrap(),
    ));
    let sealed = session_cookie(&send(&stateless, None).await);
    send(&stateless, Some(&sealed)).await;

    let logs = capture.text();
    let in_span = |span: &str, outcome: &str| {
        logs.lines()
            .any(|line| line.contains(span) && line.contains(&format!("outcome=\"{outcome}\"")))
    };
    assert!(in_span("session.load{mode=\"store\"}", "new"), "{logs}");
    assert!(in_span("session.load{mode=\"store\"}", "loaded"), "{logs}");
    assert!(
        in_span("session.load{mode=\"stateless\"}", "loaded"),
        "{logs}"
    );
    assert!(
        in_span("session.commit{mode=\"store\"}", "written"),
        "{logs}"
    );
}

/// A store failure is logged with its cause, and the cause once: the
/// errors keep causes in `source()` (which the subscriber prints as
/// `error.sources`), not in their own messages as well.
#[cfg(feature = "axum")]
#[tokio::test]
async fn a_store_failure_is_logged_with_its_cause_once() {
    use std::sync::Arc as StdArc;
    use std::time::SystemTime;

    use axum::body::Body;
    use axum::routing::get;
    use sealed_session::adapters::axum::SessionLayer;
    use sealed_session::{
        Record, RequestContext, Session, SessionId, SessionMap, Store, StoreError,
    };
    use tower::ServiceExt as _;

    struct OnFire;
    fn on_fire() -> StoreError {
        StoreError::backend("test", std::io::Error::other("disk on fire"))
    }
    impl Store for OnFire {
        async fn get(
            &self,
            _: &SessionId,
            _: &RequestContext,
        ) -> Result<Option<StdArc<Record>>, StoreError> {
            Err(on_fire())
        }
        async fn set(
            &self,
            _: &SessionId,
            _: StdArc<Record>,
            _: SystemTime,
            _: &RequestContext,
        ) -> Result<(), StoreError> {
            Err(on_fire())
        }
        async fn delete(&self, _: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
            Err(on_fire())
        }
    }

    let (capture, _guard) = capture_logs();
    let engine = SessionEngine::builder().with_store(OnFire).build().unwrap();
    let router = axum::Router::new()
        .route("/", get(|_: Session<SessionMap>| async { "ok" }))
        .layer(SessionLayer::new(engine));
    let cookie = format!("sid={}", SessionId::generate().as_str());
    let response = router
        .oneshot(
            http::Request::get("/")
                .header(http::header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);

    let logs = capture.text();
    let line = logs
        .lines()
        .find(|line| line.contains("the store failed while loading"))
        .unwrap_or_else(|| panic!("no load failure logged:\n{logs}"));
    assert!(
        line.contains("session store `test` failed") && line.contains("error.sources"),
        "{line}"
    );
    assert_eq!(line.matches("disk on fire").count(), 1, "{line}");
}
