//! The iron `Fe26.2` token format: seal and unseal session cookies the way
//! hono-session does.
//!
//! This is iron-webcrypto 1.x with `Iron.defaults`, the format hono-session
//! 1.2.0 writes in its cookie:
//!
//! ```text
//! Fe26.2*<passwordId>*<encSalt>*<iv>*<ciphertext>*<expiration>*<hmacSalt>*<hmac>
//! ```
//!
//! * `encSalt` and `hmacSalt` are 256 random bits written as 64 lowercase hex
//!   characters; their ASCII text is the PBKDF2 salt.
//! * Keys are PBKDF2-HMAC-SHA1 of the secret, 1 iteration, 32 bytes.
//! * The plaintext is encrypted with AES-256-CBC and PKCS#7 padding under a
//!   random 16-byte IV; IV and ciphertext are base64url without padding.
//! * The integrity part is HMAC-SHA256 of everything up to the expiration,
//!   base64url without padding.
//! * The expiration is empty (no ttl, as hono-session seals); when present in
//!   a token it is a Unix time in milliseconds, checked with 60 s of skew.
//!
//! A token sealed here is unsealed by hono-session with the same secret, and
//! the other way round.
//!
//! # Examples
//!
//! ```
//! use sealed_session::{iron, Keyring, Secret};
//!
//! let ring = Keyring::single(Secret::new("a-very-long-random-secret-of-at-least-32-chars")?);
//! let token = iron::seal(br#"{"userId":"42"}"#, ring.current());
//! assert!(token.starts_with("Fe26.2**"));
//!
//! let now_ms = 1_800_000_000_000;
//! let opened = iron::unseal(&token, &ring, now_ms)?;
//! assert_eq!(opened.plaintext, br#"{"userId":"42"}"#);
//! assert_eq!(opened.key_index, 0);
//!
//! // The JSON helpers hono-session's default encoder corresponds to.
//! let value = serde_json::json!({ "userId": "42", "visits": 3 });
//! let token = iron::seal_json(&value, ring.current());
//! assert_eq!(iron::unseal_json(&token, &ring, now_ms)?, (value, 0));
//!
//! // Any change to the token is detected.
//! let tampered = token.replacen("Fe26.2**", "Fe26.2*x*", 1);
//! assert_eq!(iron::unseal(&tampered, &ring, now_ms), Err(iron::IronError::BadHmac));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::LazyLock;

use aes::{Aes256Dec, Aes256Enc};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::GeneralPurposeConfig;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use rand::Rng as _;
use serde_json::Value;
use subtle::ConstantTimeEq;

pub(crate) mod json;
pub(crate) mod keyed;
use json::parse_json;
use keyed::hmac_sha256;

use crate::secret::{Keyring, KeyringEntry, MIN_SECRET_LEN, Secret, is_valid_id};

/// The prefix of every token: iron's MAC format version 2.
pub const MAC_PREFIX: &str = "Fe26.2";

/// The longest token [`unseal`] looks at, in bytes (64 KiB); longer tokens are
/// rejected with [`IronError::TooLong`] before any work is done. Browsers
/// keep cookies under 4 KiB, so no real session comes close.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Clock skew tolerated when checking an expiration (iron's
/// `timestampSkewSec`, 60 s).
const SKEW_MS: u64 = 60_000;

/// Length of the derived AES and HMAC keys (both 256 bits).
const KEY_LEN: usize = 32;

/// Length of the random salts, in bytes (iron's `saltBits: 256`).
const SALT_BYTES: usize = 32;

/// Length of the AES-CBC IV and block.
const BLOCK_LEN: usize = 16;

/// Length of an HMAC-SHA256 digest in base64url without padding.
const DIGEST_B64_LEN: usize = 43;

/// base64url without padding, as iron writes it.
static B64: LazyLock<Base64> = LazyLock::new(|| url_safe(GeneralPurposeConfig::new()));

