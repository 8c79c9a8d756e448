//! What the SQL stores share: identifier checks, error mapping, and the
//! reading of an owner's rows.

use sealed_session::{SessionId, SessionInfo, StoreError};

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

/// One row of an owner's listing (`id`, `record` as JSON text) as
/// [`SessionIndex::sessions_of`](sealed_session::SessionIndex::sessions_of)
/// lists it: `None` for a row whose id is not an id or whose record names
/// another owner (the `owner` column is written with the record, so only a
/// row edited by hand can disagree).
pub(crate) fn session_info(
    backend: &'static str,
    owner: &str,
    id: &str,
    json: &str,
) -> Result<Option<SessionInfo>, StoreError> {
    let Some(id) = SessionId::parse(id) else {
        return Ok(None);
    };
    let record = parse_record(backend, json)?;
    Ok(SessionInfo::from_record(&id, &record).filter(|info| info.owner == owner))
}

/// The rows (`id`, `record` as JSON text) of an owner's listing query as
/// [`SessionIndex::sessions_of`](sealed_session::SessionIndex::sessions_of)
/// returns them.
pub(crate) fn listing<R>(
    backend: &'static str,
    owner: &str,
    rows: &[R],
) -> Result<Vec<SessionInfo>, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut infos = Vec::with_capacity(rows.len());
    for row in rows {
        let id: &str = row.try_get(0).map_err(self::backend(backend))?;
        let json: &str = row.try_get(1).map_err(self::backend(backend))?;
        infos.extend(session_info(backend, owner, id, json)?);
    }
    Ok(infos)
}

/// A count of deleted rows, as
/// [`SessionIndex::revoke_all`](sealed_session::SessionIndex::revoke_all)
/// returns it.
pub(crate) fn revoked(rows_affected: u64) -> usize {
    usize::try_from(rows_affected).unwrap_or(usize::MAX)
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

    #[test]
    fn a_listed_row_must_be_the_owners() {
        let id = SessionId::generate();
        let json = r#"{"_expires": 9000, "_owner": {"id": "ada", "since": 1, "seen": 2}}"#;
        let info = session_info("sql", "ada", id.as_str(), json)
            .unwrap()
            .unwrap();
        assert_eq!((info.id, info.owner.as_str()), (id.clone(), "ada"));
        assert!(
            session_info("sql", "bob", id.as_str(), json)
                .unwrap()
                .is_none()
        );
        assert!(
            session_info("sql", "ada", "not an id", json)
                .unwrap()
                .is_none()
        );
        assert!(
            session_info("sql", "ada", id.as_str(), r#"{"a": 1}"#)
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            session_info("sql", "ada", id.as_str(), "[1]"),
            Err(StoreError::Serialization { .. })
        ));
    }
}
