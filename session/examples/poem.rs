//! The demo server on poem, with a typed session and the `Required` guard.
//!
//! ```text
//! SESSION_SECRET=a-secret-of-at-least-32-characters!! cargo run -p sealed-session --example poem --features poem
//! ```
//!
//! Reads `PORT` (default 3000), `SESSION_SECRET` or `SESSION_SECRETS`
//! (rotation: `id=secret,...`, newest first; random when neither is set,
//! with a warning), `SESSION_STORE` (unset: stateless cookies;
//! `memory`: the in-memory store) and `SESSION_COOKIE_POLICY` (`error`, the
//! default: a session over 4 KB is a 500; `chunk`: split across `sid.0`,
//! `sid.1`, …). Routes and answers (the `GET /` page included) are those
//! of the axum example.

use std::error::Error;

use poem::http::{HeaderMap, StatusCode, header};
use poem::listener::{Listener, TcpListener};
use poem::web::{Data, Form, Html, Query, Redirect};
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, Server, get, handler, post};
use sealed_session::adapters::poem::SessionMiddleware;
use sealed_session::{
    CookieSizePolicy, Encoder, Keyring, MemoryStore, Required, Secret, SessionData, SessionEngine,
    SessionIndex,
};
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

#[handler]
fn login(session: Session, headers: &HeaderMap, Query(query): Query<LoginQuery>) -> StatusCode {
    session.regenerate();
    page::own(&session, &query.user, user_agent(headers));
    session.set_user_id(Some(query.user));
    StatusCode::NO_CONTENT
}

/// `GET /devices`: the user's sessions, one a line.
#[handler]
async fn devices(Data(engine): Data<&page::Engine>, session: Session) -> Response {
    answer(page::devices_route(&**engine, &session).await)
}

/// `POST /logout-everywhere`: logs out the user's other sessions.
#[handler]
async fn logout_everywhere(
    Data(engine): Data<&page::Engine>,
    session: Session,
    headers: &HeaderMap,
) -> Response {
    answer(page::logout_everywhere_route(&**engine, &session, user_agent(headers)).await)
}

/// `401 Unauthorised` unless logged in; the handler gets the id itself.
#[handler]
fn me(user_id: Required<DemoSession, UserId>) -> String {
    user_id.into_value()
}

#[handler]
fn logout(session: Session) -> StatusCode {
    session.destroy();
    StatusCode::NO_CONTENT
}

#[handler]
fn set_flash(session: Session, Query(query): Query<FlashQuery>) -> StatusCode {
    session.flash_message(Some(query.msg));
    StatusCode::NO_CONTENT
}

#[handler]
fn get_flash(session: Session) -> String {
    session.message().unwrap_or_default()
}

#[handler]
fn reflash(session: Session) -> StatusCode {
    session.reflash();
    StatusCode::NO_CONTENT
}

#[handler]
fn renew(session: Session) -> StatusCode {
    session.renew();
    StatusCode::NO_CONTENT
}

#[handler]
fn count(session: Session) -> String {
    let count = session.count() + 1;
    session.set_count(count);
    count.to_string()
}

#[handler]
fn put_data(session: Session, body: String) -> StatusCode {
    session.set_data(Some(body).filter(|b| !b.is_empty()));
    StatusCode::NO_CONTENT
}

#[handler]
fn get_data(session: Session) -> String {
    session.data().unwrap_or_default()
}

/// `GET /`: the demo page; counts the visit and shows the flash once.
#[handler]
async fn home(Data(engine): Data<&page::Engine>, session: Session) -> Html<String> {
    let visits = session.count() + 1;
    session.set_count(visits);
    Html(page::render(&page::Page {
        user: session.user_id(),
        count: visits,
        flash: session.message(),
        data_len: session.data().map_or(0, |d| d.len()),
        devices: page::page_devices(&**engine, &session).await,
    }))
}

