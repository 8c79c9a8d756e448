//! The scenarios, written once, generic over the adapter.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use sealed_session::{
    MemoryStore, Record, RequestContext, Secret, SessionEngine, SessionId, SessionIndex,
    SessionInfo, Store, StoreError,
};

use crate::client::Browser;
use crate::servers::{DemoServer, Running};

const SECRET: &str = "adapter-suite-secret-at-least-32-characters";

/// A memory store that counts calls, remembers the peer it was told about,
/// and can be switched to fail.
#[derive(Clone, Default)]
pub struct TestStore {
    pub inner: MemoryStore,
    gets: Arc<AtomicUsize>,
    sets: Arc<AtomicUsize>,
    fail_get: Arc<AtomicBool>,
    fail_set: Arc<AtomicBool>,
    peer: Arc<Mutex<Option<SocketAddr>>>,
}

impl TestStore {
    fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
    fn sets(&self) -> usize {
        self.sets.load(Ordering::SeqCst)
    }
    fn peer(&self) -> Option<SocketAddr> {
        *self.peer.lock().unwrap()
    }
    fn seen(&self, cx: &RequestContext) {
        *self.peer.lock().unwrap() = cx.peer_addr();
    }
}

fn down() -> StoreError {
    StoreError::backend(
        "test",
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "down"),
    )
}

impl Store for TestStore {
    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.seen(cx);
        if self.fail_get.load(Ordering::SeqCst) {
            return Err(down());
        }
        self.inner.get(id, cx).await
    }
    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        self.sets.fetch_add(1, Ordering::SeqCst);
        self.seen(cx);
        if self.fail_set.load(Ordering::SeqCst) {
            return Err(down());
        }
        self.inner.set(id, record, expires, cx).await
    }
    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        self.inner.delete(id, cx).await
    }
}

/// The per-user index: the memory store's own.
impl SessionIndex for TestStore {
    async fn sessions_of(&self, owner: &str) -> Result<Vec<SessionInfo>, StoreError> {
        self.inner.sessions_of(owner).await
    }
    async fn revoke(&self, owner: &str, id: &SessionId) -> Result<bool, StoreError> {
        self.inner.revoke(owner, id).await
    }
    async fn revoke_all(
        &self,
        owner: &str,
        except: Option<&SessionId>,
    ) -> Result<usize, StoreError> {
        self.inner.revoke_all(owner, except).await
    }
}

async fn stateless<A: DemoServer>() -> Running {
    let engine = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .build()
        .unwrap();
    A::start(engine).await
}

async fn with_store<A: DemoServer>() -> (Running, TestStore) {
    let store = TestStore::default();
    let engine = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .with_store(store.clone())
        .build()
        .unwrap();
    (A::start(engine).await, store)
}

#[track_caller]
fn assert_answer(response: &crate::client::Response, status: u16, body: &str) {
    assert_eq!(
        (response.status.as_u16(), response.body.as_str()),
        (status, body),
        "{response:?}"
    );
}

async fn login_me_logout_on(server: &Running) {
    let mut browser = Browser::new(server.client.clone());
    assert_answer(&browser.get("/me").await, 401, "Unauthorised");
    let login = browser.post("/login?user=alice").await;
    assert_answer(&login, 204, "");
    assert!(login.set_cookie("sid").is_some(), "{login:?}");
    assert!(login.set_cookie("sx").is_some(), "{login:?}");
    assert_answer(&browser.get("/me").await, 200, "alice");
    let logout = browser.post("/logout").await;
    assert_answer(&logout, 204, "");
    assert!(
        browser.sid().is_none(),
        "logout expires the cookie: {logout:?}"
    );
    assert_answer(&browser.get("/me").await, 401, "Unauthorised");
}

pub async fn login_me_logout<A: DemoServer>() {
    login_me_logout_on(&stateless::<A>().await).await;
}

pub async fn login_me_logout_in_store_mode<A: DemoServer>() {
    let (server, store) = with_store::<A>().await;
    login_me_logout_on(&server).await;
    assert!(store.inner.is_empty(), "logout deletes the record");
    // The store saw the request's peer address.
    if server.peer_known {
        assert_eq!(store.peer().map(|p| p.ip()), Some([127, 0, 0, 1].into()));
    }
}

