//! [`MySqlStore`]: sessions in a MySQL or MariaDB table.

use std::sync::Arc;
use std::time::SystemTime;

use sealed_session::{
    Record, RequestContext, SessionId, SessionIndex, SessionInfo, Store, StoreError, record_owner,
};
use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, Row as _};

use crate::error::Error;
use crate::sql::{
    DEFAULT_TABLE, backend, check_identifier, listing, one_row_or_conflict, parse_record,
    record_json, revoked,
};
use crate::sweep::DeleteExpired;
use crate::time::{now_ms_i64, to_ms_i64};

const BACKEND: &str = "mysql";
/// The `owner` column: `LONGTEXT`, as the record is, so that no owner id
/// can be cut short (a server outside strict mode truncates with a mere
/// warning, and a truncated owner would escape `revoke_all`).
const OWNER_COLUMN: &str = "owner LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL";
/// Characters of the owner the index covers: 191 × 4 bytes fits any row
/// format's index key. Longer owners still match exactly, on the row.
const OWNER_PREFIX: u32 = 191;

#[derive(Debug)]
struct Queries {
    schema: Option<String>,
    table: String,
    get: Arc<str>,
    set: Arc<str>,
    delete: Arc<str>,
    delete_expired: Arc<str>,
    /// Compare-and-set on `_version` of a live row.
    update_if_version: Arc<str>,
    /// A plain insert: fails on a duplicate id.
    insert: Arc<str>,
    /// Overwrites the row of an id only if it has expired.
    replace_if_expired: Arc<str>,
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
    fn new(schema: Option<&str>, table: &str) -> Self {
        let t = qualified(schema, table);
        Self {
            schema: schema.map(str::to_owned),
            table: table.to_owned(),
            get: format!("SELECT record FROM {t} WHERE id = ? AND expires_at > ?").into(),
            // `VALUES()` rather than a row alias: MariaDB has no row alias.
            set: format!(
                "INSERT INTO {t} (id, record, expires_at, owner) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE record = VALUES(record), expires_at = VALUES(expires_at), \
                 owner = VALUES(owner)"
            )
            .into(),
            delete: format!("DELETE FROM {t} WHERE id = ?").into(),
            delete_expired: format!("DELETE FROM {t} WHERE expires_at <= ?").into(),
            // `JSON_EXTRACT` (MySQL 5.7, MariaDB 10.2) on the text column.
            update_if_version: format!(
                "UPDATE {t} SET record = ?, expires_at = ?, owner = ? \
                 WHERE id = ? AND expires_at > ? AND JSON_EXTRACT(record, '$._version') = ?"
            )
            .into(),
            insert: format!("INSERT INTO {t} (id, record, expires_at, owner) VALUES (?, ?, ?, ?)")
                .into(),
            replace_if_expired: format!(
                "UPDATE {t} SET record = ?, expires_at = ?, owner = ? \
                 WHERE id = ? AND expires_at <= ?"
            )
            .into(),
            sessions_of: format!("SELECT id, record FROM {t} WHERE owner = ? AND expires_at > ?")
                .into(),
            revoke: format!("DELETE FROM {t} WHERE id = ? AND owner = ? AND expires_at > ?").into(),
            revoke_all: format!("DELETE FROM {t} WHERE owner = ? AND expires_at > ?").into(),
            revoke_all_except: format!(
                "DELETE FROM {t} WHERE owner = ? AND expires_at > ? AND id <> ?"
            )
            .into(),
        }
    }
}

fn qualified(schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("`{s}`.`{table}`"),
        None => format!("`{table}`"),
    }
}

/// Keeps sessions in a MySQL or MariaDB table, on a pool you already have.
///
/// Table (created by [`migrate`](Self::migrate)):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS `sessions` (
///     id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
///     record LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, -- JSON
///     expires_at BIGINT NOT NULL,                                         -- ms since the epoch
///     owner LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,      -- the record's owner id
///     INDEX `sessions_expires_at_idx` (expires_at),
///     INDEX `sessions_owner_idx` (owner(191))
/// ) ENGINE = InnoDB;
/// ```
///
/// Ids and owners are compared byte for byte (`ascii_bin`, `utf8mb4_bin`):
/// with the default case-insensitive collation, two ids differing only in
/// case would be one row.
///
/// The `owner` column is the store's [`SessionIndex`] (per-user sessions:
/// [`Session::set_owner`](sealed_session::Session::set_owner)): every
/// write sets it in the same statement as the record, so keeping the index
/// costs no extra query. Its index covers the first 191 characters, and
/// longer owner ids still match exactly. [`migrate`](Self::migrate) adds
/// the column, with its index, to a table created by an earlier version. `get` never returns a row past `expires_at`; expired rows stay
/// until [`delete_expired`](Self::delete_expired) or a
/// [`spawn_sweeper`](crate::spawn_sweeper) removes them. Records up to the
/// server's `max_allowed_packet` (16 MiB by default on MariaDB, 64 MiB on
/// MySQL 8) fit. Clones share the pool.
///
/// # Examples
///
/// ```no_run
/// use sealed_session::SessionEngine;
/// use sealed_session_stores::MySqlStore;
/// use sealed_session_stores::drivers::sqlx::MySqlPool;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = MySqlPool::connect("mysql://root@127.0.0.1:3306/app").await?;
/// let store = MySqlStore::new(pool).with_table_name("web_sessions")?;
/// store.migrate().await?;
/// let engine = SessionEngine::builder().with_store(store).build()?;
/// # let _ = engine; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    queries: Arc<Queries>,
}

