//! Encrypted cookie sessions for Rust web servers, compatible with
//! hono-session.
//!
//! By default a session is stateless: its record is sealed into the cookie
//! with iron (`Fe26.2`, the format of hono-session and iron-webcrypto), so
//! a Node server and a Rust server sharing a secret read each other's
//! sessions. Give the engine a [`Store`] and the record moves server-side,
//! the cookie carrying only a random id.
//!
//! ```
//! use sealed_session::{Secret, SessionEngine};
//!
//! let engine = SessionEngine::builder()
//!     .with_secret(Secret::new("a-secret-of-at-least-32-characters!!")?)
//!     .build()?;
//! # let _ = engine;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! | Module | What it is |
//! | --- | --- |
//! | [`SessionEngine`] | load a session from a request, commit it into a response |
//! | [`Session`] | the handle handlers get; flash, renew, regenerate, destroy |
//! | [`SessionMap`], [`SessionData`] | untyped and typed session data (`#[derive(SessionData)]`) |
//! | [`Required`], [`RequiredField`] | a guard that a field is set (401 otherwise) |
//! | [`Store`], [`MemoryStore`] | server-side records (more in `sealed-session-stores`) |
//! | [`SessionIndex`], [`index`] | a user's sessions: list them, log them out everywhere |
//! | [`Encoder`], [`IronEncoder`], [`iron`] | sealing records into cookies |
//! | [`Secret`], [`Keyring`] | secrets and key rotation |
//! | [`adapters`] | axum, actix-web, Rocket, poem and salvo, one feature each |
//!
//! # Features
//!
//! | Name | What it enables | Default |
//! | --- | --- | --- |
//! | `derive` | `#[derive(SessionData)]` | yes |
//! | `axum` | [`adapters::axum`]: a tower layer and the `Session<T>` extractor | no |
//! | `actix-web` | [`adapters::actix_web`]: a middleware and `Session<T>` as `FromRequest` (Rust 1.89, as actix-web 4.18) | no |
//! | `rocket` | [`adapters::rocket`]: a fairing and `Session<T>` as a request guard (Rust 1.89, as Rocket 0.5.2) | no |
//! | `poem` | [`adapters::poem`]: a middleware and the `Session<T>` extractor | no |
//! | `salvo` | [`adapters::salvo`]: a hoop, the `Session<T>` extractor and depot access (Rust 1.95, as salvo 1) | no |
//! | `cli` | the `sealed-session` binary (with `clap`): open, seal and inspect cookies for debugging | no |
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod adapters;
mod cache;
mod clock;
mod cookie;
pub mod data;
mod encoder;
mod engine;
mod error;
mod expiry;
mod id;
pub mod index;
pub mod iron;
mod record;
pub mod require;
mod secret;
mod session;
pub mod store;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::cookie::{CookieOptions, CookieSizePolicy, MAX_COOKIE_SIZE, SameSite};
pub use crate::data::{SessionData, SessionMap};
pub use crate::encoder::{DecodeError, Decoded, EncodeError, Encoder, IronEncoder};
pub use crate::engine::{SessionEngine, SessionEngineBuilder, SetCookies};
pub use crate::error::{BuildError, Error};
pub use crate::expiry::ExpiryPolicy;
pub use crate::id::SessionId;
pub use crate::index::{SessionIndex, SessionInfo, record_owner};
pub use crate::iron::IronError;
pub use crate::record::{
    CREATED_KEY, EXPIRES_KEY, FLASH_KEYS_KEY, OWNER_KEY, Record, STORE_ID_KEY, VERSION_KEY,
    read_version, version_matches,
};
pub use crate::require::{MissingField, Required, RequiredField};
pub use crate::secret::{Keyring, KeyringEntry, MIN_SECRET_LEN, Secret, SecretError};
pub use crate::session::Session;
pub use crate::store::{MemoryStore, NoStore, RequestContext, Store, StoreError};

#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use sealed_session_derive::SessionData;

/// What `#[derive(SessionData)]` expands to refers to; not public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::data::{Handle, SessionAccessors, SessionData};
    pub use crate::record::Record;
    pub use crate::require::RequiredField;
    pub use serde;
    pub use serde_json::{Error, Value};
    pub use std::clone::Clone;
    pub use std::default::Default;
    pub use std::fmt;
    pub use std::option::Option::{self, None, Some};
    pub use std::result::Result::{self, Err, Ok};
    pub use std::sync::Arc;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// The value of `key` in `record`, unless absent or empty (hono-session
    /// does not write `null`, `[]` or `{}`).
    #[must_use]
    pub fn field<'a>(record: &'a Record, key: &str) -> Option<&'a Value> {
        record
            .get(key)
            .filter(|v| !crate::record::is_empty_value(v))
    }

    /// Writes `value` at `key` unless it is empty.
    pub fn insert(record: &mut Record, key: &str, value: Value) {
        if !crate::record::is_empty_value(&value) {
            record.insert(key.to_owned(), value);
        }
    }

    /// A field's value through serde.
    ///
    /// # Errors
    ///
    /// The value does not serialise.
    pub fn to_value<V: Serialize + ?Sized>(value: &V) -> Result<Value, Error> {
        serde_json::to_value(value)
    }

    /// A field's value from the record through serde.
    ///
    /// # Errors
    ///
    /// The value does not fit `V`.
    pub fn from_value<V: DeserializeOwned>(value: &Value) -> Result<V, Error> {
        V::deserialize(value)
    }

    /// The serialiser a `#[serde(with = "...")]` module is handed.
    #[must_use]
    pub fn value_serializer() -> serde_json::value::Serializer {
        serde_json::value::Serializer
    }

    /// Fails to compile, at the field's type, unless it is a serde type.
    pub fn assert_field_is_serde<V: Serialize + DeserializeOwned>() {}
}