/// base64url as JavaScript's `base64urlDecode` reads it: `=` padding is
/// tolerated and so are non-zero trailing bits. Used only for the IV and
/// ciphertext, after the HMAC has been verified.
static B64_LENIENT: LazyLock<Base64> = LazyLock::new(|| {
    url_safe(
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
});

/// The base64 crate's vector engine (AVX2 or NEON, detected once), which
/// encodes and decodes a session cookie several times faster than its
/// scalar one.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
type Base64 = base64::engine::Simd;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
type Base64 = base64::engine::GeneralPurpose;

/// The URL-safe alphabet without padding, with `config`'s decoding rules.
fn url_safe(config: GeneralPurposeConfig) -> Base64 {
    let config = config.with_encode_padding(false);
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    return base64::engine::Simd::url_safe(config);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
}

/// Why a token could not be unsealed, or a password would be refused by
/// iron.
///
/// Messages never contain the token or the secret. [`js_message`] gives
/// the message iron-webcrypto throws in the same case.
///
/// [`js_message`]: IronError::js_message
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IronError {
    /// The token is longer than [`MAX_TOKEN_LEN`] and was not examined.
    #[error(
        "the sealed token is {len} bytes long, more than the {max} accepted: \
         it is not a session cookie written by this server; start a new session",
        max = MAX_TOKEN_LEN
    )]
    TooLong {
        /// The length of the rejected token, in bytes.
        len: usize,
    },
    /// The token does not have the 8 `*`-separated parts of `Fe26.2`.
    #[error(
        "the sealed token does not have 8 `*`-separated parts: it is not an iron \
         token or it was truncated (check the cookie size limit); start a new session"
    )]
    IncorrectComponents,
    /// The token does not start with `Fe26.2`.
    #[error(
        "the sealed token does not start with `Fe26.2`: it was written in another \
         format or version; start a new session"
    )]
    WrongPrefix,
    /// The expiration part is neither empty nor made of ASCII digits.
    #[error(
        "the sealed token's expiration is not a number of milliseconds: the token \
         is corrupt; start a new session"
    )]
    InvalidExpiration,
    /// The token's expiration lies more than 60 seconds in the past.
    #[error(
        "the sealed token has expired: start a new session (if this is unexpected, \
         check the server clock)"
    )]
    Expired,
    /// No secret of the keyring has the token's password id.
    #[error(
        "the sealed token names a secret id that is not in the keyring: it was \
         sealed with a secret that has been removed or never configured; start a \
         new session, or add the old secret back to the keyring"
    )]
    UnknownPasswordId,
    /// The integrity check failed: the token was altered, or sealed with
    /// another secret.
    #[error(
        "the sealed token failed its integrity check: it was altered or sealed \
         with a different secret (check that every server shares the same \
         secrets); start a new session"
    )]
    BadHmac,
    /// The IV or the ciphertext is not valid base64url.
    #[error(
        "the sealed token's IV or ciphertext is not valid base64url although its \
         integrity check passed: it was sealed by a faulty implementation; start \
         a new session"
    )]
    InvalidBase64,
    /// The IV is not 16 bytes long.
    #[error(
        "the sealed token's IV is not 16 bytes long although its integrity check \
         passed: it was sealed by a faulty implementation; start a new session"
    )]
    InvalidIv,
    /// Decryption failed: empty encryption salt, ciphertext empty or not a
    /// whole number of blocks, or bad padding.
    #[error(
        "the sealed token could not be decrypted although its integrity check \
         passed: it was sealed by a faulty implementation; start a new session"
    )]
    DecryptFailed,
    /// The decrypted plaintext is not JSON (only from [`unseal_json`]).
    #[error(
        "the sealed token's content is not valid JSON: it was sealed by an encoder \
         that does not write JSON; start a new session"
    )]
    InvalidJson,
    /// The password is empty (iron refuses to seal with it).
    #[error("the password is empty: use a random secret of at least 32 characters")]
    EmptyPassword,
    /// The password is shorter than 32 UTF-16 code units (iron refuses to
    /// seal or unseal with it).
    #[error(
        "the password is {len} characters long, iron requires at least 32: use a \
         random secret of at least 32 characters"
    )]
    PasswordTooShort {
        /// The password's length in UTF-16 code units (JavaScript's length).
        len: usize,
    },
}

impl IronError {
    /// The message iron-webcrypto 1.x throws in the same case, to log or
    /// compare errors with a JavaScript server.
    ///
    /// For the errors iron raises itself this is iron's exact message
    /// (`"Cannot find password: <id>"` is shortened to
    /// `"Cannot find password"`). For the errors JavaScript leaves to the
    /// engine, whose wording varies, this is the name of the error class
    /// thrown: `"TypeError"` (bad base64), `"OperationError"` (bad IV,
    /// decryption failure) and `"SyntaxError"` (bad JSON). iron accepts
    /// tokens of any length: [`IronError::TooLong`] gives
    /// `"Sealed token too long"`, a message of this crate.
    ///
    /// ```
    /// use sealed_session::IronError;
    ///
    /// assert_eq!(IronError::BadHmac.js_message(), "Bad hmac value");
    /// ```
    #[must_use]
    pub fn js_message(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "Sealed token too long",
            Self::IncorrectComponents => "Incorrect number of sealed components",
            Self::WrongPrefix => "Wrong mac prefix",
            Self::InvalidExpiration => "Invalid expiration",
            Self::Expired => "Expired seal",
            Self::UnknownPasswordId => "Cannot find password",
            Self::BadHmac => "Bad hmac value",
            Self::InvalidBase64 => "TypeError",
            Self::InvalidIv | Self::DecryptFailed => "OperationError",
            Self::InvalidJson => "SyntaxError",
            Self::EmptyPassword => "Empty password",
            Self::PasswordTooShort { .. } => {
                "Password string too short (min 32 characters required)"
            }
        }
    }
}

/// The result of [`unseal`].
///
/// `Debug` shows the plaintext's length only, never its content.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unsealed {
    /// The decrypted bytes.
    pub plaintext: Vec<u8>,
    /// Index in the keyring of the secret that opened the token: `0` is the
    /// current secret; more means an older one, and the caller should re-seal
    /// with the current secret (key rotation).
    pub key_index: usize,
}

impl Unsealed {
    /// Whether the token was opened with an older secret and should be
    /// re-sealed with the current one (`key_index > 0`).
    #[must_use]
    pub fn needs_reseal(&self) -> bool {
        self.key_index > 0
    }
}

impl fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsealed")
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("key_index", &self.key_index)
            .finish()
    }
}

