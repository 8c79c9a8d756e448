//! The crate's configuration error.

use sealed_session::StoreError;

/// A store could not be configured or opened.
///
/// Failures of a running store are [`StoreError`]s; this wraps them when
/// they happen while opening one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A table, schema or database name is not a plain SQL identifier.
    #[error(
        "`{name}` is not a valid table or schema name: use 1 to 63 ASCII letters, digits and underscores, not starting with a digit"
    )]
    InvalidIdentifier {
        /// The name as given.
        name: String,
    },
    /// The key of [`HashedIds`](crate::HashedIds) is too short or not
    /// valid hex or base64url.
    #[error(
        "the id hashing key must be at least 32 bytes of random data (64 hex or 43 base64url characters); {reason}"
    )]
    InvalidHashKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `SESSION_STORE` value names no known store.
    #[error(
        "store spec `{scheme}` is not understood: use memory, file:DIR, sqlite:PATH, sqlite::memory:, postgres://…, mysql://…, redis://… or redis+cluster://…"
    )]
    UnknownStore {
        /// The part before the first `:` (the rest may hold a password,
        /// so it is not repeated).
        scheme: String,
    },
    /// A `SESSION_STORE` value names a store whose feature is off.
    #[error(
        "store `{scheme}` needs the `{feature}` feature of sealed-session-stores: enable it in Cargo.toml"
    )]
    FeatureDisabled {
        /// The store asked for.
        scheme: &'static str,
        /// The feature to enable.
        feature: &'static str,
    },
    /// [`spawn_sweeper`](crate::spawn_sweeper) was called outside a Tokio
    /// runtime.
    #[error("no Tokio runtime: call spawn_sweeper from within a Tokio runtime")]
    NoRuntime,
    /// The store failed while opening (connecting, creating its table).
    #[error(transparent)]
    Store(#[from] StoreError),
}
