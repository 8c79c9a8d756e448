//! Benchmarks of sealed-session against its peers, driven in-process
//! without sockets; see `docs/src/performance.md`.
//!
//! Run them with `cargo bench -p sealed-session-benches`: the `sessions`
//! bench times every stack with criterion, then prints one
//! `ratio <name> <value> (target <= <t>)` line per target of issue 9; the
//! `allocations` bench counts allocations per request.
//!
//! Every stack is a [`Runner`]: a closure that serves `n` requests (or
//! seals and unseals `n` records) and returns the time it took, on a
//! single-threaded runtime of its own.

use std::convert::Infallible;
use std::fmt;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderValue, Request, header};
use sealed_session::adapters::axum::SessionLayer;
use sealed_session::{Keyring, MemoryStore, Secret, Session, SessionEngine, SessionMap, iron};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The secret every stack seals with.
pub const SECRET: &str = "a-benchmark-secret-that-is-long-enough-0123456789";

/// The session every per-request bench carries: about 100 bytes of user
/// fields (`_expires` and the peers' own bookkeeping come on top).
fn login_fields() -> [(&'static str, Value); 5] {
    [
        ("userId", json!("user-000042")),
        ("email", json!("alice@example.com")),
        ("roles", json!(["admin", "editor"])),
        ("theme", json!("dark")),
        ("count", json!(0)),
    ]
}

/// A record of about 200 bytes of JSON, for the iron benches.
#[must_use]
pub fn iron_record() -> Value {
    json!({
        "userId": "user-000042",
        "email": "alice@example.com",
        "name": "Alice Example",
        "roles": ["admin", "editor"],
        "theme": "dark",
        "locale": "en-GB",
        "cart": [101, 202, 303],
        "count": 7,
        "_expires": 1_800_000_000_000_u64,
        "_flashKeys": ["message"],
        "message": "Saved"
    })
}

/// Serves `n` requests (or does `n` operations) and returns the time taken.
pub struct Runner {
    name: &'static str,
    run: Box<dyn FnMut(u64) -> Duration>,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner").field("name", &self.name).finish()
    }
}

impl Runner {
    fn new(name: &'static str, run: impl FnMut(u64) -> Duration + 'static) -> Self {
        Self {
            name,
            run: Box::new(run),
        }
    }

    /// The bench's name (`axum/stateless/rw`, ...).
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs `n` iterations; returns the total time.
    pub fn run(&mut self, n: u64) -> Duration {
        (self.run)(n)
    }

    /// Nanoseconds per iteration over `n` iterations.
    pub fn ns_per_iter(&mut self, n: u64) -> f64 {
        self.run(n).as_secs_f64() * 1e9 / n as f64
    }

    /// How many iterations take about `target`.
    pub fn calibrate(&mut self, target: Duration) -> u64 {
        self.run(16); // warm up
        let mut n = 16;
        loop {
            let took = self.run(n);
            if took >= target / 4 || n > 1 << 24 {
                let per = took.as_secs_f64() / n as f64;
                return ((target.as_secs_f64() / per) as u64).max(1);
            }
            n *= 4;
        }
    }
}

/// iron-webcrypto-rs' default options and the password, as its README
/// uses them.
fn peer_iron() -> (
    iron_webcrypto_rs::Password<'static>,
    iron_webcrypto_rs::SealOptions,
) {
    (
        iron_webcrypto_rs::Password::from(SECRET),
        iron_webcrypto_rs::SealOptions::default(),
    )
}

/// Seal then unseal [`iron_record`] with sealed-session's `iron` module.
#[must_use]
pub fn iron_ours() -> Runner {
    let ring = Keyring::single(Secret::new(SECRET).expect("long secret"));
    let record = iron_record();
    Runner::new("iron/seal+unseal/sealed-session", move |n| {
        let start = Instant::now();
        for _ in 0..n {
            let token = iron::seal_json(std::hint::black_box(&record), ring.current());
            let opened = iron::unseal_json(&token, &ring, 1_700_000_000_000).expect("opens");
            std::hint::black_box(opened);
        }
        start.elapsed()
    })
}

