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

use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use sealed_session::adapters::actix_web::SessionMiddleware;
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

/// The demos' handle on the engine's per-user methods, as app data.
type Engine = web::Data<dyn page::Accounts>;

/// The request's `User-Agent`, the session's label at login.
fn user_agent(request: &HttpRequest) -> Option<&str> {
    request.headers().get(header::USER_AGENT)?.to_str().ok()
}

/// A per-user route's answer as a response.
fn answer((status, body): page::Answer) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

async fn login(
    session: Session,
    request: HttpRequest,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let user = query.into_inner().user;
    session.regenerate();
    page::own(&session, &user, user_agent(&request));
    session.set_user_id(Some(user));
    HttpResponse::NoContent().finish()
}

/// `GET /devices`: the user's sessions, one a line.
async fn devices(engine: Engine, session: Session) -> HttpResponse {
    answer(page::devices_route(&**engine, &session).await)
}

/// `POST /logout-everywhere`: logs out the user's other sessions.
async fn logout_everywhere(engine: Engine, session: Session, request: HttpRequest) -> HttpResponse {
    answer(page::logout_everywhere_route(&**engine, &session, user_agent(&request)).await)
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
async fn home(engine: Engine, session: Session) -> HttpResponse {
    let devices = page::page_devices(&**engine, &session).await;
    let count = session.count() + 1;
    session.set_count(count);
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page::render(&page::Page {
            user: session.user_id(),
            count,
            flash: session.message(),
            data_len: session.data().map_or(0, |d| d.len()),
            devices,
        }))
}

async fn ui_login(
    session: Session,
    request: HttpRequest,
    form: web::Form<LoginQuery>,
) -> HttpResponse {
    let user = form.user.trim();
    if !user.is_empty() {
        session.regenerate();
        page::own(&session, user, user_agent(&request));
        session.set_user_id(Some(user.to_owned()));
    }
    session.flash_message(Some(page::welcome(user)));
    see_home()
}

async fn ui_logout(session: Session) -> HttpResponse {
    session.destroy();
    see_home()
}

async fn ui_logout_everywhere(
    engine: Engine,
    session: Session,
    request: HttpRequest,
) -> HttpResponse {
    match page::logout_others(&**engine, &session, user_agent(&request)).await {
        Ok(n) => {
            session.flash_message(Some(page::logged_out_others(n)));
            see_home()
        }
        Err(failure) => answer(failure),
    }
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

/// The demo routes, with `engine` as the per-user routes' app data; the
/// app wraps them in the session middleware (on the same engine).
/// Public: the behaviour suite (`tests/tests/adapters`) runs it.
pub fn routes<S: SessionIndex, E: Encoder>(
    engine: &SessionEngine<S, E>,
) -> impl FnOnce(&mut web::ServiceConfig) + use<S, E> {
    let engine: Engine = web::Data::from(page::accounts(engine.clone()));
    move |config| {
        config.app_data(engine);
        demo_routes(config);
    }
}

fn demo_routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(home))
        .route("/ui/login", web::post().to(ui_login))
        .route("/ui/logout", web::post().to(ui_logout))
        .route(
            "/ui/logout-everywhere",
            web::post().to(ui_logout_everywhere),
        )
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
        .route("/data", web::put().to(put_data))
        .route("/devices", web::get().to(devices))
        .route("/logout-everywhere", web::post().to(logout_everywhere));
}

/// The server on `listener`, not yet running.
/// Public: the behaviour suite (`tests/tests/adapters`) runs it.
pub fn server<S: SessionIndex, E: Encoder>(
    engine: SessionEngine<S, E>,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(SessionMiddleware::new(engine.clone()))
            .configure(routes(&engine))
    })
    .listen(listener)?
    .run())
}

async fn serve<S: SessionIndex, E: Encoder>(
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
