//! [`PostgresStore`]: sessions in a PostgreSQL table.

use std::sync::Arc;
use std::time::SystemTime;

use sealed_session::{
    Record, RequestContext, SessionId, SessionIndex, SessionInfo, Store, StoreError, record_owner,
};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row as _};

use crate::error::Error;
use crate::sql::{
    DEFAULT_TABLE, backend, check_identifier, listing, one_row_or_conflict, parse_record,
    record_json, revoked,
};
use crate::sweep::DeleteExpired;
use crate::time::{now_ms_i64, to_ms_i64};

const BACKEND: &str = "postgres";
/// The last millisecond of year 9999, the latest `to_timestamp` takes
/// without complaint.
const MAX_MS: i64 = 253_402_300_799_999;

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
    fn new(schema: Option<&str>, table: &str) -> Self {
        let t = match schema {
            Some(s) => format!("\"{s}\".\"{table}\""),
            None => format!("\"{table}\""),
        };
        Self {
            schema: schema.map(str::to_owned),
            table: table.to_owned(),
            get: format!(
                "SELECT record::text FROM {t} \
                 WHERE id = $1 AND expires_at > to_timestamp($2::float8 / 1000)"
            )
            .into(),
            set: format!(
                "INSERT INTO {t} (id, record, expires_at, owner) \
                 VALUES ($1, $2::json, to_timestamp($3::float8 / 1000), $4) \
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, \
                 expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner"
            )
            .into(),
            delete: format!("DELETE FROM {t} WHERE id = $1").into(),
            update_if_version: format!(
                "UPDATE {t} SET record = $2::json, expires_at = to_timestamp($3::float8 / 1000), \
                 owner = $6 \
                 WHERE id = $1 AND expires_at > to_timestamp($4::float8 / 1000) \
                 AND record->>'_version' = $5"
            )
            .into(),
            insert_if_absent: format!(
                "INSERT INTO {t} (id, record, expires_at, owner) \
                 VALUES ($1, $2::json, to_timestamp($3::float8 / 1000), $5) \
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, \
                 expires_at = EXCLUDED.expires_at, owner = EXCLUDED.owner \
                 WHERE {t}.expires_at <= to_timestamp($4::float8 / 1000)"
            )
            .into(),
            sessions_of: format!(
                "SELECT id, record::text FROM {t} \
                 WHERE owner = $1 AND expires_at > to_timestamp($2::float8 / 1000)"
            )
            .into(),
            revoke: format!(
                "DELETE FROM {t} \
                 WHERE id = $1 AND owner = $2 AND expires_at > to_timestamp($3::float8 / 1000)"
            )
            .into(),
            revoke_all: format!(
                "DELETE FROM {t} WHERE owner = $1 AND expires_at > to_timestamp($2::float8 / 1000)"
            )
            .into(),
            revoke_all_except: format!(
                "DELETE FROM {t} \
                 WHERE owner = $1 AND expires_at > to_timestamp($2::float8 / 1000) AND id <> $3"
            )
            .into(),
            delete_expired: format!(
                "DELETE FROM {t} WHERE expires_at <= to_timestamp($1::float8 / 1000)"
            )
            .into(),
        }
    }

    fn qualified(&self) -> String {
        match &self.schema {
            Some(s) => format!("\"{s}\".\"{}\"", self.table),
            None => format!("\"{}\"", self.table),
        }
    }
}

fn ms(t: SystemTime) -> i64 {
    to_ms_i64(t).min(MAX_MS)
}

/// Keeps sessions in a PostgreSQL table, on a pool you already have.
///
/// Table (created by [`migrate`](Self::migrate)):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS "sessions" (
///     id TEXT PRIMARY KEY NOT NULL,
///     record JSON NOT NULL,
///     expires_at TIMESTAMPTZ NOT NULL,
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
/// The record column is `JSON`, not `JSONB`: `JSONB` refuses the
/// character U+0000, which a session may well hold (a user's input), and
/// the store never queries inside records. `get` never returns a row past
/// `expires_at`; expired rows stay until
/// [`delete_expired`](Self::delete_expired) or a
/// [`spawn_sweeper`](crate::spawn_sweeper) removes them. Clones share the
/// pool.
///
/// # Examples
///
/// ```no_run
/// use sealed_session::SessionEngine;
/// use sealed_session_stores::PostgresStore;
/// use sealed_session_stores::drivers::sqlx::PgPool;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = PgPool::connect("postgres://postgres@127.0.0.1:5432/app").await?;
/// let store = PostgresStore::new(pool)
///     .with_schema("auth")?
///     .with_table_name("web_sessions")?;
/// store.migrate().await?;
/// let engine = SessionEngine::builder().with_store(store).build()?;
/// # let _ = engine; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    queries: Arc<Queries>,
}