/// The password checks iron-webcrypto makes before sealing with a string
/// password, with its messages (see [`IronError::js_message`]).
///
/// [`Secret::new`] applies the same rule, so every [`Secret`] passes.
///
/// # Errors
///
/// [`IronError::EmptyPassword`] for `""`, [`IronError::PasswordTooShort`]
/// under 32 UTF-16 code units.
///
/// ```
/// use sealed_session::{iron, IronError};
///
/// assert_eq!(iron::check_password(""), Err(IronError::EmptyPassword));
/// assert_eq!(iron::check_password("short"), Err(IronError::PasswordTooShort { len: 5 }));
/// assert!(iron::check_password("abcdefghijklmnopqrstuvwxyz012345").is_ok());
/// ```
pub fn check_password(password: &str) -> Result<(), IronError> {
    if password.is_empty() {
        return Err(IronError::EmptyPassword);
    }
    let len = password.encode_utf16().count();
    if len < MIN_SECRET_LEN {
        return Err(IronError::PasswordTooShort { len });
    }
    Ok(())
}

/// Seals `plaintext` with a keyring entry's secret, writing its id (if any)
/// into the token. No expiration is written (hono-session's ttl of 0).
///
/// Sealing cannot fail: a [`Secret`] is always long enough and a
/// [`KeyringEntry`]'s id always valid.
#[must_use]
pub fn seal(plaintext: &[u8], entry: &KeyringEntry) -> String {
    let mut buffer = Vec::with_capacity(padded_len(plaintext.len()));
    buffer.extend_from_slice(plaintext);
    seal_vec(buffer, entry)
}

/// [`seal`], encrypting in `plaintext`'s own buffer: for callers that
/// serialised into a vector anyway, it saves a copy.
pub(crate) fn seal_vec(plaintext: Vec<u8>, entry: &KeyringEntry) -> String {
    seal_with(plaintext, entry.secret(), entry.id())
}

/// The length of `len` bytes after PKCS#7 padding.
fn padded_len(len: usize) -> usize {
    (len / BLOCK_LEN + 1) * BLOCK_LEN
}

/// Seals the plaintext in `buffer` with `secret`, writing `id` as the
/// password id (`None` or `Some("")`: no id, as hono-session seals). `id`
/// comes from a [`KeyringEntry`], which has checked it against iron's
/// `^\w+$`.
///
/// Salts and IV come from the thread-local CSPRNG ([`rand::rng`]).
fn seal_with(mut buffer: Vec<u8>, secret: &Secret, id: Option<&str>) -> String {
    let id = id.unwrap_or("");
    debug_assert!(id.is_empty() || is_valid_id(id));

    let mut rng = rand::rng();
    let mut salts = [0u8; 2 * SALT_BYTES];
    let mut iv = [0u8; BLOCK_LEN];
    rng.fill_bytes(&mut salts);
    rng.fill_bytes(&mut iv);
    // Both salts as hex, on the stack: encryption salt, then HMAC salt.
    let mut hex_salts = [0u8; 4 * SALT_BYTES];
    hex_into(&salts, &mut hex_salts);
    let (enc_salt, hmac_salt) = hex_salts.split_at(2 * SALT_BYTES);

    // Encrypt in place: the buffer grows by the padding only.
    let key = derive_key(secret, enc_salt);
    let plaintext_len = buffer.len();
    buffer.resize(padded_len(plaintext_len), 0);
    let ciphertext = cbc::Encryptor::<Aes256Enc>::new(&key.into(), &iv.into())
        .encrypt_padded::<Pkcs7>(&mut buffer, plaintext_len)
        .expect("the buffer holds the padded plaintext");

    // prefix + 7 separators + id + 2 salts + iv + ciphertext + digest.
    let capacity = MAC_PREFIX.len()
        + 7
        + id.len()
        + hex_salts.len()
        + 22
        + (ciphertext.len() * 4).div_ceil(3)
        + DIGEST_B64_LEN;
    // Built as bytes: base64 is encoded straight into the token, with no
    // intermediate buffer or UTF-8 check per part.
    let mut token = Vec::with_capacity(capacity);
    token.extend_from_slice(MAC_PREFIX.as_bytes());
    token.push(b'*');
    token.extend_from_slice(id.as_bytes());
    token.push(b'*');
    token.extend_from_slice(enc_salt);
    token.push(b'*');
    push_base64(&mut token, &iv);
    token.push(b'*');
    push_base64(&mut token, ciphertext);
    token.push(b'*'); // empty expiration: ttl 0

    let digest = hmac_sha256(&derive_key(secret, hmac_salt), &token);
    token.push(b'*');
    token.extend_from_slice(hmac_salt);
    token.push(b'*');
    push_base64(&mut token, &digest);
    debug_assert_eq!(token.len(), capacity);
    String::from_utf8(token).expect("a token is ASCII: hex, base64url, `*` and an iron id")
}

/// Appends `bytes` as base64url without padding.
fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + (bytes.len() * 4).div_ceil(3), 0);
    let written = B64
        .encode_slice(bytes, &mut out[start..])
        .expect("room for the encoded length was made");
    out.truncate(start + written);
}

