//! The demo server on axum, with a typed session and the `Required` guard.
//!
//! ```text
//! SESSION_SECRET=a-secret-of-at-least-32-characters!! cargo run --example axum --features axum
//! ```
//!
//! Reads `PORT` (default 3000), `SESSION_SECRET` or `SESSION_SECRETS`
//! (rotation: `id=secret,...`, newest first; random when neither is set,
//! with a warning), `SESSION_STORE` (unset: stateless cookies; or
//! `memory`, `file:DIR`, `sqlite:PATH`, `postgres://…`, `mysql://…`,
//! `redis://…`, `redis+cluster://host:port,…`) and `SESSION_COOKIE_POLICY` (`error`, the
//! default: a session over 4 KB is a 500; `chunk`: split across `sid.0`,
//! `sid.1`, …).
//!
//! `GET /` is a small HTML page (login form, user, visit counter, flash,
//! buttons posting to `/ui/…`, the user's sessions); the other routes are
//! the API the black-box tests use. Login names the user the session's
//! owner, labelled with the `User-Agent`: `GET /devices` lists the user's
//! sessions, one a line, `(this session)` marking the request's own (501
//! in stateless mode: cookies are listed nowhere), and `POST
//! /logout-everywhere` logs out all but the request's own (stateless
//! mode too, through an in-memory revocation store).

use std::error::Error;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sealed_session::adapters::axum::SessionLayer;
use sealed_session::{
    CookieSizePolicy, Encoder, Keyring, MemoryStore, Required, Secret, SessionData, SessionEngine,
    SessionIndex,
};
use sealed_session_stores::store_from_url;
use serde::{Deserialize, Serialize};

/// The demo's session: the same record as the equivalent hono-session
/// app (`userId`, `message`, `count`, `data`).
#[derive(SessionData, Default, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoSession {
    /// Set at login; `Required<DemoSession, UserId>` needs it.
    #[session(required)]
    user_id: Option<String>,
    /// A flash message.
    message: Option<String>,
    /// `GET /count`.
    count: u64,
    /// `PUT /data`.
    data: Option<String>,
}

/// The app's session type, named once.
type Session = sealed_session::Session<DemoSession>;

/// The demo page (`GET /`) shared by the five demos.
#[path = "common/page.rs"]
mod page;

#[derive(Deserialize)]
struct LoginQuery {
    user: String,
}

#[derive(Deserialize)]
struct FlashQuery {
    msg: String,
}

/// The request's `User-Agent`, the session's label at login.
fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::USER_AGENT)?.to_str().ok()
}

/// A per-user route's answer as a response.
fn answer((status, body): page::Answer) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, body).into_response()
}

