//! [`AnyStore`] and [`store_from_url`]: a store chosen at run time.

use std::sync::Arc;
use std::time::SystemTime;

use sealed_session::{
    MemoryStore, Record, RequestContext, SessionId, SessionIndex, SessionInfo, Store, StoreError,
};

use crate::error::Error;
use crate::sweep::DeleteExpired;

/// One of this crate's stores, chosen at run time (see [`store_from_url`]).
///
/// The variants present are those whose feature is enabled.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyStore {
    /// [`MemoryStore`].
    Memory(MemoryStore),
    /// `FileStore`.
    #[cfg(feature = "file")]
    File(crate::FileStore),
    /// `SqliteStore`.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteStore),
    /// `PostgresStore`.
    #[cfg(feature = "postgres")]
    Postgres(crate::PostgresStore),
    /// `MySqlStore`.
    #[cfg(feature = "mysql")]
    MySql(crate::MySqlStore),
    /// `RedisStore`, on one server or a cluster.
    #[cfg(feature = "redis")]
    Redis(crate::RedisStore),
}

impl AnyStore {
    /// The kind of store: `"memory"`, `"file"`, `"sqlite"`, `"postgres"`,
    /// `"mysql"` or `"redis"`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            #[cfg(feature = "file")]
            Self::File(_) => "file",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
            #[cfg(feature = "mysql")]
            Self::MySql(_) => "mysql",
            #[cfg(feature = "redis")]
            Self::Redis(_) => "redis",
        }
    }
}

/// Runs `$body` with `$s` bound to the inner store, whatever the variant.
macro_rules! each {
    ($self:expr, $s:ident => $body:expr) => {
        match $self {
            AnyStore::Memory($s) => $body,
            #[cfg(feature = "file")]
            AnyStore::File($s) => $body,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($s) => $body,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($s) => $body,
            #[cfg(feature = "mysql")]
            AnyStore::MySql($s) => $body,
            #[cfg(feature = "redis")]
            AnyStore::Redis($s) => $body,
        }
    };
}

impl Store for AnyStore {
    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        each!(self, s => s.get(id, cx).await)
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        each!(self, s => s.set(id, record, expires_at, cx).await)
    }

    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        each!(self, s => s.delete(id, cx).await)
    }

    async fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        each!(self, s => s.compare_and_set(id, record, expires_at, expected, cx).await)
    }

    fn uses_request_context(&self) -> bool {
        each!(self, s => s.uses_request_context())
    }
}

/// Per-user sessions, by the chosen store's own index (every variant has
/// one).
impl SessionIndex for AnyStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        each!(self, s => s.sessions_of(owner).await)
    }

    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        each!(self, s => s.revoke(owner, id).await)
    }

    async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        each!(self, s => s.revoke_all(owner, except).await)
    }
}

impl DeleteExpired for AnyStore {
    /// Sweeps stores without native expiry; Redis expires keys itself
    /// (returns 0).
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        match self {
            #[cfg(feature = "redis")]
            Self::Redis(_) => Ok(0),
            Self::Memory(s) => DeleteExpired::delete_expired(s).await,
            #[cfg(feature = "file")]
            Self::File(s) => s.delete_expired().await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s.delete_expired().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => s.delete_expired().await,
            #[cfg(feature = "mysql")]
            Self::MySql(s) => s.delete_expired().await,
        }
    }
}

