//! Session ids for store mode.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;

/// Bytes of randomness in a generated id (192 bits, more than the 128 that
/// OWASP asks for).
const ID_BYTES: usize = 24;
/// The longest id accepted from a cookie.
const MAX_ID_LEN: usize = 128;
/// The shortest id accepted from a cookie (a UUID, as hono-session makes, is 36).
const MIN_ID_LEN: usize = 16;

/// The id of a session record in a [`Store`](crate::Store).
///
/// Generated ids are 192 bits from a CSPRNG, base64url (32 characters). Ids
/// read from cookies are accepted when they are 16 to 128 characters of
/// `A-Z a-z 0-9 - _` (which includes hono-session's UUIDs); anything else is
/// treated as no session, and the store is never asked for it. `Debug` and
/// `Display` show only a short prefix, so logs never carry a usable id.
///
/// # Examples
///
/// ```
/// use sealed_session::SessionId;
///
/// let id = SessionId::generate();
/// assert_eq!(id.as_str().len(), 32);
/// assert!(SessionId::parse("../../etc/passwd").is_none());
/// assert!(SessionId::parse("0f8e5f3c-6a1d-4c0e-9a7b-2b6f1c3d4e5f").is_some());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(Box<str>);

impl SessionId {
    /// A new random id.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; ID_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes).into_boxed_str())
    }

    /// An id the crate made itself, of the shape [`parse`](Self::parse)
    /// accepts.
    pub(crate) fn from_trusted(id: String) -> Self {
        debug_assert!(is_valid(&id), "not an id: {id}");
        Self(id.into_boxed_str())
    }

    /// Accepts an id read from a cookie if it has the shape of an id.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        is_valid(raw).then(|| Self(raw.into()))
    }

    /// The full id, as written into the cookie and handed to the store.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A prefix of the id, safe to log.
    #[must_use]
    pub fn redacted(&self) -> &str {
        self.0.get(..6).unwrap_or("")
    }
}

pub(crate) fn is_valid(raw: &str) -> bool {
    // `A-Z a-z 0-9 - _`, checked without an early exit so that the compiler
    // can test a whole vector of bytes at a time.
    (MIN_ID_LEN..=MAX_ID_LEN).contains(&raw.len())
        && raw.bytes().fold(true, |ok, b| {
            ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_'))
        })
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", self.redacted())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.redacted())
    }
}

impl AsRef<str> for SessionId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_ids_are_unique_url_safe_and_parse_back() {
        let ids: HashSet<_> = (0..10_000).map(|_| SessionId::generate()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            assert_eq!(SessionId::parse(id.as_str()).as_ref(), Some(id));
        }
    }

    #[test]
    fn odd_ids_are_rejected() {
        for bad in [
            "",
            "short",
            "../../../../etc/passwd",
            "abcdefghijklmnop/",
            "abcdefghijklmnopé",
            "abcdefghijklmnop\0",
            "abcdefghijklmnop qrs",
            &"a".repeat(129),
        ] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn every_byte_is_judged_by_the_id_alphabet() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
            // The byte at the start, the middle and the end of an id.
            for at in [0, 10, 19] {
                let mut raw = vec![b'a'; 20];
                raw[at] = b;
                let valid = std::str::from_utf8(&raw).is_ok_and(is_valid);
                assert_eq!(valid, expected, "byte {b} at {at}");
            }
        }
    }

    #[test]
    fn display_and_debug_hide_the_id() {
        let id = SessionId::generate();
        assert!(!format!("{id} {id:?}").contains(id.as_str()));
    }
}