pub async fn flash_and_reflash<A: DemoServer>() {
    let server = stateless::<A>().await;
    let mut browser = Browser::new(server.client.clone());
    assert_answer(&browser.post("/flash?msg=hello").await, 204, "");
    assert_answer(&browser.get("/flash").await, 200, "hello");
    assert_answer(&browser.get("/flash").await, 200, "");

    assert_answer(&browser.post("/flash?msg=again").await, 204, "");
    assert_answer(&browser.post("/reflash").await, 204, "");
    assert_answer(&browser.get("/flash").await, 200, "again");
    assert_answer(&browser.get("/flash").await, 200, "");
}

pub async fn renew_rewrites_the_cookie<A: DemoServer>() {
    let server = stateless::<A>().await;
    let mut browser = Browser::new(server.client.clone());
    browser.post("/login?user=alice").await;
    let before = browser.sid().unwrap().to_owned();
    let read = browser.get("/me").await;
    assert!(read.set_cookies.is_empty(), "{read:?}");
    let renew = browser.post("/renew").await;
    assert_answer(&renew, 204, "");
    assert!(
        renew.set_cookie("sid").is_some(),
        "renew forces a write: {renew:?}"
    );
    assert_ne!(browser.sid().unwrap(), before);
    assert_answer(&browser.get("/me").await, 200, "alice");
}

pub async fn regenerate_removes_the_old_id_from_the_store<A: DemoServer>() {
    let (server, store) = with_store::<A>().await;
    let mut browser = Browser::new(server.client.clone());
    browser.post("/login?user=alice").await;
    let first = browser.sid().unwrap().to_owned();
    let id = SessionId::parse(&first).unwrap();
    let cx = RequestContext::default();
    assert!(store.inner.get(&id, &cx).await.unwrap().is_some());

    browser.post("/login?user=bob").await;
    let second = browser.sid().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(
        store.inner.get(&id, &cx).await.unwrap().is_none(),
        "old id gone"
    );
    assert_eq!(store.inner.len(), 1);
    assert_answer(&browser.get("/me").await, 200, "bob");
}

pub async fn untouched_route_costs_no_store_call_and_sets_no_cookie<A: DemoServer>() {
    let (server, store) = with_store::<A>().await;
    let mut browser = Browser::new(server.client.clone());
    browser.post("/login?user=alice").await;
    let (gets, sets) = (store.gets(), store.sets());
    // No route asks for the session: the middleware still runs.
    let response = browser.get("/no-such-route").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND, "{response:?}");
    assert!(response.set_cookies.is_empty(), "{response:?}");
    assert_eq!((store.gets(), store.sets()), (gets, sets));
}

pub async fn read_only_request_sets_no_cookie<A: DemoServer>() {
    let (server, store) = with_store::<A>().await;
    let mut fresh = Browser::new(server.client.clone());
    for path in ["/flash", "/data"] {
        let response = fresh.get(path).await;
        assert_answer(&response, 200, "");
        assert!(response.set_cookies.is_empty(), "{path}: {response:?}");
    }
    assert_eq!(store.gets(), 0, "no cookie: no store call");

    let mut browser = Browser::new(server.client.clone());
    browser.post("/login?user=alice").await;
    let (gets, sets) = (store.gets(), store.sets());
    let response = browser.get("/me").await;
    assert_answer(&response, 200, "alice");
    assert!(response.set_cookies.is_empty(), "{response:?}");
    assert_eq!((store.gets(), store.sets()), (gets + 1, sets));
}