/// Verifies and decrypts a token.
///
/// `now_ms` is the current Unix time in milliseconds; a token whose
/// expiration is at or before `now_ms - 60_000` is expired (iron's 60 s of
/// skew). Tokens without expiration (what hono-session writes) never expire
/// here: the session's own expiry is inside the plaintext.
///
/// The secret is the keyring's entry named by the token's password id (no id:
/// the entry without id). Like iron with a plain string password, a keyring
/// made of a single secret without id opens tokens whatever id they carry
/// (the HMAC still has to verify with that secret).
///
/// The checks run in iron-webcrypto's order, so the same token fails with
/// the same error (see [`IronError::js_message`]). Any input is safe: the
/// function never panics, and tokens over [`MAX_TOKEN_LEN`] are refused
/// before any work.
///
/// # Errors
///
/// Every [`IronError`] except [`IronError::InvalidJson`],
/// [`IronError::EmptyPassword`] and [`IronError::PasswordTooShort`].
pub fn unseal(token: &str, keyring: &Keyring, now_ms: u64) -> Result<Unsealed, IronError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(IronError::TooLong { len: token.len() });
    }

    // The seven `*` separators, found with a vector search; an eighth is
    // one too many.
    let mut stars = memchr::memchr_iter(b'*', token.as_bytes());
    let mut ends = [0usize; 8];
    for end in &mut ends[..7] {
        *end = stars.next().ok_or(IronError::IncorrectComponents)?;
    }
    if stars.next().is_some() {
        return Err(IronError::IncorrectComponents);
    }
    ends[7] = token.len();
    let mut parts = [""; 8];
    let mut start = 0;
    for (part, &end) in parts.iter_mut().zip(&ends) {
        // `*` is ASCII, so every bound is a character boundary.
        *part = token
            .get(start..end)
            .ok_or(IronError::IncorrectComponents)?;
        start = end + 1;
    }
    let [
        prefix,
        id,
        enc_salt,
        iv_b64,
        ciphertext_b64,
        expiration,
        hmac_salt,
        hmac,
    ] = parts;
    // What the HMAC covers: the first six parts and the five `*` between them.
    let mac_base = token.get(..ends[5]).ok_or(IronError::IncorrectComponents)?;

    if prefix != MAC_PREFIX {
        return Err(IronError::WrongPrefix);
    }

    if let Some(exp) = parse_expiration(expiration)?
        && now_ms
            .checked_sub(SKEW_MS)
            .is_some_and(|limit| exp <= limit)
    {
        return Err(IronError::Expired);
    }

    let key_index = find_secret(keyring, id).ok_or(IronError::UnknownPasswordId)?;
    let secret = keyring
        .entries()
        .get(key_index)
        .ok_or(IronError::UnknownPasswordId)?
        .secret();

    // An empty salt makes iron derive the key from a random salt, and a digest
    // of another length can never match: both fail without work.
    if hmac_salt.is_empty() || hmac.len() != DIGEST_B64_LEN {
        return Err(IronError::BadHmac);
    }
    let digest = hmac_sha256(
        &derive_key(secret, hmac_salt.as_bytes()),
        mac_base.as_bytes(),
    );
    // iron compares the base64url strings, so another encoding of the same
    // bytes (padding, `+`/`/`, trailing bits) is a bad hmac too.
    let mut expected = [0u8; DIGEST_B64_LEN];
    let written = B64
        .encode_slice(digest, &mut expected)
        .map_err(|_| IronError::BadHmac)?;
    let given = <&[u8; DIGEST_B64_LEN]>::try_from(hmac.as_bytes());
    if written != DIGEST_B64_LEN || !given.is_ok_and(|given| digests_eq(&expected, given)) {
        return Err(IronError::BadHmac);
    }

    let mut buffer = B64_LENIENT
        .decode(ciphertext_b64)
        .map_err(|_| IronError::InvalidBase64)?;
    let iv = decode_iv(iv_b64)?;
    if enc_salt.is_empty() || buffer.is_empty() || buffer.len() % BLOCK_LEN != 0 {
        return Err(IronError::DecryptFailed);
    }
    let key = derive_key(secret, enc_salt.as_bytes());
    // Decrypt in place: the plaintext is a prefix of the ciphertext's buffer.
    let len = cbc::Decryptor::<Aes256Dec>::new(&key.into(), &iv.into())
        .decrypt_padded::<Pkcs7>(&mut buffer)
        .map_err(|_| IronError::DecryptFailed)?
        .len();
    buffer.truncate(len);

    Ok(Unsealed {
        plaintext: buffer,
        key_index,
    })
}

/// Compares two base64url digests in constant time. They are compared as
/// six words rather than 43 bytes, because `subtle` puts an optimisation
/// barrier on every element it compares.
fn digests_eq(a: &[u8; DIGEST_B64_LEN], b: &[u8; DIGEST_B64_LEN]) -> bool {
    fn words(digest: &[u8; DIGEST_B64_LEN]) -> [u64; 6] {
        let mut padded = [0u8; 48];
        padded[..DIGEST_B64_LEN].copy_from_slice(digest);
        let mut words = [0u64; 6];
        for (word, bytes) in words.iter_mut().zip(padded.as_chunks::<8>().0) {
            *word = u64::from_le_bytes(*bytes);
        }
        words
    }
    words(a)[..].ct_eq(&words(b)[..]).into()
}

