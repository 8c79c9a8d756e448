//! The engine's errors: [`BuildError`] when configuring, [`Error`] when
//! serving a request.

use std::error::Error as StdError;
use std::fmt;
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
    /// Per-user session management asked of a stateless engine, which
    /// keeps no list of sessions: listing and revoking one session need a
    /// store, revoking all of a user's sessions needs a revocation store.
    #[error(
        "`{operation}` needs server-side state: stateless sessions live only in their cookies; \
         build the engine with a store, or (for revoke_all) with_revocation_store"
    )]
    Stateless {
        /// The operation asked for (`"sessions_of"`, `"revoke"`, `"revoke_all"`).
        operation: &'static str,
    },
}

impl Error {
    /// Whether another request changed the session first (optimistic
    /// concurrency): retrying the request is the right answer.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(StoreError::Conflict))
    }
}

/// The error as given, unless its chain repeats itself: some libraries
/// (redis, sqlx) put their cause's text in their own message *and* return
/// the cause from `source()`, so a chain printer shows it twice. Such a
/// chain is replaced by [`Deduplicated`], the same messages each said once.
pub(crate) fn without_repeats(
    error: Box<dyn StdError + Send + Sync>,
) -> Box<dyn StdError + Send + Sync> {
    // The common case (no cause) costs nothing.
    if error.source().is_none() {
        return error;
    }
    let texts: Vec<String> = chain(&*error).map(ToString::to_string).collect();
    if !texts
        .windows(2)
        .any(|pair| pair[0].contains(pair[1].as_str()))
    {
        return error;
    }
    let mut said = Vec::with_capacity(texts.len());
    let mut i = 0;
    while i < texts.len() {
        let mut text = texts[i].as_str();
        let mut next = i + 1;
        while let Some(inner) = texts.get(next) {
            if inner.is_empty() {
                next += 1;
            } else if let Some(head) = text.strip_suffix(inner.as_str()) {
                // `outer: inner`: keep `outer`, then `inner` on its own
                // (or only `inner`, when the outer said nothing else).
                text = head.trim_end_matches(|c: char| c.is_whitespace() || c == ':' || c == '-');
                break;
            } else if text.contains(inner.as_str()) {
                // Said inside the outer message: drop the inner one.
                next += 1;
            } else {
                break;
            }
        }
        if !text.is_empty() {
            said.push(text.to_owned());
        }
        i = next;
    }
    let mut link = None;
    for text in said.into_iter().rev() {
        link = Some(Box::new(Link { text, source: link }));
    }
    Box::new(Deduplicated {
        first: link.map_or_else(|| Link::new(texts[0].clone()), |link| *link),
        original: error,
    })
}

/// `error`, then each of its sources.
fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&e| e.source())
}

/// A backend's error whose chain repeated a message, said once per
/// message. Its `Debug` is the original error's.
pub(crate) struct Deduplicated {
    first: Link,
    original: Box<dyn StdError + Send + Sync>,
}

impl Deduplicated {
    /// The error as the backend returned it, for downcasting.
    pub(crate) fn original(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.original
    }
}

impl fmt::Debug for Deduplicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.original, f)
    }
}

impl fmt::Display for Deduplicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.first, f)
    }
}

impl StdError for Deduplicated {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.first.source()
    }
}

/// One message of a [`Deduplicated`] chain.
#[derive(Debug)]
struct Link {
    text: String,
    source: Option<Box<Link>>,
}

impl Link {
    fn new(text: String) -> Self {
        Self { text, source: None }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl StdError for Link {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|link| link as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::DecodeError;
    use crate::iron::IronError;

    /// An error whose message is `text`, then `: <source>` when `repeat`.
    #[derive(Debug)]
    struct Node {
        text: &'static str,
        repeat: bool,
        source: Option<Box<Node>>,
    }

    fn node(text: &'static str, repeat: bool, source: Option<Node>) -> Node {
        Node {
            text,
            repeat,
            source: source.map(Box::new),
        }
    }

    impl fmt::Display for Node {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.text)?;
            match &self.source {
                Some(source) if self.repeat && self.text.is_empty() => write!(f, "{source}"),
                Some(source) if self.repeat => write!(f, ": {source}"),
                _ => Ok(()),
            }
        }
    }

