//! Secrets that seal cookies, and the keyring that rotates them.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::iron::keyed::Sha1Key;

/// The shortest secret accepted, in UTF-16 code units (the unit JavaScript's
/// `String.length` counts, so that a secret accepted here is accepted by
/// hono-session and iron-webcrypto, and the other way round).
pub const MIN_SECRET_LEN: usize = 32;

/// Why a [`Secret`] or a [`Keyring`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret is empty.
    #[error("the session secret is empty: pass a random string of at least 32 characters")]
    Empty,
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    #[error(
        "the session secret is {len} characters long, the minimum is 32: \
         use a random string of at least 32 characters (for example `openssl rand -base64 32`)"
    )]
    TooShort {
        /// The length that was seen, in UTF-16 code units.
        len: usize,
    },
    /// A key id is not made of ASCII letters, digits and `_`.
    #[error("secret id `{id}` is invalid: use only ASCII letters, digits and `_`")]
    InvalidId {
        /// The id as given.
        id: String,
    },
    /// Two secrets of a keyring share an id.
    #[error("secret id `{id}` appears twice in the keyring: give every secret its own id")]
    DuplicateId {
        /// The repeated id (`""` for secrets without id).
        id: String,
    },
    /// A keyring needs at least one secret.
    #[error("the keyring has no secret: give at least one")]
    EmptyKeyring,
}

/// A secret used to seal and unseal session cookies.
///
/// At least 32 characters long (counted as JavaScript counts them). The
/// secret never appears in `Debug` output, and comparison is constant time.
/// Everything that can be derived from it once (the keyed PBKDF2 state iron
/// uses) is derived at construction, so sealing does not pay for it.
///
/// # Examples
///
/// ```
/// use sealed_session::Secret;
///
/// let secret = Secret::new("a-very-long-random-secret-of-at-least-32-chars")?;
/// assert!(format!("{secret:?}").contains("redacted"));
///
/// let err = Secret::new("too short").unwrap_err();
/// assert!(err.to_string().contains("9 characters"));
/// # Ok::<(), sealed_session::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    inner: Arc<SecretInner>,
}

struct SecretInner {
    bytes: Box<[u8]>,
    utf16_len: usize,
    /// HMAC-SHA1 keyed with the password: the PRF of PBKDF2-SHA1.
    pbkdf2_key: Sha1Key,
}

impl Secret {
    /// Checks the length and prepares the secret.
    ///
    /// # Errors
    ///
    /// [`SecretError::Empty`] or [`SecretError::TooShort`] (which carries the
    /// observed length) when the secret has fewer than 32 UTF-16 code units.
    pub fn new(secret: impl AsRef<str>) -> Result<Self, SecretError> {
        let secret = secret.as_ref();
        let utf16_len = secret.encode_utf16().count();
        if utf16_len == 0 {
            return Err(SecretError::Empty);
        }
        if utf16_len < MIN_SECRET_LEN {
            return Err(SecretError::TooShort { len: utf16_len });
        }
        Ok(Self::from_valid(secret.as_bytes(), utf16_len))
    }

    /// A fresh random secret (256 bits from the operating system's CSPRNG,
    /// base64url-encoded).
    ///
    /// # Warning
    ///
    /// Sessions sealed with a random secret do not survive a restart of the
    /// process and are not readable by other instances of the server.
    #[must_use]
    pub fn random() -> Self {
        use base64::Engine as _;
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let len = text.len();
        Self::from_valid(text.as_bytes(), len)
    }

    fn from_valid(bytes: &[u8], utf16_len: usize) -> Self {
        let pbkdf2_key = Sha1Key::new(bytes);
        Self {
            inner: Arc::new(SecretInner {
                bytes: bytes.into(),
                utf16_len,
                pbkdf2_key,
            }),
        }
    }

