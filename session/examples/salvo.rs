//! The demo server on salvo, with a typed session and the `Required` guard.
//!
//! ```text
//! SESSION_SECRET=a-secret-of-at-least-32-characters!! cargo run -p sealed-session --example salvo --features salvo
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

use salvo::prelude::*;
use sealed_session::adapters::salvo::SessionHoop;
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

/// The hoop that hands the per-user routes the engine, in the depot.
struct WithEngine(page::Engine);

#[handler]
impl WithEngine {
    async fn handle(&self, depot: &mut Depot) {
        depot.insert_typed(self.0.clone());
    }
}

/// The engine `WithEngine` put in the depot.
fn engine(depot: &Depot) -> page::Engine {
    depot
        .get_typed::<page::Engine>()
        .expect("the router's WithEngine hoop runs first")
        .clone()
}

/// The request's `User-Agent`, the session's label at login.
fn user_agent(req: &Request) -> Option<String> {
    req.header::<String>("user-agent")
}

/// Sends a per-user route's answer.
fn answer((status, body): page::Answer, res: &mut Response) {
    res.status_code(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if !body.is_empty() {
        res.render(Text::Plain(body));
    }
}

#[handler]
async fn login(session: Session, req: &mut Request, res: &mut Response) {
    let Some(user) = req.query::<String>("user") else {
        res.status_code(StatusCode::BAD_REQUEST);
        return;
    };
    session.regenerate();
    page::own(&session, &user, user_agent(req).as_deref());
    session.set_user_id(Some(user));
    res.status_code(StatusCode::NO_CONTENT);
}

/// `GET /devices`: the user's sessions, one a line.
#[handler]
async fn devices(session: Session, depot: &mut Depot, res: &mut Response) {
    let engine = engine(depot);
    answer(page::devices_route(&*engine, &session).await, res);
}

/// `POST /logout-everywhere`: logs out the user's other sessions.
#[handler]
async fn logout_everywhere(
    session: Session,
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) {
    let engine = engine(depot);
    let user_agent = user_agent(req);
    answer(
        page::logout_everywhere_route(&*engine, &session, user_agent.as_deref()).await,
        res,
    );
}

/// `401 Unauthorised` unless logged in; the handler gets the id itself.
#[handler]
async fn me(user_id: Required<DemoSession, UserId>) -> String {
    user_id.into_value()
}

#[handler]
async fn logout(session: Session, res: &mut Response) {
    session.destroy();
    res.status_code(StatusCode::NO_CONTENT);
}

#[handler]
async fn set_flash(session: Session, req: &mut Request, res: &mut Response) {
    let Some(msg) = req.query::<String>("msg") else {
        res.status_code(StatusCode::BAD_REQUEST);
        return;
    };
    session.flash_message(Some(msg));
    res.status_code(StatusCode::NO_CONTENT);
}

#[handler]
async fn get_flash(session: Session) -> String {
    session.message().unwrap_or_default()
}

#[handler]
async fn reflash(session: Session, res: &mut Response) {
    session.reflash();
    res.status_code(StatusCode::NO_CONTENT);
}

#[handler]
async fn renew(session: Session, res: &mut Response) {
    session.renew();
    res.status_code(StatusCode::NO_CONTENT);
}

#[handler]
async fn count(session: Session) -> String {
    let n = session.count() + 1;
    session.set_count(n);
    n.to_string()
}

#[handler]
async fn put_data(session: Session, req: &mut Request, res: &mut Response) {
    let Some(body) = req
        .payload()
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
    else {
        res.status_code(StatusCode::BAD_REQUEST);
        return;
    };
    session.set_data(Some(body).filter(|b| !b.is_empty()));
    res.status_code(StatusCode::NO_CONTENT);
}

#[handler]
async fn get_data(session: Session) -> String {
    session.data().unwrap_or_default()
}

/// `GET /`: the demo page; counts the visit and shows the flash once.
#[handler]
async fn home(session: Session, depot: &mut Depot, res: &mut Response) {
    let visits = session.count() + 1;
    session.set_count(visits);
    let listed = page::page_devices(&*engine(depot), &session).await;
    res.render(Text::Html(page::render(&page::Page {
        user: session.user_id(),
        count: visits,
        flash: session.message(),
        data_len: session.data().map_or(0, |d| d.len()),
        devices: listed,
    })));
}

#[handler]
async fn ui_login(session: Session, req: &mut Request, res: &mut Response) {
    let user = req.form::<String>("user").await.unwrap_or_default();
    let user = user.trim();
    if !user.is_empty() {
        session.regenerate();
        page::own(&session, user, user_agent(req).as_deref());
        session.set_user_id(Some(user.to_owned()));
    }
    session.flash_message(Some(page::welcome(user)));
    res.render(Redirect::other(page::HOME));
}

#[handler]
async fn ui_logout(session: Session, res: &mut Response) {
    session.destroy();
    res.render(Redirect::other(page::HOME));
}

#[handler]
async fn ui_logout_everywhere(
    session: Session,
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
) {
    let engine = engine(depot);
    let user_agent = user_agent(req);
    match page::logout_others(&*engine, &session, user_agent.as_deref()).await {
        Ok(n) => {
            session.flash_message(Some(page::logged_out_others(n)));
            res.render(Redirect::other(page::HOME));
        }
        Err(failure) => answer(failure, res),
    }
}

#[handler]
async fn ui_renew(session: Session, res: &mut Response) {
    session.renew();
    session.flash_message(Some(page::RENEWED.to_owned()));
    res.render(Redirect::other(page::HOME));
}

#[handler]
async fn ui_regenerate(session: Session, res: &mut Response) {
    session.regenerate();
    session.flash_message(Some(page::REGENERATED.to_owned()));
    res.render(Redirect::other(page::HOME));
}

#[handler]
async fn ui_big(session: Session, res: &mut Response) {
    session.set_data(Some(page::big_data()));
    session.flash_message(Some(page::STORED.to_owned()));
    res.render(Redirect::other(page::HOME));
}

#[handler]
async fn ui_clear(session: Session, res: &mut Response) {
    session.set_data(None);
    session.flash_message(Some(page::CLEARED.to_owned()));
    res.render(Redirect::other(page::HOME));
}

/// The demo routes behind the session hoop.
/// Public: the behaviour suite (`tests/tests/adapters`) runs it.
pub fn router<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Router {
    Router::new()
        .hoop(WithEngine(page::accounts(engine.clone())))
        .hoop(SessionHoop::new(engine))
        .get(home)
        .push(Router::with_path("ui/login").post(ui_login))
        .push(Router::with_path("ui/logout").post(ui_logout))
        .push(Router::with_path("ui/logout-everywhere").post(ui_logout_everywhere))
        .push(Router::with_path("ui/renew").post(ui_renew))
        .push(Router::with_path("ui/regenerate").post(ui_regenerate))
        .push(Router::with_path("ui/big").post(ui_big))
        .push(Router::with_path("ui/clear").post(ui_clear))
        .push(Router::with_path("login").post(login))
        .push(Router::with_path("me").get(me))
        .push(Router::with_path("logout").post(logout))
        .push(Router::with_path("flash").post(set_flash).get(get_flash))
        .push(Router::with_path("reflash").post(reflash))
        .push(Router::with_path("renew").post(renew))
        .push(Router::with_path("count").get(count))
        .push(Router::with_path("data").get(get_data).put(put_data))
        .push(Router::with_path("devices").get(devices))
        .push(Router::with_path("logout-everywhere").post(logout_everywhere))
}

async fn serve<S: SessionIndex, E: Encoder>(
    engine: SessionEngine<S, E>,
    port: u16,
) -> std::io::Result<()> {
    let acceptor = TcpListener::new(("127.0.0.1", port))
        .try_bind()
        .await
        .map_err(std::io::Error::other)?;
    tracing::info!("listening on http://127.0.0.1:{port}");
    Server::new(acceptor).serve(router(engine)).await;
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
