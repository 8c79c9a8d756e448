//! The engine's errors: [`BuildError`] when configuring, [`Error`] when
//! serving a request.

use std::time::Duration;

use crate::encoder::EncodeError;
use crate::secret::SecretError;
use crate::store::StoreError;

/// The engine's configuration was refused by [`build`](crate::SessionEngineBuilder::build).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The secret or keyring is invalid (too short, say).
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A cookie name is not an RFC 6265 token, or both names are equal.
    #[error(
        "cookie name `{name}` is invalid: use letters, digits and !#$%&'*.^_`|~+- only, and different names for the session and exists cookies"
    )]
    InvalidCookieName {
        /// The name as given.
        name: String,
    },
    /// A cookie attribute value cannot be sent in a header.
    #[error("a cookie attribute (domain or path) contains characters a header cannot carry")]
    InvalidCookieAttribute,
    /// The cookie options break a rule browsers enforce.
    #[error("cookie `{name}`: {rule}")]
    CookiePrefix {
        /// The cookie's name.
        name: String,
        /// The rule that is broken.
        rule: &'static str,
    },
    /// Browsers cap cookie lifetimes at 400 days.
    #[error(
        "max age {max_age:?} is longer than the 400 days browsers allow: use a shorter max age"
    )]
    MaxAgeTooLong {
        /// The max age asked for.
        max_age: Duration,
    },
    /// `CookieSizePolicy::Chunk` needs 1 to 16 chunks.
    #[error("a cookie may be split into 1 to 16 chunks, not {max_chunks}")]
    InvalidChunkCount {
        /// The count asked for.
        max_chunks: u8,
    },
    /// A max age of zero would expire every session at once.
    #[error("max age is zero: sessions would expire as soon as they are made")]
    MaxAgeZero,
}

/// A request's session could not be loaded or saved.
///
/// Adapters answer 500 and log it; handlers that extract the session as a
/// `Result` can map it themselves.
///
/// Each error's message describes its own layer; the cause (the driver's
/// error, the iron failure) is its [`source`](std::error::Error::source),
/// never repeated in the message, so a chain printer shows each cause
/// once. Print the chain, not just the message: `anyhow`'s `{:#}`, a
/// `tracing` field recorded as `&dyn Error` (as the adapters log it), or
/// a loop over `source()`.
///
/// ```
/// use std::error::Error as _;
/// use sealed_session::{Error, StoreError};
///
/// let error = Error::from(StoreError::backend("redis", std::io::Error::other("refused")));
/// assert_eq!(
///     error.to_string(),
///     "session store `redis` failed; check that it is running and reachable"
/// );
/// assert_eq!(error.source().unwrap().to_string(), "refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed (its cause is the [`source`](std::error::Error::source)).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The encoder could not seal the record.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The session data could not be turned into a record (a map with
    /// non-string keys, say).
    #[error("the session data could not be serialised to JSON")]
    Serialize(#[source] serde_json::Error),
    /// The sealed session does not fit in a cookie (stateless mode, with
    /// [`CookieSizePolicy::Error`](crate::CookieSizePolicy::Error)).
    #[error(
        "the session cookie would be {size} bytes, over the {limit} bytes browsers keep: store less \
         in the session, use a server-side store, or CookieSizePolicy::Chunk"
    )]
    CookieTooLarge {
        /// The `Set-Cookie` size (name, value and attributes).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The encoder produced a value that cannot go into a `Set-Cookie` header.
    #[error("the sealed cookie value contains characters a header cannot carry; fix the encoder")]
    InvalidCookieValue,
}

impl Error {
    /// Whether another request changed the session first (optimistic
    /// concurrency): retrying the request is the right answer.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict))
    }
}