/// Opens the store a spec names, as the demo's `SESSION_STORE` does:
///
/// | Spec | Store | Feature |
/// | --- | --- | --- |
/// | `memory` | [`MemoryStore`] | |
/// | `file:DIR` | `FileStore` in `DIR` (created if missing) | `file` |
/// | `sqlite:PATH`, `sqlite://PATH` | `SqliteStore` in the file `PATH` (created if missing) | `sqlite` |
/// | `sqlite::memory:` | `SqliteStore` in memory | `sqlite` |
/// | `postgres://…`, `postgresql://…` | `PostgresStore`, table `sessions` | `postgres` |
/// | `mysql://…`, `mariadb://…` | `MySqlStore`, table `sessions` | `mysql` |
/// | `redis://…`, `rediss://…` | `RedisStore`, prefix `session:` | `redis` |
/// | `redis+cluster://HOST:PORT,HOST:PORT,…` | `RedisStore` on a cluster | `redis-cluster` |
///
/// SQL stores create their table if it is missing. The spec may hold a
/// password; errors never repeat it.
///
/// # Errors
///
/// [`Error::UnknownStore`] for a spec it does not understand,
/// [`Error::FeatureDisabled`] for a store whose feature is off, and
/// [`Error::Store`] when the store cannot be reached or set up.
///
/// # Examples
///
/// ```
/// use sealed_session::SessionEngine;
/// use sealed_session_stores::store_from_url;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let spec = std::env::var("SESSION_STORE").unwrap_or_else(|_| "memory".to_owned());
/// let store = store_from_url(&spec).await?;
/// let engine = SessionEngine::builder().with_store(store).build()?;
/// # let _ = engine; Ok(()) }
/// ```
pub async fn store_from_url(spec: &str) -> Result<AnyStore, Error> {
    let spec = spec.trim();
    let scheme = spec.split(':').next().unwrap_or_default();
    match scheme {
        "memory" if spec == "memory" => Ok(AnyStore::Memory(MemoryStore::new())),
        "file" => open_file(spec.strip_prefix("file:").unwrap_or_default()).await,
        "sqlite" => open_sqlite(spec).await,
        "postgres" | "postgresql" => open_postgres(spec).await,
        "mysql" | "mariadb" => open_mysql(spec).await,
        "redis" | "rediss" => open_redis(spec).await,
        "redis+cluster" => open_redis_cluster(spec).await,
        _ => Err(Error::UnknownStore {
            scheme: scheme.chars().take(32).collect(),
        }),
    }
}

#[cfg(feature = "file")]
async fn open_file(dir: &str) -> Result<AnyStore, Error> {
    if dir.is_empty() {
        return Err(Error::UnknownStore {
            scheme: "file".to_owned(),
        });
    }
    Ok(AnyStore::File(crate::FileStore::open(dir).await?))
}