/// Seal then unseal [`iron_record`] with iron-webcrypto-rs.
#[must_use]
pub fn iron_peer() -> Runner {
    let (password, options) = peer_iron();
    let record = iron_record();
    Runner::new("iron/seal+unseal/iron-webcrypto-rs", move |n| {
        let start = Instant::now();
        for _ in 0..n {
            let token = iron_webcrypto_rs::seal(std::hint::black_box(&record), &password, &options)
                .expect("seals");
            let opened: Value =
                iron_webcrypto_rs::unseal(&token, &password, &options).expect("opens");
            std::hint::black_box(opened);
        }
        start.elapsed()
    })
}

/// `n` logins through the stack's `/login`, each a new session (no cookie
/// sent): the router, holding its store and the `n` idle sessions, for a
/// count of the memory they take.
///
/// # Panics
///
/// When a login sets no cookie.
pub fn idle_sessions(stack: AxumStack, n: usize) -> Router {
    let rt = current_thread();
    let router = axum_router(stack).with_state(());
    rt.block_on(async {
        for _ in 0..n {
            login_cookie(&router, stack).await;
        }
    });
    router
}

/// `n` sessions logged in on a stateless engine's router, and the cookies
/// they got; [`read_each`] then reads each once, which fills the engine's
/// cache of opened cookies.
pub fn stateless_sessions(n: usize) -> (Router, Vec<HeaderValue>) {
    let rt = current_thread();
    let router = axum_router(AxumStack::Stateless).with_state(());
    let cookies = rt.block_on(async {
        let mut cookies = Vec::with_capacity(n);
        for _ in 0..n {
            cookies.push(login_cookie(&router, AxumStack::Stateless).await);
        }
        cookies
    });
    (router, cookies)
}

/// One read-only request per cookie through `router`; panics unless each
/// answers 200.
pub fn read_each(router: &Router, cookies: &[HeaderValue]) {
    let rt = current_thread();
    rt.block_on(async {
        for cookie in cookies {
            let response = router
                .clone()
                .oneshot(axum_request(Work::ReadOnly.path(), cookie))
                .await
                .expect("infallible");
            assert_eq!(response.status(), http::StatusCode::OK);
        }
    });
}

/// The crypto floor of a stateless write (issue 23): what sealing the
/// bench session's record costs in primitives alone, with no plumbing.
/// Two PBKDF2-SHA1 derivations (one iteration each, as iron), AES-256-CBC
/// with fresh random salts and IV, HMAC-SHA256 over the token, base64url
/// of IV, ciphertext and digest; the salts as hex, as iron sends them.
#[must_use]
pub fn crypto_floor() -> Runner {
    use aes::Aes256Enc;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
    use hmac::{Hmac, KeyInit, Mac};
    use rand::Rng as _;

    fn hex(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        bytes
            .iter()
            .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
            .map(char::from)
            .collect()
    }
    fn pbkdf2_key(password: &[u8], salt: &[u8]) -> [u8; 32] {
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, 1, &mut key);
        key
    }

    let mut record = serde_json::Map::new();
    for (key, value) in login_fields() {
        record.insert(key.to_owned(), value);
    }
    record.insert("_expires".to_owned(), json!(1_800_000_000_000_u64));
    let plaintext = serde_json::to_vec(&record).expect("a record serialises");
    Runner::new("iron/crypto-floor-seal", move |n| {
        let start = Instant::now();
        for _ in 0..n {
            let mut rng = rand::rng();
            let (mut enc_salt, mut mac_salt, mut iv) = ([0u8; 32], [0u8; 32], [0u8; 16]);
            rng.fill_bytes(&mut enc_salt);
            rng.fill_bytes(&mut mac_salt);
            rng.fill_bytes(&mut iv);
            let (enc_salt, mac_salt) = (hex(&enc_salt), hex(&mac_salt));
            let key = pbkdf2_key(SECRET.as_bytes(), enc_salt.as_bytes());
            let mut buffer = std::hint::black_box(&plaintext).clone();
            let len = buffer.len();
            buffer.resize(len + 16 - len % 16, 0);
            let ciphertext = cbc::Encryptor::<Aes256Enc>::new(&key.into(), &iv.into())
                .encrypt_padded::<Pkcs7>(&mut buffer, len)
                .expect("room for the padding");
            let mut token = format!(
                "Fe26.2**{enc_salt}*{}*{}*",
                URL_SAFE_NO_PAD.encode(iv),
                URL_SAFE_NO_PAD.encode(ciphertext)
            );
            let mac_key = pbkdf2_key(SECRET.as_bytes(), mac_salt.as_bytes());
            let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&mac_key)
                .expect("HMAC takes any key");
            mac.update(token.as_bytes());
            let digest = mac.finalize().into_bytes();
            token.push('*');
            token.push_str(&mac_salt);
            token.push('*');
            token.push_str(&URL_SAFE_NO_PAD.encode(digest));
            std::hint::black_box(token);
        }
        start.elapsed()
    })
}

