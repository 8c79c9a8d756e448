//! What a session holds: the [`SessionData`] trait, the untyped
//! [`SessionMap`], and the accessors a [`Session`](crate::Session)
//! dereferences to ([`SessionAccessors`], [`Handle`]).

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::record::{Changes, Record, is_empty_value, is_reserved};

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
/// Loading shares the record with the store or decoder (no deep copy), and
/// writes to a shared record are kept beside it as changes. The commit
/// makes them in the loaded record once nothing else holds it: the memory
/// store in the record it holds, other stores in the record they gave.
/// The record is copied only while another request still holds it (or,
/// in stateless mode, the cache of opened cookies does).
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
    /// Writes made while `record` was shared; empty while the map owns
    /// its record, which it then changes in place.
    changes: Changes,
}

/// What a committed map hands over; see [`SessionMap::into_written`].
pub(crate) enum Written {
    /// The map's own record, written in place.
    Record(Arc<Record>),
    /// The shared record the map was loaded with, and the changes to it.
    Changed(Arc<Record>, Changes),
    /// Never written: the map back.
    Unwritten(SessionMap),
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
        self.raw(key).filter(|v| !is_empty_value(v))
    }

    /// The value at `key`, empty or not, changes included.
    fn raw(&self, key: &str) -> Option<&Value> {
        match self.changes.get(key) {
            Some(change) => change,
            None => self.record.get(key),
        }
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
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                key,
                "session value could not be serialised; removing the key"
            );
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
        if self.raw(key) == Some(&value) {
            return false;
        }
        match self.owned_record() {
            // A key already there keeps its entry (and its `String`).
            Some(record) => match record.get_mut(key) {
                Some(slot) => *slot = value,
                None => {
                    record.insert(key.to_owned(), value);
                }
            },
            None => self.changes.set(key, Some(value)),
        }
        true
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if is_reserved(key) || self.raw(key).is_none() {
            return None;
        }
        if let Some(record) = self.owned_record() {
            return record.remove(key);
        }
        let old = match self.changes.take(key) {
            Some(change) => change,
            None => self.record.get(key).cloned(),
        };
        if self.record.contains_key(key) {
            self.changes.set(key, None);
        }
        old
    }

    /// The record, when the map owns it and has no pending changes: then
    /// writes go straight into it.
    fn owned_record(&mut self) -> Option<&mut Record> {
        if self.changes.is_empty() {
            Arc::get_mut(&mut self.record)
        } else {
            None
        }
    }

    /// Removes every field.
    pub fn clear(&mut self) {
        if self.keys().next().is_some() {
            self.record = Arc::default();
            self.changes.clear();
        }
    }

    /// The field names (without reserved keys and empty values).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    /// The fields (without reserved keys and empty values), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        Merged {
            record: self.record.iter().peekable(),
            changes: self.changes.iter().peekable(),
            entries: std::marker::PhantomData,
        }
        .filter(|(k, v)| !is_reserved(k) && !is_empty_value(v))
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

    /// What the commit writes (reserved keys and empty values still in
    /// it): the map's own record when it was written in place, the shared
    /// record and the changes to it, or the map back when it was never
    /// written. The engine then sets the reserved keys rather than drop
    /// them here and insert them again, and hands the same allocation to
    /// the store.
    pub(crate) fn into_written(self) -> Written {
        let Self {
            mut record,
            changes,
        } = self;
        if !changes.is_empty() {
            Written::Changed(record, changes)
        } else if Arc::get_mut(&mut record).is_some() {
            Written::Record(record)
        } else {
            Written::Unwritten(Self { record, changes })
        }
    }
}

/// A record's entries with changes made: both are in key order, so they
/// are merged as they go.
struct Merged<'a, R: Iterator, C: Iterator> {
    record: std::iter::Peekable<R>,
    changes: std::iter::Peekable<C>,
    entries: std::marker::PhantomData<&'a Record>,
}

impl<'a, R, C> Iterator for Merged<'a, R, C>
where
    R: Iterator<Item = (&'a String, &'a Value)>,
    C: Iterator<Item = (&'a str, Option<&'a Value>)>,
{
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.record.peek(), self.changes.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((key, _)), Some((changed, _))) => key.as_str().cmp(changed),
            };
            if order.is_lt() {
                return self.record.next().map(|(k, v)| (k.as_str(), v));
            }
            if order.is_eq() {
                // The change replaces the record's entry.
                self.record.next();
            }
            if let Some((key, Some(value))) = self.changes.next() {
                return Some((key, value));
            }
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
            changes: Changes::default(),
        })
    }

    fn is_unchanged_from(&self, record: &Arc<Record>) -> bool {
        self.changes.is_empty() && self.shares(record)
    }

    fn to_record(&self) -> Result<Record, serde_json::Error> {
        Ok(self
            .iter()
            .map(|(k, v)| (k.to_owned(), v.clone()))
            .collect())
    }

    fn into_record(self) -> Result<Record, serde_json::Error> {
        let Self { record, changes } = self;
        match Arc::try_unwrap(record) {
            // The map owns its record: make the changes in it.
            Ok(mut record) => {
                changes.apply_to(&mut record);
                record.retain(|k, v| !is_reserved(k) && !is_empty_value(v));
                Ok(record)
            }
            Err(shared) => Self {
                record: shared,
                changes,
            }
            .to_record(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_shared_record_is_never_copied_for_a_write() {
        let record = Arc::new(json!({"a": 1, "_expires": 5}).as_object().unwrap().clone());
        let mut map = SessionMap::from_record(&record).unwrap();
        assert!(map.is_unchanged_from(&record));
        assert!(!map.insert("a", 1), "same value is no change");
        assert!(map.is_unchanged_from(&record));
        assert!(map.insert("a", 2));
        assert!(map.insert("b", 3));
        assert_eq!(map.remove("a"), Some(json!(2)));
        assert!(map.shares(&record), "still the loaded record, with changes");
        assert!(!map.is_unchanged_from(&record));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(
            record.get("a"),
            Some(&json!(1)),
            "the loaded record is untouched"
        );
        let Written::Changed(base, changes) = map.into_written() else {
            panic!("a shared map hands over its changes");
        };
        assert!(Arc::ptr_eq(&base, &record));
        assert!(changes.alter(&base));
    }

    #[test]
    fn an_owned_record_is_written_in_place() {
        let mut map = SessionMap::default();
        assert!(map.insert("a", 1));
        assert!(matches!(map.into_written(), Written::Record(_)));
        let record = Arc::new(Record::new());
        assert!(matches!(
            SessionMap::from_record(&record).unwrap().into_written(),
            Written::Unwritten(_)
        ));
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
