//! Turning a record into a cookie value and back: the [`Encoder`] trait and
//! the default [`IronEncoder`].

use std::error::Error as StdError;

use crate::clock::system_now_ms;
use crate::iron;
use crate::record::Record;
use crate::secret::Keyring;

/// Seals a record into a cookie value and opens it again (stateless mode).
///
/// Encoders are synchronous: sealing is CPU work of a few microseconds.
/// Key rotation lives here: `encode` seals with the keyring's current
/// secret, `decode` opens with whichever secret the token names and says so
/// in [`Decoded::stale`], so that the engine re-seals it with the newest.
///
/// # Examples
///
/// A (deliberately insecure) encoder that writes base64 JSON, to show the
/// shape; see the guide for an AES-256-GCM one.
///
/// ```
/// use base64::Engine as _;
/// use sealed_session::{DecodeError, Decoded, EncodeError, Encoder, Keyring, Record};
///
/// struct PlainBase64;
///
/// impl Encoder for PlainBase64 {
///     fn encode(&self, record: &Record, _: &Keyring) -> Result<String, EncodeError> {
///         let json = serde_json::to_vec(record).map_err(EncodeError::new)?;
///         Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
///     }
///     fn decode(&self, token: &str, _: &Keyring) -> Result<Decoded, DecodeError> {
///         let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
///             .decode(token)
///             .map_err(DecodeError::new)?;
///         let record = serde_json::from_slice(&json).map_err(DecodeError::new)?;
///         Ok(Decoded { record, stale: false })
///     }
/// }
/// ```
pub trait Encoder: Send + Sync + 'static {
    /// Seals `record` with the keyring's current secret.
    ///
    /// # Errors
    ///
    /// The record cannot be encoded.
    fn encode(&self, record: &Record, keyring: &Keyring) -> Result<String, EncodeError>;

    /// Opens a cookie value.
    ///
    /// # Errors
    ///
    /// The value is not a valid token for any secret of the keyring (tampered,
    /// truncated, expired, sealed with an unknown secret, not a JSON object).
    /// The engine treats every error as "no session".
    fn decode(&self, token: &str, keyring: &Keyring) -> Result<Decoded, DecodeError>;

    /// Whether the engine may keep what [`decode`](Self::decode) returned
    /// for `token`, and reuse it when the same cookie value comes back
    /// instead of decoding it again (default `false`: always decode).
    ///
    /// Say `true` only when decoding `token` gives the same result whatever
    /// the time: the engine still checks the record's `_expires` on every
    /// request, but not an expiry of your own inside the token. The cache is
    /// per engine (so per keyring), small and bounded, and matches whole
    /// cookie values.
    fn cacheable(&self, token: &str) -> bool {
        let _ = token;
        false
    }
}

/// A record opened by an [`Encoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The record.
    pub record: Record,
    /// It was sealed with a secret other than the current one and should be
    /// sealed again.
    pub stale: bool,
}

/// An encoder could not seal a record.
#[derive(Debug, thiserror::Error)]
#[error("could not seal the session record")]
pub struct EncodeError {
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl EncodeError {
    /// Wraps the encoder's own error (each message of its chain once, as
    /// [`StoreError::backend`](crate::StoreError::backend) keeps it).
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            source: crate::error::without_repeats(source.into()),
        }
    }
}

/// An encoder could not open a cookie value. The engine logs it at `debug`
/// and starts a fresh session.
#[derive(Debug, thiserror::Error)]
#[error("could not open the session cookie")]
pub struct DecodeError {
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl DecodeError {
    /// Wraps the encoder's own error (each message of its chain once, as
    /// [`StoreError::backend`](crate::StoreError::backend) keeps it).
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            source: crate::error::without_repeats(source.into()),
        }
    }
}

/// The default encoder: iron `Fe26.2` with iron-webcrypto's defaults
/// (AES-256-CBC, HMAC-SHA256, PBKDF2-SHA1 with one iteration and 256-bit
/// salts), so cookies are readable by hono-session with the same secret and
/// the other way round.
///
/// # Examples
///
/// ```
/// use sealed_session::{Encoder, IronEncoder, Keyring, Record, Secret};
///
/// let keyring = Keyring::single(Secret::new("a-secret-of-at-least-32-characters!!")?);
/// let mut record = Record::new();
/// record.insert("userId".into(), "42".into());
/// let token = IronEncoder.encode(&record, &keyring)?;
/// assert!(token.starts_with("Fe26.2**"));
/// assert_eq!(IronEncoder.decode(&token, &keyring)?.record, record);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct IronEncoder;

impl Encoder for IronEncoder {
    fn encode(&self, record: &Record, keyring: &Keyring) -> Result<String, EncodeError> {
        // Sized for a typical session, so serialising rarely reallocates.
        let mut json = Vec::with_capacity(512);
        iron::json::write_object(&mut json, record);
        Ok(iron::seal_vec(json, keyring.current()))
    }

    fn decode(&self, token: &str, keyring: &Keyring) -> Result<Decoded, DecodeError> {
        let (value, key_index) =
            iron::unseal_json(token, keyring, system_now_ms()).map_err(DecodeError::new)?;
        match value {
            serde_json::Value::Object(record) => Ok(Decoded {
                record,
                stale: key_index != 0,
            }),
            _ => Err(DecodeError::new("the sealed value is not a JSON object")),
        }
    }

    /// Tokens without an iron expiration (all those this crate and
    /// hono-session seal) open the same way at any time.
    fn cacheable(&self, token: &str) -> bool {
        token.split('*').nth(5).is_some_and(str::is_empty)
    }
}
