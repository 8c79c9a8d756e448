//! [`SqliteStore`]: the embedded persistent store.

use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sealed_session::{
    Record, RequestContext, SessionId, SessionIndex, SessionInfo, Store, StoreError, record_owner,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row as _};

use crate::error::Error;
use crate::sql::{
    DEFAULT_TABLE, backend, check_identifier, listing, one_row_or_conflict, parse_record,
    record_json, revoked,
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
    /// An owner's live rows.
    sessions_of: Arc<str>,
    /// Deletes one live row of an owner.
    revoke: Arc<str>,
    /// Deletes an owner's live rows.
    revoke_all: Arc<str>,
    /// Deletes an owner's live rows but one.
    revoke_all_except: Arc<str>,
}

impl Queries {
    fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        Self {
            table: table.to_owned(),
            get: format!("SELECT record FROM {t} WHERE id = ?1 AND expires_at > ?2").into(),
            set: format!(
                "INSERT INTO {t} (id, record, expires_at, owner) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO UPDATE SET record = excluded.record, \
                 expires_at = excluded.expires_at, owner = excluded.owner"
            )
            .into(),
            delete: format!("DELETE FROM {t} WHERE id = ?1").into(),
            delete_expired: format!("DELETE FROM {t} WHERE expires_at <= ?1").into(),
            update_if_version: format!(
                "UPDATE {t} SET record = ?2, expires_at = ?3, owner = ?6 \
                 WHERE id = ?1 AND expires_at > ?4 AND json_extract(record, '$._version') = ?5"
            )
            .into(),
            insert_if_absent: format!(
                "INSERT INTO {t} (id, record, expires_at, owner) VALUES (?1, ?2, ?3, ?5) \
                 ON CONFLICT (id) DO UPDATE SET record = excluded.record, \
                 expires_at = excluded.expires_at, owner = excluded.owner \
                 WHERE {t}.expires_at <= ?4"
            )
            .into(),
            sessions_of: format!("SELECT id, record FROM {t} WHERE owner = ?1 AND expires_at > ?2")
                .into(),
            revoke: format!("DELETE FROM {t} WHERE id = ?1 AND owner = ?2 AND expires_at > ?3")
                .into(),
            revoke_all: format!("DELETE FROM {t} WHERE owner = ?1 AND expires_at > ?2").into(),
            revoke_all_except: format!(
                "DELETE FROM {t} WHERE owner = ?1 AND expires_at > ?2 AND id <> ?3"
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
///     expires_at INTEGER NOT NULL,   -- milliseconds since the Unix epoch
///     owner TEXT                     -- the record's owner id, NULL when it has none
/// );
/// CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
/// CREATE INDEX IF NOT EXISTS "sessions_owner_idx" ON "sessions" (owner);
/// ```
///
/// The `owner` column is the store's [`SessionIndex`] (per-user sessions:
/// [`Session::set_owner`](sealed_session::Session::set_owner)): every
/// write sets it in the same statement as the record, so keeping the index
/// costs no extra query. [`migrate`](Self::migrate) adds it, with its
/// index, to a table created by an earlier version.
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

    /// Creates the table and its indexes if they do not exist, and adds
    /// the `owner` column to a table created by an earlier version.
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
                 expires_at INTEGER NOT NULL, \
                 owner TEXT)"
        );
        self.execute(create).await?;
        if !self.has_owner_column().await? {
            let add = format!("ALTER TABLE \"{table}\" ADD COLUMN owner TEXT");
            // Another process may have added it since we looked.
            if let Err(e) = self.execute(add).await
                && !self.has_owner_column().await?
            {
                return Err(e);
            }
        }
        for column in ["expires_at", "owner"] {
            self.execute(format!(
                "CREATE INDEX IF NOT EXISTS \"{table}_{column}_idx\" ON \"{table}\" ({column})"
            ))
            .await?;
        }
        Ok(())
    }

    async fn execute(&self, sql: String) -> Result<(), StoreError> {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        Ok(())
    }

    /// Whether the table has the `owner` column (versions before per-user
    /// sessions created it without).
    async fn has_owner_column(&self) -> Result<bool, StoreError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = 'owner'")
                .bind(&self.queries.table)
                .fetch_one(&self.pool)
                .await
                .map_err(backend(BACKEND))?;
        Ok(count > 0)
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
            .bind(record_owner(&record))
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
        let owner = record_owner(&record);
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
                    .bind(owner)
            }
            None => sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.insert_if_absent)))
                .bind(id.as_str())
                .bind(json)
                .bind(to_ms_i64(expires_at))
                .bind(now)
                .bind(owner),
        };
        let done = query.execute(&self.pool).await.map_err(backend(BACKEND))?;
        one_row_or_conflict(done.rows_affected())
    }
}

/// The `owner` column, indexed: each operation is one statement. Expired
/// rows are neither listed nor counted; the sweeper removes them.
impl SessionIndex for SqliteStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.sessions_of)))
            .bind(owner)
            .bind(now_ms_i64())
            .fetch_all(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        listing(BACKEND, owner, &rows)
    }

    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        let done = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.revoke)))
            .bind(id.as_str())
            .bind(owner)
            .bind(now_ms_i64())
            .execute(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let query = match except {
            Some(id) => sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.revoke_all_except)))
                .bind(owner)
                .bind(now_ms_i64())
                .bind(id.as_str()),
            None => sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.revoke_all)))
                .bind(owner)
                .bind(now_ms_i64()),
        };
        let done = query.execute(&self.pool).await.map_err(backend(BACKEND))?;
        Ok(revoked(done.rows_affected()))
    }
}

impl DeleteExpired for SqliteStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        SqliteStore::delete_expired(self).await
    }
}
