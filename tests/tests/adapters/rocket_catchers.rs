//! `SessionFairing` registers the session catchers itself: a failed
//! `Required` guard answers the same `401` as on the other frameworks
//! with no `.register(…)` by the app, and the app's own catchers still win.

use http_body_util::BodyExt as _;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::Client;
use rocket::{Build, Request, Rocket, catch, catchers, get, routes};
use sealed_session::adapters::rocket::SessionFairing;
use sealed_session::{Required, SessionData, SessionEngine};
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

#[derive(SessionData, Default, Debug, Serialize, Deserialize)]
struct Login {
    #[session(required)]
    user_id: Option<String>,
}

fn engine() -> SessionEngine {
    SessionEngine::builder().build().expect("engine builds")
}

#[get("/me")]
fn me(user: Required<Login, UserId>) -> String {
    user.into_value()
}

#[get("/broken")]
fn broken() -> Status {
    Status::Unauthorized
}

fn rocket(
    fairing: SessionFairing<sealed_session::NoStore, sealed_session::IronEncoder>,
) -> Rocket<Build> {
    rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Critical,
        ..rocket::Config::debug_default()
    })
    .attach(fairing)
    .mount("/", routes![me, broken])
}

/// Status, content type and body of `GET path` on `rocket`, asking for
/// HTML as a browser does (Rocket's default catcher answers HTML then).
async fn get_from(rocket: Rocket<Build>, path: &str) -> (u16, Option<String>, String) {
    let client = Client::untracked(rocket)
        .await
        .expect("the Rocket launches");
    let response = client
        .get(path)
        .header(rocket::http::Header::new("Accept", "text/html"))
        .dispatch()
        .await;
    let status = response.status().code;
    let content_type = response.content_type().map(|c| c.to_string());
    (
        status,
        content_type,
        response.into_string().await.unwrap_or_default(),
    )
}

/// The same request on axum, the reference adapter.
async fn axum_me() -> (u16, Option<String>, String) {
    async fn me(user: Required<Login, UserId>) -> String {
        user.into_value()
    }
    let app = axum::Router::new()
        .route("/me", axum::routing::get(me))
        .layer(sealed_session::adapters::axum::SessionLayer::new(engine()));
    let request = http::Request::get("/me")
        .header("Accept", "text/html")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// `text/plain; charset=utf-8`, however each framework spells it.
fn is_plain_text(content_type: Option<&str>) -> bool {
    content_type
        .is_some_and(|c| c.to_ascii_lowercase().replace(' ', "") == "text/plain;charset=utf-8")
}

#[tokio::test]
async fn a_failed_guard_answers_as_axum_without_registering_catchers() {
    let (status, content_type, body) = get_from(rocket(SessionFairing::new(engine())), "/me").await;
    let (axum_status, axum_type, axum_body) = axum_me().await;
    assert_eq!((status, body.as_str()), (401, "Unauthorised"));
    assert_eq!((status, body.as_str()), (axum_status, axum_body.as_str()));
    assert!(is_plain_text(content_type.as_deref()), "{content_type:?}");
    assert!(is_plain_text(axum_type.as_deref()), "{axum_type:?}");
}

#[tokio::test]
async fn registering_the_catchers_by_hand_still_launches() {
    let rocket = rocket(SessionFairing::new(engine()))
        .register("/", sealed_session::adapters::rocket::catchers());
    let (status, _, body) = get_from(rocket, "/me").await;
    assert_eq!((status, body.as_str()), (401, "Unauthorised"));
}

#[catch(401)]
fn own_401() -> &'static str {
    "please log in"
}

#[catch(default)]
fn own_default(status: Status, _req: &Request<'_>) -> String {
    format!("own {}", status.code)
}

#[tokio::test]
async fn the_apps_own_catchers_win() {
    // At the root, for the code.
    let rocket_401 = rocket(SessionFairing::new(engine())).register("/", catchers![own_401]);
    assert_eq!(
        get_from(rocket_401, "/me").await.2,
        "please log in",
        "the app's 401 catcher at / answers"
    );
    // At the root, for every code.
    let rocket_default =
        rocket(SessionFairing::new(engine())).register("/", catchers![own_default]);
    assert_eq!(get_from(rocket_default, "/me").await.2, "own 401");
    // Under a narrower base: there, not elsewhere.
    let narrower = || rocket(SessionFairing::new(engine())).register("/me", catchers![own_401]);
    assert_eq!(get_from(narrower(), "/me").await.2, "please log in");
    assert_eq!(
        get_from(narrower(), "/broken").await.2,
        "Unauthorised",
        "the session's catcher answers outside the app's base"
    );
}

#[tokio::test]
async fn without_catchers_leaves_rockets_default() {
    let (status, content_type, body) = get_from(
        rocket(SessionFairing::new(engine()).without_catchers()),
        "/me",
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(content_type, Some(ContentType::HTML.to_string()));
    assert_ne!(body, "Unauthorised", "Rocket's own page, not the session's");
}
