//! [`SqliteStore`]: the embedded persistent store.

use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sealed_session::{Record, RequestContext, SessionId, Store, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row as _};

use crate::error::Error;
use crate::sql::{
    DEFAULT_TABLE, backend, check_identifier, one_row_or_conflict, parse_record, record_json,
};
use crate::sweep::DeleteExpired;
use crate::time::{now_ms_i64, to_ms_i64};

const BACKEND: &str = "sqlite";

#[derive(Debug)]
struct Queries {
    table: String,
    get: Arc<str>,
    set: Arc<str>,
    delete: Arc<str>,
    delete_expired: Arc<str>,
    /// Compare-and-set on `_version` of a live row.
    update_if_version: Arc<str>,
    /// Insert unless a live row exists.
    insert_if_absent: Arc<str>,
}

impl Queries {
    fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        Self {
            table: table.to_owned(),
            get: format!("SELECT record FROM {t} WHERE id = ?1 AND expires_at > ?2").into(),
            set: format!(
                "INSERT INTO {t} (id, record, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET record = excluded.record, expires_at = excluded.expires_at"
            )
            .into(),
            delete: format!("DELETE FROM {t} WHERE id = ?1").into(),
            delete_expired: format!("DELETE FROM {t} WHERE expires_at <= ?1").into(),
            update_if_version: format!(
                "UPDATE {t} SET record = ?2, expires_at = ?3 \
                 WHERE id = ?1 AND expires_at > ?4 AND json_extract(record, '$._version') = ?5"
            )
            .into(),
            insert_if_absent: format!(
                "INSERT INTO {t} (id, record, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET record = excluded.record, expires_at = excluded.expires_at \
                 WHERE {t}.expires_at <= ?4"
            )
            .into(),
        }
    }
}

/// Keeps sessions in an SQLite database: a file, or memory. The default
/// choice for one server: persistent, fast, nothing to install (SQLite is
/// compiled in).
///
/// Table (created by [`migrate`](Self::migrate), which
/// [`open`](Self::open) and [`in_memory`](Self::in_memory) run):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS "sessions" (
///     id TEXT PRIMARY KEY NOT NULL,
///     record TEXT NOT NULL,          -- the record, JSON
///     expires_at INTEGER NOT NULL    -- milliseconds since the Unix epoch
/// );
/// CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
/// ```
///
/// `get` never returns a row past `expires_at`; expired rows stay until
/// [`delete_expired`](Self::delete_expired) or a
/// [`spawn_sweeper`](crate::spawn_sweeper) removes them. Clones share the
/// pool.
///
/// # Examples
///
/// ```
/// use sealed_session::SessionEngine;
/// use sealed_session_stores::SqliteStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = SqliteStore::in_memory().await?; // or SqliteStore::open("sessions.db")
/// let engine = SessionEngine::builder().with_store(store).build()?;
/// # let _ = engine; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    queries: Arc<Queries>,
}

impl SqliteStore {
    /// A store on an existing pool, in the table `sessions`. Call
    /// [`migrate`](Self::migrate) once to create the table.
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            queries: Arc::new(Queries::new(DEFAULT_TABLE)),
        }
    }

    /// Uses the table `name` (default `sessions`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentifier`] unless `name` is 1 to 63 ASCII letters,
    /// digits and underscores, not starting with a digit.
    pub fn with_table_name(mut self, name: &str) -> Result<Self, Error> {
        check_identifier(name)?;
        self.queries = Arc::new(Queries::new(name));
        Ok(self)
    }

    /// Opens (creating if missing) the database file at `path`, in WAL
    /// mode, and creates the table.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the file cannot be opened or the table created.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .map_err(backend(BACKEND))?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A database in memory, gone when the store (all its clones) is
    /// dropped; for tests and single-process demos.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when SQLite fails to start.
    pub async fn in_memory() -> Result<Self, Error> {
        let options =
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(backend(BACKEND))?;
        // One connection that never closes: each connection to
        // `:memory:` would be a database of its own.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(backend(BACKEND))?;
        let store = Self::new(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Creates the table and its expiry index if they do not exist.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when SQLite refuses.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let table = &self.queries.table;
        let create = format!(
            "CREATE TABLE IF NOT EXISTS \"{table}\" (\
                 id TEXT PRIMARY KEY NOT NULL, \
                 record TEXT NOT NULL, \
                 expires_at INTEGER NOT NULL)"
        );
        let index = format!(
            "CREATE INDEX IF NOT EXISTS \"{table}_expires_at_idx\" ON \"{table}\" (expires_at)"
        );
        for sql in [create, index] {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&self.pool)
                .await
                .map_err(backend(BACKEND))?;
        }
        Ok(())
    }

    /// Deletes every row past its expiry; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when SQLite fails.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.delete_expired)))
            .bind(now_ms_i64())
            .execute(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        Ok(done.rows_affected())
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The table name.
    #[must_use]
    pub fn table_name(&self) -> &str {
        &self.queries.table
    }
}

impl Store for SqliteStore {
    /// Never reads the request, so the adapters do not copy it.
    fn uses_request_context(&self) -> bool {
        false
    }

    async fn get(
        &self,
        id: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.get)))
            .bind(id.as_str())
            .bind(now_ms_i64())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        let Some(row) = row else { return Ok(None) };
        let json: &str = row.try_get(0).map_err(backend(BACKEND))?;
        Ok(Some(Arc::new(parse_record(BACKEND, json)?)))
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        let json = record_json(BACKEND, &record)?;
        sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.set)))
            .bind(id.as_str())
            .bind(json)
            .bind(to_ms_i64(expires_at))
            .execute(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        Ok(())
    }

    async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.delete)))
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        Ok(())
    }

    /// One statement, atomic under SQLite's write lock: an `UPDATE`
    /// guarded by the stored `_version` (read with `json_extract`), or an
    /// insert that only replaces an expired row.
    async fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        let json = record_json(BACKEND, &record)?;
        let now = now_ms_i64();
        let query = match expected {
            Some(version) => {
                // SQLite integers are i64: a larger version was not written
                // by an engine, so it cannot be the one stored.
                let Ok(version) = i64::try_from(version) else {
                    return Err(StoreError::Conflict);
                };
                sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.update_if_version)))
                    .bind(id.as_str())
                    .bind(json)
                    .bind(to_ms_i64(expires_at))
                    .bind(now)
                    .bind(version)
            }
            None => sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.insert_if_absent)))
                .bind(id.as_str())
                .bind(json)
                .bind(to_ms_i64(expires_at))
                .bind(now),
        };
        let done = query.execute(&self.pool).await.map_err(backend(BACKEND))?;
        one_row_or_conflict(done.rows_affected())
    }
}

impl DeleteExpired for SqliteStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        SqliteStore::delete_expired(self).await
    }
}
