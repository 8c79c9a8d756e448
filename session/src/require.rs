//! Refinement: a session in which a field must be set, as the seed's
//! `verifySession` does — [`Required`] and [`RequiredField`].
//!
//! The pieces here know no web framework. Each adapter turns
//! [`Required::from_session`] into its framework's guard and a
//! [`MissingField`] into a `401 Unauthorised` response; with an adapter
//! feature (`axum`, `actix-web`, `rocket`, `poem`, `salvo`),
//! `Required<T, F>` is that framework's extractor or request guard.
//!
//! # Examples
//!
//! `#[session(required)]` on an `Option` field generates the marker type
//! (here `UserId`) that names the field:
//!
//! ```
//! use sealed_session::{Required, Session, SessionData};
//!
//! #[derive(SessionData, Default)]
//! struct MySession {
//!     #[session(required)]
//!     user_id: Option<String>,
//! }
//!
//! let session = Session::<MySession>::detached();
//! let refused = Required::<MySession, UserId>::from_session(session.clone()).unwrap_err();
//! assert_eq!(refused.status(), 401);
//!
//! session.set_user_id(Some("42".to_owned()));
//! let user = Required::<MySession, UserId>::from_session(session).unwrap();
//! assert_eq!(*user, "42"); // the non-optional value
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use http::StatusCode;

use crate::data::SessionData;
use crate::session::Session;

/// A field of `T` that a request may require to be set.
///
/// `#[derive(SessionData)]` implements it on a generated marker type for
/// each field marked `#[session(required)]`; implement it by hand to
/// require anything else that can be read from the data (a role, say).
pub trait RequiredField<T: SessionData>: 'static {
    /// The value when set: the field's type without its `Option`.
    type Value: Send + 'static;

    /// The field's record key, for messages.
    const KEY: &'static str;

    /// The value, or `None` when the field is not set.
    fn get(data: &T) -> Option<Self::Value>;
}

/// A session whose field `F` is set, with that field's value.
///
/// Dereferences to the value. As an extractor or request guard (every
/// adapter) it answers `401 Unauthorised` when the field is not set.
pub struct Required<T: SessionData, F: RequiredField<T>> {
    value: F::Value,
    session: Session<T>,
    _field: PhantomData<fn() -> F>,
}

impl<T: SessionData, F: RequiredField<T>> Required<T, F> {
    /// The session with the value of `F`, or why not.
    ///
    /// # Errors
    ///
    /// [`MissingField`] when `F` is not set; the request should then get
    /// its [`status`](MissingField::status) (401) and
    /// [`body`](MissingField::body).
    pub fn from_session(session: Session<T>) -> Result<Self, MissingField> {
        match session.read(F::get) {
            Some(value) => Ok(Self {
                value,
                session,
                _field: PhantomData,
            }),
            None => Err(MissingField { key: F::KEY }),
        }
    }

    /// The field's value.
    #[must_use]
    pub fn value(&self) -> &F::Value {
        &self.value
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> &Session<T> {
        &self.session
    }

    /// The field's value, dropping the session handle.
    #[must_use]
    pub fn into_value(self) -> F::Value {
        self.value
    }

    /// The value and the session.
    #[must_use]
    pub fn into_parts(self) -> (F::Value, Session<T>) {
        (self.value, self.session)
    }
}

impl<T: SessionData, F: RequiredField<T>> Deref for Required<T, F> {
    type Target = F::Value;

    fn deref(&self) -> &F::Value {
        &self.value
    }
}

impl<T: SessionData, F: RequiredField<T>> Clone for Required<T, F>
where
    F::Value: Clone,
{
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            session: self.session.clone(),
            _field: PhantomData,
        }
    }
}

impl<T: SessionData, F: RequiredField<T>> fmt::Debug for Required<T, F>
where
    F::Value: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Required")
            .field("key", &F::KEY)
            .field("value", &self.value)
            .finish_non_exhaustive()
    }
}

/// A required field is not set: the request is not authorised.
///
/// Adapters answer it with [`status`](Self::status) `401` and
/// [`body`](Self::body) `Unauthorised`, as the seed's `verifySession`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the session has no `{key}`: the request is not authorised (set the field, at login say, before routes that require it)"
)]
pub struct MissingField {
    key: &'static str,
}

impl MissingField {
    /// The missing field's record key.
    #[must_use]
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The response status: `401 Unauthorized`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    /// The response body: `Unauthorised`.
    #[must_use]
    pub fn body(&self) -> &'static str {
        "Unauthorised"
    }
}
