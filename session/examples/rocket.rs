//! The demo server on Rocket, with a typed session and the `Required` guard.
//!
//! ```text
//! SESSION_SECRET=a-secret-of-at-least-32-characters!! cargo run -p sealed-session --example rocket --features rocket
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

use rocket::config::{Config, LogLevel};
use rocket::form::Form;
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Redirect;
use rocket::response::content::RawHtml;
use rocket::{Build, Either, Rocket, State, get, post, put, routes};
use sealed_session::adapters::rocket::SessionFairing;
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

/// The request's `User-Agent`, the session's label at login.
struct UserAgent(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for UserAgent {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let user_agent = request.headers().get_one("User-Agent");
        Outcome::Success(Self(user_agent.map(str::to_owned)))
    }
}

/// A per-user route's answer as a response.
fn answer((status, body): page::Answer) -> (Status, String) {
    (
        Status::from_code(status).unwrap_or(Status::InternalServerError),
        body,
    )
}

#[post("/login?<user>")]
fn login(session: Session, user_agent: UserAgent, user: String) -> Status {
    session.regenerate();
    page::own(&session, &user, user_agent.0.as_deref());
    session.set_user_id(Some(user));
    Status::NoContent
}

/// `GET /devices`: the user's sessions, one a line.
#[get("/devices")]
async fn devices(engine: &State<page::Engine>, session: Session) -> (Status, String) {
    answer(page::devices_route(&***engine, &session).await)
}

/// `POST /logout-everywhere`: logs out the user's other sessions.
#[post("/logout-everywhere")]
async fn logout_everywhere(
    engine: &State<page::Engine>,
    session: Session,
    user_agent: UserAgent,
) -> (Status, String) {
    let user_agent = user_agent.0.as_deref();
    answer(page::logout_everywhere_route(&***engine, &session, user_agent).await)
}

/// `401 Unauthorised` unless logged in; the handler gets the id itself.
#[get("/me")]
fn me(user_id: Required<DemoSession, UserId>) -> String {
    user_id.into_value()
}

#[post("/logout")]
fn logout(session: Session) -> Status {
    session.destroy();
    Status::NoContent
}

#[post("/flash?<msg>")]
fn set_flash(session: Session, msg: String) -> Status {
    session.flash_message(Some(msg));
    Status::NoContent
}

#[get("/flash")]
fn get_flash(session: Session) -> String {
    session.message().unwrap_or_default()
}

#[post("/reflash")]
fn reflash(session: Session) -> Status {
    session.reflash();
    Status::NoContent
}

#[post("/renew")]
fn renew(session: Session) -> Status {
    session.renew();
    Status::NoContent
}

#[get("/count")]
fn count(session: Session) -> String {
    let count = session.count() + 1;
    session.set_count(count);
    count.to_string()
}

#[put("/data", data = "<body>")]
fn put_data(session: Session, body: String) -> Status {
    session.set_data(Some(body).filter(|b| !b.is_empty()));
    Status::NoContent
}

#[get("/data")]
fn get_data(session: Session) -> String {
    session.data().unwrap_or_default()
}

/// The login form's fields.
#[derive(rocket::FromForm)]
struct LoginForm {
    user: String,
}

/// `GET /`: the demo page; counts the visit and shows the flash once.
#[get("/")]
async fn home(engine: &State<page::Engine>, session: Session) -> RawHtml<String> {
    let count = session.count() + 1;
    session.set_count(count);
    RawHtml(page::render(&page::Page {
        user: session.user_id(),
        count,
        flash: session.message(),
        data_len: session.data().map_or(0, |d| d.len()),
        devices: page::page_devices(&***engine, &session).await,
    }))
}

#[post("/ui/login", data = "<form>")]
fn ui_login(session: Session, user_agent: UserAgent, form: Form<LoginForm>) -> Redirect {
    let user = form.user.trim();
    if !user.is_empty() {
        session.regenerate();
        page::own(&session, user, user_agent.0.as_deref());
        session.set_user_id(Some(user.to_owned()));
    }
    session.flash_message(Some(page::welcome(user)));
    Redirect::to(page::HOME)
}

#[post("/ui/logout")]
fn ui_logout(session: Session) -> Redirect {
    session.destroy();
    Redirect::to(page::HOME)
}

#[post("/ui/logout-everywhere")]
async fn ui_logout_everywhere(
    engine: &State<page::Engine>,
    session: Session,
    user_agent: UserAgent,
) -> Either<Redirect, (Status, String)> {
    match page::logout_others(&***engine, &session, user_agent.0.as_deref()).await {
        Ok(n) => {
            session.flash_message(Some(page::logged_out_others(n)));
            Either::Left(Redirect::to(page::HOME))
        }
        Err(failure) => Either::Right(answer(failure)),
    }
}

#[post("/ui/renew")]
fn ui_renew(session: Session) -> Redirect {
    session.renew();
    session.flash_message(Some(page::RENEWED.to_owned()));
    Redirect::to(page::HOME)
}

#[post("/ui/regenerate")]
fn ui_regenerate(session: Session) -> Redirect {
    session.regenerate();
    session.flash_message(Some(page::REGENERATED.to_owned()));
    Redirect::to(page::HOME)
}

#[post("/ui/big")]
fn ui_big(session: Session) -> Redirect {
    session.set_data(Some(page::big_data()));
    session.flash_message(Some(page::STORED.to_owned()));
    Redirect::to(page::HOME)
}

#[post("/ui/clear")]
fn ui_clear(session: Session) -> Redirect {
    session.set_data(None);
    session.flash_message(Some(page::CLEARED.to_owned()));
    Redirect::to(page::HOME)
}

/// The demo routes with the session fairing (which registers the session
/// catchers itself), on 127.0.0.1:`port` (0: any).
/// Public: the behaviour suite (`tests/tests/adapters`) runs it.
pub fn rocket<S: SessionIndex, E: Encoder>(
    engine: SessionEngine<S, E>,
    port: u16,
) -> Rocket<Build> {
    let config = Config {
        address: std::net::Ipv4Addr::LOCALHOST.into(),
        port,
        log_level: LogLevel::Critical,
        ..Config::release_default()
    };
    rocket::custom(config)
        // Also registers the session catchers (401 `Unauthorised`, …).
        .manage(page::accounts(engine.clone()))
        .attach(SessionFairing::new(engine))
        .mount(
            "/",
            routes![
                home,
                ui_login,
                ui_logout,
                ui_logout_everywhere,
                ui_renew,
                ui_regenerate,
                ui_big,
                ui_clear,
                login,
                me,
                logout,
                set_flash,
                get_flash,
                reflash,
                renew,
                count,
                put_data,
                get_data,
                devices,
                logout_everywhere
            ],
        )
}

async fn serve<S: SessionIndex, E: Encoder>(
    engine: SessionEngine<S, E>,
    port: u16,
) -> Result<(), Box<dyn Error>> {
    tracing::info!("listening on http://127.0.0.1:{port}");
    let _ = rocket(engine, port).launch().await?;
    Ok(())
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

#[rocket::main]
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
