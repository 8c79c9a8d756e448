//! Store mode: hono-session with a Redis store and our engine with a Redis
//! store over the same keys read each other's sessions by id.
//!
//! Both keep a record as its JSON text (`JSON.stringify` / `serde_json`)
//! under `<prefix><id>`, with Redis expiring it at `_expires`. The store
//! here is a small private one; the real `RedisStore` lives in
//! `sealed-session-stores`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use sealed_session::{Record, RequestContext, SessionId, Store, StoreError};
use serde_json::{Value, json};

use crate::harness::{Browser, MAX_AGE_SECS, NodeApp, NodeEnv, Server, now_ms, require_redis};
use crate::rust_app::{self, RustApp};

/// Records as JSON text under `prefix + id`, as `app.mjs`'s store keeps them.
#[derive(Clone)]
struct RedisJsonStore {
    connection: MultiplexedConnection,
    prefix: String,
}

fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend("redis", error)
}

impl RedisJsonStore {
    fn key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }
}

impl Store for RedisJsonStore {
    async fn get(
        &self,
        id: &SessionId,
        _: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        let text: Option<String> = self
            .connection
            .clone()
            .get(self.key(id.as_str()))
            .await
            .map_err(backend)?;
        text.map(|t| serde_json::from_str(&t).map(Arc::new).map_err(backend))
            .transpose()
    }

    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        _: &RequestContext,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(&*record).map_err(backend)?;
        let at_ms = expires_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        redis::cmd("SET")
            .arg(self.key(id.as_str()))
            .arg(text)
            .arg("PXAT")
            .arg(at_ms)
            .query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(backend)
    }

    async fn delete(&self, id: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
        self.connection
            .clone()
            .del::<_, ()>(self.key(id.as_str()))
            .await
            .map_err(backend)
    }
}

/// Both apps on one Redis under a prefix of their own, and a connection to
/// look at the records.
struct StorePair {
    node: NodeApp,
    rust: RustApp,
    redis: MultiplexedConnection,
    prefix: String,
}

impl StorePair {
    async fn start(test: &str) -> Option<Self> {
        let node = NodeEnv::require(test)?;
        let url = require_redis(test)?;
        let prefix = format!("sealed-session-interop:{test}:{}:", std::process::id());
        let client = redis::Client::open(url.as_str()).expect("a valid redis URL");
        let redis = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}"));
        let store = RedisJsonStore {
            connection: redis.clone(),
            prefix: prefix.clone(),
        };
        let rust = RustApp::start(rust_app::builder().with_store(store).build().unwrap()).await;
        let node = NodeApp::start(
            &node,
            &[("SESSION_STORE", &url), ("SESSION_STORE_PREFIX", &prefix)],
        )
        .await;
        Some(Self {
            node,
            rust,
            redis,
            prefix,
        })
    }

    fn directions(&self) -> [(Server, Server); 2] {
        let (js, rust) = (self.node.server(), self.rust.server());
        [(js, rust), (rust, js)]
    }

    /// The record stored under `id`, parsed.
    async fn record(&self, id: &str) -> Option<Value> {
        let text: Option<String> = self
            .redis
            .clone()
            .get(format!("{}{id}", self.prefix))
            .await
            .unwrap();
        text.map(|t| serde_json::from_str(&t).expect("a JSON record"))
    }

    async fn put(&self, id: &str, record: &Value) {
        self.redis
            .clone()
            .set_ex::<_, _, ()>(format!("{}{id}", self.prefix), record.to_string(), 60)
            .await
            .unwrap();
    }

    /// Removes this test's keys.
    async fn clean(&self) {
        let mut redis = self.redis.clone();
        let keys: Vec<String> = redis.keys(format!("{}*", self.prefix)).await.unwrap();
        if !keys.is_empty() {
            redis.del::<_, ()>(keys).await.unwrap();
        }
    }
}

/// A hono-session id is a UUID, ours 32 base64url characters.
fn assert_id_of(server: Server, id: &str) {
    if server.name == "hono-session" {
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(id.matches('-').count(), 4, "a UUID: {id}");
    } else {
        assert!(SessionId::parse(id).is_some(), "one of our ids: {id}");
        assert!(!id.contains('.'), "an id, not a token: {id}");
    }
}

