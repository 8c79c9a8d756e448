//! [`RedisStore`]: sessions in Redis (or a Redis Cluster), expired by
//! Redis itself.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue, RedisError};
use sealed_session::{Record, RequestContext, SessionId, Store, StoreError};

const BACKEND: &str = "redis";
#[cfg(feature = "redis-cluster")]
const CLUSTER_BACKEND: &str = "redis-cluster";
const DEFAULT_PREFIX: &str = "session:";

/// Milliseconds from `now` to `expires_at`, `None` when none are left.
///
/// Redis expires keys by its own clock: a time left (`PX`), rather than an
/// instant (`PXAT`), keeps sessions living as long as the engine meant
/// even when the app server's clock and Redis' disagree.
fn ttl_ms(expires_at: SystemTime, now: SystemTime) -> Option<u64> {
    let left = expires_at.duration_since(now).ok()?;
    let ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
    (ms > 0).then_some(ms)
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

/// Keeps sessions in Redis: one key per session (`<prefix><id>`, the
/// record as JSON), expired by Redis at the record's expiry
/// (`SET key json PX <ms left>`).
///
/// Every `get`, `set` and `delete` is one round trip. A single server is
/// reached through a [`ConnectionManager`], which reconnects by itself
/// after Redis restarts or the network drops: the requests made while
/// Redis is away fail with a [`StoreError::Backend`], the next ones after
/// it is back succeed. With the `redis-cluster` feature, a Redis Cluster
/// is reached through redis-rs' cluster client, which follows slot moves
/// and failovers.
///
/// Errors name the backend `"redis"` (or `"redis-cluster"`) and keep the
/// redis-rs error as their source. Clones share the connection.
///
/// # Examples
///
/// ```no_run
/// use sealed_session::SessionEngine;
/// use sealed_session_stores::RedisStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379")
///     .await?
///     .with_prefix("myapp:session:");
/// let engine = SessionEngine::builder().with_store(store).build()?;
/// # let _ = engine; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    prefix: Arc<str>,
    backend: &'static str,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("backend", &self.backend)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// How the connection manager of [`RedisStore::connect`] behaves: fail a
/// request within seconds rather than hang while Redis is away, and keep
/// reconnecting attempts short so the first request after Redis is back
/// succeeds.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}

impl RedisStore {
    /// A store on an existing connection manager.
    #[must_use]
    pub fn new(manager: ConnectionManager) -> Self {
        Self {
            conn: Conn::Single(manager),
            prefix: DEFAULT_PREFIX.into(),
            backend: BACKEND,
        }
    }

    /// Connects to the server at `url` (`redis://[:password@]host[:port][/db]`,
    /// or `rediss://` with TLS if redis-rs is built with it).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL is invalid or the server does
    /// not answer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::backend(BACKEND, e))?;
        let manager = ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(|e| StoreError::backend(BACKEND, e))?;
        Ok(Self::new(manager))
    }

    /// As [`connect`](Self::connect), but connects on the first request,
    /// so an application can start while Redis is down (its requests fail
    /// until Redis is up).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL is invalid.
    pub fn connect_lazy(url: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::backend(BACKEND, e))?;
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config())
            .map_err(|e| StoreError::backend(BACKEND, e))?;
        Ok(Self::new(manager))
    }

    /// A store on an existing Redis Cluster connection.
    #[cfg(feature = "redis-cluster")]
    #[must_use]
    pub fn from_cluster(conn: redis::cluster_async::ClusterConnection) -> Self {
        Self {
            conn: Conn::Cluster(conn),
            prefix: DEFAULT_PREFIX.into(),
            backend: CLUSTER_BACKEND,
        }
    }

    /// Connects to a Redis Cluster through any of its `nodes`
    /// (`redis://host:port` each; the others are discovered).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] (backend `"redis-cluster"`) when a URL is
    /// invalid or no node answers.
    #[cfg(feature = "redis-cluster")]
    pub async fn connect_cluster<I, T>(nodes: I) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let nodes: Vec<String> = nodes
            .into_iter()
            .map(|n| n.as_ref().trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        let client = redis::cluster::ClusterClient::builder(nodes)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(5))
            .retries(3)
            .build()
            .map_err(|e| StoreError::backend(CLUSTER_BACKEND, e))?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| StoreError::backend(CLUSTER_BACKEND, e))?;
        Ok(Self::from_cluster(conn))
    }

    /// Prefixes every key with `prefix` (default `session:`), to share a
    /// Redis database with other data or other applications.
    #[must_use]
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The Redis key of session `id`.
    #[must_use]
    pub fn key_of(&self, id: &SessionId) -> String {
        let mut key = String::with_capacity(self.prefix.len() + id.as_str().len());
        key.push_str(&self.prefix);
        key.push_str(id.as_str());
        key
    }

    async fn run<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let result: Result<T, RedisError> = match &self.conn {
            Conn::Single(manager) => cmd.query_async(&mut manager.clone()).await,
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(conn) => cmd.query_async(&mut conn.clone()).await,
        };
        result.map_err(|e| StoreError::backend(self.backend, e))
    }
}