    impl StdError for Node {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.source
                .as_deref()
                .map(|s| s as &(dyn StdError + 'static))
        }
    }

    /// Each message of `error`'s chain, outermost first.
    fn messages(error: &(dyn StdError + 'static)) -> Vec<String> {
        chain(error).map(ToString::to_string).collect()
    }

    /// No message of the chain contains the text of its source.
    fn assert_said_once(error: &(dyn StdError + 'static)) {
        let messages = messages(error);
        for pair in messages.windows(2) {
            assert!(
                !pair[0].contains(pair[1].as_str()),
                "`{}` repeats its source `{}` (chain: {messages:?})",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn the_crate_errors_do_not_repeat_their_sources() {
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let errors: Vec<Box<dyn StdError + 'static>> = vec![
            Box::new(Error::from(StoreError::backend(
                "redis",
                std::io::Error::other("connection refused"),
            ))),
            Box::new(Error::from(StoreError::Serialization {
                backend: "file",
                source: serde_json::from_str::<serde_json::Value>("[").unwrap_err(),
            })),
            Box::new(Error::Serialize(json)),
            Box::new(Error::from(EncodeError::new(IronError::EmptyPassword))),
            Box::new(DecodeError::new(IronError::BadHmac)),
            Box::new(BuildError::from(SecretError::TooShort { len: 3 })),
            Box::new(Error::from(StoreError::backend(
                "sqlx",
                node(
                    "error returned from database",
                    true,
                    Some(node("disk full", false, None)),
                ),
            ))),
        ];
        for error in &errors {
            assert_said_once(&**error);
        }
    }

    #[test]
    fn a_message_equal_to_its_source_is_said_once() {
        // redis: an I/O error's message is the io::Error's, which is also
        // its source.
        let io = node("Connection refused (os error 111)", false, None);
        let error = without_repeats(Box::new(node("", true, Some(io))));
        assert_eq!(messages(&*error), ["Connection refused (os error 111)"]);
    }

    #[test]
    fn an_outer_message_ending_with_its_source_loses_the_suffix() {
        // sqlx: "error communicating with database: {0}" with `#[source]`.
        let error = without_repeats(Box::new(node(
            "error communicating with database",
            true,
            Some(node(
                "tls failed",
                true,
                Some(node("certificate expired", false, None)),
            )),
        )));
        assert_eq!(
            messages(&*error),
            [
                "error communicating with database",
                "tls failed",
                "certificate expired"
            ]
        );
        assert_said_once(&*error);
    }

    #[test]
    fn a_source_quoted_inside_its_outer_message_is_dropped() {
        #[derive(Debug)]
        struct Quoting(Node);
        impl fmt::Display for Quoting {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "pipeline failed [{}] at index 0", self.0)
            }
        }
        impl StdError for Quoting {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let error = without_repeats(Box::new(Quoting(node(
            "wrong type",
            false,
            Some(node("expected a string", false, None)),
        ))));
        assert_eq!(
            messages(&*error),
            [
                "pipeline failed [wrong type] at index 0",
                "expected a string"
            ]
        );
    }

    #[test]
    fn a_chain_without_repeats_is_kept_as_given() {
        let error = without_repeats(Box::new(node(
            "cannot connect",
            false,
            Some(node("refused", false, None)),
        )));
        assert!(error.is::<Node>(), "not wrapped: downcasting still works");

        let repeated = StoreError::backend(
            "kv",
            node("lookup failed", true, Some(node("timed out", false, None))),
        );
        let Some(original) = repeated.backend_error() else {
            panic!("a backend error");
        };
        assert_eq!(
            original.to_string(),
            "lookup failed: timed out",
            "the original, as given"
        );
        assert!(original.is::<Node>());
        assert_eq!(
            format!("{:?}", repeated.source().unwrap()),
            format!("{original:?}"),
            "Debug shows the original"
        );
        assert_said_once(&repeated);
    }
}
