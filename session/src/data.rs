//! What a session holds: the [`SessionData`] trait, the untyped
//! [`SessionMap`], and the accessors a [`Session`](crate::Session)
//! dereferences to ([`SessionAccessors`], [`Handle`]).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::record::{Record, is_empty_value, is_reserved};

pub use crate::session::Handle;

/// The data a [`Session`](crate::Session) carries, mapped to and from the
/// record format.
///
/// Implemented by [`SessionMap`] (untyped) and by `#[derive(SessionData)]`
/// on your own struct (typed; see the derive's documentation for what it
/// generates). Implementations ignore the reserved keys `_expires` and
/// `_flashKeys`; the engine writes them.
///
/// # Writing an implementation by hand
///
/// Map the record with [`from_record`] and [`to_record`] (serde), and take
/// [`Handle<Self>`] as the accessors: the session then has no accessor of
/// its own, and the data is reached through
/// [`Session::read`](crate::Session::read) and
/// [`Session::update`](crate::Session::update).
///
/// ```
/// use std::sync::Arc;
/// use sealed_session::{Record, Session, SessionData, data::Handle};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Cart {
///     #[serde(default)]
///     items: Vec<u64>,
/// }
///
/// impl SessionData for Cart {
///     type Accessors = Handle<Self>;
///
///     fn from_record(record: &Arc<Record>) -> Result<Self, serde_json::Error> {
///         sealed_session::data::from_record(record)
///     }
///     fn to_record(&self) -> Result<Record, serde_json::Error> {
///         sealed_session::data::to_record(self)
///     }
/// }
///
/// let session = Session::<Cart>::detached();
/// session.update(|cart| cart.items.push(7));
/// assert_eq!(session.read(|cart| cart.items.clone()), [7]);
/// ```
///
/// For accessors of your own, write a newtype around [`Handle<Self>`],
/// implement [`SessionAccessors`] for it, and give it methods built on
/// [`Handle::read`], [`Handle::set_tracked`] and
/// [`Handle::flash_tracked`] (list the fields in
/// [`TRACKED_KEYS`](Self::TRACKED_KEYS) and serialise them in
/// [`tracked_value`](Self::tracked_value)); that is what the derive does.
pub trait SessionData: Default + Send + Sync + 'static {
    /// What a [`Session<Self>`](crate::Session) dereferences to: the
    /// accessor methods (`session.user_id()`). A type of the crate that
    /// defines `Self`, so the derive can give it inherent methods; for
    /// [`SessionMap`], [`Handle<SessionMap>`] with `get`/`set`.
    type Accessors: SessionAccessors<Self>;

    /// The record keys of the fields that [`Handle::set_tracked`] tracks,
    /// in order: field `i` of the tracking is `TRACKED_KEYS[i]`. Empty (the
    /// default) for types that track no field.
    ///
    /// When not empty, it lists every key [`to_record`](Self::to_record)
    /// writes: after setters alone, the record is rebuilt from the loaded
    /// one, keeping only these keys.
    const TRACKED_KEYS: &'static [&'static str] = &[];

    /// Reads the data from a loaded record.
    ///
    /// # Errors
    ///
    /// A record that does not fit the type; the engine then starts a fresh
    /// session (and logs why at `debug`).
    fn from_record(record: &Arc<Record>) -> Result<Self, serde_json::Error>;

    /// Writes the data as record fields (without the reserved keys).
    ///
    /// # Errors
    ///
    /// A value serde cannot serialise (a map with non-string keys, say).
    fn to_record(&self) -> Result<Record, serde_json::Error>;

    /// [`to_record`](Self::to_record), consuming the data: the engine calls
    /// it when the request is over and nothing else can see the data, so an
    /// implementation that owns its record can hand it over without a copy.
    /// The default calls `to_record`.
    ///
    /// # Errors
    ///
    /// As [`to_record`](Self::to_record).
    fn into_record(self) -> Result<Record, serde_json::Error>
    where
        Self: Sized,
    {
        self.to_record()
    }

    /// The value of tracked field `index` (see
    /// [`TRACKED_KEYS`](Self::TRACKED_KEYS)) as it would be written. The
    /// engine asks only for fields that setters changed. The default
    /// returns `null`, which only types with no tracked field may keep.
    ///
    /// # Errors
    ///
    /// The value cannot be serialised.
    fn tracked_value(&self, index: usize) -> Result<Value, serde_json::Error> {
        let _ = index;
        Ok(Value::Null)
    }

    /// A cheap test that the data is certainly what was loaded from
    /// `record`, so that a read-only request skips serialisation. `false`
    /// (the default) means "compare the records". Only asked after
    /// [`Session::update`](crate::Session::update) (or another `&mut`
    /// access).
    fn is_unchanged_from(&self, record: &Arc<Record>) -> bool {
        let _ = record;
        false
    }
}