impl MySqlStore {
    /// A store on an existing pool, in the table `sessions` of the
    /// connection's database. Call [`migrate`](Self::migrate) once to
    /// create the table.
    #[must_use]
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            pool,
            queries: Arc::new(Queries::new(None, DEFAULT_TABLE)),
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
        self.queries = Arc::new(Queries::new(self.queries.schema.as_deref(), name));
        Ok(self)
    }

    /// Puts the table in database (schema) `name` (default: the
    /// connection's). The database must exist.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentifier`], as for the table name.
    pub fn with_schema(mut self, name: &str) -> Result<Self, Error> {
        check_identifier(name)?;
        self.queries = Arc::new(Queries::new(Some(name), &self.queries.table));
        Ok(self)
    }

    /// Creates the table with its indexes if it does not exist, and adds
    /// the `owner` column and its index to a table created by an earlier
    /// version.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the server refuses (rights, say).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let q = &self.queries;
        let table = qualified(q.schema.as_deref(), &q.table);
        let owner_index = format!("{}_owner_idx", q.table);
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
                 id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
                 record LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                 expires_at BIGINT NOT NULL, \
                 {OWNER_COLUMN}, \
                 INDEX `{}_expires_at_idx` (expires_at), \
                 INDEX `{owner_index}` (owner({OWNER_PREFIX}))\
             ) ENGINE = InnoDB",
            q.table
        );
        sqlx::query(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        // A table of an earlier version lacks `owner`. MySQL 8 has no
        // `ADD COLUMN IF NOT EXISTS` (MariaDB has): ask the catalog.
        let (has_column, has_index) = self.owner_column_and_index(&owner_index).await?;
        let mut changes = Vec::new();
        if !has_column {
            changes.push(format!("ADD COLUMN {OWNER_COLUMN}"));
        }
        if !has_index {
            changes.push(format!("ADD INDEX `{owner_index}` (owner({OWNER_PREFIX}))"));
        }
        if changes.is_empty() {
            return Ok(());
        }
        let alter = format!("ALTER TABLE {table} {}", changes.join(", "));
        match sqlx::query(AssertSqlSafe(alter)).execute(&self.pool).await {
            Ok(_) => Ok(()),
            // Another server may have added them since we looked.
            Err(e) if self.owner_column_and_index(&owner_index).await? == (true, true) => {
                tracing::debug!(error = %e, "owner column added concurrently");
                Ok(())
            }
            Err(e) => Err(backend(BACKEND)(e)),
        }
    }

    /// Whether the table has the `owner` column, and its index.
    async fn owner_column_and_index(&self, index: &str) -> Result<(bool, bool), StoreError> {
        let q = &self.queries;
        let (columns, indexes): (i64, i64) = sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM information_schema.columns \
              WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
              AND column_name = 'owner'), \
             (SELECT COUNT(*) FROM information_schema.statistics \
              WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ? \
              AND index_name = ?)",
        )
        .bind(q.schema.as_deref())
        .bind(&q.table)
        .bind(q.schema.as_deref())
        .bind(&q.table)
        .bind(index)
        .fetch_one(&self.pool)
        .await
        .map_err(backend(BACKEND))?;
        Ok((columns > 0, indexes > 0))
    }

    /// Deletes every row past its expiry; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the server fails.
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
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The table name, qualified and quoted as it appears in SQL.
    #[must_use]
    pub fn qualified_table_name(&self) -> String {
        qualified(self.queries.schema.as_deref(), &self.queries.table)
    }
}

impl Store for MySqlStore {
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

    /// With a version: one `UPDATE` guarded by the stored `_version`,
    /// atomic under InnoDB's row lock. Without: a plain `INSERT` (one
    /// statement for a new id, the usual case); when the id's row exists,
    /// an `UPDATE` overwrites it only if it has expired, else it is a
    /// conflict. Each statement is atomic, so whatever another request
    /// does between them, at most one write wins. (A single
    /// `INSERT … ON DUPLICATE KEY UPDATE` cannot tell "kept the live row"
    /// from "replaced the expired one" through the affected-rows count when
    /// the client asks for found rows, as sqlx does.)
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
        if let Some(version) = expected {
            let done = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.update_if_version)))
                .bind(json)
                .bind(to_ms_i64(expires_at))
                .bind(owner)
                .bind(id.as_str())
                .bind(now)
                .bind(version)
                .execute(&self.pool)
                .await
                .map_err(backend(BACKEND))?;
            return one_row_or_conflict(done.rows_affected());
        }
        let inserted = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.insert)))
            .bind(id.as_str())
            .bind(&json)
            .bind(to_ms_i64(expires_at))
            .bind(owner)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let done = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.replace_if_expired)))
                    .bind(json)
                    .bind(to_ms_i64(expires_at))
                    .bind(owner)
                    .bind(id.as_str())
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(backend(BACKEND))?;
                one_row_or_conflict(done.rows_affected())
            }
            Err(e) => Err(backend(BACKEND)(e)),
        }
    }
}

/// The `owner` column, indexed: each operation is one statement. Expired
/// rows are neither listed nor counted; the sweeper removes them.
impl SessionIndex for MySqlStore {
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

impl DeleteExpired for MySqlStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        MySqlStore::delete_expired(self).await
    }
}