/// The `Cookie` header a browser would send back after these `Set-Cookie`
/// values.
fn cookie_header<'a>(set_cookies: impl Iterator<Item = &'a str>) -> String {
    set_cookies
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime")
}

/// Which session stack an axum router runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxumStack {
    /// No session layer: the baseline.
    Baseline,
    /// A layer that does nothing (`tower::layer::util::Identity`): what
    /// `Router::layer` itself costs a request, whatever the layer.
    PassThrough,
    /// sealed-session, stateless iron cookies.
    Stateless,
    /// sealed-session with its `MemoryStore`.
    Memory,
    /// sealed-session with its `MemoryStore`, the session owned
    /// (`set_owner` at login): what keeping the per-user index costs.
    MemoryOwned,
    /// tower-sessions with its `MemoryStore`.
    TowerSessions,
    /// sealed-session with a caching tier: a `MokaStore` cache in front of
    /// a `MemoryStore` (what an idle session costs in both tiers).
    Caching,
}

/// What a handler does with the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Read a field, write a counter.
    ReadWrite,
    /// Read a field.
    ReadOnly,
    /// Never touch the session.
    Untouched,
}

impl Work {
    fn path(self) -> &'static str {
        match self {
            Self::ReadWrite => "/rw",
            Self::ReadOnly => "/ro",
            Self::Untouched => "/plain",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::ReadWrite => "rw",
            Self::ReadOnly => "ro",
            Self::Untouched => "untouched",
        }
    }
}

mod ours {
    use super::{Session, SessionMap, login_fields};

    pub(super) async fn login(session: Session<SessionMap>) -> &'static str {
        for (key, value) in login_fields() {
            session.set(key, value);
        }
        "ok"
    }

    pub(super) async fn login_owned(session: Session<SessionMap>) -> &'static str {
        for (key, value) in login_fields() {
            session.set(key, value);
        }
        session.set_owner("user-000042");
        session.set_owner_label("bench");
        "ok"
    }

    pub(super) async fn rw(session: Session<SessionMap>) -> String {
        let n = session.get::<u64>("count").unwrap_or(0) + 1;
        session.set("count", n);
        n.to_string()
    }

    pub(super) async fn ro(session: Session<SessionMap>) -> String {
        session.get::<String>("userId").unwrap_or_default()
    }
}

mod peer_tower {
    use super::login_fields;
    use tower_sessions::Session;

    pub(super) async fn login(session: Session) -> &'static str {
        for (key, value) in login_fields() {
            session.insert(key, value).await.expect("insert");
        }
        "ok"
    }

    pub(super) async fn rw(session: Session) -> String {
        let n = session.get::<u64>("count").await.expect("get").unwrap_or(0) + 1;
        session.insert("count", n).await.expect("insert");
        n.to_string()
    }

    pub(super) async fn ro(session: Session) -> String {
        session
            .get::<String>("userId")
            .await
            .expect("get")
            .unwrap_or_default()
    }
}

async fn plain() -> String {
    String::from("user-000042")
}

fn axum_router(stack: AxumStack) -> Router {
    let secret = Secret::new(SECRET).expect("long secret");
    match stack {
        AxumStack::Baseline => Router::new()
            .route("/rw", get(plain))
            .route("/ro", get(plain))
            .route("/plain", get(plain)),
        AxumStack::PassThrough => Router::new()
            .route("/rw", get(plain))
            .route("/ro", get(plain))
            .route("/plain", get(plain))
            .layer(tower::layer::util::Identity::new()),
        AxumStack::Caching => {
            let store = sealed_session_stores::CachingStore::new(
                sealed_session_stores::MokaStore::new(1_000_000),
                MemoryStore::new(),
            );
            let engine = SessionEngine::builder()
                .with_secret(secret)
                .with_store(store)
                .build()
                .expect("engine");
            Router::new()
                .route("/login", get(ours::login))
                .route("/rw", get(ours::rw))
                .route("/ro", get(ours::ro))
                .route("/plain", get(plain))
                .layer(SessionLayer::new(engine))
        }
        AxumStack::Stateless | AxumStack::Memory | AxumStack::MemoryOwned => {
            let login = if stack == AxumStack::MemoryOwned {
                get(ours::login_owned)
            } else {
                get(ours::login)
            };
            let routes = Router::new()
                .route("/login", login)
                .route("/rw", get(ours::rw))
                .route("/ro", get(ours::ro))
                .route("/plain", get(plain));
            let builder = SessionEngine::builder().with_secret(secret);
            if stack != AxumStack::Stateless {
                let engine = builder
                    .with_store(MemoryStore::new())
                    .build()
                    .expect("engine");
                routes.layer(SessionLayer::new(engine))
            } else {
                routes.layer(SessionLayer::new(builder.build().expect("engine")))
            }
        }
        AxumStack::TowerSessions => {
            let layer =
                tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                    .with_secure(false);
            Router::new()
                .route("/login", get(peer_tower::login))
                .route("/rw", get(peer_tower::rw))
                .route("/ro", get(peer_tower::ro))
                .route("/plain", get(plain))
                .layer(layer)
        }
    }
}