/// The accessors type of a [`SessionData`]: what a
/// [`Session<T>`](crate::Session) dereferences to.
///
/// It wraps the session's [`Handle`]; the derive generates one per struct
/// (`MySessionAccessors`), and [`Handle<T>`] is one with no accessor.
pub trait SessionAccessors<T: SessionData>: Send + Sync + 'static {
    /// Wraps a session's handle.
    fn from_handle(handle: Handle<T>) -> Self;

    /// The wrapped handle.
    fn handle(&self) -> &Handle<T>;
}

/// [`SessionData::from_record`] through serde, for implementations and the
/// derive macro.
///
/// # Errors
///
/// The record does not deserialise into `T`.
pub fn from_record<T: DeserializeOwned>(record: &Record) -> Result<T, serde_json::Error> {
    T::deserialize(record)
}

/// [`SessionData::to_record`] through serde, for implementations and the
/// derive macro.
///
/// # Errors
///
/// `T` does not serialise to a JSON object.
pub fn to_record<T: Serialize>(value: &T) -> Result<Record, serde_json::Error> {
    match serde_json::to_value(value)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Record::new()),
        _ => Err(serde::ser::Error::custom(
            "session data must serialise to a JSON object (a struct with named fields)",
        )),
    }
}

/// An untyped session: a JSON object with `get`/`set` by key, like the
/// JavaScript `c.session`.
///
/// Loading shares the record with the store or decoder (no deep copy); the
/// first write copies it.
///
/// # Examples
///
/// ```
/// use sealed_session::SessionMap;
///
/// let mut map = SessionMap::default();
/// map.insert("userId", "42");
/// assert_eq!(map.get::<String>("userId").as_deref(), Some("42"));
/// assert!(map.get::<String>("_expires").is_none()); // reserved keys are hidden
/// ```
#[derive(Clone, Debug, Default)]
pub struct SessionMap {
    record: Arc<Record>,
}

impl SessionMap {
    /// The value at `key` deserialised as `V`; `None` if absent, empty, or of
    /// another type.
    #[must_use]
    pub fn get<V: DeserializeOwned>(&self, key: &str) -> Option<V> {
        self.get_value(key).and_then(|v| V::deserialize(v).ok())
    }

    /// The raw JSON value at `key`, if any.
    #[must_use]
    pub fn get_value(&self, key: &str) -> Option<&Value> {
        if is_reserved(key) {
            return None;
        }
        self.record.get(key).filter(|v| !is_empty_value(v))
    }

