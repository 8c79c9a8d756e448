//! axum and tower: [`SessionLayer`] and the [`Session<T>`] extractor.
//!
//! The layer costs a route that never asks for the session almost nothing:
//! no cookie parsing, no decode, no store call, no `Set-Cookie`. The
//! session is loaded when a handler first extracts it, and committed after
//! the handler returns.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use sealed_session::{Secret, Session, SessionEngine, SessionMap, adapters::axum::SessionLayer};
//!
//! async fn count(session: Session<SessionMap>) -> String {
//!     let n = session.get::<u64>("count").unwrap_or(0) + 1;
//!     session.set("count", n);
//!     n.to_string()
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = SessionEngine::builder()
//!     .with_secret(Secret::new(std::env::var("SESSION_SECRET")?)?)
//!     .build()?;
//! let app = Router::new()
//!     .route("/count", get(count))
//!     .layer(SessionLayer::new(engine));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Around the whole router
//!
//! `Router::layer` wraps every route in the layer and boxes it again, which
//! costs each request 60 to 190 ns whatever the layer. Applied around the
//! router instead, the session layer costs a route that never asks for the
//! session about half as much as through `Router::layer` (see the book's
//! *Performance* page). Every request
//! then goes through it, 404s included, which costs them nothing more,
//! since nothing is loaded until a handler asks:
//!
//! ```no_run
//! use axum::{Router, ServiceExt, extract::Request, routing::get};
//! use sealed_session::{Secret, SessionEngine, adapters::axum::SessionLayer};
//! use tower::Layer as _;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = SessionEngine::builder()
//!     .with_secret(Secret::new(std::env::var("SESSION_SECRET")?)?)
//!     .build()?;
//! let router = Router::new().route("/", get(|| async { "hello" }));
//! let app = SessionLayer::new(engine).layer(router);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, ServiceExt::<Request>::into_make_service(app)).await?;
//! # Ok(()) }
//! ```
//!
//! # Requiring a field
//!
//! [`Required<T, F>`](crate::Required) extracts the session only when the
//! field `F` is set, and answers `401 Unauthorised` otherwise (the seed's
//! `verifySession`); the handler gets the value without its `Option`:
//!
//! ```
//! use sealed_session::{Required, SessionData};
//!
//! #[derive(SessionData, Default)]
//! struct MySession {
//!     #[session(required)]
//!     user_id: Option<String>,
//! }
//!
//! async fn me(user_id: Required<MySession, UserId>) -> String {
//!     user_id.into_value()
//! }
//! # let _ = me;
//! ```
//!
//! # Errors
//!
//! A failing store reaches the handler as a [`SessionRejection`]: extract
//! `Result<Session<T>, SessionRejection>` to handle it yourself, or let it
//! answer `500` (logged at `error`). A failing commit (store down when
//! saving) replaces the response by a `500`, so the client never believes
//! a change was saved when it was not.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Request, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::lazy::{self, BoxFuture, CommitFailed, LoadError, SharedEngine, Slot};
use crate::data::SessionData;
use crate::encoder::Encoder;
use crate::engine::SessionEngine;
use crate::error::Error;
use crate::require::{MissingField, Required, RequiredField};
use crate::session::Session;
use crate::store::{RequestContext, Store};

/// Adds sessions to a router: `router.layer(SessionLayer::new(engine))`.
pub struct SessionLayer<S, E> {
    engine: SessionEngine<S, E>,
    shared: SharedEngine,
}

impl<S: Store, E: Encoder> SessionLayer<S, E> {
    /// A layer serving sessions from `engine`.
    #[must_use]
    pub fn new(engine: SessionEngine<S, E>) -> Self {
        let shared = SharedEngine::new(&engine);
        Self { engine, shared }
    }
}

impl<S, E> Clone for SessionLayer<S, E> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, E> fmt::Debug for SessionLayer<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("engine", &self.engine)
            .finish()
    }
}

impl<Svc, S, E> Layer<Svc> for SessionLayer<S, E> {
    type Service = SessionService<Svc, S, E>;
    fn layer(&self, inner: Svc) -> Self::Service {
        SessionService {
            inner,
            shared: self.shared.clone(),
            engine_type: PhantomData,
        }
    }
}

/// The service [`SessionLayer`] wraps around a router.
pub struct SessionService<Svc, S, E> {
    inner: Svc,
    // The engine behind one `Arc`: axum clones the service for each
    // request, so it holds nothing else.
    shared: SharedEngine,
    engine_type: PhantomData<fn() -> SessionEngine<S, E>>,
}

impl<Svc: Clone, S, E> Clone for SessionService<Svc, S, E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            engine_type: PhantomData,
        }
    }
}

