//! Per-user sessions: list a user's sessions ("your devices") and log
//! them out, one or all.
//!
//! A handler names the session's owner at login with
//! [`Session::set_owner`](crate::Session::set_owner); the record keeps it
//! under the reserved key [`OWNER_KEY`], with when it was set, when a
//! request last wrote the session, and a label (a user agent, say). A
//! store that implements [`SessionIndex`] keeps owner → session ids as it
//! writes those records, so listing and revoking cost no scan, and a
//! request that does not log in costs no extra store call.
//!
//! The three-method [`Store`] contract stays as it is: custom stores work
//! without an index, and the engine's [`sessions_of`](crate::SessionEngine::sessions_of),
//! [`revoke`](crate::SessionEngine::revoke) and
//! [`revoke_all`](crate::SessionEngine::revoke_all) exist only for stores
//! that implement it.
//!
//! # What the index promises
//!
//! - [`sessions_of`](SessionIndex::sessions_of) lists the owner's live
//!   sessions, each read from its record: an entry whose record expired,
//!   was deleted or now names another owner is not listed (and is dropped).
//! - [`revoke`](SessionIndex::revoke) deletes one of the owner's sessions;
//!   an id that is not the owner's is left alone (`Ok(false)`), so a user
//!   cannot log out someone else's session by guessing its id.
//! - [`revoke_all`](SessionIndex::revoke_all) deletes every session of the
//!   owner but `except` (the current one, typically).
//! - Entries leave the index with their sessions: native expiry where the
//!   backend has it, else the owner's dead entries are dropped as new ones
//!   come (and by listings and sweeps), so the index stays within a small
//!   multiple of the owner's live sessions.
//! - A request already running on a session when it is revoked may still
//!   write it back if it changes the session. Engines built
//!   [`with_optimistic_concurrency`](crate::SessionEngineBuilder::with_optimistic_concurrency)
//!   refuse that write ([`StoreError::Conflict`]), which makes a
//!   revocation final.
//!
//! # Examples
//!
//! ```
//! use http::HeaderMap;
//! use sealed_session::{MemoryStore, RequestContext, SessionEngine, SessionMap};
//!
//! # tokio_test_block_on(async {
//! let engine = SessionEngine::builder().with_store(MemoryStore::new()).build()?;
//! let cx = RequestContext::default();
//!
//! // User 42 logs in on two devices.
//! for device in ["phone", "laptop"] {
//!     let session = engine.load::<SessionMap>(&HeaderMap::new(), &cx).await?;
//!     session.set_owner("42");
//!     session.set_owner_label(device);
//!     engine.commit(&session, &cx).await?;
//! }
//! let mut devices: Vec<_> = engine.sessions_of("42").await?.into_iter().map(|s| s.label).collect();
//! devices.sort();
//! assert_eq!(devices, [Some("laptop".to_owned()), Some("phone".to_owned())]);
//!
//! // Log out everywhere.
//! assert_eq!(engine.revoke_all("42", None).await?, 2);
//! assert!(engine.sessions_of("42").await?.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::id::SessionId;
use crate::record::{EXPIRES_KEY, OWNER_KEY, Record};
use crate::store::{Store, StoreError, time_from_ms};

/// One of an owner's sessions, as [`SessionIndex::sessions_of`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The session's id as the store keeps it (for
    /// [`HashedIds`](https://docs.rs/sealed-session-stores), the hashed
    /// form): pass it to [`SessionIndex::revoke`].
    pub id: SessionId,
    /// Whose session it is.
    pub owner: String,
    /// When the owner was set (the login).
    pub created: SystemTime,
    /// When a request last wrote the session (a change, a
    /// [`renew`](crate::Session::renew) or a rolling refresh), to the
    /// minute. Requests that only read do not move it, so with a rolling
    /// expiry it is as precise as the refresh interval.
    pub last_seen: SystemTime,
    /// When the session expires.
    pub expires: SystemTime,
    /// What the application labelled the session with
    /// ([`Session::set_owner_label`](crate::Session::set_owner_label)).
    pub label: Option<String>,
}