fn axum_request(path: &str, cookie: &HeaderValue) -> Request<Body> {
    let mut request = Request::get(path)
        .body(Body::empty())
        .expect("a valid request");
    request.headers_mut().insert(header::COOKIE, cookie.clone());
    request
}

/// The cookie the stacks without sessions get: the size of a sealed one.
const BASELINE_COOKIE: &str = "sid=Fe26.2**0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef*aaaaaaaaaaaaaaaaaaaaaa*bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb**0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef*cccccccccccccccccccccccccccccccccccccccccc; sx=1";

/// [`BASELINE_COOKIE`] as a header value on the heap, as a server parses
/// it and as the session stacks' login cookies are: cloned per request
/// with a reference count (a static one clones for free, which would
/// charge the session rows for the difference).
fn baseline_cookie() -> HeaderValue {
    HeaderValue::from_str(BASELINE_COOKIE).expect("a valid cookie header")
}

/// Logs in once through the stack's `/login` and returns the cookie the
/// browser would send back (the baseline gets a cookie of similar size).
async fn axum_login(router: &Router, stack: AxumStack) -> HeaderValue {
    if matches!(stack, AxumStack::Baseline | AxumStack::PassThrough) {
        return baseline_cookie();
    }
    login_cookie(router, stack).await
}

/// Logs in once through `service`'s `/login`; returns the cookie the
/// browser would send back.
async fn login_cookie<S>(service: &S, label: impl fmt::Debug) -> HeaderValue
where
    S: tower::Service<Request<Body>, Response = axum::response::Response, Error = Infallible>
        + Clone,
{
    let response = service
        .clone()
        .oneshot(
            Request::get("/login")
                .body(Body::empty())
                .expect("a valid request"),
        )
        .await
        .expect("infallible");
    let cookies = cookie_header(
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    assert!(!cookies.is_empty(), "{label:?}: login set no cookie");
    HeaderValue::from_str(&cookies).expect("a valid cookie header")
}

/// `n` requests to `path` with `cookie` through `service`, timed.
fn serving<S>(
    name: &'static str,
    rt: tokio::runtime::Runtime,
    service: S,
    path: &'static str,
    cookie: HeaderValue,
) -> Runner
where
    S: tower::Service<Request<Body>, Response = axum::response::Response, Error = Infallible>
        + Clone
        + 'static,
{
    Runner::new(name, move |n| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let response = service
                    .clone()
                    .oneshot(axum_request(path, &cookie))
                    .await
                    .expect("infallible");
                std::hint::black_box(response);
            }
            start.elapsed()
        })
    })
}

