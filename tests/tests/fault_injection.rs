//! Backends failing mid-traffic, seen through the axum adapter: clear 500s,
//! no panics, no half-written session, and recovery without a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use sealed_session::adapters::axum::SessionLayer;
use sealed_session::{Session, SessionEngine, SessionMap};
use sealed_session_stores::RedisStore;
use sealed_session_stores::drivers::redis;
use sealed_session_tests::services::{REDIS_URL, RedisServer, service_url, unique_name};
use tower::ServiceExt;

async fn count(session: Session<SessionMap>) -> String {
    let n = session.get::<u64>("count").unwrap_or(0) + 1;
    // Two fields that must move together: a half-written record would
    // show them apart.
    session.set("count", n);
    session.set("check", n * 7);
    n.to_string()
}

async fn send(app: &Router, cookie: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get("/count");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let sid = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("sid=") && !c.contains("Max-Age=0"))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, sid, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn redis_dying_mid_traffic_gives_500s_then_recovers_by_itself() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_prefix(&format!("{}:", unique_name("fault")));
    let engine = SessionEngine::builder().with_store(store).build().unwrap();
    let app = Router::new()
        .route("/count", get(count))
        .layer(SessionLayer::new(engine));

    let (status, sid, body) = send(&app, None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let cookie = sid.unwrap();
    for n in 2..=5 {
        let (status, _, body) = send(&app, Some(&cookie)).await;
        assert_eq!((status, body), (StatusCode::OK, n.to_string()));
    }

    server.kill();
    for _ in 0..5 {
        let (status, sid, body) = send(&app, Some(&cookie)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert_eq!(body, "Session store unavailable");
        assert!(sid.is_none(), "no cookie while the store is down");
    }

    // Redis restarts empty (no persistence): the session is gone, but the
    // app recovers by itself and starts fresh sessions.
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        let (status, sid, body) = send(&app, Some(&cookie)).await;
        if status == StatusCode::OK {
            assert_eq!(body, "1", "a fresh session after the data was lost");
            break sid.unwrap();
        }
        assert!(Instant::now() < deadline, "no recovery: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, _, body) = send(&app, Some(&fresh)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));
}

#[tokio::test]
async fn redis_client_pause_is_waited_out_and_nothing_is_half_written() {
    let Some(url) = service_url(REDIS_URL) else {
        return;
    };
    let prefix = format!("{}:", unique_name("pause"));
    let store = RedisStore::connect(&url)
        .await
        .unwrap()
        .with_prefix(&prefix);
    let engine = SessionEngine::builder()
        .with_store(store.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/count", get(count))
        .layer(SessionLayer::new(engine));
    let (_, sid, _) = send(&app, None).await;
    let cookie = Arc::new(sid.unwrap());

    // Pause every client (ours included) for 300 ms while 20 requests run.
    let mut admin = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(300)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (app, cookie) = (app.clone(), Arc::clone(&cookie));
        tasks.push(tokio::spawn(
            async move { send(&app, Some(&cookie)).await.0 },
        ));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "the pause was not felt"
    );

    // Whatever the interleaving, the stored record is whole.
    let id = sealed_session::SessionId::parse(cookie.trim_start_matches("sid=")).unwrap();
    let key = store.key_of(&id);
    let raw: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut admin)
        .await
        .unwrap();
    let record: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let n = record["count"].as_u64().unwrap();
    assert_eq!(
        record["check"].as_u64(),
        Some(n * 7),
        "half-written record: {record}"
    );
    assert!((2..=21).contains(&n), "{n}");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut admin)
        .await
        .unwrap();
}