/// Decodes the IV part: 16 bytes, else [`IronError::InvalidIv`], after
/// [`IronError::InvalidBase64`] for text that is not base64url.
fn decode_iv(iv_b64: &str) -> Result<[u8; BLOCK_LEN], IronError> {
    // 24 characters decode to at most 18 bytes, so a decoding error into
    // this buffer is a base64 error, never a short buffer.
    const ROOM: usize = 18;
    if iv_b64.len() <= 24 {
        let mut out = [0u8; ROOM];
        let len = B64_LENIENT
            .decode_slice(iv_b64, &mut out)
            .map_err(|_| IronError::InvalidBase64)?;
        return out
            .get(..len)
            .and_then(|iv| <[u8; BLOCK_LEN]>::try_from(iv).ok())
            .ok_or(IronError::InvalidIv);
    }
    let iv = B64_LENIENT
        .decode(iv_b64)
        .map_err(|_| IronError::InvalidBase64)?;
    <[u8; BLOCK_LEN]>::try_from(iv.as_slice()).map_err(|_| IronError::InvalidIv)
}

/// Seals a JSON value: [`seal`] of its compact serialization (the bytes
/// JavaScript's `JSON.stringify` writes for ordinary data).
#[must_use]
pub fn seal_json(value: &Value, entry: &KeyringEntry) -> String {
    // Written straight into a buffer sized for a typical session, which is
    // then encrypted in place.
    let mut json = Vec::with_capacity(512);
    json::write_value(&mut json, value);
    seal_vec(json, entry)
}

/// Unseals a token and parses its plaintext as JSON, deciding the edge cases
/// as iron-webcrypto and `JSON.parse` do. Returns the value and the key index
/// (see [`Unsealed::key_index`]).
///
/// * An empty plaintext gives [`Value::Null`].
/// * Bytes that are not UTF-8 are decoded lossily (U+FFFD), and a leading
///   byte order mark is dropped, like JavaScript's `TextDecoder`.
/// * A `\u` escape of a lone UTF-16 surrogate, which `JSON.parse` accepts but
///   a Rust string cannot hold, becomes U+FFFD.
///
/// Valid UTF-8 JSON is parsed once, with no extra pass.
///
/// # Errors
///
/// The errors of [`unseal`], and [`IronError::InvalidJson`] when the
/// plaintext is not JSON.
pub fn unseal_json(
    token: &str,
    keyring: &Keyring,
    now_ms: u64,
) -> Result<(Value, usize), IronError> {
    let Unsealed {
        plaintext,
        key_index,
    } = unseal(token, keyring, now_ms)?;
    Ok((parse_json(&plaintext)?, key_index))
}

/// The keyring index for a token's password id; see [`unseal`].
fn find_secret(keyring: &Keyring, id: &str) -> Option<usize> {
    keyring.position(id).or_else(|| match keyring.entries() {
        [only] if only.id().is_none() => Some(0),
        _ => None,
    })
}

/// Reads an expiration part: `None` when empty, else iron's `^\d+$` read as
/// a saturating number of milliseconds (leading zeros allowed).
pub(crate) fn parse_expiration(expiration: &str) -> Result<Option<u64>, IronError> {
    if expiration.is_empty() {
        return Ok(None);
    }
    if !expiration.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IronError::InvalidExpiration);
    }
    Ok(Some(expiration.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    })))
}

/// PBKDF2-HMAC-SHA1 of the secret with `salt`, 1 iteration, 32 bytes: the
/// AES and HMAC keys of a token (see [`keyed::Sha1Key::pbkdf2_32`]).
pub(crate) fn derive_key(secret: &Secret, salt: &[u8]) -> [u8; KEY_LEN] {
    secret.pbkdf2_key().pbkdf2_32(salt)
}

