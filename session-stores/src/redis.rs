//! [`RedisStore`]: sessions in Redis (or a Redis Cluster), expired by
//! Redis itself.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue, Pipeline, RedisError};
use sealed_session::{
    Record, RequestContext, SessionId, SessionIndex, SessionInfo, Store, StoreError, record_owner,
};

use crate::time::to_ms;

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
/// # Per-user sessions
///
/// [`SessionIndex`] is kept in a sorted set per owner,
/// [`<prefix>owner:{<owner>}`](Self::owner_key): the member is the session
/// id, its score the session's expiry (milliseconds since the epoch). The
/// braces are a hash tag, so a Redis Cluster keeps each owner's set on one
/// slot. Only writes of records with an owner touch it; every other
/// request sends the same commands as without an index.
///
/// - On one server, a write of an owned record is still one round trip:
///   `MULTI`, the `SET`, `ZADD` of the id, `ZREMRANGEBYSCORE` of the
///   owner's expired entries, `PEXPIRE … NX` and `PEXPIRE … GT` (so that
///   the set expires with the owner's last session; Redis 7), `EXEC`.
///   [`compare_and_set`](Store::compare_and_set) does the same inside its
///   script. Listing, [`revoke`](SessionIndex::revoke) and
///   [`revoke_all`](SessionIndex::revoke_all) are each one script: atomic,
///   so a revocation racing a login either reaches the new session or
///   happens before it, and entries whose records are gone leave the set.
/// - On a cluster, a record's key and its owner's set live on different
///   slots, which neither `MULTI` nor a script (nor a redis-rs cluster
///   pipeline) may span. A write of an owned record is then two round
///   trips, the set's commands first (one pipeline on the owner's slot),
///   then the record's: whatever fails, no live session is left out of
///   the index. Listing reads each record with its own `GET`;
///   `revoke_all` deletes them one `DEL` at a time, and if Redis fails
///   midway it returns the error (the sessions it did not reach are still
///   live; calling it again finishes the job). Entries whose records are
///   gone are filtered out when listed and leave the set at their expiry,
///   not earlier: removing them at listing time could race a login in
///   flight (which writes the set before the record).
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

    /// The Redis key of `owner`'s sorted set of sessions
    /// (`<prefix>owner:{<owner>}`, see [Per-user sessions](Self#per-user-sessions)).
    #[must_use]
    pub fn owner_key(&self, owner: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + owner.len() + 8);
        key.push_str(&self.prefix);
        key.push_str("owner:{");
        key.push_str(owner);
        key.push('}');
        key
    }

    fn serialize(&self, record: &Record) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(record).map_err(|source| StoreError::Serialization {
            backend: self.backend,
            source,
        })
    }

    /// Whether the store is on a cluster.
    fn is_cluster(&self) -> bool {
        match &self.conn {
            Conn::Single(_) => false,
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(_) => true,
        }
    }

    async fn run_pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, StoreError> {
        let result: Result<T, RedisError> = match &self.conn {
            Conn::Single(manager) => pipe.query_async(&mut manager.clone()).await,
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(conn) => pipe.query_async(&mut conn.clone()).await,
        };
        result.map_err(|e| StoreError::backend(self.backend, e))
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

/// What a write of an owned record adds to its owner's set.
struct Indexed<'a> {
    key: String,
    id: &'a str,
    /// The session's expiry, the member's score.
    expires_ms: u64,
    /// Now, by the same clock: entries scored before it leave the set.
    now_ms: u64,
    /// The session's time left, by which the set's own expiry moves.
    ttl_ms: u64,
}

impl<'a> Indexed<'a> {
    fn new(
        store: &RedisStore,
        owner: &str,
        id: &'a SessionId,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Self {
        Self {
            key: store.owner_key(owner),
            id: id.as_str(),
            expires_ms: to_ms(expires_at),
            now_ms: to_ms(now),
            ttl_ms: ttl_ms(expires_at, now).unwrap_or(1),
        }
    }

    /// `ZADD`, `ZREMRANGEBYSCORE` of the expired entries, and the set's
    /// expiry: set if it has none (`NX`; `GT` alone treats a key without
    /// one as never expiring, and would never set it), moved later if this
    /// session outlives it (`GT`).
    fn add_to(&self, pipe: &mut Pipeline) {
        pipe.cmd("ZADD")
            .arg(&self.key)
            .arg(self.expires_ms)
            .arg(self.id)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.key)
            .arg("-inf")
            .arg(format!("({}", self.now_ms))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&self.key)
            .arg(self.ttl_ms)
            .arg("NX")
            .ignore()
            .cmd("PEXPIRE")
            .arg(&self.key)
            .arg(self.ttl_ms)
            .arg("GT")
            .ignore();
    }
}

