//! poem 3: the [`SessionMiddleware`] and [`Session<T>`] as an extractor
//! ([`FromRequest`]).
//!
//! The middleware costs a route that never asks for the session almost
//! nothing: no cookie parsing, no decode, no store call, no `Set-Cookie`.
//! The session is loaded when a handler first extracts it, and committed
//! after the handler returns.
//!
//! ```no_run
//! use poem::listener::TcpListener;
//! use poem::{EndpointExt, Route, Server, get, handler};
//! use sealed_session::adapters::poem::SessionMiddleware;
//! use sealed_session::{Secret, Session, SessionEngine, SessionMap};
//!
//! #[handler]
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
//! let app = Route::new()
//!     .at("/count", get(count))
//!     .with(SessionMiddleware::new(engine));
//! Server::new(TcpListener::bind("127.0.0.1:3000")).run(app).await?;
//! # Ok(()) }
//! ```
//!
//! # Requiring a field
//!
//! [`Required<T, F>`](crate::Required) is an extractor too: it answers
//! `401 Unauthorised` unless the field `F` is set.
//!
//! # Errors
//!
//! A failing store reaches the handler as a [`SessionRejection`] (a
//! [`ResponseError`] answering `500`, logged at `error`): extract
//! `Result<Session<T>, poem::Error>` to handle it yourself. A failing
//! commit replaces the response by a `500`. The middleware turns the inner
//! endpoint's errors into their responses (as the server would) so that a
//! handler answering with an error still saves its session changes.

use std::fmt;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::{
    Endpoint, FromRequest, IntoResponse, Middleware, Request, RequestBody, Response,
    error::ResponseError,
};

use super::lazy::{self, LoadError, SharedEngine, Slot};
use crate::data::SessionData;
use crate::encoder::Encoder;
use crate::engine::SessionEngine;
use crate::error::Error;
use crate::require::{MissingField, Required, RequiredField};
use crate::session::Session;
use crate::store::{RequestContext, Store};

/// Adds sessions to an endpoint: `route.with(SessionMiddleware::new(engine))`.
pub struct SessionMiddleware<S, E> {
    engine: SessionEngine<S, E>,
    shared: SharedEngine,
}

impl<S: Store, E: Encoder> SessionMiddleware<S, E> {
    /// A middleware serving sessions from `engine`.
    #[must_use]
    pub fn new(engine: SessionEngine<S, E>) -> Self {
        let shared = SharedEngine::new(&engine);
        Self { engine, shared }
    }
}

impl<S, E> Clone for SessionMiddleware<S, E> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, E> fmt::Debug for SessionMiddleware<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("engine", &self.engine)
            .finish()
    }
}

impl<Ep: Endpoint, S, E> Middleware<Ep> for SessionMiddleware<S, E> {
    type Output = SessionEndpoint<Ep>;

    fn transform(&self, inner: Ep) -> Self::Output {
        SessionEndpoint {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The endpoint [`SessionMiddleware`] wraps around a route.
pub struct SessionEndpoint<Ep> {
    inner: Ep,
    shared: SharedEngine,
}

impl<Ep> fmt::Debug for SessionEndpoint<Ep> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionEndpoint").finish_non_exhaustive()
    }
}

impl<Ep: Endpoint> Endpoint for SessionEndpoint<Ep> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let slot = Slot::acquire(&self.shared);
        req.extensions_mut().insert(SlotHandle(Arc::clone(&slot)));
        let mut response = self.inner.get_response(req).await;
        let committed = slot.commit(response.status().as_u16()).await;
        Slot::release(slot);
        match committed {
            Ok(set_cookies) => set_cookies.apply_to(response.headers_mut()),
            Err(failed) => {
                let status = StatusCode::from_u16(failed.status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                response = (status, failed.body()).into_response();
            }
        }
        Ok(response)
    }
}

/// Where the middleware and the extractor meet.
#[derive(Clone)]
struct SlotHandle(Arc<Slot>);

/// The request's session, loaded on first use.
async fn load<T: SessionData>(req: &Request) -> Result<Session<T>, SessionRejection> {
    let Some(SlotHandle(slot)) = req.extensions().get::<SlotHandle>() else {
        tracing::error!("session unavailable: SessionMiddleware is not installed on this route");
        return Err(SessionRejection::MissingMiddleware);
    };
    let context = || {
        RequestContext::new(
            req.method().clone(),
            req.uri().clone(),
            req.headers().clone(),
        )
        .with_peer_addr(req.remote_addr().as_socket_addr().copied())
    };
    slot.session(|cookies| cookies.find(req.headers()), context)
        .await
        .map_err(Into::into)
}

impl<'a, T: SessionData> FromRequest<'a> for Session<T> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(load(req).await?)
    }
}

impl<'a, T: SessionData, F: RequiredField<T>> FromRequest<'a> for Required<T, F> {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let session = load::<T>(req).await?;
        Self::from_session(session).map_err(|missing| RequiredRejection::from(missing).into())
    }
}

/// Why a handler could not get its [`Session`]: a `500`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in a [`SessionMiddleware`].
    #[error(
        "SessionMiddleware is not installed on this route: add \
         `.with(SessionMiddleware::new(engine))` to the route"
    )]
    MissingMiddleware,
    /// The session was already extracted in this request as another type.
    #[error(
        "the session was already extracted as another type in this request; extract `Session<{wanted}>` everywhere"
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

impl ResponseError for SessionRejection {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn as_response(&self) -> Response {
        let body = match self {
            Self::MissingMiddleware => "SessionMiddleware is not installed on this route",
            Self::TypeMismatch { .. } => lazy::TYPE_MISMATCH,
            Self::Load(_) => lazy::LOAD_FAILED,
        };
        (self.status(), body).into_response()
    }
}

/// Why a handler could not get its [`Required`] session.
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

impl ResponseError for RequiredRejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::Missing(missing) => missing.status(),
            Self::Session(rejection) => rejection.status(),
        }
    }

    fn as_response(&self) -> Response {
        match self {
            Self::Missing(missing) => {
                tracing::debug!(key = missing.key(), "required session field missing");
                (missing.status(), missing.body()).into_response()
            }
            Self::Session(rejection) => rejection.as_response(),
        }
    }
}