pub async fn tampered_cookie_is_401_not_500<A: DemoServer>() {
    let server = stateless::<A>().await;
    let mut browser = Browser::new(server.client.clone());
    browser.post("/login?user=alice").await;
    let sid = browser.sid().unwrap().to_owned();
    let middle = sid.len() / 2;
    let swapped = if &sid[middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    let tampered = format!("{}{swapped}{}", &sid[..middle], &sid[middle + 1..]);
    for cookie in [
        format!("sid={tampered}"),
        "sid=Fe26.2**garbage".to_owned(),
        "sid=%ZZ%".to_owned(),
    ] {
        let response = server
            .client
            .send(Method::GET, "/me", Some(&cookie), "")
            .await;
        assert_answer(&response, 401, "Unauthorised");
    }

    let (server, _store) = with_store::<A>().await;
    let response = server
        .client
        .send(Method::GET, "/me", Some("sid=unknown-id"), "")
        .await;
    assert_answer(&response, 401, "Unauthorised");
}

pub async fn store_failure_on_load_is_a_clear_500<A: DemoServer>() {
    let (server, store) = with_store::<A>().await;
    let mut browser = Browser::new(server.client.clone());
    browser.post("/login?user=alice").await;
    store.fail_get.store(true, Ordering::SeqCst);
    for path in ["/me", "/count"] {
        let response = browser.get(path).await;
        assert_answer(&response, 500, "Session store unavailable");
        assert!(response.set_cookies.is_empty(), "{response:?}");
    }
    store.fail_get.store(false, Ordering::SeqCst);
    assert_answer(&browser.get("/me").await, 200, "alice");
}

pub async fn store_failure_on_commit_is_a_clear_500<A: DemoServer>() {
    let (server, store) = with_store::<A>().await;
    let mut browser = Browser::new(server.client.clone());
    store.fail_set.store(true, Ordering::SeqCst);
    let response = browser.post("/login?user=alice").await;
    assert_answer(&response, 500, "Session could not be saved");
    assert!(response.set_cookies.is_empty(), "{response:?}");
    store.fail_set.store(false, Ordering::SeqCst);
    assert_answer(&browser.get("/me").await, 401, "Unauthorised");
}

pub async fn count_and_data<A: DemoServer>() {
    let server = stateless::<A>().await;
    let mut browser = Browser::new(server.client.clone());
    for n in 1..=3 {
        assert_answer(&browser.get("/count").await, 200, &n.to_string());
    }
    assert_answer(&browser.put("/data", "some text").await, 204, "");
    assert_answer(&browser.get("/data").await, 200, "some text");
    assert_answer(&browser.put("/data", "").await, 204, "");
    assert_answer(&browser.get("/data").await, 200, "");
}

/// Requests on one session are not serialised: each loads and commits on
/// its own, and the last write wins.
async fn concurrent_on(
    server: &Running,
    concurrency: u64,
    final_range: std::ops::RangeInclusive<u64>,
) {
    let mut browser = Browser::new(server.client.clone());
    assert_answer(&browser.get("/count").await, 200, "1");
    let cookie = browser.cookie_header().unwrap();
    let requests = (0..concurrency).map(|_| {
        let cookie = cookie.clone();
        let client = server.client.clone();
        tokio::spawn(async move { client.send(Method::GET, "/count", Some(&cookie), "").await })
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut last = None;
    for response in responses {
        let response = response.expect("no panic");
        assert_eq!(response.status, StatusCode::OK, "{response:?}");
        let n: u64 = response.body.parse().unwrap();
        assert!((2..=concurrency + 1).contains(&n), "{response:?}");
        last = Some(response);
    }
    // The browser keeps the last cookie it got.
    browser.receive(&last.unwrap().set_cookies);
    let after: u64 = browser.get("/count").await.body.parse().unwrap();
    assert!(final_range.contains(&after), "count after: {after}");
}

pub async fn concurrent_requests_last_write_wins<A: DemoServer>() {
    // Stateless: every request read count 1 from the same cookie, each wrote
    // 2; the cookie kept holds 2.
    let server = stateless::<A>().await;
    concurrent_on(&server, 20, 3..=3).await;
}

pub async fn concurrent_requests_last_write_wins_in_store_mode<A: DemoServer>() {
    // Store mode: requests read whatever was last written; increments may
    // be lost but never more than were made.
    let (server, store) = with_store::<A>().await;
    concurrent_on(&server, 20, 3..=22).await;
    assert_eq!(store.inner.len(), 1);
}

/// Logs `browser` in as `user` (API route).
async fn log_in(server: &Running, user: &str) -> Browser {
    let mut browser = Browser::new(server.client.clone());
    let login = browser.post(&format!("/login?user={user}")).await;
    assert_answer(&login, 204, "");
    browser
}

/// `GET /devices`' lines, sorted.
async fn devices(browser: &mut Browser) -> Vec<String> {
    let response = browser.get("/devices").await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    let mut lines: Vec<_> = response.body.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The per-user routes answer 401 to a request without a login.
async fn per_user_routes_need_a_login(server: &Running) {
    let mut anonymous = Browser::new(server.client.clone());
    assert_answer(&anonymous.get("/devices").await, 401, "Unauthorised");
    assert_answer(
        &anonymous.post("/logout-everywhere").await,
        401,
        "Unauthorised",
    );
    assert!(
        anonymous.sid().is_none(),
        "no session for a refused request"
    );
}

/// The login labels the session with no `User-Agent` (the test clients send none).
const UNKNOWN: &str = "unknown device";

pub async fn logout_everywhere_in_store_mode<A: DemoServer>() {
    let (server, store) = with_store::<A>().await;
    per_user_routes_need_a_login(&server).await;
    let mut a = log_in(&server, "alice").await;
    let mut b = log_in(&server, "alice").await;
    let mut bob = log_in(&server, "bob").await;

    let this = format!("{UNKNOWN} (this session)");
    assert_eq!(devices(&mut a).await, [UNKNOWN, this.as_str()]);
    assert_eq!(devices(&mut b).await, [UNKNOWN, this.as_str()]);
    assert_eq!(devices(&mut bob).await, [this.as_str()]);
    let page = a.get("/").await;
    assert!(
        page.body.contains("Log out other sessions") && page.body.contains("(this session)"),
        "{page:?}"
    );

    assert_answer(&a.post("/logout-everywhere").await, 204, "");
    assert_answer(&b.get("/me").await, 401, "Unauthorised");
    assert_answer(&a.get("/me").await, 200, "alice");
    assert_answer(&bob.get("/me").await, 200, "bob");
    assert_eq!(devices(&mut a).await, [this.as_str()]);
    assert_eq!(devices(&mut bob).await, [this.as_str()]);
    assert_eq!(store.inner.len(), 2, "alice's other session is deleted");
    // Again: nothing left to log out, and the current session stays.
    assert_answer(&a.post("/logout-everywhere").await, 204, "");
    assert_answer(&a.get("/me").await, 200, "alice");
}

pub async fn logout_everywhere_stateless_with_a_revocation_store<A: DemoServer>() {
    let engine = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .with_revocation_store(MemoryStore::new())
        .build()
        .unwrap();
    let server = A::start(engine).await;
    per_user_routes_need_a_login(&server).await;
    let mut a = log_in(&server, "alice").await;
    let mut b = log_in(&server, "alice").await;
    let mut bob = log_in(&server, "bob").await;
    // A revocation spares sessions logged in during its own millisecond
    // (the current one is logged in again in it): let the clock move on
    // from the logins.
    tokio::time::sleep(Duration::from_millis(5)).await;

    // Cookies are listed nowhere: 501, and the engine's reason.
    let listing = a.get("/devices").await;
    assert_eq!(listing.status.as_u16(), 501, "{listing:?}");
    assert!(listing.body.contains("stateless"), "{listing:?}");

    let revoke = a.post("/logout-everywhere").await;
    assert_answer(&revoke, 204, "");
    assert!(
        revoke.set_cookie("sid").is_some(),
        "the current session is logged in again: {revoke:?}"
    );
    assert_answer(&b.get("/me").await, 401, "Unauthorised");
    assert_answer(&a.get("/me").await, 200, "alice");
    assert_answer(&bob.get("/me").await, 200, "bob");
}

pub async fn logout_everywhere_stateless_without_a_revocation_store_is_501<A: DemoServer>() {
    let server = stateless::<A>().await;
    let mut a = log_in(&server, "alice").await;
    for response in [a.get("/devices").await, a.post("/logout-everywhere").await] {
        assert_eq!(response.status.as_u16(), 501, "{response:?}");
        assert!(
            response.body.contains("with_revocation_store"),
            "the answer says what to do: {response:?}"
        );
    }
    assert_answer(&a.get("/me").await, 200, "alice");
}