/// Lua: whether the JSON record `json` names `owner`.
const LUA_MINE: &str = r"
    local function mine(json, owner)
        if not json then return false end
        local ok, decoded = pcall(cjson.decode, json)
        if not ok or type(decoded) ~= 'table' then return false end
        local o = decoded['_owner']
        return type(o) == 'table' and o['id'] == owner
    end
";

/// Lua: the live ids of the owner's set `KEYS[1]` whose records (under
/// the prefix `ARGV[1]`) name the owner `ARGV[3]` at `ARGV[2]` (ms), with
/// those records, in `ids` and `records`; every other entry leaves the set.
///
/// It reads record keys it does not declare in `KEYS`, which a single
/// server allows; these scripts never run on a cluster.
const LUA_LIVE: &str = r"
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
    local ids, records = {}, {}
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
        local json = redis.call('GET', ARGV[1] .. id)
        if mine(json, ARGV[3]) then
            ids[#ids + 1] = id
            records[#records + 1] = json
        else
            redis.call('ZREM', KEYS[1], id)
        end
    end
";

impl RedisStore {
    /// The owner's live sessions, as `(id, record)` (single server: one
    /// script; cluster: the set, then each record).
    async fn live_of(&self, owner: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let key = self.owner_key(owner);
        let now = to_ms(SystemTime::now());
        if !self.is_cluster() {
            let script = format!(
                "{LUA_MINE}{LUA_LIVE}
                local out = {{}}
                for i, id in ipairs(ids) do
                    out[#out + 1] = id
                    out[#out + 1] = records[i]
                end
                return out"
            );
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(script)
                .arg(1)
                .arg(&key)
                .arg(&*self.prefix)
                .arg(now)
                .arg(owner);
            let flat: Vec<Vec<u8>> = self.run(cmd).await?;
            let mut live = Vec::with_capacity(flat.len() / 2);
            let mut items = flat.into_iter();
            while let (Some(id), Some(json)) = (items.next(), items.next()) {
                live.push((String::from_utf8_lossy(&id).into_owned(), json));
            }
            return Ok(live);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(format!("({now}"))
            .ignore()
            .cmd("ZRANGEBYSCORE")
            .arg(&key)
            .arg(now)
            .arg("+inf");
        let (ids,): (Vec<String>,) = self.run_pipe(&pipe).await?;
        let mut live = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(parsed) = SessionId::parse(&id) else {
                continue;
            };
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.key_of(&parsed));
            let found: Option<Vec<u8>> = self.run(cmd).await?;
            if let Some(json) = found {
                live.push((id, json));
            }
        }
        Ok(live)
    }

    /// `json` parsed, if it names `owner`. A record that does not parse
    /// names nobody (as in the scripts' `mine`): it neither breaks a
    /// listing nor stops a `revoke_all`.
    fn owned_by(json: &[u8], owner: &str) -> Option<Record> {
        let record: Record = serde_json::from_slice(json).ok()?;
        (record_owner(&record) == Some(owner)).then_some(record)
    }
}

/// See [Per-user sessions](RedisStore#per-user-sessions) for the commands
/// and what a cluster changes.
impl SessionIndex for RedisStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let mut infos = Vec::new();
        for (id, json) in self.live_of(owner).await? {
            let (Some(id), Some(record)) = (SessionId::parse(&id), Self::owned_by(&json, owner))
            else {
                continue;
            };
            infos.extend(SessionInfo::from_record(&id, &record));
        }
        Ok(infos)
    }

    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        let key = self.key_of(id);
        let set = self.owner_key(owner);
        if !self.is_cluster() {
            let script = format!(
                "{LUA_MINE}
                if mine(redis.call('GET', KEYS[2]), ARGV[1]) then
                    redis.call('DEL', KEYS[2])
                    redis.call('ZREM', KEYS[1], ARGV[2])
                    return 1
                end
                redis.call('ZREM', KEYS[1], ARGV[2])
                return 0"
            );
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(script)
                .arg(2)
                .arg(&set)
                .arg(&key)
                .arg(owner)
                .arg(id.as_str());
            return Ok(self.run::<i64>(cmd).await? == 1);
        }
        let mut get = redis::cmd("GET");
        get.arg(&key);
        let Some(json): Option<Vec<u8>> = self.run(get).await? else {
            return Ok(false);
        };
        if Self::owned_by(&json, owner).is_none() {
            return Ok(false);
        }
        let mut del = redis::cmd("DEL");
        del.arg(&key);
        let deleted: i64 = self.run(del).await?;
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(&set).arg(id.as_str());
        self.run::<()>(zrem).await?;
        Ok(deleted > 0)
    }

    async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        let set = self.owner_key(owner);
        let except = except.map_or("", SessionId::as_str);
        if !self.is_cluster() {
            let script = format!(
                "{LUA_MINE}{LUA_LIVE}
                local revoked = 0
                for _, id in ipairs(ids) do
                    if id ~= ARGV[4] then
                        revoked = revoked + redis.call('DEL', ARGV[1] .. id)
                        redis.call('ZREM', KEYS[1], id)
                    end
                end
                return revoked"
            );
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(script)
                .arg(1)
                .arg(&set)
                .arg(&*self.prefix)
                .arg(to_ms(SystemTime::now()))
                .arg(owner)
                .arg(except);
            let revoked: i64 = self.run(cmd).await?;
            return Ok(usize::try_from(revoked).unwrap_or(0));
        }
        let mut revoked = 0;
        let mut deleted = Vec::new();
        for (id, json) in self.live_of(owner).await? {
            if id == except {
                continue;
            }
            let Some(parsed) = SessionId::parse(&id) else {
                continue;
            };
            if Self::owned_by(&json, owner).is_none() {
                continue;
            }
            let mut del = redis::cmd("DEL");
            del.arg(self.key_of(&parsed));
            let n: i64 = self.run(del).await?;
            revoked += usize::try_from(n).unwrap_or(0);
            deleted.push(id);
        }
        if !deleted.is_empty() {
            let mut zrem = redis::cmd("ZREM");
            zrem.arg(&set).arg(deleted);
            self.run::<()>(zrem).await?;
        }
        Ok(revoked)
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
        let now = SystemTime::now();
        let Some(ttl) = ttl_ms(expires_at, now) else {
            // An expiry in the past: the record is already gone (and its
            // index entry, scored in the past, leaves at the next write).
            let mut cmd = redis::cmd("DEL");
            cmd.arg(key);
            return self.run::<()>(cmd).await;
        };
        let json = self.serialize(&record)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(json).arg("PX").arg(ttl);
        let Some(owner) = record_owner(&record) else {
            return self.run::<()>(cmd).await;
        };
        let indexed = Indexed::new(self, owner, id, expires_at, now);
        let mut pipe = redis::pipe();
        if self.is_cluster() {
            // The set's slot first, then the record's (see the type's docs).
            indexed.add_to(pipe.atomic());
            self.run_pipe::<()>(&pipe).await?;
            return self.run::<()>(cmd).await;
        }
        pipe.atomic().add_command(cmd).ignore();
        indexed.add_to(&mut pipe);
        self.run_pipe::<()>(&pipe).await
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
        /// Reads the version and writes if it is the expected one (`1`).
        macro_rules! cas {
            ($then:literal) => {
                concat!(
                    r"
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
            ",
                    $then,
                    "
            return 1
        "
                )
            };
        }
        const SCRIPT: &str = cas!("");
        /// With the owner's set as `KEYS[2]`: the commands of
        /// `Indexed::add_to`, after the write.
        const OWNED: &str = cas!(
            r"
            redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
            redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[6])
            redis.call('PEXPIRE', KEYS[2], ARGV[3], 'NX')
            redis.call('PEXPIRE', KEYS[2], ARGV[3], 'GT')"
        );
        let json = self.serialize(&record)?;
        let now = SystemTime::now();
        let owner = record_owner(&record);
        let together = owner.is_some() && !self.is_cluster();
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(if together { OWNED } else { SCRIPT })
            .arg(if together { 2 } else { 1 })
            .arg(self.key_of(id));
        let indexed = owner.map(|owner| Indexed::new(self, owner, id, expires_at, now));
        if let (Some(indexed), true) = (&indexed, together) {
            cmd.arg(&indexed.key);
        }
        cmd.arg(expected.map(|v| v.to_string()).unwrap_or_default())
            .arg(json)
            // An expiry in the past: written, and gone a millisecond later.
            .arg(ttl_ms(expires_at, now).unwrap_or(1));
        match (&indexed, together) {
            (Some(indexed), true) => {
                cmd.arg(indexed.id)
                    .arg(indexed.expires_ms)
                    .arg(indexed.now_ms);
            }
            (Some(indexed), false) => {
                // A cluster: the set's slot first (see the type's docs).
                let mut pipe = redis::pipe();
                indexed.add_to(pipe.atomic());
                self.run_pipe::<()>(&pipe).await?;
            }
            (None, _) => {}
        }
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