#[handler]
fn ui_login(session: Session, headers: &HeaderMap, Form(form): Form<LoginQuery>) -> Redirect {
    let user = form.user.trim();
    if !user.is_empty() {
        session.regenerate();
        page::own(&session, user, user_agent(headers));
        session.set_user_id(Some(user.to_owned()));
    }
    session.flash_message(Some(page::welcome(user)));
    Redirect::see_other(page::HOME)
}

#[handler]
fn ui_logout(session: Session) -> Redirect {
    session.destroy();
    Redirect::see_other(page::HOME)
}

#[handler]
async fn ui_logout_everywhere(
    Data(engine): Data<&page::Engine>,
    session: Session,
    headers: &HeaderMap,
) -> Response {
    match page::logout_others(&**engine, &session, user_agent(headers)).await {
        Ok(n) => {
            session.flash_message(Some(page::logged_out_others(n)));
            Redirect::see_other(page::HOME).into_response()
        }
        Err(failure) => answer(failure),
    }
}

#[handler]
fn ui_renew(session: Session) -> Redirect {
    session.renew();
    session.flash_message(Some(page::RENEWED.to_owned()));
    Redirect::see_other(page::HOME)
}

#[handler]
fn ui_regenerate(session: Session) -> Redirect {
    session.regenerate();
    session.flash_message(Some(page::REGENERATED.to_owned()));
    Redirect::see_other(page::HOME)
}

#[handler]
fn ui_big(session: Session) -> Redirect {
    session.set_data(Some(page::big_data()));
    session.flash_message(Some(page::STORED.to_owned()));
    Redirect::see_other(page::HOME)
}

#[handler]
fn ui_clear(session: Session) -> Redirect {
    session.set_data(None);
    session.flash_message(Some(page::CLEARED.to_owned()));
    Redirect::see_other(page::HOME)
}

/// The demo routes behind the session middleware.
/// Public: the behaviour suite (`tests/tests/adapters`) runs it.
pub fn app<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> impl Endpoint + 'static {
    Route::new()
        .at("/", get(home))
        .at("/ui/login", post(ui_login))
        .at("/ui/logout", post(ui_logout))
        .at("/ui/logout-everywhere", post(ui_logout_everywhere))
        .at("/ui/renew", post(ui_renew))
        .at("/ui/regenerate", post(ui_regenerate))
        .at("/ui/big", post(ui_big))
        .at("/ui/clear", post(ui_clear))
        .at("/login", post(login))
        .at("/me", get(me))
        .at("/logout", post(logout))
        .at("/flash", post(set_flash).get(get_flash))
        .at("/reflash", post(reflash))
        .at("/renew", post(renew))
        .at("/count", get(count))
        .at("/data", get(get_data).put(put_data))
        .at("/devices", get(devices))
        .at("/logout-everywhere", post(logout_everywhere))
        .data(page::accounts(engine.clone()))
        .with(SessionMiddleware::new(engine))
}

async fn serve<S: SessionIndex, E: Encoder>(
    engine: SessionEngine<S, E>,
    port: u16,
) -> std::io::Result<()> {
    let acceptor = TcpListener::bind(("127.0.0.1", port))
        .into_acceptor()
        .await?;
    tracing::info!("listening on http://127.0.0.1:{port}");
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app(engine),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

fn port() -> u16 {
    std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    init_tracing();
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
    let port = port();
    match std::env::var("SESSION_STORE").ok().as_deref() {
        // Stateless: a small store of revocations makes "log out other
        // sessions" work for cookies too (one read per logged-in request).
        None | Some("") => {
            let engine = builder.with_revocation_store(MemoryStore::new()).build()?;
            serve(engine, port).await?;
        }
        Some("memory") => serve(builder.with_store(MemoryStore::new()).build()?, port).await?,
        Some(other) => {
            return Err(format!(
                "SESSION_STORE={other} is not supported by this example: use `memory` or leave it unset"
            )
            .into());
        }
    }
    Ok(())
}