    /// Whether `key` holds a (non-empty) value.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.get_value(key).is_some()
    }

    /// Sets `key` to `value`; returns whether the map changed. Setting a
    /// reserved key (`_expires`, `_flashKeys`) is ignored and returns `false`;
    /// a value that serialises to `null`, `[]` or `{}` removes the key, as
    /// hono-session does.
    ///
    /// # Panics
    ///
    /// Never for ordinary data; a value whose `Serialize` fails is treated as
    /// `null` (the key is removed) and logged.
    pub fn insert<V: Serialize>(&mut self, key: &str, value: V) -> bool {
        let value = serde_json::to_value(value).unwrap_or_else(|error| {
            tracing::warn!(%error, key, "session value could not be serialised; removing the key");
            Value::Null
        });
        self.insert_value(key, value)
    }

    /// Sets `key` to a raw JSON value; see [`insert`](Self::insert).
    pub fn insert_value(&mut self, key: &str, value: Value) -> bool {
        if is_reserved(key) {
            return false;
        }
        if is_empty_value(&value) {
            return self.remove(key).is_some();
        }
        if self.record.get(key) == Some(&value) {
            return false;
        }
        let record = Arc::make_mut(&mut self.record);
        // A key already there keeps its entry (and its `String`).
        if let Some(slot) = record.get_mut(key) {
            *slot = value;
        } else {
            record.insert(key.to_owned(), value);
        }
        true
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if is_reserved(key) || !self.record.contains_key(key) {
            return None;
        }
        Arc::make_mut(&mut self.record).remove(key)
    }

    /// Removes every field.
    pub fn clear(&mut self) {
        if self.keys().next().is_some() {
            self.record = Arc::default();
        }
    }

    /// The field names (without reserved keys and empty values).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    /// The fields (without reserved keys and empty values).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.record
            .iter()
            .filter(|(k, v)| !is_reserved(k) && !is_empty_value(v))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Number of fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no fields.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    fn shares(&self, record: &Arc<Record>) -> bool {
        Arc::ptr_eq(&self.record, record)
    }

    /// The record the map was written into, reserved keys and empty values
    /// still in it, when the map owns it; else the map back (never written,
    /// or still shared). The engine then sets the reserved keys in place
    /// rather than drop them here and insert them again, and hands the same
    /// allocation to the store.
    pub(crate) fn into_written_record(self) -> Result<Arc<Record>, Self> {
        let mut record = self.record;
        if Arc::get_mut(&mut record).is_some() {
            Ok(record)
        } else {
            Err(Self { record })
        }
    }
}

impl PartialEq for SessionMap {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl SessionData for SessionMap {
    type Accessors = Handle<Self>;

    fn from_record(record: &Arc<Record>) -> Result<Self, serde_json::Error> {
        Ok(Self {
            record: Arc::clone(record),
        })
    }

    fn is_unchanged_from(&self, record: &Arc<Record>) -> bool {
        self.shares(record)
    }

    fn to_record(&self) -> Result<Record, serde_json::Error> {
        Ok(self
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect())
    }

    fn into_record(self) -> Result<Record, serde_json::Error> {
        match Arc::try_unwrap(self.record) {
            // Written to in this request: the map owns its copy.
            Ok(mut record) => {
                record.retain(|k, v| !is_reserved(k) && !is_empty_value(v));
                Ok(record)
            }
            Err(shared) => Self { record: shared }.to_record(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn loading_shares_the_record_until_the_first_write() {
        let record = Arc::new(json!({"a": 1, "_expires": 5}).as_object().unwrap().clone());
        let mut map = SessionMap::from_record(&record).unwrap();
        assert!(map.shares(&record));
        assert!(!map.insert("a", 1), "same value is no change");
        assert!(map.shares(&record));
        assert!(map.insert("a", 2));
        assert!(!map.shares(&record));
        assert_eq!(
            record.get("a"),
            Some(&json!(1)),
            "the loaded record is untouched"
        );
    }

    #[test]
    fn reserved_and_empty_values_are_hidden() {
        let record = Arc::new(
            json!({"a": null, "b": [], "c": "", "_flashKeys": ["c"]})
                .as_object()
                .unwrap()
                .clone(),
        );
        let mut map = SessionMap::from_record(&record).unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["c"]);
        assert!(!map.insert("_expires", 1));
        assert!(map.insert("c", Value::Null), "null removes the key");
        assert!(map.is_empty());
        assert_eq!(map.to_record().unwrap(), Record::new());
    }

    #[test]
    fn to_record_rejects_non_objects() {
        assert!(to_record(&5).is_err());
        assert_eq!(to_record(&()).unwrap(), Record::new());
    }
}