    /// The secret's length in UTF-16 code units (what JavaScript calls its
    /// length).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.utf16_len
    }

    /// Always `false`: an empty secret cannot be built. Present for API
    /// symmetry with [`len`](Self::len).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The secret's UTF-8 bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.inner.bytes
    }

    /// The secret's bytes, for a custom [`Encoder`](crate::Encoder) that
    /// derives its own keys from the keyring.
    ///
    /// # Warning
    ///
    /// Whatever you do with these bytes, do not log, print or store them;
    /// derive a key (HKDF, or a hash as in the guide's example) and use that.
    #[must_use]
    pub fn expose_bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    /// HMAC-SHA1 already keyed with this secret: iron's PBKDF2 PRF.
    pub(crate) fn pbkdf2_key(&self) -> &Sha1Key {
        &self.inner.pbkdf2_key
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted>, {} chars)", self.inner.utf16_len)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl Eq for Secret {}

impl TryFrom<&str> for Secret {
    type Error = SecretError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for Secret {
    type Error = SecretError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

/// One secret of a [`Keyring`], with its optional id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyringEntry {
    id: Option<Box<str>>,
    secret: Secret,
}

impl KeyringEntry {
    /// The id written into tokens sealed with this secret (iron's password
    /// id), or `None` for a secret without id, as hono-session seals.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The secret.
    #[must_use]
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

/// The secrets a session engine seals and unseals with, newest first.
///
/// Cookies are sealed with the first secret and its id; a cookie is unsealed
/// with the secret whose id it names (a cookie without id, as hono-session
/// writes, with the secret that has no id). Cookies opened with an older
/// secret are re-sealed with the newest the first time they are seen, so
/// rotating a secret logs nobody out; removing a secret from the ring turns
/// the cookies sealed with it into fresh sessions.
///
/// # Examples
///
/// ```
/// use sealed_session::Keyring;
///
/// // What the demo server reads from SESSION_SECRETS.
/// let ring = Keyring::parse(
///     "k2=the-new-secret-with-at-least-32-characters,k1=the-old-secret-with-at-least-32-characters",
/// )?;
/// assert_eq!(ring.current().id(), Some("k2"));
/// assert!(ring.find("k1").is_some());
/// # Ok::<(), sealed_session::SecretError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyring {
    entries: Arc<[KeyringEntry]>,
}

impl Keyring {
    /// A keyring of one secret without id (what hono-session uses).
    #[must_use]
    pub fn single(secret: Secret) -> Self {
        Self {
            entries: Arc::new([KeyringEntry { id: None, secret }]),
        }
    }

    /// A keyring from `(id, secret)` pairs, newest first.
    ///
    /// # Errors
    ///
    /// [`SecretError::EmptyKeyring`] without entries,
    /// [`SecretError::InvalidId`] for an id that is empty or not made of ASCII
    /// letters, digits and `_` (iron's rule), [`SecretError::DuplicateId`]
    /// when two entries share an id (or both have none).
    pub fn new<I, K>(entries: I) -> Result<Self, SecretError>
    where
        I: IntoIterator<Item = (Option<K>, Secret)>,
        K: Into<String>,
    {
        let mut out: Vec<KeyringEntry> = Vec::new();
        for (id, secret) in entries {
            let id = id.map(Into::into);
            if let Some(id) = id.as_ref().filter(|id| !is_valid_id(id)) {
                return Err(SecretError::InvalidId { id: id.clone() });
            }
            if out.iter().any(|e| e.id.as_deref() == id.as_deref()) {
                return Err(SecretError::DuplicateId {
                    id: id.unwrap_or_default(),
                });
            }
            out.push(KeyringEntry {
                id: id.map(String::into_boxed_str),
                secret,
            });
        }
        if out.is_empty() {
            return Err(SecretError::EmptyKeyring);
        }
        Ok(Self {
            entries: out.into(),
        })
    }