/// Requests to an axum router with `stack`, the handler doing `work`; the
/// request carries the session cookie (the baseline one of a similar size).
#[must_use]
pub fn axum(stack: AxumStack, work: Work) -> Runner {
    let rt = current_thread();
    // What `axum::serve` does (`into_make_service`): turn every handler into
    // a route once, rather than on each request.
    let router = axum_router(stack).with_state(());
    let cookie = rt.block_on(axum_login(&router, stack));
    let name = match (stack, work) {
        (AxumStack::Baseline, _) => "axum/no-session",
        (AxumStack::PassThrough, _) => "axum/pass-through-layer",
        (AxumStack::Stateless, Work::Untouched) | (AxumStack::Memory, Work::Untouched) => {
            "axum/sealed-session/untouched"
        }
        (AxumStack::Stateless, Work::ReadWrite) => "axum/sealed-session-stateless/rw",
        (AxumStack::Stateless, Work::ReadOnly) => "axum/sealed-session-stateless/ro",
        (AxumStack::Memory, Work::ReadWrite) => "axum/sealed-session-memory/rw",
        (AxumStack::Memory, Work::ReadOnly) => "axum/sealed-session-memory/ro",
        (AxumStack::MemoryOwned, Work::ReadWrite) => "axum/sealed-session-memory-owned/rw",
        (AxumStack::MemoryOwned, Work::ReadOnly) => "axum/sealed-session-memory-owned/ro",
        (AxumStack::MemoryOwned, Work::Untouched) => "axum/sealed-session-memory-owned/untouched",
        (AxumStack::TowerSessions, Work::ReadWrite) => "axum/tower-sessions-memory/rw",
        (AxumStack::TowerSessions, Work::ReadOnly) => "axum/tower-sessions-memory/ro",
        (AxumStack::TowerSessions, Work::Untouched) => "axum/tower-sessions-memory/untouched",
        (AxumStack::Caching, Work::ReadWrite) => "axum/sealed-session-caching/rw",
        (AxumStack::Caching, Work::ReadOnly) => "axum/sealed-session-caching/ro",
        (AxumStack::Caching, Work::Untouched) => "axum/sealed-session-caching/untouched",
    };
    let path = work.path();
    // Check once that the handler sees the session.
    if !matches!(stack, AxumStack::Baseline | AxumStack::PassThrough) && work == Work::ReadOnly {
        let body = rt.block_on(async {
            let response = router
                .clone()
                .oneshot(axum_request(path, &cookie))
                .await
                .expect("infallible");
            axum::body::to_bytes(response.into_body(), 1024)
                .await
                .expect("body")
        });
        assert_eq!(&body[..], b"user-000042", "{name}: session not loaded");
    }
    serving(name, rt, router, path, cookie)
}

/// Requests to a route that never touches the session, with the session
/// layer applied around the whole router (`layer.layer(router)`, served
/// with `axum::ServiceExt::into_make_service`) instead of through
/// `Router::layer`: what the layer itself costs, without axum's per-route
/// boxing of layered routes.
#[must_use]
pub fn axum_untouched_around_router() -> Runner {
    use tower::Layer as _;

    let rt = current_thread();
    let engine = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).expect("long secret"))
        .build()
        .expect("engine");
    let routes = Router::new()
        .route("/login", get(ours::login))
        .route("/plain", get(plain))
        .with_state(());
    let service = SessionLayer::new(engine).layer(routes);
    let name = "axum/sealed-session/untouched-around-router";
    let cookie = rt.block_on(login_cookie(&service, name));
    serving(name, rt, service, Work::Untouched.path(), cookie)
}

