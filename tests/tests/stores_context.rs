//! The request context reaches the store: a store that records the user
//! agent and peer address, driven through the engine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, Method, Uri, header};
use sealed_session::{
    MemoryStore, Record, RequestContext, SessionEngine, SessionId, SessionMap, Store, StoreError,
};
use sealed_session_tests::conformance::{self, cookie, sid};

/// What the store saw of one call.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    op: &'static str,
    user_agent: Option<String>,
    peer: Option<SocketAddr>,
    method: Method,
    path: String,
}

/// A memory store that records the context of every call.
#[derive(Default)]
struct RecordingStore {
    inner: MemoryStore,
    seen: Mutex<Vec<Seen>>,
    agents: Mutex<HashMap<String, String>>,
}

impl RecordingStore {
    fn note(&self, op: &'static str, cx: &RequestContext) {
        self.seen.lock().unwrap().push(Seen {
            op,
            user_agent: cx.user_agent().map(str::to_owned),
            peer: cx.peer_addr(),
            method: cx.method().clone(),
            path: cx.path().to_owned(),
        });
    }
}

impl Store for RecordingStore {
    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        self.note("get", cx);
        self.inner.get(id, cx).await
    }
    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        self.note("set", cx);
        if let Some(agent) = cx.user_agent() {
            self.agents
                .lock()
                .unwrap()
                .insert(id.as_str().to_owned(), agent.to_owned());
        }
        self.inner.set(id, record, expires_at, cx).await
    }
    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        self.note("delete", cx);
        self.inner.delete(id, cx).await
    }
}

fn context(method: Method, path: &str, agent: &str, peer: &str) -> RequestContext {
    let mut headers = HeaderMap::new();
    headers.insert(header::USER_AGENT, HeaderValue::from_str(agent).unwrap());
    RequestContext::new(method, path.parse::<Uri>().unwrap(), headers)
        .with_peer_addr(Some(peer.parse().unwrap()))
}

#[tokio::test]
async fn the_request_context_reaches_the_store() {
    let store = Arc::new(RecordingStore::default());
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&store))
        .build()
        .unwrap();

    let login = context(
        Method::POST,
        "/login?user=1",
        "Firefox/130",
        "127.0.0.1:50000",
    );
    let session = engine
        .load::<SessionMap>(&HeaderMap::new(), &login)
        .await
        .unwrap();
    session.regenerate();
    session.set("userId", "1");
    let id = sid(&engine.commit(&session, &login).await.unwrap()).unwrap();

    let me = context(Method::GET, "/me", "curl/8.5", "[::1]:40000");
    let session = engine.load::<SessionMap>(&cookie(&id), &me).await.unwrap();
    assert_eq!(session.get::<String>("userId").as_deref(), Some("1"));
    session.destroy();
    engine.commit(&session, &me).await.unwrap();

    let seen = store.seen.lock().unwrap().clone();
    let set = seen.iter().find(|s| s.op == "set").expect("a set");
    assert_eq!(set.user_agent.as_deref(), Some("Firefox/130"));
    assert_eq!(set.peer, Some("127.0.0.1:50000".parse().unwrap()));
    assert_eq!(
        (set.method.clone(), set.path.as_str()),
        (Method::POST, "/login")
    );
    let get = seen.iter().find(|s| s.op == "get").expect("a get");
    assert_eq!(get.user_agent.as_deref(), Some("curl/8.5"));
    assert_eq!(get.peer, Some("[::1]:40000".parse().unwrap()));
    let delete = seen.iter().rfind(|s| s.op == "delete").expect("a delete");
    assert_eq!(delete.path, "/me");
    assert_eq!(
        store.agents.lock().unwrap().get(&id).map(String::as_str),
        Some("Firefox/130")
    );
}

#[tokio::test]
async fn a_recording_store_conforms() {
    conformance::run(Arc::new(RecordingStore::default())).await;
}