impl PostgresStore {
    /// A store on an existing pool, in the table `sessions` of the
    /// connection's search path. Call [`migrate`](Self::migrate) once to
    /// create the table.
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
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

    /// Puts the table in schema `name` (default: the search path);
    /// [`migrate`](Self::migrate) creates the schema if missing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidIdentifier`], as for the table name.
    pub fn with_schema(mut self, name: &str) -> Result<Self, Error> {
        check_identifier(name)?;
        self.queries = Arc::new(Queries::new(Some(name), &self.queries.table));
        Ok(self)
    }

    /// Creates the schema, the table and its indexes if they do not exist,
    /// and adds the `owner` column to a table created by an earlier
    /// version. Safe to run from several processes at once (it holds an
    /// advisory lock meanwhile).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when PostgreSQL refuses (rights, say).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let q = &self.queries;
        let mut statements = Vec::new();
        if let Some(schema) = &q.schema {
            statements.push(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""));
        }
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS {} (\
                 id TEXT PRIMARY KEY NOT NULL, \
                 record JSON NOT NULL, \
                 expires_at TIMESTAMPTZ NOT NULL, \
                 owner TEXT)",
            q.qualified()
        ));
        let mut tx = self.pool.begin().await.map_err(backend(BACKEND))?;
        // `IF NOT EXISTS` still races on the catalog: serialise migrations.
        sqlx::query("SELECT pg_advisory_xact_lock(7316624577372117760)")
            .execute(&mut *tx)
            .await
            .map_err(backend(BACKEND))?;
        for sql in statements {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(backend(BACKEND))?;
        }
        // A table of an earlier version lacks `owner`. Looked up first:
        // `ADD COLUMN IF NOT EXISTS` would lock the table exclusively on
        // every start, queueing the other servers' requests behind it.
        let (has_owner,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attname = 'owner' AND NOT attisdropped)",
        )
        .bind(q.qualified())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend(BACKEND))?;
        let mut statements = Vec::new();
        if !has_owner {
            statements.push(format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS owner TEXT",
                q.qualified()
            ));
        }
        for column in ["expires_at", "owner"] {
            statements.push(format!(
                "CREATE INDEX IF NOT EXISTS \"{}_{column}_idx\" ON {} ({column})",
                q.table,
                q.qualified()
            ));
        }
        for sql in statements {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(backend(BACKEND))?;
        }
        tx.commit().await.map_err(backend(BACKEND))
    }

    /// Deletes every row past its expiry; returns how many.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when PostgreSQL fails.
    pub async fn delete_expired(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.delete_expired)))
            .bind(now_ms_i64().min(MAX_MS))
            .execute(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        Ok(done.rows_affected())
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The table name, schema-qualified and quoted as it appears in SQL.
    #[must_use]
    pub fn qualified_table_name(&self) -> String {
        self.queries.qualified()
    }
}

impl Store for PostgresStore {
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
            .bind(ms(SystemTime::now()))
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
            .bind(ms(expires_at))
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
    /// One statement, atomic under PostgreSQL's row lock: an `UPDATE`
    /// guarded by the stored `_version`, or an insert that only replaces an
    /// expired row.
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
        let now = now_ms_i64().min(MAX_MS);
        let query = match expected {
            Some(version) => {
                sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.update_if_version)))
                    .bind(id.as_str())
                    .bind(json)
                    .bind(ms(expires_at))
                    .bind(now)
                    .bind(version.to_string())
                    .bind(owner)
            }
            None => sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.insert_if_absent)))
                .bind(id.as_str())
                .bind(json)
                .bind(ms(expires_at))
                .bind(now)
                .bind(owner),
        };
        let done = query.execute(&self.pool).await.map_err(backend(BACKEND))?;
        one_row_or_conflict(done.rows_affected())
    }
}

/// The `owner` column, indexed: each operation is one statement. Expired
/// rows are neither listed nor counted; the sweeper removes them.
impl SessionIndex for PostgresStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.sessions_of)))
            .bind(owner)
            .bind(ms(SystemTime::now()))
            .fetch_all(&self.pool)
            .await
            .map_err(backend(BACKEND))?;
        listing(BACKEND, owner, &rows)
    }

    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        let done = sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.revoke)))
            .bind(id.as_str())
            .bind(owner)
            .bind(ms(SystemTime::now()))
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
        let now = ms(SystemTime::now());
        let query = match except {
            Some(id) => sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.revoke_all_except)))
                .bind(owner)
                .bind(now)
                .bind(id.as_str()),
            None => sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.revoke_all)))
                .bind(owner)
                .bind(now),
        };
        let done = query.execute(&self.pool).await.map_err(backend(BACKEND))?;
        Ok(revoked(done.rows_affected()))
    }
}

impl DeleteExpired for PostgresStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        PostgresStore::delete_expired(self).await
    }
}
