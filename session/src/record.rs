//! The session record: a JSON object shared with hono-session.

use std::sync::Arc;

use serde_json::{Map, Value};

/// A session record as stored and sealed: a JSON object with the user's
/// fields plus the reserved keys [`EXPIRES_KEY`] and [`FLASH_KEYS_KEY`].
///
/// The format is hono-session's: fields whose value is `null`, `[]` or `{}`
/// are omitted.
pub type Record = Map<String, Value>;

/// Reserved key: absolute expiry, milliseconds since the Unix epoch.
pub const EXPIRES_KEY: &str = "_expires";
/// Reserved key: fields flashed in the request that wrote the record.
pub const FLASH_KEYS_KEY: &str = "_flashKeys";

/// Reserved key: when the session was made (ms since the epoch), written
/// only when [`ExpiryPolicy::with_max_lifetime`](crate::ExpiryPolicy::with_max_lifetime)
/// bounds sessions.
pub const CREATED_KEY: &str = "_created";

/// Reserved key: in a stateless cookie, the id under which an oversized
/// record was moved to the overflow store
/// ([`with_overflow_store`](crate::SessionEngineBuilder::with_overflow_store)).
pub const STORE_ID_KEY: &str = "_storeId";

/// Reserved key: the record's version, written in store mode with
/// [`with_optimistic_concurrency`](crate::SessionEngineBuilder::with_optimistic_concurrency)
/// and checked by [`Store::compare_and_set`](crate::Store::compare_and_set).
pub const VERSION_KEY: &str = "_version";

/// Reserved key: who the session belongs to, set by
/// [`Session::set_owner`](crate::Session::set_owner): an object with the
/// owner's `id`, when it was set (`since`, ms), when a request last wrote
/// the session (`seen`, ms) and an optional `label`. Stores that implement
/// [`SessionIndex`](crate::SessionIndex) index sessions by its `id`.
pub const OWNER_KEY: &str = "_owner";

/// Every reserved key.
pub(crate) const RESERVED_KEYS: [&str; 6] = [
    EXPIRES_KEY,
    CREATED_KEY,
    VERSION_KEY,
    FLASH_KEYS_KEY,
    STORE_ID_KEY,
    OWNER_KEY,
];

/// Where `key` is in [`RESERVED_KEYS`], if it is reserved.
pub(crate) fn reserved_index(key: &str) -> Option<usize> {
    if !key.starts_with('_') {
        return None;
    }
    RESERVED_KEYS.iter().position(|reserved| *reserved == key)
}

/// Whether `key` is one of the reserved keys.
#[must_use]
pub(crate) fn is_reserved(key: &str) -> bool {
    reserved_index(key).is_some()
}

/// Reads `_version`, if it is a non-negative integer.
#[must_use]
pub fn read_version(record: &Record) -> Option<u64> {
    record.get(VERSION_KEY).and_then(Value::as_u64)
}

/// The compare-and-set rule of [`Store::compare_and_set`](crate::Store::compare_and_set):
/// whether a write that loaded version `expected` (`None`: no record) may
/// replace `stored`, the live record under the id, if there is one.
///
/// ```
/// use sealed_session::{Record, version_matches};
///
/// let stored: Record = serde_json::from_str(r#"{"_version": 3}"#).unwrap();
/// assert!(version_matches(Some(&stored), Some(3)));
/// assert!(!version_matches(Some(&stored), Some(2)));
/// assert!(!version_matches(Some(&stored), None));
/// assert!(version_matches(None, None));
/// assert!(!version_matches(None, Some(3)));
/// ```
#[must_use]
pub fn version_matches(stored: Option<&Record>, expected: Option<u64>) -> bool {
    match (stored, expected) {
        (None, None) => true,
        (Some(record), Some(expected)) => read_version(record) == Some(expected),
        _ => false,
    }
}

/// Reads `_created` (ms), if it is a non-negative integer.
pub(crate) fn read_created(record: &Record) -> Option<u64> {
    record.get(CREATED_KEY).and_then(Value::as_u64)
}

