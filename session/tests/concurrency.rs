//! Two requests changing one session at once: last writer wins by default,
//! or optimistic concurrency refuses the stale write.

mod common;

use std::sync::Arc;

use common::Browser;
use http::HeaderMap;
use sealed_session::{
    IronEncoder, MemoryStore, RequestContext, SessionEngine, SessionMap, StoreError,
};

fn engine(optimistic: bool) -> SessionEngine<MemoryStore, IronEncoder> {
    SessionEngine::builder()
        .with_store(MemoryStore::new())
        .with_optimistic_concurrency(optimistic)
        .build()
        .unwrap()
}

async fn logged_in(engine: &SessionEngine<MemoryStore, IronEncoder>) -> HeaderMap {
    let mut browser = Browser::default();
    browser.request(engine, |s| s.set("count", 0)).await;
    browser.headers()
}

#[tokio::test]
async fn by_default_the_last_write_wins_and_updates_can_be_lost() {
    let engine = engine(false);
    let headers = logged_in(&engine).await;
    let cx = RequestContext::default();
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(engine.load::<SessionMap>(&headers, &cx).await.unwrap());
    }
    for s in &sessions {
        let n = s.get::<u32>("count").unwrap() + 1;
        s.set("count", n);
        engine.commit(s, &cx).await.expect("every write succeeds");
    }
    let after = engine.load::<SessionMap>(&headers, &cx).await.unwrap();
    assert_eq!(
        after.get::<u32>("count"),
        Some(1),
        "19 increments were lost"
    );
}

#[tokio::test]
async fn optimistic_mode_lets_one_of_many_concurrent_writers_win() {
    let engine = engine(true);
    let headers = logged_in(&engine).await;
    let cx = RequestContext::default();
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(engine.load::<SessionMap>(&headers, &cx).await.unwrap());
    }
    let mut won = 0;
    let mut conflicts = 0;
    for s in &sessions {
        let n = s.get::<u32>("count").unwrap() + 1;
        s.set("count", n);
        match engine.commit(s, &cx).await {
            Ok(_) => won += 1,
            Err(e) if e.is_conflict() => conflicts += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((won, conflicts), (1, 19));
}

#[tokio::test]
async fn optimistic_mode_with_retries_loses_no_update() {
    let engine = engine(true);
    let headers = Arc::new(logged_in(&engine).await);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (engine, headers) = (engine.clone(), Arc::clone(&headers));
        tasks.push(tokio::spawn(async move {
            let cx = RequestContext::default();
            let mut retries = 0u32;
            loop {
                let s = engine.load::<SessionMap>(&headers, &cx).await.unwrap();
                let n = s.get::<u32>("count").unwrap() + 1;
                s.set("count", n);
                tokio::task::yield_now().await;
                match engine.commit(&s, &cx).await {
                    Ok(_) => return retries,
                    Err(e) if e.is_conflict() => retries += 1,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let mut retries = 0;
    for t in tasks {
        retries += t.await.unwrap();
    }
    let cx = RequestContext::default();
    let after = engine.load::<SessionMap>(&headers, &cx).await.unwrap();
    assert_eq!(
        after.get::<u32>("count"),
        Some(20),
        "after {retries} retries"
    );
    assert!(
        !after.read(|m| m.contains_key("_version")),
        "the version is reserved"
    );
}

#[tokio::test]
async fn optimistic_mode_on_a_store_without_compare_and_set_says_so() {
    let map = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&map))
        .with_optimistic_concurrency(true)
        .build()
        .unwrap();
    let cx = RequestContext::default();
    let s = engine
        .load::<SessionMap>(&HeaderMap::new(), &cx)
        .await
        .unwrap();
    s.set("a", 1);
    let err = engine.commit(&s, &cx).await.unwrap_err();
    assert!(
        matches!(
            err,
            sealed_session::Error::Store(StoreError::Unsupported { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("compare_and_set"), "{err}");
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_answers_409_to_the_losing_request() {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use http::{Request, StatusCode, header};
    use sealed_session::adapters::axum::SessionLayer;
    use sealed_session::{Session, Store};
    use tower::ServiceExt;

    let store = MemoryStore::new();
    let engine = SessionEngine::builder()
        .with_store(store.clone())
        .with_optimistic_concurrency(true)
        .build()
        .unwrap();
    let headers = logged_in(&engine).await;
    // The handler's record is overwritten by "another request" before commit.
    let racing = store.clone();
    let app = Router::new()
        .route(
            "/bump",
            post(move |session: Session<SessionMap>| {
                let store = racing.clone();
                async move {
                    let id = session.id().unwrap();
                    let cx = RequestContext::default();
                    let mut other = (*store.get(&id, &cx).await.unwrap().unwrap()).clone();
                    other.insert("_version".into(), 99.into());
                    store
                        .set(&id, Arc::new(other), session.expires_at(), &cx)
                        .await
                        .unwrap();
                    session.set("count", 1);
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .layer(SessionLayer::new(engine));
    let cookie = headers.get(header::COOKIE).unwrap().clone();
    let request = Request::post("/bump")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
}
