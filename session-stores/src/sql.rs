//! What the SQL stores share: identifier checks and error mapping.

use sealed_session::StoreError;

use crate::error::Error;

/// The default table name.
pub(crate) const DEFAULT_TABLE: &str = "sessions";

/// Accepts a plain identifier (ASCII letters, digits, `_`, not starting
/// with a digit, at most 63 bytes, PostgreSQL's limit), so it can be quoted
/// into SQL without escaping.
pub(crate) fn check_identifier(name: &str) -> Result<(), Error> {
    let ok = (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes().first().is_some_and(u8::is_ascii_digit);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidIdentifier {
            name: name.to_owned(),
        })
    }
}

/// The outcome of a guarded write (`compare_and_set`): it wrote its one
/// row, or the guard refused and it is a conflict.
pub(crate) fn one_row_or_conflict(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Wraps a driver error, naming the backend.
pub(crate) fn backend(backend: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| StoreError::backend(backend, e)
}

/// Reads a record stored as JSON text.
pub(crate) fn parse_record(
    backend: &'static str,
    json: &str,
) -> Result<sealed_session::Record, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Serialization { backend, source })
}

/// Writes a record as JSON text.
pub(crate) fn record_json(
    backend: &'static str,
    record: &sealed_session::Record,
) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|source| StoreError::Serialization { backend, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain() {
        for ok in ["sessions", "_s", "Sessions_2", &"a".repeat(63)] {
            assert!(check_identifier(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1sessions",
            "sessions;drop table x",
            "a\"b",
            "a`b",
            "séssions",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(check_identifier(bad).is_err(), "{bad}");
        }
    }
}