/// hono-session's `toJSON` filter: `null`, empty arrays and empty objects are
/// not written.
pub(crate) fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Equality of two records as hono-session compares them (after its
/// `toJSON`): empty values do not count.
pub(crate) fn same_record(a: &Record, b: &Record) -> bool {
    // The usual case, a record against the one it was loaded as: the same
    // keys in the same order, so compare pairwise without lookups. A value
    // that differs under the same key settles it (one of the two is not
    // empty, so the filtered records differ there), so a changed field
    // ends the walk without comparing the keys after it.
    if a.len() == b.len() {
        let mut aligned = true;
        for ((ka, x), (kb, y)) in a.iter().zip(b) {
            if ka != kb {
                aligned = false;
                break;
            }
            if !(x == y || (is_empty_value(x) && is_empty_value(y))) {
                return false;
            }
        }
        if aligned {
            return true;
        }
    }
    let non_empty = |r: &Record| r.values().filter(|v| !is_empty_value(v)).count();
    non_empty(a) == non_empty(b)
        && a.iter()
            .filter(|(_, v)| !is_empty_value(v))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Reads `_expires` as milliseconds. `None` when present but not a
/// non-negative number; `Some(None)` when absent.
pub(crate) fn read_expires(record: &Record) -> Option<Option<u64>> {
    match record.get(EXPIRES_KEY) {
        None => Some(None),
        Some(Value::Number(n)) => {
            if let Some(ms) = n.as_u64() {
                Some(Some(ms))
            } else {
                let f = n.as_f64()?;
                // Truncation is intended: JS compares `_expires < Date.now()`
                // on integers in practice.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                (f.is_finite() && f >= 0.0).then_some(Some(f as u64))
            }
        }
        Some(_) => None,
    }
}

/// Reads `_flashKeys` (ignoring anything that is not a string).
pub(crate) fn read_flash_keys(record: &Record) -> Vec<String> {
    match record.get(FLASH_KEYS_KEY) {
        Some(Value::Array(keys)) => keys
            .iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Changes to a record that is shared (with a store, say): one per key,
/// sorted by key; `Some` sets the key, `None` removes it. Noting a change
/// costs the key and the value, where changing the record itself would
/// first copy every field.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Changes(Vec<(String, Option<Value>)>);

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The change to `key`, if there is one: `Some(None)` if it is removed.
    pub(crate) fn get(&self, key: &str) -> Option<Option<&Value>> {
        self.find(key).ok().map(|at| self.0[at].1.as_ref())
    }

    /// Notes that `key` is set to `value` (`None`: removed), replacing an
    /// earlier change to it.
    pub(crate) fn set(&mut self, key: &str, value: Option<Value>) {
        match self.find(key) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (key.to_owned(), value)),
        }
    }

    /// Forgets the change to `key`, returning it.
    pub(crate) fn take(&mut self, key: &str) -> Option<Option<Value>> {
        self.find(key).ok().map(|at| self.0.remove(at).1)
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The changes, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, Option<&Value>)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// Whether `base` with these changes differs from `base`, empty values
    /// not counting (as in [`same_record`]).
    pub(crate) fn alter(&self, base: &Record) -> bool {
        self.iter().any(|(key, value)| {
            let before = base.get(key).filter(|v| !is_empty_value(v));
            before != value.filter(|v| !is_empty_value(v))
        })
    }

    /// `base` with the changes made: in place when nothing else holds it,
    /// else in a copy.
    pub(crate) fn applied_to(self, mut base: Arc<Record>) -> Arc<Record> {
        self.apply_to(Arc::make_mut(&mut base));
        base
    }

    /// Makes the changes in `record`. A key the record holds keeps its
    /// `String`.
    pub(crate) fn apply_to(self, record: &mut Record) {
        for (key, value) in self.0 {
            match value {
                Some(value) => match record.get_mut(&key) {
                    Some(slot) => *slot = value,
                    None => {
                        record.insert(key, value);
                    }
                },
                None => {
                    record.remove(&key);
                }
            }
        }
    }
}

/// A record for the commit to write: whole, or a shared record (the one
/// the session loaded) with changes. The memory store applies changes to
/// the record it holds, in place when nothing else holds it; everything
/// else writes [`into_whole`](Self::into_whole).
#[derive(Debug)]
pub(crate) enum NewRecord {
    Whole(Arc<Record>),
    Changed { base: Arc<Record>, changes: Changes },
}

impl NewRecord {
    /// The record to write, with the changes made (in a copy of the base
    /// when it is still shared).
    pub(crate) fn into_whole(self) -> Arc<Record> {
        match self {
            Self::Whole(record) => record,
            Self::Changed { base, changes } => changes.applied_to(base),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn empty_values_do_not_count_in_comparison() {
        let a = rec(json!({"a": 1, "b": null, "c": [], "d": {}}));
        let b = rec(json!({"a": 1}));
        assert!(same_record(&a, &b));
        assert!(same_record(&b, &a));
        assert!(!same_record(&b, &rec(json!({"a": 2}))));
        assert!(!same_record(&b, &rec(json!({"a": 1, "e": ""}))));
        assert!(!same_record(&b, &rec(json!({"a": 1, "e": 0}))));
    }

    /// `same_record` as first written: equality after dropping empty values.
    fn same_by_definition(a: &Record, b: &Record) -> bool {
        let drop_empty = |r: &Record| -> Record {
            r.iter()
                .filter(|(_, v)| !is_empty_value(v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        drop_empty(a) == drop_empty(b)
    }

    fn arb_record() -> impl proptest::strategy::Strategy<Value = Record> {
        use proptest::prelude::*;
        let value = prop_oneof![
            Just(Value::Null),
            Just(json!([])),
            Just(json!({})),
            (0..3u8).prop_map(Value::from),
            Just(json!("x")),
        ];
        proptest::collection::btree_map(
            proptest::sample::select(vec!["a", "b", "c", "_expires"]),
            value,
            0..4,
        )
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    proptest::proptest! {
        #[test]
        fn same_record_is_equality_without_empty_values(a in arb_record(), b in arb_record()) {
            proptest::prop_assert_eq!(same_record(&a, &b), same_by_definition(&a, &b));
            proptest::prop_assert_eq!(same_record(&b, &a), same_by_definition(&a, &b));
        }
    }

    #[test]
    fn expires_is_read_as_milliseconds() {
        assert_eq!(read_expires(&rec(json!({}))), Some(None));
        assert_eq!(read_expires(&rec(json!({"_expires": 5}))), Some(Some(5)));
        assert_eq!(read_expires(&rec(json!({"_expires": 5.7}))), Some(Some(5)));
        assert_eq!(read_expires(&rec(json!({"_expires": "5"}))), None);
        assert_eq!(read_expires(&rec(json!({"_expires": -1}))), None);
    }

    #[test]
    fn flash_keys_skip_non_strings() {
        let r = rec(json!({"_flashKeys": ["a", 1, "b"]}));
        assert_eq!(read_flash_keys(&r), ["a", "b"]);
        assert!(read_flash_keys(&rec(json!({"_flashKeys": "a"}))).is_empty());
    }
}
