//! salvo 1: the [`SessionHoop`] handler, [`Session<T>`] as an extractor, and
//! [`SessionDepotExt::session`] for hoops and handlers that work with the
//! depot.
//!
//! The hoop costs a route that never asks for the session almost nothing:
//! no cookie parsing, no decode, no store call, no `Set-Cookie`. The
//! session is loaded when a handler first asks for it, and committed after
//! the rest of the chain ran.
//!
//! ```no_run
//! use salvo::prelude::*;
//! use sealed_session::adapters::salvo::SessionHoop;
//! use sealed_session::{Secret, Session, SessionEngine, SessionMap};
//!
//! #[handler]
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
//! let router = Router::new()
//!     .hoop(SessionHoop::new(engine))
//!     .push(Router::with_path("count").get(count));
//! let acceptor = TcpListener::new("127.0.0.1:3000").bind().await;
//! Server::new(acceptor).serve(router).await;
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
//! A failing store makes the extractor answer `500` ("Session store
//! unavailable", logged at `error`); with the depot,
//! [`SessionDepotExt::session`] returns the [`SessionRejection`] for you to
//! handle or [`render`](salvo::Response::render). A failing commit replaces
//! the response by a `500`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use salvo::extract::Metadata;
use salvo::http::{ResBody, StatusCode};
use salvo::writing::Text;
use salvo::{Depot, Extractible, FlowCtrl, Handler, Request, Response, Scribe, async_trait};

use super::lazy::{self, LoadError, SharedEngine, Slot};
use crate::data::SessionData;
use crate::encoder::Encoder;
use crate::engine::SessionEngine;
use crate::error::Error;
use crate::require::{MissingField, Required, RequiredField};
use crate::session::Session;
use crate::store::{RequestContext, Store};

/// Adds sessions to a router: `Router::new().hoop(SessionHoop::new(engine))`.
pub struct SessionHoop<S, E> {
    engine: SessionEngine<S, E>,
    shared: SharedEngine,
}

impl<S: Store, E: Encoder> SessionHoop<S, E> {
    /// A hoop serving sessions from `engine`.
    #[must_use]
    pub fn new(engine: SessionEngine<S, E>) -> Self {
        let shared = SharedEngine::new(&engine);
        Self { engine, shared }
    }
}

impl<S, E> Clone for SessionHoop<S, E> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, E> fmt::Debug for SessionHoop<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionHoop")
            .field("engine", &self.engine)
            .finish()
    }
}

#[async_trait]
impl<S: Store, E: Encoder> Handler for SessionHoop<S, E> {
    async fn handle(
        &self,
        req: &mut Request,
        depot: &mut Depot,
        res: &mut Response,
        ctrl: &mut FlowCtrl,
    ) {
        let slot = Arc::new(Slot::new(&self.shared));
        depot.insert_typed(SlotHandle(Arc::clone(&slot)));
        ctrl.call_next(req, depot, res).await;
        let status = res.status_code.unwrap_or(StatusCode::OK);
        match slot.commit(status.as_u16()).await {
            Ok(set_cookies) => set_cookies.apply_to(res.headers_mut()),
            Err(failed) => {
                res.replace_body(ResBody::None);
                res.status_code(
                    StatusCode::from_u16(failed.status())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                );
                res.render(Text::Plain(failed.body()));
            }
        }
    }
}

/// Where the hoop and the extractor meet.
#[derive(Clone)]
struct SlotHandle(Arc<Slot>);

/// The request's session, loaded on first use.
async fn load<T: SessionData>(
    req: &Request,
    slot: Option<Arc<Slot>>,
) -> Result<Session<T>, SessionRejection> {
    let Some(slot) = slot else {
        tracing::error!("session unavailable: SessionHoop is not installed on this route");
        return Err(SessionRejection::MissingHoop);
    };
    let context = || {
        RequestContext::new(
            req.method().clone(),
            req.uri().clone(),
            req.headers().clone(),
        )
        .with_peer_addr(req.remote_addr().clone().into_std())
    };
    slot.session(|cookies| cookies.find(req.headers()), context)
        .await
        .map_err(Into::into)
}

fn slot_in(depot: &Depot) -> Option<Arc<Slot>> {
    depot
        .get_typed::<SlotHandle>()
        .ok()
        .map(|SlotHandle(slot)| Arc::clone(slot))
}

/// Reaching the session through the depot, in hoops and handlers:
/// `depot.session::<T>(req).await`.
pub trait SessionDepotExt {
    /// The request's session, loaded on the first call.
    ///
    /// # Errors
    ///
    /// [`SessionRejection`] when the [`SessionHoop`] is missing or the store
    /// failed; `res.render(rejection)` answers the `500`.
    fn session<T: SessionData>(
        &self,
        req: &Request,
    ) -> impl Future<Output = Result<Session<T>, SessionRejection>> + Send;
}

impl SessionDepotExt for Depot {
    fn session<T: SessionData>(
        &self,
        req: &Request,
    ) -> impl Future<Output = Result<Session<T>, SessionRejection>> + Send {
        load(req, slot_in(self))
    }
}

impl<'ex, T: SessionData> Extractible<'ex> for Session<T> {
    fn metadata() -> &'static Metadata {
        static METADATA: Metadata = Metadata::new("Session");
        &METADATA
    }

    #[allow(refining_impl_trait)]
    async fn extract(
        req: &'ex mut Request,
        depot: &'ex mut Depot,
    ) -> Result<Self, SessionRejection> {
        load(req, slot_in(depot)).await
    }
}

impl<'ex, T: SessionData, F: RequiredField<T>> Extractible<'ex> for Required<T, F> {
    fn metadata() -> &'static Metadata {
        static METADATA: Metadata = Metadata::new("Required");
        &METADATA
    }

    #[allow(refining_impl_trait)]
    async fn extract(
        req: &'ex mut Request,
        depot: &'ex mut Depot,
    ) -> Result<Self, RequiredRejection> {
        let session = load::<T>(req, slot_in(depot)).await?;
        Ok(Self::from_session(session)?)
    }
}

/// Why a handler could not get its [`Session`]: a `500`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not behind a [`SessionHoop`].
    #[error(
        "SessionHoop is not installed on this route: add `.hoop(SessionHoop::new(engine))` \
         to the router"
    )]
    MissingHoop,
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

impl Scribe for SessionRejection {
    fn render(self, res: &mut Response) {
        let body = match self {
            Self::MissingHoop => "SessionHoop is not installed on this route",
            Self::TypeMismatch { .. } => lazy::TYPE_MISMATCH,
            Self::Load(_) => lazy::LOAD_FAILED,
        };
        res.status_code(StatusCode::INTERNAL_SERVER_ERROR);
        res.render(Text::Plain(body));
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

impl Scribe for RequiredRejection {
    fn render(self, res: &mut Response) {
        match self {
            Self::Missing(missing) => {
                tracing::debug!(key = missing.key(), "required session field missing");
                res.status_code(missing.status());
                res.render(Text::Plain(missing.body()));
            }
            Self::Session(rejection) => rejection.render(res),
        }
    }
}
