//! A route that asks for the session without the adapter's middleware
//! answers `500` with a body naming what to install (axum's is in
//! `session/tests/axum.rs`).

use http::StatusCode;
use sealed_session::{Session, SessionMap};

#[tokio::test]
async fn actix_web_without_middleware_says_what_to_install() {
    use actix_web::{App, test, web};
    async fn handler(_session: Session<SessionMap>) -> &'static str {
        "unreachable"
    }
    let app = test::init_service(App::new().route("/", web::get().to(handler))).await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(response.status().as_u16(), 500);
    let body = test::read_body(response).await;
    assert_eq!(
        &body[..],
        b"SessionMiddleware is not installed on this route"
    );
}

#[tokio::test]
async fn rocket_without_fairing_says_what_to_install() {
    #[rocket::get("/")]
    fn handler(_session: Session<SessionMap>) -> &'static str {
        "unreachable"
    }
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Critical,
        ..rocket::Config::debug_default()
    })
    .register("/", sealed_session::adapters::rocket::catchers())
    .mount("/", rocket::routes![handler]);
    let client = rocket::local::asynchronous::Client::untracked(rocket)
        .await
        .unwrap();
    let response = client.get("/").dispatch().await;
    assert_eq!(response.status().code, 500);
    assert_eq!(
        response.into_string().await.as_deref(),
        Some("SessionFairing is not attached")
    );
}

#[tokio::test]
async fn poem_without_middleware_says_what_to_install() {
    use poem::{Endpoint, Route, get, handler};
    #[handler]
    fn index(_session: Session<SessionMap>) -> &'static str {
        "unreachable"
    }
    let app = Route::new().at("/", get(index));
    let response = app
        .get_response(poem::Request::builder().uri_str("/").finish())
        .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        response.into_body().into_string().await.unwrap(),
        "SessionMiddleware is not installed on this route"
    );
}

#[tokio::test]
async fn salvo_without_hoop_says_what_to_install() {
    use salvo::prelude::*;
    #[handler]
    async fn index(_session: Session<SessionMap>) -> &'static str {
        "unreachable"
    }
    let acceptor = TcpListener::new("127.0.0.1:0").bind().await;
    let addr = acceptor.local_addr().unwrap();
    let server = tokio::spawn(Server::new(acceptor).serve(Router::new().get(index)));
    let response = crate::client::send(addr, http::Method::GET, "/", None, "").await;
    server.abort();
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.body, "SessionHoop is not installed on this route");
}
