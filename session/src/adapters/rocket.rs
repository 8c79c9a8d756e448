//! Rocket 0.5: the [`SessionFairing`] and [`Session<T>`] as a request guard.
//!
//! The fairing costs a route that never asks for the session almost
//! nothing: no cookie parsing, no decode, no store call, no `Set-Cookie`.
//! The session is loaded when a guard first asks for it, and committed in
//! the fairing's response callback.
//!
//! ```no_run
//! use rocket::{get, routes};
//! use sealed_session::adapters::rocket::SessionFairing;
//! use sealed_session::{Secret, Session, SessionEngine, SessionMap};
//!
//! #[get("/count")]
//! fn count(session: Session<SessionMap>) -> String {
//!     let n = session.get::<u64>("count").unwrap_or(0) + 1;
//!     session.set("count", n);
//!     n.to_string()
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = SessionEngine::builder()
//!     .with_secret(Secret::new(std::env::var("SESSION_SECRET")?)?)
//!     .build()?;
//! let _rocket = rocket::build()
//!     .attach(SessionFairing::new(engine))
//!     .mount("/", routes![count])
//!     .launch()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Requiring a field
//!
//! [`Required<T, F>`](crate::Required) is a request guard too: it fails
//! with `401` unless the field `F` is set.
//!
//! # Errors
//!
//! Guards that fail go to Rocket's catchers. The fairing registers the
//! session's [`catchers()`] at `/` when the Rocket ignites, so a failed
//! guard answers as on the other frameworks: `401` with `Unauthorised`
//! (the seed's body) and a session `500` with a short text saying what
//! failed (other 500s get a plain `Internal Server Error`).
//!
//! Your own catchers win: the fairing leaves out a status for which the
//! Rocket already has a catcher at `/` (for that code, or a `default`
//! one), so registering [`catchers()`] by hand, as before, still works;
//! catchers under a narrower base win on their paths as Rocket always
//! picks the longest base. [`SessionFairing::without_catchers`] registers
//! none.
//!
//! Take `Result<Session<T>, SessionRejection>` as the guard to handle a
//! failing store yourself. A failing commit replaces the response by a
//! `500`.

use std::fmt;
use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use rocket::catcher::{self, Catcher};
use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Response;
use rocket::{Build, Data, Rocket, async_trait};

use super::lazy::{self, LoadError, SharedEngine, Slot};
use crate::data::SessionData;
use crate::encoder::Encoder;
use crate::engine::SessionEngine;
use crate::error::Error;
use crate::require::{MissingField, Required, RequiredField};
use crate::session::Session;
use crate::store::Store;

/// Adds sessions to a Rocket: `rocket::build().attach(SessionFairing::new(engine))`.
///
/// When the Rocket ignites, it also registers the session's [`catchers()`]
/// at `/`, except for a status the Rocket already has a catcher for at `/`
/// (see the [module docs](self#errors)).
pub struct SessionFairing<S, E> {
    engine: SessionEngine<S, E>,
    shared: SharedEngine,
    catchers: bool,
}

impl<S: Store, E: Encoder> SessionFairing<S, E> {
    /// A fairing serving sessions from `engine`, registering the session
    /// catchers the Rocket does not have yet.
    #[must_use]
    pub fn new(engine: SessionEngine<S, E>) -> Self {
        let shared = SharedEngine::new(&engine);
        Self {
            engine,
            shared,
            catchers: true,
        }
    }

    /// Registers no catcher: failed session guards get Rocket's default
    /// pages (or your catchers), not the bodies the other adapters answer.
    /// [`catchers()`] can still be registered by hand, under any base.
    #[must_use]
    pub fn without_catchers(mut self) -> Self {
        self.catchers = false;
        self
    }
}

impl<S, E> Clone for SessionFairing<S, E> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            shared: self.shared.clone(),
            catchers: self.catchers,
        }
    }
}