async fn login(
    session: Session,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> StatusCode {
    session.regenerate();
    page::own(&session, &query.user, user_agent(&headers));
    session.set_user_id(Some(query.user));
    StatusCode::NO_CONTENT
}

/// `GET /devices`: the user's sessions, one a line.
async fn devices(State(engine): State<page::Engine>, session: Session) -> Response {
    answer(page::devices_route(&*engine, &session).await)
}

/// `POST /logout-everywhere`: logs out the user's other sessions.
async fn logout_everywhere(
    State(engine): State<page::Engine>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    answer(page::logout_everywhere_route(&*engine, &session, user_agent(&headers)).await)
}

/// `401 Unauthorised` unless logged in; the handler gets the id itself.
async fn me(user_id: Required<DemoSession, UserId>) -> String {
    user_id.into_value()
}

async fn logout(session: Session) -> StatusCode {
    session.destroy();
    StatusCode::NO_CONTENT
}

async fn set_flash(session: Session, Query(query): Query<FlashQuery>) -> StatusCode {
    session.flash_message(Some(query.msg));
    StatusCode::NO_CONTENT
}

async fn get_flash(session: Session) -> String {
    session.message().unwrap_or_default()
}

async fn reflash(session: Session) -> StatusCode {
    session.reflash();
    StatusCode::NO_CONTENT
}

async fn renew(session: Session) -> StatusCode {
    session.renew();
    StatusCode::NO_CONTENT
}

async fn count(session: Session) -> String {
    let count = session.count() + 1;
    session.set_count(count);
    count.to_string()
}

async fn put_data(session: Session, body: String) -> StatusCode {
    session.set_data(Some(body).filter(|b| !b.is_empty()));
    StatusCode::NO_CONTENT
}

async fn get_data(session: Session) -> String {
    session.data().unwrap_or_default()
}

/// `GET /`: the demo page; counts the visit and shows the flash once.
async fn home(State(engine): State<page::Engine>, session: Session) -> Html<String> {
    let count = session.count() + 1;
    session.set_count(count);
    Html(page::render(&page::Page {
        user: session.user_id(),
        count,
        flash: session.message(),
        data_len: session.data().map_or(0, |d| d.len()),
        devices: page::page_devices(&*engine, &session).await,
    }))
}

async fn ui_login(session: Session, headers: HeaderMap, Form(form): Form<LoginQuery>) -> Redirect {
    let user = form.user.trim();
    if !user.is_empty() {
        session.regenerate();
        page::own(&session, user, user_agent(&headers));
        session.set_user_id(Some(user.to_owned()));
    }
    session.flash_message(Some(page::welcome(user)));
    Redirect::to(page::HOME)
}

async fn ui_logout(session: Session) -> Redirect {
    session.destroy();
    Redirect::to(page::HOME)
}

async fn ui_logout_everywhere(
    State(engine): State<page::Engine>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    match page::logout_others(&*engine, &session, user_agent(&headers)).await {
        Ok(n) => {
            session.flash_message(Some(page::logged_out_others(n)));
            Redirect::to(page::HOME).into_response()
        }
        Err(failure) => answer(failure),
    }
}

async fn ui_renew(session: Session) -> Redirect {
    session.renew();
    session.flash_message(Some(page::RENEWED.to_owned()));
    Redirect::to(page::HOME)
}

async fn ui_regenerate(session: Session) -> Redirect {
    session.regenerate();
    session.flash_message(Some(page::REGENERATED.to_owned()));
    Redirect::to(page::HOME)
}

async fn ui_big(session: Session) -> Redirect {
    session.set_data(Some(page::big_data()));
    session.flash_message(Some(page::STORED.to_owned()));
    Redirect::to(page::HOME)
}

async fn ui_clear(session: Session) -> Redirect {
    session.set_data(None);
    session.flash_message(Some(page::CLEARED.to_owned()));
    Redirect::to(page::HOME)
}

/// The demo routes behind the session layer.
/// Public: the behaviour suite (`tests/tests/adapters`) runs it.
pub fn app<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/ui/login", post(ui_login))
        .route("/ui/logout", post(ui_logout))
        .route("/ui/logout-everywhere", post(ui_logout_everywhere))
        .route("/ui/renew", post(ui_renew))
        .route("/ui/regenerate", post(ui_regenerate))
        .route("/ui/big", post(ui_big))
        .route("/ui/clear", post(ui_clear))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .route("/flash", post(set_flash).get(get_flash))
        .route("/reflash", post(reflash))
        .route("/renew", post(renew))
        .route("/count", get(count))
        .route("/data", get(get_data).put(put_data))
        .route("/devices", get(devices))
        .route("/logout-everywhere", post(logout_everywhere))
        .layer(SessionLayer::new(engine.clone()))
        .with_state(page::accounts(engine))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let policy = match std::env::var("SESSION_COOKIE_POLICY").ok().as_deref() {
        None | Some("" | "error") => CookieSizePolicy::Error,
        Some("chunk") => CookieSizePolicy::Chunk { max_chunks: 8 },
        Some(other) => {
            return Err(format!(
                "SESSION_COOKIE_POLICY={other} is not supported: use `error` or `chunk`"
            )
            .into());
        }
    };
    let mut builder = SessionEngine::builder().with_cookie_size_policy(policy);
    if let Ok(spec) = std::env::var("SESSION_SECRETS") {
        builder = builder.with_keyring(Keyring::parse(&spec)?);
    } else if let Ok(secret) = std::env::var("SESSION_SECRET") {
        builder = builder.with_secret(Secret::new(secret)?);
    }
    let router = match std::env::var("SESSION_STORE")
        .ok()
        .filter(|s| !s.is_empty())
    {
        // Stateless: a small store of revocations makes "log out other
        // sessions" work for cookies too (one read per logged-in request).
        None => app(builder.with_revocation_store(MemoryStore::new()).build()?),
        // memory, file:DIR, sqlite:PATH, postgres://…, mysql://…, redis://…, redis+cluster://…
        Some(spec) => app(builder.with_store(store_from_url(&spec).await?).build()?),
    };

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    // The bound port (PORT=0 picks a free one): the demo-binary tests read it.
    let port = listener.local_addr()?.port();
    tracing::info!("listening on http://127.0.0.1:{port}");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
