//! actix-web 4: the [`SessionMiddleware`] and [`Session<T>`] as an extractor
//! ([`FromRequest`]).
//!
//! The middleware costs a route that never asks for the session almost
//! nothing: no cookie parsing, no decode, no store call, no `Set-Cookie`.
//! The session is loaded when a handler first extracts it, and committed
//! after the handler returns.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use sealed_session::adapters::actix_web::SessionMiddleware;
//! use sealed_session::{Secret, Session, SessionEngine, SessionMap};
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
//! HttpServer::new(move || {
//!     App::new()
//!         .wrap(SessionMiddleware::new(engine.clone()))
//!         .route("/count", web::get().to(count))
//! })
//! .bind(("127.0.0.1", 3000))?
//! .run()
//! .await?;
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
//! `Result<Session<T>, SessionRejection>` to handle it yourself. A failing
//! commit replaces the response by a `500`. When an inner service fails
//! with an `Err` (rather than answering an error response), the session is
//! not saved.

use std::fmt;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use super::lazy::{self, LoadError, SharedEngine, Slot};
use crate::data::SessionData;
use crate::encoder::Encoder;
use crate::engine::SessionEngine;
use crate::error::Error;
use crate::require::{MissingField, Required, RequiredField};
use crate::session::Session;
use crate::store::Store;

type LocalBoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T>>>;

/// Adds sessions to an app: `App::new().wrap(SessionMiddleware::new(engine))`.
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

impl<Svc, B, S, E> Transform<Svc, ServiceRequest> for SessionMiddleware<S, E>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<Svc>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: Svc) -> Self::Future {
        ready(Ok(SessionService {
            inner: Rc::new(service),
            shared: self.shared.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an app.
pub struct SessionService<Svc> {
    inner: Rc<Svc>,
    shared: SharedEngine,
}

impl<Svc> fmt::Debug for SessionService<Svc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService").finish_non_exhaustive()
    }
}

impl<Svc, B> Service<ServiceRequest> for SessionService<Svc>
where
    Svc: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(inner);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let slot = Arc::new(Slot::new(&self.shared));
        req.extensions_mut().insert(SlotHandle(Arc::clone(&slot)));
        let inner = Rc::clone(&self.inner);
        Box::pin(async move {
            let mut response = inner.call(req).await?;
            match slot.commit(response.status().as_u16()).await {
                Ok(set_cookies) => {
                    for value in set_cookies {
                        // Our own `Set-Cookie` values: always valid header bytes.
                        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
                            response.headers_mut().append(header::SET_COOKIE, value);
                        }
                    }
                    Ok(response.map_into_left_body())
                }
                Err(failed) => {
                    let status = actix_web::http::StatusCode::from_u16(failed.status())
                        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
                    let failed = HttpResponse::build(status)
                        .content_type("text/plain; charset=utf-8")
                        .body(failed.body());
                    Ok(response.into_response(failed).map_into_right_body())
                }
            }
        })
    }
}

/// Where the middleware and the extractor meet.
#[derive(Clone)]
struct SlotHandle(Arc<Slot>);

/// The request's session, loaded on first use.
async fn load<T: SessionData>(req: &HttpRequest) -> Result<Session<T>, SessionRejection> {
    let Some(SlotHandle(slot)) = req.extensions().get::<SlotHandle>().cloned() else {
        tracing::error!("session unavailable: SessionMiddleware is not installed on this route");
        return Err(SessionRejection::MissingMiddleware);
    };
    let cookies = req
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok());
    let context = || {
        let mut headers = http::HeaderMap::new();
        for (name, value) in req.headers() {
            lazy::append_header(&mut headers, name.as_str(), value.as_bytes());
        }
        lazy::context_from_text(
            req.method().as_str(),
            &req.uri().to_string(),
            headers,
            req.peer_addr(),
        )
    };
    slot.session(|layer| layer.find_all(cookies), context)
        .await
        .map_err(Into::into)
}

impl<T: SessionData> FromRequest for Session<T> {
    type Error = SessionRejection;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { load(&req).await })
    }
}

impl<T: SessionData, F: RequiredField<T>> FromRequest for Required<T, F> {
    type Error = RequiredRejection;
    type Future = LocalBoxFuture<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let session = load::<T>(&req).await?;
            Ok(Self::from_session(session)?)
        })
    }
}

/// Why a handler could not get its [`Session`]: a `500`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in a [`SessionMiddleware`].
    #[error(
        "SessionMiddleware is not installed on this route: add \
         `.wrap(SessionMiddleware::new(engine))` to the App or scope"
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

impl SessionRejection {
    fn body(&self) -> &'static str {
        match self {
            Self::MissingMiddleware => "SessionMiddleware is not installed on this route",
            Self::TypeMismatch { .. } => lazy::TYPE_MISMATCH,
            Self::Load(_) => lazy::LOAD_FAILED,
        }
    }
}

impl ResponseError for SessionRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::InternalServerError()
            .content_type("text/plain; charset=utf-8")
            .body(self.body())
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
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing(_) => StatusCode::UNAUTHORIZED,
            Self::Session(rejection) => rejection.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Missing(missing) => {
                tracing::debug!(key = missing.key(), "required session field missing");
                HttpResponse::Unauthorized()
                    .content_type("text/plain; charset=utf-8")
                    .body(missing.body())
            }
            Self::Session(rejection) => rejection.error_response(),
        }
    }
}
