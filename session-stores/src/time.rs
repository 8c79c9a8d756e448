//! Times as the stores keep them: milliseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

use sealed_session::{EXPIRES_KEY, Record};

/// `t` in milliseconds since the epoch (0 before it, saturating far after).
pub(crate) fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// As [`to_ms`], for SQL `BIGINT` columns.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
pub(crate) fn to_ms_i64(t: SystemTime) -> i64 {
    i64::try_from(to_ms(t)).unwrap_or(i64::MAX)
}

/// Now, as [`to_ms_i64`].
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
pub(crate) fn now_ms_i64() -> i64 {
    to_ms_i64(SystemTime::now())
}

/// Now, in milliseconds since the epoch.
#[cfg_attr(not(feature = "file"), allow(dead_code))]
pub(crate) fn now_ms() -> u64 {
    to_ms(SystemTime::now())
}

/// The record's own `_expires`, when it is a non-negative integer.
pub(crate) fn record_expiry(record: &Record) -> Option<SystemTime> {
    let ms = record.get(EXPIRES_KEY)?.as_u64()?;
    UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))
}