#[cfg(not(feature = "file"))]
async fn open_file(_: &str) -> Result<AnyStore, Error> {
    Err(Error::FeatureDisabled {
        scheme: "file",
        feature: "file",
    })
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(spec: &str) -> Result<AnyStore, Error> {
    if spec == "sqlite::memory:" {
        return Ok(AnyStore::Sqlite(crate::SqliteStore::in_memory().await?));
    }
    let path = spec
        .strip_prefix("sqlite://")
        .or_else(|| spec.strip_prefix("sqlite:"))
        .unwrap_or_default();
    if path.is_empty() {
        return Err(Error::UnknownStore {
            scheme: "sqlite".to_owned(),
        });
    }
    Ok(AnyStore::Sqlite(crate::SqliteStore::open(path).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: &str) -> Result<AnyStore, Error> {
    Err(Error::FeatureDisabled {
        scheme: "sqlite",
        feature: "sqlite",
    })
}

/// The error to report for a pool that could not open its first
/// connection. sqlx retries connection errors it deems transient (a
/// refused or reset connection) until the pool's acquire timeout and then
/// answers only "pool timed out"; one direct connection attempt recovers
/// the cause the user can act on ("connection refused"), which is then
/// reported instead. Any other error is reported as it is.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn why_no_connection<C: sqlx::Connection>(url: &str, error: sqlx::Error) -> sqlx::Error {
    if !matches!(error, sqlx::Error::PoolTimedOut) {
        return error;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(5), C::connect(url)).await {
        Ok(Err(cause)) => cause,
        // It connects now, or hangs: the timeout is the best account.
        Ok(Ok(connection)) => {
            drop(connection.close().await);
            error
        }
        Err(_) => error,
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<AnyStore, Error> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(5))
        // sqlx pings every connection when it goes back to the pool; a
        // second ping before each use would add a round trip per request.
        .test_before_acquire(false)
        .connect(url)
        .await;
    let pool = match pool {
        Ok(pool) => pool,
        Err(error) => {
            let error = why_no_connection::<sqlx::PgConnection>(url, error).await;
            return Err(StoreError::backend("postgres", error).into());
        }
    };
    let store = crate::PostgresStore::new(pool);
    store.migrate().await?;
    Ok(AnyStore::Postgres(store))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &str) -> Result<AnyStore, Error> {
    Err(Error::FeatureDisabled {
        scheme: "postgres",
        feature: "postgres",
    })
}

#[cfg(feature = "mysql")]
async fn open_mysql(url: &str) -> Result<AnyStore, Error> {
    let url = url
        .strip_prefix("mariadb://")
        .map_or_else(|| url.to_owned(), |rest| format!("mysql://{rest}"));
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(5))
        // As for Postgres: tested on release, not again before each use.
        .test_before_acquire(false)
        .connect(&url)
        .await;
    let pool = match pool {
        Ok(pool) => pool,
        Err(error) => {
            let error = why_no_connection::<sqlx::MySqlConnection>(&url, error).await;
            return Err(StoreError::backend("mysql", error).into());
        }
    };
    let store = crate::MySqlStore::new(pool);
    store.migrate().await?;
    Ok(AnyStore::MySql(store))
}

#[cfg(not(feature = "mysql"))]
async fn open_mysql(_: &str) -> Result<AnyStore, Error> {
    Err(Error::FeatureDisabled {
        scheme: "mysql",
        feature: "mysql",
    })
}

#[cfg(feature = "redis")]
async fn open_redis(url: &str) -> Result<AnyStore, Error> {
    Ok(AnyStore::Redis(crate::RedisStore::connect(url).await?))
}

#[cfg(not(feature = "redis"))]
async fn open_redis(_: &str) -> Result<AnyStore, Error> {
    Err(Error::FeatureDisabled {
        scheme: "redis",
        feature: "redis",
    })
}

/// The node URLs of `redis+cluster://a:1,b:2` (each may also be a full
/// `redis://` URL).
#[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
fn cluster_nodes(spec: &str) -> Vec<String> {
    spec.strip_prefix("redis+cluster://")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| {
            if n.starts_with("redis://") || n.starts_with("rediss://") {
                n.to_owned()
            } else {
                format!("redis://{n}")
            }
        })
        .collect()
}

#[cfg(feature = "redis-cluster")]
async fn open_redis_cluster(spec: &str) -> Result<AnyStore, Error> {
    let nodes = cluster_nodes(spec);
    if nodes.is_empty() {
        return Err(Error::UnknownStore {
            scheme: "redis+cluster".to_owned(),
        });
    }
    Ok(AnyStore::Redis(
        crate::RedisStore::connect_cluster(nodes).await?,
    ))
}

#[cfg(not(feature = "redis-cluster"))]
async fn open_redis_cluster(_: &str) -> Result<AnyStore, Error> {
    Err(Error::FeatureDisabled {
        scheme: "redis+cluster",
        feature: "redis-cluster",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_and_unknown_specs() {
        assert_eq!(store_from_url("memory").await.unwrap().kind(), "memory");
        let err = store_from_url("ftp://user:hunter2@host/x")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnknownStore { .. }));
        assert!(!err.to_string().contains("hunter2"));
        assert!(matches!(
            store_from_url("memoryx").await,
            Err(Error::UnknownStore { .. })
        ));
    }

    #[test]
    fn cluster_specs_list_node_urls() {
        assert_eq!(
            cluster_nodes("redis+cluster://127.0.0.1:7101, 127.0.0.1:7102,redis://h:3"),
            [
                "redis://127.0.0.1:7101",
                "redis://127.0.0.1:7102",
                "redis://h:3"
            ]
        );
        assert!(cluster_nodes("redis+cluster://").is_empty());
    }
}