impl<Svc, S, E> fmt::Debug for SessionService<Svc, S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("engine", &std::any::type_name::<SessionEngine<S, E>>())
            .finish_non_exhaustive()
    }
}

impl<Svc, S, E, ReqBody> Service<Request<ReqBody>> for SessionService<Svc, S, E>
where
    Svc: Service<Request<ReqBody>, Response = Response, Error = Infallible>,
    S: Store,
    E: Encoder,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture<Svc::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let slot = Slot::acquire(&self.shared);
        req.extensions_mut().insert(SlotHandle(Arc::clone(&slot)));
        ResponseFuture {
            inner: self.inner.call(req),
            slot: Some(slot),
            commit: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`SessionService`] call: the inner service's
    /// response, then the session's commit.
    ///
    /// A request whose handler never loaded the session, or left it
    /// unchanged, costs nothing here beyond polling the inner future; only
    /// a session to write allocates a commit future.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        slot: Option<Arc<Slot>>,
        commit: Option<BoxFuture<'static, Response>>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("committing", &self.commit.is_some())
            .finish_non_exhaustive()
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(commit) = this.commit {
            return commit.as_mut().poll(cx).map(Ok);
        }
        let Ok(response) = ready!(this.inner.poll(cx));
        let slot = this
            .slot
            .take()
            .expect("session ResponseFuture polled after completion");
        match slot.plan_commit(response.status().as_u16()) {
            Ok(None) => {
                Slot::release(slot);
                Poll::Ready(Ok(response))
            }
            Ok(Some(plan)) => {
                let mut commit: BoxFuture<'static, Response> = Box::pin(async move {
                    let result = slot.execute(plan).await;
                    Slot::release(slot);
                    with_commit(response, result)
                });
                let poll = commit.as_mut().poll(cx);
                if poll.is_pending() {
                    *this.commit = Some(commit);
                }
                poll.map(Ok)
            }
            Err(failed) => Poll::Ready(Ok(with_commit(response, Err(failed)))),
        }
    }
}

/// The handler's response with the commit's cookies, or the failure that
/// replaces it (the client must not believe an unsaved change was saved).
fn with_commit(
    mut response: Response,
    result: Result<crate::engine::SetCookies, CommitFailed>,
) -> Response {
    match result {
        Ok(set_cookies) => {
            set_cookies.apply_to(response.headers_mut());
            response
        }
        Err(failed) => {
            let status =
                StatusCode::from_u16(failed.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, failed.body()).into_response()
        }
    }
}

/// Where the layer and the extractor meet.
#[derive(Clone)]
struct SlotHandle(Arc<Slot>);

impl<St: Send + Sync, T: SessionData> FromRequestParts<St> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &St) -> Result<Self, Self::Rejection> {
        let Some(SlotHandle(slot)) = parts.extensions.get::<SlotHandle>().cloned() else {
            tracing::error!("session unavailable: SessionLayer is not installed on this route");
            return Err(SessionRejection::MissingLayer);
        };
        let parts = &*parts;
        let context = || {
            let peer = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| *addr);
            RequestContext::from_parts(parts).with_peer_addr(peer)
        };
        slot.session(|cookies| cookies.find(&parts.headers), context)
            .await
            .map_err(Into::into)
    }
}

impl From<LoadError> for SessionRejection {
    fn from(error: LoadError) -> Self {
        match error {
            LoadError::TypeMismatch { wanted } => Self::TypeMismatch { wanted },
            LoadError::Load(error) => Self::Load(error),
        }
    }
}

/// Why a handler could not get its [`Session`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not behind a [`SessionLayer`].
    #[error(
        "SessionLayer is not installed on this route: add `.layer(SessionLayer::new(engine))` \
         to the router (after the routes that use sessions)"
    )]
    MissingLayer,
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

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        let body = match self {
            Self::MissingLayer => "SessionLayer is not installed on this route",
            Self::TypeMismatch { .. } => lazy::TYPE_MISMATCH,
            Self::Load(_) => lazy::LOAD_FAILED,
        };
        (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
    }
}

impl<St: Send + Sync, T: SessionData, F: RequiredField<T>> FromRequestParts<St> for Required<T, F> {
    type Rejection = RequiredRejection;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let session = Session::<T>::from_request_parts(parts, state).await?;
        Ok(Self::from_session(session)?)
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

impl IntoResponse for RequiredRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Missing(missing) => {
                tracing::debug!(key = missing.key(), "required session field missing");
                (missing.status(), missing.body()).into_response()
            }
            Self::Session(rejection) => rejection.into_response(),
        }
    }
}
