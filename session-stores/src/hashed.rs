//! "Hash ids at rest": a store keyed by a keyed hash of the cookie id.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sealed_session::{
    Record, RequestContext, SessionId, SessionIndex, SessionInfo, Store, StoreError,
};
use sha2::Sha256;

use crate::error::Error;
use crate::sweep::DeleteExpired;

/// The shortest key accepted, in bytes.
const MIN_KEY_LEN: usize = 32;

/// Keeps records under `HMAC-SHA256(key, id)` instead of the id itself.
///
/// The cookie carries the id; the store only ever sees its keyed hash
/// (43 base64url characters). A leaked table, dump or Redis snapshot then
/// holds no value that can be replayed as a session cookie, and without the
/// key the hashes cannot be linked back to cookies.
///
/// Wraps any store. The key must be at least 32 bytes of random data and
/// must stay the same across restarts and instances (changing it orphans
/// every stored session, which is also how to revoke them all).
///
/// # Examples
///
/// ```
/// use sealed_session::{MemoryStore, SessionEngine};
/// use sealed_session_stores::HashedIds;
///
/// // 64 hex characters, say from `openssl rand -hex 32`.
/// let key = "8f2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff001";
/// let store = HashedIds::from_hex_key(MemoryStore::new(), key)?;
/// let engine = SessionEngine::builder().with_store(store).build()?;
/// # let _ = engine;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HashedIds<S> {
    inner: S,
    mac: Arc<Hmac<Sha256>>,
}

impl<S> fmt::Debug for HashedIds<S>
where
    S: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashedIds")
            .field("inner", &self.inner)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl<S> HashedIds<S> {
    /// Wraps `inner`, hashing ids with `key` (raw bytes).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHashKey`] when the key is shorter than 32 bytes.
    pub fn new(inner: S, key: &[u8]) -> Result<Self, Error> {
        if key.len() < MIN_KEY_LEN {
            return Err(Error::InvalidHashKey {
                reason: "this one is shorter",
            });
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Error::InvalidHashKey {
            reason: "it was refused by HMAC",
        })?;
        Ok(Self {
            inner,
            mac: Arc::new(mac),
        })
    }

    /// Wraps `inner`, hashing ids with a key given as hex (64 characters or
    /// more).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHashKey`] when the text is not hex or the key is
    /// shorter than 32 bytes.
    pub fn from_hex_key(inner: S, key: &str) -> Result<Self, Error> {
        let bytes = decode_hex(key.trim()).ok_or(Error::InvalidHashKey {
            reason: "this one is not hex",
        })?;
        Self::new(inner, &bytes)
    }

    /// Wraps `inner`, hashing ids with a key given as base64url, padded or
    /// not (43 characters or more).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHashKey`] when the text is not base64url or the key
    /// is shorter than 32 bytes.
    pub fn from_base64url_key(inner: S, key: &str) -> Result<Self, Error> {
        let bytes = URL_SAFE_NO_PAD
            .decode(key.trim().trim_end_matches('='))
            .map_err(|_| Error::InvalidHashKey {
                reason: "this one is not base64url",
            })?;
        Self::new(inner, &bytes)
    }

    /// The wrapped store.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The key `id` is stored under in the inner store.
    #[must_use]
    pub fn storage_id(&self, id: &SessionId) -> SessionId {
        let mut mac = (*self.mac).clone();
        mac.update(id.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let text = URL_SAFE_NO_PAD.encode(digest);
        // 43 characters of the base64url alphabet: always a valid id.
        SessionId::parse(&text).unwrap_or_else(SessionId::generate)
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| {
            let hi = digit(*pair.first()?)?;
            let lo = digit(*pair.get(1)?)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

impl<S: Store> Store for HashedIds<S> {
    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        self.inner.get(&self.storage_id(id), cx).await
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        self.inner
            .set(&self.storage_id(id), record, expires_at, cx)
            .await
    }

    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        self.inner.delete(&self.storage_id(id), cx).await
    }

    async fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        self.inner
            .compare_and_set(&self.storage_id(id), record, expires_at, expected, cx)
            .await
    }

    fn uses_request_context(&self) -> bool {
        self.inner.uses_request_context()
    }
}

/// The inner store's index, which holds the hashed ids: the ids in
/// [`sessions_of`](SessionIndex::sessions_of) are the hashed ones (as
/// [`storage_id`](HashedIds::storage_id) gives them), never a cookie's, and
/// [`revoke`](SessionIndex::revoke) takes such an id as listed. The
/// `except` of [`revoke_all`](SessionIndex::revoke_all) is the cookie's
/// id (the current session's [`Session::id`](sealed_session::Session::id)),
/// hashed here before it reaches the inner store.
///
/// To mark "this device" in a listing, compare its ids with
/// `storage_id(current id)`.
impl<S: SessionIndex> SessionIndex for HashedIds<S> {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.sessions_of(owner).await
    }

    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.revoke(owner, id).await
    }

    async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let except = except.map(|id| self.storage_id(id));
        self.inner.revoke_all(owner, except.as_ref()).await
    }
}

impl<S: DeleteExpired> DeleteExpired for HashedIds<S> {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.inner.delete_expired().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealed_session::MemoryStore;

    #[test]
    fn storage_ids_are_keyed_stable_and_not_the_id() {
        let id = SessionId::generate();
        let a = HashedIds::new(MemoryStore::new(), &[1; 32]).unwrap();
        let b = HashedIds::new(MemoryStore::new(), &[2; 32]).unwrap();
        assert_eq!(a.storage_id(&id), a.storage_id(&id));
        assert_ne!(a.storage_id(&id), b.storage_id(&id));
        assert_ne!(a.storage_id(&id).as_str(), id.as_str());
        assert_eq!(a.storage_id(&id).as_str().len(), 43);
    }

    #[test]
    fn keys_are_checked() {
        assert!(HashedIds::new((), &[0; 31]).is_err());
        assert!(HashedIds::from_hex_key((), &"ab".repeat(32)).is_ok());
        assert!(HashedIds::from_hex_key((), &"ab".repeat(31)).is_err());
        assert!(HashedIds::from_hex_key((), &"zz".repeat(32)).is_err());
        assert!(HashedIds::from_hex_key((), "abc").is_err());
        assert!(HashedIds::from_hex_key((), "é").is_err());
        let b64 = URL_SAFE_NO_PAD.encode([9u8; 32]);
        assert!(HashedIds::from_base64url_key((), &b64).is_ok());
        assert!(HashedIds::from_base64url_key((), &format!("{b64}=")).is_ok());
        assert!(HashedIds::from_base64url_key((), "!!!").is_err());
    }

    #[test]
    fn hex_and_base64_of_one_key_agree() {
        let id = SessionId::generate();
        let bytes: Vec<u8> = (0..32).collect();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let a = HashedIds::from_hex_key((), &hex).unwrap();
        let b = HashedIds::from_base64url_key((), &URL_SAFE_NO_PAD.encode(&bytes)).unwrap();
        assert_eq!(a.storage_id(&id), b.storage_id(&id));
    }
}