impl SessionInfo {
    /// The session stored under `id` as the index lists it: `None` when
    /// the record has no owner.
    ///
    /// For store authors: build the listing from the records themselves,
    /// so that it is as current as they are.
    ///
    /// ```
    /// use sealed_session::{Record, SessionId, SessionInfo};
    ///
    /// let record: Record = serde_json::from_str(
    ///     r#"{"_expires": 3000, "_owner": {"id": "42", "since": 1000, "seen": 2000, "label": "phone"}}"#,
    /// )?;
    /// let id = SessionId::generate();
    /// let info = SessionInfo::from_record(&id, &record).unwrap();
    /// assert_eq!(info.owner, "42");
    /// assert_eq!(info.label.as_deref(), Some("phone"));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[must_use]
    pub fn from_record(id: &SessionId, record: &Record) -> Option<Self> {
        let owner = record.get(OWNER_KEY)?.as_object()?;
        let ms = |key: &str| owner.get(key).and_then(Value::as_u64).unwrap_or(0);
        let expires = record
            .get(EXPIRES_KEY)
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        Some(Self {
            id: id.clone(),
            owner: owner.get("id")?.as_str()?.to_owned(),
            created: time_from_ms(ms("since")),
            last_seen: time_from_ms(ms("seen")),
            expires: time_from_ms(expires),
            label: owner
                .get("label")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// The owner named in `record`'s [`OWNER_KEY`], if any.
///
/// For store authors: the key to index a record under at `set`.
///
/// ```
/// use sealed_session::{Record, record_owner};
///
/// let record: Record = serde_json::from_str(r#"{"_owner": {"id": "42", "since": 1, "seen": 1}}"#)?;
/// assert_eq!(record_owner(&record), Some("42"));
/// assert_eq!(record_owner(&Record::new()), None);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[must_use]
pub fn record_owner(record: &Record) -> Option<&str> {
    // Most records have no owner: the lookup is all they cost.
    record.get(OWNER_KEY)?.get("id")?.as_str()
}

/// The `_owner` value [`Session::set_owner`](crate::Session::set_owner) writes.
pub(crate) fn owner_value(id: String, label: Option<String>, now_ms: u64) -> Value {
    let mut owner = Map::new();
    owner.insert("id".to_owned(), Value::String(id));
    owner.insert("since".to_owned(), Value::from(now_ms));
    owner.insert("seen".to_owned(), Value::from(now_ms));
    if let Some(label) = label {
        owner.insert("label".to_owned(), Value::String(label));
    }
    Value::Object(owner)
}

/// How precisely `seen` follows the session's writes: a write moves it only
/// when it is this much behind, so that writes in quick succession (a
/// counter, a cart) do not each rewrite the owner object.
pub(crate) const SEEN_RESOLUTION_MS: u64 = 60_000;

/// `owner` (an `_owner` value) last seen at `now_ms`; `None` when it is
/// not an owner object or its `seen` is less than [`SEEN_RESOLUTION_MS`]
/// behind.
pub(crate) fn seen_at(owner: &Value, now_ms: u64) -> Option<Value> {
    let object = owner.as_object()?;
    let seen = object.get("seen").and_then(Value::as_u64).unwrap_or(0);
    if now_ms.saturating_sub(seen) < SEEN_RESOLUTION_MS {
        return None;
    }
    let mut object = object.clone();
    object.insert("seen".to_owned(), Value::from(now_ms));
    Some(Value::Object(object))
}

/// A store that keeps an index from owner to sessions: the optional
/// extension of [`Store`] behind per-user session management.
///
/// See the [module docs](crate::index) for the contract. Implementations
/// keep the index as [`Store::set`] writes records (with
/// [`record_owner`]) and list from the records themselves
/// ([`SessionInfo::from_record`]).
pub trait SessionIndex: Store {
    /// The owner's live sessions, in no particular order.
    fn sessions_of(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send;

    /// Deletes the owner's session `id` (as [`SessionInfo::id`] gives it).
    /// `Ok(false)`: there is no such session of this owner, and nothing
    /// was deleted.
    fn revoke(
        &self,
        owner: &str,
        id: &SessionId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes every session of the owner but `except` (the id in the
    /// current request's cookie: "log out my other sessions"); returns
    /// how many were deleted.
    fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

impl<S: SessionIndex> SessionIndex for Arc<S> {
    fn sessions_of(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send {
        (**self).sessions_of(owner)
    }

    fn revoke(
        &self,
        owner: &str,
        id: &SessionId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).revoke(owner, id)
    }

    fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        (**self).revoke_all(owner, except)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn info_reads_the_owner_object() {
        let record: Record = serde_json::from_value(serde_json::json!({
            "_expires": 9_000,
            "_owner": {"id": "u1", "since": 1_000, "seen": 5_000},
        }))
        .unwrap();
        let id = SessionId::generate();
        let info = SessionInfo::from_record(&id, &record).unwrap();
        assert_eq!(info.id, id);
        assert_eq!(info.created, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(info.last_seen, UNIX_EPOCH + Duration::from_secs(5));
        assert_eq!(info.expires, UNIX_EPOCH + Duration::from_secs(9));
        assert_eq!(info.label, None);
    }

    #[test]
    fn records_without_an_owner_object_have_none() {
        for owner in [
            serde_json::json!("u1"),
            serde_json::json!({"since": 1}),
            serde_json::json!({"id": 42}),
        ] {
            let mut record = Record::new();
            record.insert(OWNER_KEY.to_owned(), owner);
            assert_eq!(record_owner(&record), None);
            assert!(SessionInfo::from_record(&SessionId::generate(), &record).is_none());
        }
    }

    #[test]
    fn seen_at_moves_only_the_seen_time() {
        let owner = owner_value("u1".to_owned(), Some("phone".to_owned()), 1_000);
        assert_eq!(seen_at(&owner, 1_000 + SEEN_RESOLUTION_MS - 1), None);
        let now = 1_000 + SEEN_RESOLUTION_MS;
        let later = seen_at(&owner, now).unwrap();
        assert_eq!(later["seen"], now);
        assert_eq!(later["since"], 1_000);
        assert_eq!(later["label"], "phone");
        assert_eq!(seen_at(&later, now), None);
        assert_eq!(seen_at(&serde_json::json!("u1"), now), None);
    }
}