/// What the extension-entry rows do to each request: put one entry (an
/// `Arc` clone) in its extensions.
fn insert_entry() -> impl FnMut(Request<Body>) -> Request<Body> + Clone {
    #[derive(Clone)]
    struct Entry(#[allow(dead_code)] std::sync::Arc<()>);

    let entry = Entry(std::sync::Arc::new(()));
    move |mut request: Request<Body>| {
        request.extensions_mut().insert(entry.clone());
        request
    }
}

/// The least any middleware pays to hand a handler's extractor something of
/// its own: a layer around the router that puts one entry (an `Arc` clone)
/// in the request's extensions and does nothing else. An untouched route
/// under sealed-session's layer pays this and the rest of its own share.
#[must_use]
pub fn axum_extension_entry_around_router() -> Runner {
    use tower::Layer as _;

    let rt = current_thread();
    // The baseline's router and cookie, so that the entry is all it adds.
    let routes = axum_router(AxumStack::Baseline).with_state(());
    let service = tower::util::MapRequestLayer::new(insert_entry()).layer(routes);
    serving(
        "axum/extension-entry-around-router",
        rt,
        service,
        Work::Untouched.path(),
        baseline_cookie(),
    )
}

/// The least a middleware pays that hands a handler something and then
/// looks at the response (as any session layer must, to commit): the
/// entry of [`axum_extension_entry_around_router`], and the response
/// future wrapped by a `MapResponse` that returns it unchanged.
#[must_use]
pub fn axum_extension_entry_and_response_around_router() -> Runner {
    let rt = current_thread();
    let routes = axum_router(AxumStack::Baseline).with_state(());
    let service = tower::ServiceBuilder::new()
        .map_request(insert_entry())
        .map_response(|response: axum::response::Response| response)
        .service(routes);
    serving(
        "axum/extension-entry-and-response-around-router",
        rt,
        service,
        Work::Untouched.path(),
        baseline_cookie(),
    )
}

/// tower-sessions with its `MemoryStore` around the whole router, on a
/// route that never touches the session: the peer's figure for the same
/// line.
#[must_use]
pub fn axum_tower_sessions_untouched_around_router() -> Runner {
    use tower::Layer as _;

    let rt = current_thread();
    let layer = tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
        .with_secure(false);
    let routes = Router::new()
        .route("/login", get(peer_tower::login))
        .route("/plain", get(plain))
        .with_state(());
    let service = layer.layer(routes);
    let name = "axum/tower-sessions/untouched-around-router";
    let cookie = rt.block_on(login_cookie(&service, name));
    serving(name, rt, service, Work::Untouched.path(), cookie)
}

mod peer_actix {
    use super::login_fields;
    use actix_session::Session;

    pub(super) async fn login(session: Session) -> &'static str {
        for (key, value) in login_fields() {
            session.insert(key, value).expect("insert");
        }
        "ok"
    }

    pub(super) async fn rw(session: Session) -> String {
        let n = session.get::<u64>("count").expect("get").unwrap_or(0) + 1;
        session.insert("count", n).expect("insert");
        n.to_string()
    }

    pub(super) async fn ro(session: Session) -> String {
        session
            .get::<String>("userId")
            .expect("get")
            .unwrap_or_default()
    }
}

/// Requests to an actix-web app, with actix-session's (encrypted) cookie
/// store when `session` is true, the handler doing `work`.
#[must_use]
pub fn actix(session: bool, work: Work) -> Runner {
    use actix_session::SessionMiddleware;
    use actix_session::storage::CookieSessionStore;
    use actix_web::http::header::{COOKIE, SET_COOKIE};
    use actix_web::{App, test, web};

    let system = actix_web::rt::System::new();
    let name = match (session, work) {
        (false, _) => "actix/no-session",
        (true, Work::ReadWrite) => "actix/actix-session-cookie/rw",
        (true, Work::ReadOnly) => "actix/actix-session-cookie/ro",
        (true, Work::Untouched) => "actix/actix-session-cookie/untouched",
    };
    let path = work.path();
    let key = actix_web::cookie::Key::from(&[7u8; 64]);
    let middleware = SessionMiddleware::builder(CookieSessionStore::default(), key)
        .cookie_secure(false)
        .build();
    let app = App::new()
        .wrap(actix_web::middleware::Condition::new(session, middleware))
        .route("/login", web::get().to(peer_actix::login))
        .route(
            "/rw",
            if session {
                web::get().to(peer_actix::rw)
            } else {
                web::get().to(plain)
            },
        )
        .route(
            "/ro",
            if session {
                web::get().to(peer_actix::ro)
            } else {
                web::get().to(plain)
            },
        )
        .route("/plain", web::get().to(plain));
    let (app, cookie) = system.block_on(async {
        let app = test::init_service(app).await;
        let cookie = if session {
            let response =
                test::call_service(&app, test::TestRequest::get().uri("/login").to_request()).await;
            cookie_header(
                response
                    .headers()
                    .get_all(SET_COOKIE)
                    .filter_map(|v| v.to_str().ok()),
            )
        } else {
            "id=".to_owned() + &"x".repeat(300)
        };
        (app, cookie)
    });
    if session && work == Work::ReadOnly {
        let body = system.block_on(async {
            let request = test::TestRequest::get()
                .uri(path)
                .insert_header((COOKIE, cookie.as_str()))
                .to_request();
            test::call_and_read_body(&app, request).await
        });
        assert_eq!(&body[..], b"user-000042", "{name}: session not loaded");
    }
    Runner::new(name, move |n| {
        system.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let request = test::TestRequest::get()
                    .uri(path)
                    .insert_header((COOKIE, cookie.as_str()))
                    .to_request();
                let response = test::call_service(&app, request).await;
                std::hint::black_box(response);
            }
            start.elapsed()
        })
    })
}

/// The [`Work`]'s label in bench names.
#[must_use]
pub fn label(work: Work) -> &'static str {
    work.label()
}