    /// Parses a comma-separated list, newest first, of `id=secret` or bare
    /// `secret` items (the format of the demo's `SESSION_SECRETS`).
    ///
    /// An item is read as `id=secret` when what stands before its first `=`
    /// is a valid id and what follows is a valid secret; otherwise the whole
    /// item is a bare secret, so secrets may contain `=` (base64 padding).
    ///
    /// # Errors
    ///
    /// The errors of [`Secret::new`] and [`Keyring::new`].
    pub fn parse(spec: &str) -> Result<Self, SecretError> {
        let mut entries = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let with_id = item
                .split_once('=')
                .filter(|(id, _)| is_valid_id(id))
                .and_then(|(id, secret)| Some((id, Secret::new(secret).ok()?)));
            match with_id {
                Some((id, secret)) => entries.push((Some(id), secret)),
                None => entries.push((None, Secret::new(item)?)),
            }
        }
        Self::new(entries)
    }

    /// The secret new cookies are sealed with.
    #[must_use]
    pub fn current(&self) -> &KeyringEntry {
        &self.entries[0]
    }

    /// The secret for a token's password id (`""`: the secret without id).
    #[must_use]
    pub fn find(&self, id: &str) -> Option<&KeyringEntry> {
        self.position(id).map(|i| &self.entries[i])
    }

    /// Index of the secret for `id`; `0` is the current secret.
    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        self.entries.iter().position(|e| match &e.id {
            Some(own) => **own == *id,
            None => id.is_empty(),
        })
    }

    /// All entries, newest first.
    #[must_use]
    pub fn entries(&self) -> &[KeyringEntry] {
        &self.entries
    }
}

impl From<Secret> for Keyring {
    fn from(secret: Secret) -> Self {
        Self::single(secret)
    }
}

/// iron's rule for password ids: `^\w+$` (ASCII word characters).
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn length_is_counted_in_utf16_units() {
        // 16 x U+00E9: 32 UTF-8 bytes but 16 UTF-16 units, as JS counts.
        let err = Secret::new("é".repeat(16)).unwrap_err();
        assert_eq!(err, SecretError::TooShort { len: 16 });
        // 16 emoji: 64 bytes, 32 UTF-16 units: accepted like JS does.
        assert!(Secret::new("🔐".repeat(16)).is_ok());
        assert_eq!(
            Secret::new(&LONG[..31]).unwrap_err(),
            SecretError::TooShort { len: 31 }
        );
        assert_eq!(Secret::new("").unwrap_err(), SecretError::Empty);
        assert_eq!(Secret::new(LONG).unwrap().len(), 32);
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let s = Secret::new(LONG).unwrap();
        let shown = format!("{s:?} {:?}", Keyring::single(s.clone()));
        assert!(!shown.contains(LONG), "{shown}");
        assert!(!shown.contains("0123"), "{shown}");
    }

    #[test]
    fn random_secrets_differ_and_are_long_enough() {
        let (a, b) = (Secret::random(), Secret::random());
        assert_ne!(a, b);
        assert!(a.len() >= MIN_SECRET_LEN);
    }

    #[test]
    fn keyring_parse_reads_ids_and_bare_secrets() {
        let other = format!("{LONG}==");
        let ring = Keyring::parse(&format!("new_1={LONG}, {other}")).unwrap();
        assert_eq!(ring.current().id(), Some("new_1"));
        assert_eq!(ring.position(""), Some(1));
        assert_eq!(
            ring.find("").unwrap().secret(),
            &Secret::new(&other).unwrap()
        );
        assert!(ring.find("nope").is_none());
    }

    #[test]
    fn keyring_rejects_bad_and_duplicate_ids() {
        let s = || Secret::new(LONG).unwrap();
        assert!(matches!(
            Keyring::new([(Some("a-b"), s())]),
            Err(SecretError::InvalidId { .. })
        ));
        assert!(matches!(
            Keyring::new([(Some("a"), s()), (Some("a"), s())]),
            Err(SecretError::DuplicateId { .. })
        ));
        assert!(matches!(
            Keyring::new([(None::<String>, s()), (None, s())]),
            Err(SecretError::DuplicateId { .. })
        ));
        assert_eq!(
            Keyring::new(Vec::<(Option<String>, Secret)>::new()).unwrap_err(),
            SecretError::EmptyKeyring
        );
        assert!(Keyring::parse("short").is_err());
    }
}