#[tokio::test]
async fn store_login_on_one_then_me_on_the_other() {
    let Some(t) = StorePair::start("store_login_on_one_then_me_on_the_other").await else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("{} wrote, {} read", a.name, b.name);
        let mut browser = Browser::default();
        let before = now_ms();
        browser.post(a, "/login?user=stored").await;
        let after = now_ms();
        let id = browser.sid().expect("an id cookie").to_owned();
        assert_id_of(a, &id);

        let record = t.record(&id).await.expect("the record is in Redis");
        let mut keys: Vec<&String> = record.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["_expires", "userId"], "{dir}: {record}");
        assert_eq!(record["userId"], json!("stored"), "{dir}");
        let expires = record["_expires"].as_u64().expect("integer _expires");
        let max_age_ms = MAX_AGE_SECS * 1000;
        assert!(
            (before + max_age_ms..=after + max_age_ms).contains(&expires),
            "{dir}: {record}"
        );

        let me = browser.get(b, "/me").await;
        assert_eq!(
            (me.status, me.body.as_str()),
            (StatusCode::OK, "stored"),
            "{dir}"
        );
        assert!(me.set_cookies.is_empty(), "{dir}: a read writes nothing");
        // The reader keeps the writer's id when it writes.
        assert_eq!(browser.get(b, "/count").await.body, "1", "{dir}");
        assert_eq!(browser.sid(), Some(id.as_str()), "{dir}");
        assert_eq!(t.record(&id).await.unwrap()["count"], json!(1), "{dir}");
        assert_eq!(browser.get(a, "/count").await.body, "2", "{dir}");
    }
    t.clean().await;
}

#[tokio::test]
async fn store_flash_on_one_read_on_the_other_gone_on_the_third() {
    let Some(t) = StorePair::start("store_flash_on_one_read_on_the_other_gone_on_the_third").await
    else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("{} flashed, {} read", a.name, b.name);
        let mut browser = Browser::default();
        browser.post(a, "/flash?msg=stored%20flash").await;
        assert_eq!(browser.get(b, "/flash").await.body, "stored flash", "{dir}");
        assert_eq!(browser.get(a, "/flash").await.body, "", "{dir}");
        let record = t.record(browser.sid().unwrap()).await.unwrap();
        assert!(record.get("message").is_none(), "{dir}: {record}");
    }
    t.clean().await;
}

#[tokio::test]
async fn store_logout_on_one_deletes_the_record_for_the_other() {
    let Some(t) = StorePair::start("store_logout_on_one_deletes_the_record_for_the_other").await
    else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("login on {}, logout on {}", a.name, b.name);
        let mut browser = Browser::default();
        browser.post(a, "/login?user=leaving").await;
        let id = browser.sid().unwrap().to_owned();
        browser.post(b, "/logout").await;
        assert!(browser.jar.is_empty(), "{dir}: {:?}", browser.jar);
        assert_eq!(t.record(&id).await, None, "{dir}: the record is deleted");

        // The old id, replayed, is no session on either side.
        for server in [a, b] {
            let mut replay = Browser::with_sid(&id);
            let me = replay.get(server, "/me").await;
            assert_eq!(
                me.status,
                StatusCode::UNAUTHORIZED,
                "{dir}: replay on {}",
                server.name
            );
        }
    }
    t.clean().await;
}

#[tokio::test]
async fn store_regenerate_deletes_the_other_sides_record() {
    let Some(t) = StorePair::start("store_regenerate_deletes_the_other_sides_record").await else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("login on {}, login again on {}", a.name, b.name);
        let mut browser = Browser::default();
        browser.post(a, "/login?user=first").await;
        let old = browser.sid().unwrap().to_owned();
        browser.post(b, "/login?user=second").await;
        let new = browser.sid().unwrap().to_owned();
        assert_ne!(old, new, "{dir}");
        assert_id_of(b, &new);
        assert_eq!(
            t.record(&old).await,
            None,
            "{dir}: the old record is deleted"
        );
        assert_eq!(t.record(&new).await.unwrap()["userId"], json!("second"));
        assert_eq!(browser.get(a, "/me").await.body, "second", "{dir}");
    }
    t.clean().await;
}

#[tokio::test]
async fn store_a_past_expires_is_refused_by_both() {
    let Some(t) = StorePair::start("store_a_past_expires_is_refused_by_both").await else {
        return;
    };
    let (js, rust) = (t.node.server(), t.rust.server());
    for (shape, id) in [
        ("hono's UUID", "0b7d4f4e-3f7a-4a47-9d61-0c2b6f3a9e10"),
        ("our id", "Q2hlY2tlZC1ieS1pbnRlcm9wLXRlc3RzLTAx"),
    ] {
        t.put(
            id,
            &json!({ "userId": "live", "_expires": now_ms() + 60_000 }),
        )
        .await;
        for server in [js, rust] {
            let me = Browser::with_sid(id).get(server, "/me").await;
            assert_eq!(
                me.body, "live",
                "{shape} on {}: the live control",
                server.name
            );
        }
        t.put(
            id,
            &json!({ "userId": "stale", "_expires": now_ms() - 1_000 }),
        )
        .await;
        for server in [js, rust] {
            let me = Browser::with_sid(id).get(server, "/me").await;
            assert_eq!(
                me.status,
                StatusCode::UNAUTHORIZED,
                "{shape} on {}",
                server.name
            );
        }
    }
    t.clean().await;
}