impl<S, E> fmt::Debug for SessionFairing<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionFairing")
            .field("engine", &self.engine)
            .field("catchers", &self.catchers)
            .finish()
    }
}

/// The request-local slot; `None` when the fairing is not attached.
struct SlotHandle(Option<Arc<Slot>>);

/// The body a session catcher answers, set by a failing guard.
struct RejectionBody(OnceLock<&'static str>);

fn slot_of<'r>(req: &'r Request<'_>) -> Option<&'r Arc<Slot>> {
    req.local_cache(|| SlotHandle(None)).0.as_ref()
}

#[async_trait]
impl<S: Store, E: Encoder> Fairing for SessionFairing<S, E> {
    fn info(&self) -> Info {
        Info {
            name: "sealed-session",
            kind: Kind::Ignite | Kind::Request | Kind::Response,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        if !self.catchers {
            return Ok(rocket);
        }
        // Registering a code the Rocket has at `/` would be a launch
        // error (a collision), and a `default` catcher at `/` is the app's
        // answer for every code: both are left to the app.
        let missing: Vec<Catcher> = catchers()
            .into_iter()
            .filter(|ours| {
                !rocket.catchers().any(|theirs| {
                    theirs.base.path().segments().next().is_none()
                        && (theirs.code.is_none() || theirs.code == ours.code)
                })
            })
            .collect();
        Ok(rocket.register("/", missing))
    }

    async fn on_request(&self, req: &mut Request<'_>, _data: &mut Data<'_>) {
        req.local_cache(|| SlotHandle(Some(Arc::new(Slot::new(&self.shared)))));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(slot) = slot_of(req) else {
            return;
        };
        match slot.commit(res.status().code).await {
            Ok(set_cookies) => {
                for value in set_cookies {
                    // Our own `Set-Cookie` values: always visible ASCII.
                    if let Ok(value) = value.to_str() {
                        res.adjoin_raw_header("Set-Cookie", value.to_owned());
                    }
                }
            }
            Err(failed) => {
                let body = failed.body();
                *res = Response::build()
                    .status(Status::new(failed.status()))
                    .header(ContentType::Plain)
                    .sized_body(body.len(), Cursor::new(body))
                    .finalize();
            }
        }
    }
}

/// The request's session, loaded on first use.
async fn load<T: SessionData>(req: &Request<'_>) -> Result<Session<T>, SessionRejection> {
    let Some(slot) = slot_of(req) else {
        tracing::error!("session unavailable: SessionFairing is not attached");
        return Err(SessionRejection::MissingFairing);
    };
    let cookies = req.headers().get("Cookie");
    let context = || {
        let mut headers = http::HeaderMap::new();
        for header in req.headers().iter() {
            lazy::append_header(
                &mut headers,
                header.name().as_str(),
                header.value().as_bytes(),
            );
        }
        lazy::context_from_text(
            req.method().as_str(),
            &req.uri().to_string(),
            headers,
            req.remote(),
        )
    };
    slot.session(|layer| layer.find_all(cookies), context)
        .await
        .map_err(Into::into)
}

/// Fails the guard, leaving the body for [`catchers()`].
fn reject<T, R>(
    req: &Request<'_>,
    status: Status,
    body: &'static str,
    rejection: R,
) -> Outcome<T, R> {
    // The first failure of the request names it.
    let _ = req
        .local_cache(|| RejectionBody(OnceLock::new()))
        .0
        .set(body);
    Outcome::Error((status, rejection))
}

#[async_trait]
impl<'r, T: SessionData> FromRequest<'r> for Session<T> {
    type Error = SessionRejection;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match load(req).await {
            Ok(session) => Outcome::Success(session),
            Err(rejection) => {
                let body = rejection.body();
                reject(req, Status::InternalServerError, body, rejection)
            }
        }
    }
}

#[async_trait]
impl<'r, T: SessionData, F: RequiredField<T>> FromRequest<'r> for Required<T, F> {
    type Error = RequiredRejection;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let result = match load::<T>(req).await {
            Ok(session) => Self::from_session(session).map_err(RequiredRejection::from),
            Err(rejection) => Err(RequiredRejection::from(rejection)),
        };
        match result {
            Ok(required) => Outcome::Success(required),
            Err(rejection) => {
                let (status, body) = rejection.status_and_body();
                reject(req, status, body, rejection)
            }
        }
    }
}

