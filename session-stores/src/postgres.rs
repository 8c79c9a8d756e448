//! [`PostgresStore`]: sessions in a PostgreSQL table.

use std::sync::Arc;
use std::time::SystemTime;

use sealed_session::{Record, RequestContext, SessionId, Store, StoreError};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row as _};

use crate::error::Error;
use crate::sql::{
    DEFAULT_TABLE, backend, check_identifier, one_row_or_conflict, parse_record, record_json,
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
                "INSERT INTO {t} (id, record, expires_at) \
                 VALUES ($1, $2::json, to_timestamp($3::float8 / 1000)) \
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at"
            )
            .into(),
            delete: format!("DELETE FROM {t} WHERE id = $1").into(),
            update_if_version: format!(
                "UPDATE {t} SET record = $2::json, expires_at = to_timestamp($3::float8 / 1000) \
                 WHERE id = $1 AND expires_at > to_timestamp($4::float8 / 1000) \
                 AND record->>'_version' = $5"
            )
            .into(),
            insert_if_absent: format!(
                "INSERT INTO {t} (id, record, expires_at) \
                 VALUES ($1, $2::json, to_timestamp($3::float8 / 1000)) \
                 ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, expires_at = EXCLUDED.expires_at \
                 WHERE {t}.expires_at <= to_timestamp($4::float8 / 1000)"
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
///     expires_at TIMESTAMPTZ NOT NULL
/// );
/// CREATE INDEX IF NOT EXISTS "sessions_expires_at_idx" ON "sessions" (expires_at);
/// ```
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

    /// Creates the schema, the table and its expiry index if they do not
    /// exist. Safe to run from several processes at once (it holds an
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
                 expires_at TIMESTAMPTZ NOT NULL)",
            q.qualified()
        ));
        statements.push(format!(
            "CREATE INDEX IF NOT EXISTS \"{}_expires_at_idx\" ON {} (expires_at)",
            q.table,
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
        let now = now_ms_i64().min(MAX_MS);
        let query = match expected {
            Some(version) => {
                sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.update_if_version)))
                    .bind(id.as_str())
                    .bind(json)
                    .bind(ms(expires_at))
                    .bind(now)
                    .bind(version.to_string())
            }
            None => sqlx::query(AssertSqlSafe(Arc::clone(&self.queries.insert_if_absent)))
                .bind(id.as_str())
                .bind(json)
                .bind(ms(expires_at))
                .bind(now),
        };
        let done = query.execute(&self.pool).await.map_err(backend(BACKEND))?;
        one_row_or_conflict(done.rows_affected())
    }
}

impl DeleteExpired for PostgresStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        PostgresStore::delete_expired(self).await
    }
}
