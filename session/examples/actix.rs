//! The demo server on actix-web, with a typed session and the `Required` guard.
//!
//! ```text
//! SESSION_SECRET=a-secret-of-at-least-32-characters!! cargo run -p sealed-session --example actix --features actix-web
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

use actix_web::{App, HttpResponse, HttpServer, web};
use sealed_session::adapters::actix_web::SessionMiddleware;
use sealed_session::{
    CookieSizePolicy, Encoder, Keyring, MemoryStore, Required, Secret, SessionData, SessionEngine,
    Store,
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

async fn login(session: Session, query: web::Query<LoginQuery>) -> HttpResponse {
    session.regenerate();
    session.set_user_id(Some(query.into_inner().user));
    HttpResponse::NoContent().finish()
}

/// `401 Unauthorised` unless logged in; the handler gets the id itself.
async fn me(user_id: Required<DemoSession, UserId>) -> String {
    user_id.into_value()
}

async fn logout(session: Session) -> HttpResponse {
    session.destroy();
    HttpResponse::NoContent().finish()
}

async fn set_flash(session: Session, query: web::Query<FlashQuery>) -> HttpResponse {
    session.flash_message(Some(query.into_inner().msg));
    HttpResponse::NoContent().finish()
}

async fn get_flash(session: Session) -> String {
    session.message().unwrap_or_default()
}

async fn reflash(session: Session) -> HttpResponse {
    session.reflash();
    HttpResponse::NoContent().finish()
}

async fn renew(session: Session) -> HttpResponse {
    session.renew();
    HttpResponse::NoContent().finish()
}

async fn count(session: Session) -> String {
    let count = session.count() + 1;
    session.set_count(count);
    count.to_string()
}

async fn put_data(session: Session, body: String) -> HttpResponse {
    session.set_data(Some(body).filter(|b| !b.is_empty()));
    HttpResponse::NoContent().finish()
}

async fn get_data(session: Session) -> String {
    session.data().unwrap_or_default()
}

fn see_home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, page::HOME))
        .finish()
}

/// `GET /`: the demo page; counts the visit and shows the flash once.
async fn home(session: Session) -> HttpResponse {
    let count = session.count() + 1;
    session.set_count(count);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page::render(&page::Page {
            user: session.user_id(),
            count,
            flash: session.message(),
            data_len: session.data().map_or(0, |d| d.len()),
        }))
}

async fn ui_login(session: Session, form: web::Form<LoginQuery>) -> HttpResponse {
    let user = form.user.trim();
    if !user.is_empty() {
        session.regenerate();
        session.set_user_id(Some(user.to_owned()));
    }
    session.flash_message(Some(page::welcome(user)));
    see_home()
}

async fn ui_logout(session: Session) -> HttpResponse {
    session.destroy();
    see_home()
}

async fn ui_renew(session: Session) -> HttpResponse {
    session.renew();
    session.flash_message(Some(page::RENEWED.to_owned()));
    see_home()
}

async fn ui_regenerate(session: Session) -> HttpResponse {
    session.regenerate();
    session.flash_message(Some(page::REGENERATED.to_owned()));
    see_home()
}

async fn ui_big(session: Session) -> HttpResponse {
    session.set_data(Some(page::big_data()));
    session.flash_message(Some(page::STORED.to_owned()));
    see_home()
}

async fn ui_clear(session: Session) -> HttpResponse {
    session.set_data(None);
    session.flash_message(Some(page::CLEARED.to_owned()));
    see_home()
}

/// The demo routes; the app wraps them in the session middleware.
/// Public: the behaviour suite (`tests/tests/adapters`) runs it.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(home))
        .route("/ui/login", web::post().to(ui_login))
        .route("/ui/logout", web::post().to(ui_logout))
        .route("/ui/renew", web::post().to(ui_renew))
        .route("/ui/regenerate", web::post().to(ui_regenerate))
        .route("/ui/big", web::post().to(ui_big))
        .route("/ui/clear", web::post().to(ui_clear))
        .route("/login", web::post().to(login))
        .route("/me", web::get().to(me))
        .route("/logout", web::post().to(logout))
        .route("/flash", web::post().to(set_flash))
        .route("/flash", web::get().to(get_flash))
        .route("/reflash", web::post().to(reflash))
        .route("/renew", web::post().to(renew))
        .route("/count", web::get().to(count))
        .route("/data", web::get().to(get_data))
        .route("/data", web::put().to(put_data));
}

/// The server on `listener`, not yet running.
/// Public: the behaviour suite (`tests/tests/adapters`) runs it.
pub fn server<S: Store, E: Encoder>(
    engine: SessionEngine<S, E>,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(SessionMiddleware::new(engine.clone()))
            .configure(routes)
    })
    .listen(listener)?
    .run())
}

async fn serve<S: Store, E: Encoder>(
    engine: SessionEngine<S, E>,
    port: u16,
) -> std::io::Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    tracing::info!("listening on http://127.0.0.1:{port}");
    server(engine, listener)?.await
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
        None | Some("") => serve(builder.build()?, port).await?,
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