/// Catchers that answer a failed session guard the way the other adapters
/// do: `401 Unauthorised` for a missing [`Required`] field, and for a
/// `500` the session's short message ("Session store unavailable", …) or
/// else `Internal Server Error`.
///
/// [`SessionFairing`] registers them at `/` itself, unless the Rocket has
/// its own catcher for the status there or the fairing was built
/// [`without_catchers`](SessionFairing::without_catchers). Register them
/// by hand (`.register("/api", catchers())`) to use them under a narrower
/// base only; under their base they catch every 401 and 500.
#[must_use]
pub fn catchers() -> Vec<Catcher> {
    vec![
        Catcher::new(401, unauthorised),
        Catcher::new(500, server_error),
    ]
}

fn unauthorised<'r>(status: Status, req: &'r Request<'_>) -> catcher::BoxFuture<'r> {
    Box::pin(async move { text(status, "Unauthorised", req) })
}

fn server_error<'r>(status: Status, req: &'r Request<'_>) -> catcher::BoxFuture<'r> {
    let body = req
        .local_cache(|| RejectionBody(OnceLock::new()))
        .0
        .get()
        .copied()
        .unwrap_or("Internal Server Error");
    Box::pin(async move { text(status, body, req) })
}

fn text<'r>(status: Status, body: &'static str, _req: &'r Request<'_>) -> catcher::Result<'r> {
    Ok(Response::build()
        .status(status)
        .header(ContentType::Plain)
        .sized_body(body.len(), Cursor::new(body))
        .finalize())
}

/// Why a guard could not give a [`Session`]: a `500`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The Rocket has no [`SessionFairing`].
    #[error(
        "SessionFairing is not attached: add `.attach(SessionFairing::new(engine))` to the Rocket"
    )]
    MissingFairing,
    /// The session was already extracted in this request as another type.
    #[error(
        "the session was already extracted as another type in this request; ask for `Session<{wanted}>` everywhere"
    )]
    TypeMismatch {
        /// The type asked for the second time.
        wanted: &'static str,
    },
    /// The store failed while loading.
    #[error("the session could not be loaded")]
    Load(#[source] Error),
}

impl From<LoadError> for SessionRejection {
    fn from(error: LoadError) -> Self {
        match error {
            LoadError::TypeMismatch { wanted } => Self::TypeMismatch { wanted },
            LoadError::Load(error) => Self::Load(error),
        }
    }
}

impl SessionRejection {
    /// The short body [`catchers()`] answers with.
    fn body(&self) -> &'static str {
        match self {
            Self::MissingFairing => "SessionFairing is not attached",
            Self::TypeMismatch { .. } => lazy::TYPE_MISMATCH,
            Self::Load(_) => lazy::LOAD_FAILED,
        }
    }
}

/// Why a guard could not give a [`Required`] session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequiredRejection {
    /// The field is not set: `401 Unauthorised`.
    #[error(transparent)]
    Missing(#[from] MissingField),
    /// There is no session to look in: see [`SessionRejection`].
    #[error(transparent)]
    Session(#[from] SessionRejection),
}

impl RequiredRejection {
    fn status_and_body(&self) -> (Status, &'static str) {
        match self {
            Self::Missing(missing) => {
                tracing::debug!(key = missing.key(), "required session field missing");
                (Status::Unauthorized, missing.body())
            }
            Self::Session(rejection) => (Status::InternalServerError, rejection.body()),
        }
    }
}