/// Lowercase hex of `bytes` into `out` (twice as long). Digits are
/// computed rather than looked up, so that the loop vectorises.
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    fn digit(nibble: u8) -> u8 {
        let letter = u8::from(nibble > 9);
        b'0' + nibble + letter * (b'a' - b'0' - 10)
    }
    for (&byte, pair) in bytes.iter().zip(out.as_chunks_mut::<2>().0) {
        *pair = [digit(byte >> 4), digit(byte & 0x0f)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha1::Sha1;

    const PASSWORD: &str = "hono-session-interop-secret-0123456789-abcdefghijklmnop";
    const OTHER: &str = "another-secret-that-is-long-enough-0123456789";
    const NOW: u64 = 1_800_000_000_000;

    fn secret(s: &str) -> Secret {
        Secret::new(s).unwrap()
    }

    fn ring() -> Keyring {
        Keyring::single(secret(PASSWORD))
    }

    /// Replaces part `index` of a token (no re-signing).
    fn with_part(token: &str, index: usize, value: &str) -> String {
        let mut parts: Vec<&str> = token.split('*').collect();
        parts[index] = value;
        parts.join("*")
    }

    /// Builds a correctly signed token from arbitrary parts.
    fn forge(secret: &Secret, id: &str, enc_salt: &str, iv: &str, ct: &str, exp: &str) -> String {
        let base = format!("{MAC_PREFIX}*{id}*{enc_salt}*{iv}*{ct}*{exp}");
        let salt = "ab".repeat(32);
        let digest = hmac_sha256(&derive_key(secret, salt.as_bytes()), base.as_bytes());
        format!("{base}*{salt}*{}", URL_SAFE_NO_PAD.encode(digest))
    }

    #[test]
    fn derive_key_equals_pbkdf2_crate() {
        let passwords = [
            PASSWORD,
            "abcdefghijklmnopqrstuvwxyz012345",
            "pässwörd-ünïcödé-🔐-日本語-secret-κλειδί-0123",
            // Longer than SHA-1's 64-byte block: HMAC hashes the key first.
            &"x".repeat(200),
        ];
        let salts: [&[u8]; 5] = [
            b"",
            b"salt",
            b"b3e2f2d861d0f7fc234a3ecdd19179be6f4e7c8ff5230af1fd5d6db2eed49133",
            &[0, 255, 42, 7],
            &[b'z'; 130],
        ];
        for password in passwords {
            let s = secret(password);
            for salt in salts {
                let mut expected = [0u8; KEY_LEN];
                pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, 1, &mut expected);
                assert_eq!(derive_key(&s, salt), expected, "{password:?} {salt:?}");
            }
        }
        // Different salts give different keys.
        let s = secret(PASSWORD);
        assert_ne!(derive_key(&s, b"a"), derive_key(&s, b"b"));
    }

    #[test]
    fn seal_then_unseal_round_trips() {
        let ring = ring();
        for plaintext in [
            &b""[..],
            b"x",
            b"0123456789abcdef",
            br#"{"a":[1,2,3],"b":"\u00e9"}"#,
        ] {
            let token = seal(plaintext, ring.current());
            let parts: Vec<&str> = token.split('*').collect();
            assert_eq!(parts.len(), 8);
            assert_eq!(parts[0], MAC_PREFIX);
            assert_eq!(parts[1], "");
            for salt in [parts[2], parts[6]] {
                assert_eq!(salt.len(), 64);
                assert!(
                    salt.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                    "{salt}"
                );
            }
            assert_eq!(parts[3].len(), 22);
            assert_eq!(parts[5], "");
            assert_eq!(parts[7].len(), DIGEST_B64_LEN);
            let opened = unseal(&token, &ring, NOW).unwrap();
            assert_eq!(opened.plaintext, plaintext);
            assert_eq!(opened.key_index, 0);
            assert!(!opened.needs_reseal());
        }
        // Fresh salts and IV every time.
        assert_ne!(seal(b"x", ring.current()), seal(b"x", ring.current()));
    }

    #[test]
    fn plaintexts_around_the_block_size_round_trip() {
        let ring = ring();
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 2047, 2048, 5000] {
            let plaintext = vec![b'x'; len];
            let token = seal(&plaintext, ring.current());
            assert_eq!(unseal(&token, &ring, NOW).unwrap().plaintext, plaintext);
            // The in-place path gives tokens that open the same way.
            let token = seal_vec(plaintext.clone(), ring.current());
            assert_eq!(unseal(&token, &ring, NOW).unwrap().plaintext, plaintext);
        }
    }

    #[test]
    fn seal_writes_the_entry_id_and_unseal_reports_the_key_index() {
        let ring =
            Keyring::new([(Some("k2"), secret(PASSWORD)), (Some("k1"), secret(OTHER))]).unwrap();
        let new = seal(b"new", ring.current());
        assert!(new.starts_with("Fe26.2*k2*"));
        assert_eq!(unseal(&new, &ring, NOW).unwrap().key_index, 0);

        let old = seal(b"old", &ring.entries()[1]);
        assert!(old.starts_with("Fe26.2*k1*"));
        let opened = unseal(&old, &ring, NOW).unwrap();
        assert_eq!(
            (opened.plaintext.as_slice(), opened.key_index),
            (&b"old"[..], 1)
        );
        assert!(opened.needs_reseal());

        // A token without id goes to the entry without id.
        let mixed = Keyring::new([(Some("k2"), secret(OTHER)), (None, secret(PASSWORD))]).unwrap();
        let bare = seal_with(b"bare".to_vec(), &secret(PASSWORD), None);
        assert_eq!(unseal(&bare, &mixed, NOW).unwrap().key_index, 1);
        assert_eq!(
            seal_with(b"x".to_vec(), &secret(PASSWORD), Some(""))
                .split('*')
                .nth(1),
            Some("")
        );
    }

    #[test]
    fn unknown_password_id_is_rejected() {
        let ring =
            Keyring::new([(Some("k2"), secret(PASSWORD)), (Some("k1"), secret(OTHER))]).unwrap();
        let k3 = seal_with(b"x".to_vec(), &secret(PASSWORD), Some("k3"));
        assert_eq!(unseal(&k3, &ring, NOW), Err(IronError::UnknownPasswordId));
        // No entry without id: a token without id is unknown too.
        let bare = seal_with(b"x".to_vec(), &secret(PASSWORD), None);
        assert_eq!(unseal(&bare, &ring, NOW), Err(IronError::UnknownPasswordId));
        // A ring with an id-less entry among others is strict as well.
        let mixed = Keyring::new([(Some("k2"), secret(OTHER)), (None, secret(PASSWORD))]).unwrap();
        assert_eq!(unseal(&k3, &mixed, NOW), Err(IronError::UnknownPasswordId));
        // A single secret without id behaves like iron's string password:
        // any id, but the HMAC must verify.
        assert_eq!(
            unseal(&k3, &Keyring::single(secret(PASSWORD)), NOW)
                .unwrap()
                .plaintext,
            b"x"
        );
        assert_eq!(
            unseal(&k3, &Keyring::single(secret(OTHER)), NOW),
            Err(IronError::BadHmac)
        );
    }

    #[test]
    fn expiration_parsing() {
        assert_eq!(parse_expiration(""), Ok(None));
        assert_eq!(parse_expiration("0"), Ok(Some(0)));
        assert_eq!(
            parse_expiration("1795705712080"),
            Ok(Some(1_795_705_712_080))
        );
        assert_eq!(
            parse_expiration("04102444800000"),
            Ok(Some(4_102_444_800_000))
        );
        assert_eq!(parse_expiration(&"9".repeat(40)), Ok(Some(u64::MAX)));
        assert_eq!(parse_expiration("18446744073709551616"), Ok(Some(u64::MAX)));
        for bad in ["+1", "-1", "1.5", "12ab", " 1", "1 ", "1e9", "١٢", "０"] {
            assert_eq!(
                parse_expiration(bad),
                Err(IronError::InvalidExpiration),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn expiration_is_checked_with_60s_skew_before_the_secret() {
        let s = secret(PASSWORD);
        let ring = ring();
        let good = seal(b"\"x\"", ring.current());
        let parts: Vec<&str> = good.split('*').collect();
        let at = |exp: u64| forge(&s, "", parts[2], parts[3], parts[4], &exp.to_string());
        // Valid until `now - 60 s` catches up with it.
        assert!(unseal(&at(NOW - 59_999), &ring, NOW).is_ok());
        assert_eq!(
            unseal(&at(NOW - 60_000), &ring, NOW),
            Err(IronError::Expired)
        );
        assert!(unseal(&at(NOW + 1), &ring, NOW).is_ok());
        // Near the epoch nothing expires (JS compares with a negative limit).
        assert!(unseal(&at(0), &ring, 59_000).is_ok());
        assert_eq!(unseal(&at(0), &ring, 60_000), Err(IronError::Expired));
        // Expired is reported before the id lookup and the HMAC.
        let strict = Keyring::new([(Some("k"), secret(OTHER))]).unwrap();
        assert_eq!(unseal(&at(0), &strict, NOW), Err(IronError::Expired));
        let junk = with_part(&good, 5, "x");
        assert_eq!(unseal(&junk, &ring, NOW), Err(IronError::InvalidExpiration));
        let huge = forge(&s, "", parts[2], parts[3], parts[4], &"9".repeat(30));
        assert!(unseal(&huge, &ring, u64::MAX).is_ok());
    }

    #[test]
    fn tokens_over_the_size_bound_are_rejected_up_front() {
        let ring = ring();
        let token = seal(b"x", ring.current());
        let long = format!("{token}{}", "A".repeat(MAX_TOKEN_LEN + 1 - token.len()));
        assert_eq!(long.len(), MAX_TOKEN_LEN + 1);
        assert_eq!(
            unseal(&long, &ring, NOW),
            Err(IronError::TooLong {
                len: MAX_TOKEN_LEN + 1
            })
        );
        let err = unseal(&"*".repeat(10 * MAX_TOKEN_LEN), &ring, NOW).unwrap_err();
        assert!(matches!(err, IronError::TooLong { .. }));
        // At the bound the token is examined (and here fails its HMAC).
        let at_bound = &long[..MAX_TOKEN_LEN];
        assert_eq!(unseal(at_bound, &ring, NOW), Err(IronError::BadHmac));
        // A real large session fits.
        let big = vec![b'a'; 40_000];
        assert_eq!(
            unseal(&seal(&big, ring.current()), &ring, NOW)
                .unwrap()
                .plaintext,
            big
        );
    }

    #[test]
    fn structural_errors_follow_iron_order() {
        let ring = ring();
        let token = seal(b"{}", ring.current());
        assert_eq!(unseal("", &ring, NOW), Err(IronError::IncorrectComponents));
        assert_eq!(
            unseal(&format!("{token}*"), &ring, NOW),
            Err(IronError::IncorrectComponents)
        );
        assert_eq!(unseal("*******", &ring, NOW), Err(IronError::WrongPrefix));
        // Wrong prefix wins over a bad expiration.
        assert_eq!(
            unseal("Fe26.1*****x**", &ring, NOW),
            Err(IronError::WrongPrefix)
        );
        assert_eq!(
            unseal("Fe26.2*****x**", &ring, NOW),
            Err(IronError::InvalidExpiration)
        );
        assert_eq!(unseal("Fe26.2*******", &ring, NOW), Err(IronError::BadHmac));
    }

    #[test]
    fn other_encodings_of_the_digest_are_bad_hmacs() {
        let ring = ring();
        let token = seal(b"{}", ring.current());
        let (head, digest) = token.rsplit_once('*').unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(digest).unwrap();
        let padded = format!("{head}*{digest}=");
        let standard = format!(
            "{head}*{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes)
        );
        // The last char carries 2 unused bits: set one of them.
        let last = digest.as_bytes()[DIGEST_B64_LEN - 1];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let pos = alphabet.iter().position(|&c| c == last).unwrap();
        let noncanonical = format!(
            "{head}*{}{}",
            &digest[..DIGEST_B64_LEN - 1],
            char::from(alphabet[pos ^ 1])
        );
        assert_eq!(
            B64_LENIENT.decode(&noncanonical[head.len() + 1..]).unwrap(),
            bytes
        );
        for bad in [padded, standard, noncanonical] {
            if bad != token {
                assert_eq!(unseal(&bad, &ring, NOW), Err(IronError::BadHmac), "{bad}");
            }
        }
    }

    #[test]
    fn post_hmac_errors() {
        let s = secret(PASSWORD);
        let ring = ring();
        let good = seal(b"{}", ring.current());
        let p: Vec<&str> = good.split('*').collect();
        let cases = [
            (
                forge(&s, "", p[2], "h4tuRzCG5fqMrqNfLPm1??", p[4], ""),
                IronError::InvalidBase64,
            ),
            (
                forge(&s, "", p[2], p[3], "a!", ""),
                IronError::InvalidBase64,
            ),
            (
                forge(&s, "", p[2], "AAAAAAAAAAA", p[4], ""),
                IronError::InvalidIv,
            ),
            (forge(&s, "", p[2], "", p[4], ""), IronError::InvalidIv),
            (forge(&s, "", "", p[3], p[4], ""), IronError::DecryptFailed),
            (forge(&s, "", p[2], p[3], "", ""), IronError::DecryptFailed),
            (
                forge(&s, "", p[2], p[3], &p[4][..10], ""),
                IronError::DecryptFailed,
            ),
            // Another salt: another key, so the padding check fails (or, in
            // the rare case it passes, the plaintext differs).
            (
                forge(&s, "", &"0".repeat(64), p[3], p[4], ""),
                IronError::DecryptFailed,
            ),
        ];
        for (token, expected) in cases {
            match unseal(&token, &ring, NOW) {
                Err(err) => assert_eq!(err, expected, "{token}"),
                Ok(opened) => {
                    assert_eq!(expected, IronError::DecryptFailed);
                    assert_ne!(opened.plaintext, b"{}");
                }
            }
        }
        // Padded base64 is read like JS reads it, once the HMAC passes.
        let padded_iv = format!("{}==", p[3]);
        let opened = unseal(&forge(&s, "", p[2], &padded_iv, p[4], ""), &ring, NOW).unwrap();
        assert_eq!(opened.plaintext, b"{}");
    }

    proptest::proptest! {
        /// The vector engines read and write exactly what the scalar ones
        /// do, valid input or not.
        #[test]
        fn vector_base64_is_the_scalar_one(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            text in "[A-Za-z0-9_=+/-]{0,120}",
        ) {
            use base64::engine::GeneralPurpose;
            let scalar = |config: GeneralPurposeConfig| {
                GeneralPurpose::new(&base64::alphabet::URL_SAFE, config.with_encode_padding(false))
            };
            let strict = scalar(GeneralPurposeConfig::new());
            let lenient = scalar(
                GeneralPurposeConfig::new()
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            let encoded = B64.encode(&bytes);
            proptest::prop_assert_eq!(&encoded, &strict.encode(&bytes));
            proptest::prop_assert_eq!(B64_LENIENT.decode(&encoded).ok(), Some(bytes));
            proptest::prop_assert_eq!(B64_LENIENT.decode(&text).ok(), lenient.decode(&text).ok());
        }
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = vec![0u8; 512];
        hex_into(&bytes, &mut out);
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn json_helpers_round_trip() {
        let ring = ring();
        let value = serde_json::json!({"userId": "123", "n": [1, 2.5, -3], "s": "é🔐\n\u{0}"});
        let token = seal_json(&value, ring.current());
        let opened = unseal(&token, &ring, NOW).unwrap();
        assert_eq!(opened.plaintext, value.to_string().as_bytes());
        assert_eq!(unseal_json(&token, &ring, NOW), Ok((value, 0)));
        let not_json = seal(b"{nope", ring.current());
        assert_eq!(
            unseal_json(&not_json, &ring, NOW),
            Err(IronError::InvalidJson)
        );
    }

    #[test]
    fn check_password_mirrors_iron() {
        assert_eq!(check_password(""), Err(IronError::EmptyPassword));
        assert_eq!(
            check_password(&"é".repeat(16)),
            Err(IronError::PasswordTooShort { len: 16 })
        );
        assert_eq!(
            check_password(&PASSWORD[..31]),
            Err(IronError::PasswordTooShort { len: 31 })
        );
        assert_eq!(check_password(&"🔐".repeat(16)), Ok(()));
        assert_eq!(check_password(PASSWORD), Ok(()));
    }

    #[test]
    fn errors_never_show_token_or_secret() {
        let ring = ring();
        let token = seal(b"{}", ring.current());
        let errors = [
            unseal(&with_part(&token, 7, "x"), &ring, NOW).unwrap_err(),
            unseal(
                &with_part(&token, 1, "zz"),
                &Keyring::new([(Some("k"), secret(PASSWORD))]).unwrap(),
                NOW,
            )
            .unwrap_err(),
            IronError::TooLong { len: 70_000 },
            IronError::PasswordTooShort { len: 3 },
        ];
        for err in errors {
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains(PASSWORD) && !shown.contains(&token[7..40]),
                "{shown}"
            );
            assert!(!shown.contains("zz"), "{shown}");
            assert!(!err.js_message().is_empty());
        }
        let opened = unseal(&token, &ring, NOW).unwrap();
        assert_eq!(
            format!("{opened:?}"),
            "Unsealed { plaintext: <2 bytes>, key_index: 0 }"
        );
    }
}