impl Store for RedisStore {
    /// Never reads the request, so the adapters do not copy it.
    fn uses_request_context(&self) -> bool {
        false
    }

    async fn get(
        &self,
        id: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key_of(id));
        let Some(bytes): Option<Vec<u8>> = self.run(cmd).await? else {
            return Ok(None);
        };
        let record: Record =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Serialization {
                backend: self.backend,
                source,
            })?;
        Ok(Some(Arc::new(record)))
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        let key = self.key_of(id);
        let Some(ttl) = ttl_ms(expires_at, SystemTime::now()) else {
            // An expiry in the past: the record is already gone.
            let mut cmd = redis::cmd("DEL");
            cmd.arg(key);
            return self.run::<()>(cmd).await;
        };
        let json = serde_json::to_vec(&*record).map_err(|source| StoreError::Serialization {
            backend: self.backend,
            source,
        })?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(json).arg("PX").arg(ttl);
        self.run::<()>(cmd).await
    }

    async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key_of(id));
        self.run::<()>(cmd).await
    }

    /// Atomic on the server: one `EVAL` reads the stored `_version` and
    /// writes only when it is the expected one.
    async fn compare_and_set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        expected: Option<u64>,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        const SCRIPT: &str = r"
            local current = redis.call('GET', KEYS[1])
            local version = ''
            if current then
                local ok, decoded = pcall(cjson.decode, current)
                if ok and type(decoded) == 'table' and decoded['_version'] ~= nil then
                    version = string.format('%d', decoded['_version'])
                else
                    version = 'none'
                end
            end
            if (ARGV[1] == '' and current) or (ARGV[1] ~= '' and version ~= ARGV[1]) then
                return 0
            end
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
            return 1
        ";
        let json = serde_json::to_vec(&*record).map_err(|source| StoreError::Serialization {
            backend: self.backend,
            source,
        })?;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(SCRIPT)
            .arg(1)
            .arg(self.key_of(id))
            .arg(expected.map(|v| v.to_string()).unwrap_or_default())
            .arg(json)
            // An expiry in the past: written, and gone a millisecond later.
            .arg(ttl_ms(expires_at, SystemTime::now()).unwrap_or(1));
        match self.run::<i64>(cmd).await? {
            1 => Ok(()),
            _ => Err(StoreError::Conflict),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_does_not_depend_on_what_the_clock_reads() {
        for now in [SystemTime::UNIX_EPOCH, SystemTime::now()] {
            let expires_at = now + Duration::from_secs(90);
            assert_eq!(ttl_ms(expires_at, now), Some(90_000));
            assert_eq!(
                ttl_ms(expires_at, now + Duration::from_millis(250)),
                Some(89_750)
            );
        }
    }

    #[test]
    fn no_time_left_is_none() {
        let now = SystemTime::now();
        assert_eq!(ttl_ms(now, now), None);
        assert_eq!(ttl_ms(now + Duration::from_micros(999), now), None);
        assert_eq!(ttl_ms(now - Duration::from_secs(1), now), None);
    }
}
