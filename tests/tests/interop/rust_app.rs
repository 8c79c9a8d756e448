//! Our side: the demo server's routes (`session/examples/axum.rs`) on our
//! engine, served in-process on 127.0.0.1:0.

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use sealed_session::adapters::axum::SessionLayer;
use sealed_session::{
    CookieOptions, Encoder, Secret, Session, SessionEngine, SessionEngineBuilder, SessionMap, Store,
};
use serde::Deserialize;

use crate::harness::{SECRET, Server};

#[derive(Deserialize)]
struct LoginQuery {
    user: String,
}

#[derive(Deserialize)]
struct FlashQuery {
    msg: String,
}

async fn login(session: Session<SessionMap>, Query(q): Query<LoginQuery>) -> StatusCode {
    session.regenerate();
    session.set("userId", q.user);
    StatusCode::NO_CONTENT
}

async fn me(session: Session<SessionMap>) -> impl IntoResponse {
    match session.get::<String>("userId") {
        Some(user) => (StatusCode::OK, user),
        None => (StatusCode::UNAUTHORIZED, "Unauthorised".to_owned()),
    }
}

async fn logout(session: Session<SessionMap>) -> StatusCode {
    session.destroy();
    StatusCode::NO_CONTENT
}

async fn set_flash(session: Session<SessionMap>, Query(q): Query<FlashQuery>) -> StatusCode {
    session.flash("message", q.msg);
    StatusCode::NO_CONTENT
}

async fn get_flash(session: Session<SessionMap>) -> String {
    session.get::<String>("message").unwrap_or_default()
}

async fn reflash(session: Session<SessionMap>) -> StatusCode {
    session.reflash();
    StatusCode::NO_CONTENT
}

async fn renew(session: Session<SessionMap>) -> StatusCode {
    session.renew();
    StatusCode::NO_CONTENT
}

async fn count(session: Session<SessionMap>) -> String {
    let n = session.get::<u64>("count").unwrap_or(0) + 1;
    session.set("count", n);
    n.to_string()
}

async fn put_data(session: Session<SessionMap>, body: String) -> StatusCode {
    session.set("data", body);
    StatusCode::NO_CONTENT
}

async fn get_data(session: Session<SessionMap>) -> String {
    session.get::<String>("data").unwrap_or_default()
}

fn router<S: Store, E: Encoder>(engine: SessionEngine<S, E>) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/flash", post(set_flash).get(get_flash))
        .route("/reflash", post(reflash))
        .route("/renew", post(renew))
        .route("/count", get(count))
        .route("/data", get(get_data).put(put_data))
        .layer(SessionLayer::new(engine))
}

/// An engine builder with the shared secret and our defaults (hono's,
/// plus `SameSite=Lax`).
pub fn builder() -> SessionEngineBuilder {
    SessionEngine::builder().with_secret(Secret::new(SECRET).expect("a valid secret"))
}

/// An engine builder whose cookies are exactly hono-session's: no
/// `SameSite`.
pub fn hono_cookies_builder() -> SessionEngineBuilder {
    builder().with_cookie_options(CookieOptions::new().without_same_site())
}

/// The demo routes on `engine`, served until dropped.
#[derive(Debug)]
pub struct RustApp {
    task: tokio::task::JoinHandle<()>,
    server: Server,
}

impl RustApp {
    pub async fn start<S: Store, E: Encoder>(engine: SessionEngine<S, E>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router(engine))
                .await
                .expect("axum::serve");
        });
        Self {
            task,
            server: Server {
                name: "sealed-session",
                addr,
            },
        }
    }

    pub fn server(&self) -> Server {
        self.server
    }
}

impl Drop for RustApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
