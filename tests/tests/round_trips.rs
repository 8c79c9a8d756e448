//! Round trips to the real Redis and Postgres servers, counted on the wire:
//! each store talks to its server through a loopback proxy that counts the
//! requests the client sends (RESP commands; Postgres statements, each a
//! `Query` or a run of messages ended by a `Sync`, answered by one
//! `ReadyForQuery`). Per request the engine makes at most one round trip to
//! read and one to write, and none when the session is untouched.
//!
//! sqlx's pool also pings a connection (a bare `Sync`) when it goes back to
//! the pool, off the request's path, and by default when it is taken out;
//! `store_from_url` turns the second off (see the Postgres store's page),
//! and these pings are not statements, so they are not counted here.
//!
//! The request sequence runs twice and only the second run is counted, so
//! that connection setup and the first preparation of each statement (one
//! extra round trip per statement and connection in sqlx) are left out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, header};
use sealed_session::adapters::axum::SessionLayer;
use sealed_session::{Secret, Session, SessionEngine, SessionMap, Store};
use sealed_session_stores::drivers::sqlx::postgres::PgPoolOptions;
use sealed_session_stores::drivers::sqlx::{self, AssertSqlSafe};
use sealed_session_stores::{PostgresStore, RedisStore};
use sealed_session_tests::services::{POSTGRES_URL, REDIS_URL, service_url, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

const SECRET: &str = "round-trip-counting-secret-0123456789-abcdef";

/// What the proxy parses out of the client's byte stream.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    /// Redis: every RESP array the client sends is one command.
    Resp,
    /// Postgres: after the startup message, `Sync` (`S`) and `Query` (`Q`)
    /// messages end a round trip.
    Postgres,
}

/// Splits the client's stream into requests, across reads.
struct Requests {
    protocol: Protocol,
    pending: Vec<u8>,
    started: bool,
    /// Postgres: a message other than `Sync` since the last `Sync`.
    in_statement: bool,
}

impl Requests {
    fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            pending: Vec::new(),
            started: false,
            in_statement: false,
        }
    }

    /// Takes `bytes`, returns how many requests they completed.
    fn feed(&mut self, bytes: &[u8]) -> usize {
        self.pending.extend_from_slice(bytes);
        let mut count = 0;
        loop {
            let step = match self.protocol {
                Protocol::Resp => resp_command(&self.pending).map(|len| (len, true)),
                Protocol::Postgres => self.postgres_message(),
            };
            let Some((len, counts)) = step else {
                return count;
            };
            self.pending.drain(..len);
            count += usize::from(counts);
        }
    }

    /// The next whole Postgres frontend message: its length, and whether
    /// it ends a round trip.
    fn postgres_message(&mut self) -> Option<(usize, bool)> {
        if !self.started {
            // Startup (or SSL/GSS request): untyped, length first.
            let len = u32::from_be_bytes(self.pending.get(..4)?.try_into().ok()?) as usize;
            if self.pending.len() < len || len < 8 {
                return None;
            }
            let code = u32::from_be_bytes(self.pending[4..8].try_into().ok()?);
            // 80877103: SSLRequest, 80877104: GSSENCRequest; the real
            // startup message follows them.
            self.started = !matches!(code, 80_877_103 | 80_877_104);
            return Some((len, false));
        }
        let kind = *self.pending.first()?;
        let len = u32::from_be_bytes(self.pending.get(1..5)?.try_into().ok()?) as usize;
        if self.pending.len() < 1 + len {
            return None;
        }
        // A `Sync` with nothing before it is sqlx's connection ping (on
        // release to the pool, and on acquire unless turned off), not a
        // statement.
        let statement = match kind {
            b'Q' => true,
            b'S' => std::mem::take(&mut self.in_statement),
            _ => {
                self.in_statement = true;
                false
            }
        };
        Some((1 + len, statement))
    }
}

/// The length of the RESP command at the start of `buf`, if it is whole:
/// `*<n>\r\n` then `n` bulk strings `$<len>\r\n<bytes>\r\n`.
fn resp_command(buf: &[u8]) -> Option<usize> {
    let (count, mut at) = resp_header(buf, b'*')?;
    for _ in 0..count {
        let (len, start) = resp_header(&buf[at..], b'$')?;
        at += start + len + 2;
        if buf.len() < at {
            return None;
        }
    }
    Some(at)
}

/// `<marker><number>\r\n` at the start of `buf`: the number and the length
/// of the header.
fn resp_header(buf: &[u8], marker: u8) -> Option<(usize, usize)> {
    assert_eq!(*buf.first()?, marker, "unexpected RESP from the client");
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let number = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
    Some((number, end + 2))
}

/// A loopback proxy to `upstream` counting the client's requests.
struct Proxy {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl Proxy {
    async fn start(upstream: SocketAddr, protocol: Protocol) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(upstream).await.unwrap();
                tokio::spawn(relay(client, server, protocol, Arc::clone(&counter)));
            }
        });
        Self { addr, requests }
    }

    /// Requests counted since the last call.
    fn take(&self) -> usize {
        self.requests.swap(0, Ordering::SeqCst)
    }
}

/// Copies both ways; counts each client request before forwarding it, so
/// the count is up to date when its answer arrives.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    protocol: Protocol,
    counter: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut requests = Requests::new(protocol);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        counter.fetch_add(requests.feed(&buf[..n]), Ordering::SeqCst);
        if server_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = server_write.shutdown().await;
    answers.abort();
}

/// `host:port` of a service URL (`scheme://[user@]host:port/...`).
async fn upstream(url: &str, default_port: u16) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    tokio::net::lookup_host(host_port)
        .await
        .unwrap()
        .next()
        .unwrap()
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"));
    format!("{scheme}://{}{addr}{path}", user.unwrap_or_default())
}

async fn read(session: Session<SessionMap>) -> String {
    session.get::<String>("userId").unwrap_or_default()
}

async fn write(session: Session<SessionMap>) -> String {
    let n = session.get::<u64>("n").unwrap_or(0) + 1;
    session.set("userId", "alice");
    session.set("n", n);
    n.to_string()
}

fn app<S: Store>(store: S) -> Router {
    let engine = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .with_store(store)
        .build()
        .unwrap();
    Router::new()
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/plain", get(|| async { "no session" }))
        .layer(SessionLayer::new(engine))
        .with_state(())
}

/// Sends a request, returns the `sid=…` pair it set, if any.
async fn send(app: &Router, uri: &str, cookie: Option<&str>) -> Option<String> {
    let mut request = Request::get(uri).body(Body::empty()).unwrap();
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert(header::COOKIE, cookie.parse().unwrap());
    }
    let response = app.clone().oneshot(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "{uri}: {}",
        response.status()
    );
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sid="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Runs each kind of request and returns `(kind, round trips)`.
async fn count_each_kind(app: &Router, proxy: &Proxy) -> Vec<(&'static str, usize)> {
    let mut counts = Vec::new();
    proxy.take();
    let sid = send(app, "/write", None).await.expect("a session cookie");
    counts.push(("new session, write", proxy.take()));
    send(app, "/plain", Some(&sid)).await;
    counts.push(("untouched", proxy.take()));
    send(app, "/read", Some(&sid)).await;
    counts.push(("read-only", proxy.take()));
    send(app, "/write", Some(&sid)).await;
    counts.push(("read and write", proxy.take()));
    send(app, "/read", None).await;
    counts.push(("no cookie, read-only", proxy.take()));
    counts
}

const EXPECTED: [(&str, usize); 5] = [
    ("new session, write", 1),
    ("untouched", 0),
    ("read-only", 1),
    ("read and write", 2),
    ("no cookie, read-only", 0),
];

#[tokio::test]
async fn redis_one_round_trip_to_read_and_one_to_write() {
    let Some(url) = service_url(REDIS_URL) else {
        return;
    };
    let proxy = Proxy::start(upstream(&url, 6379).await, Protocol::Resp).await;
    let store = RedisStore::connect(&through(&url, proxy.addr))
        .await
        .unwrap()
        .with_prefix(&format!("{}:", unique_name("round-trips")));
    let app = app(store);
    count_each_kind(&app, &proxy).await; // connection setup
    assert_eq!(count_each_kind(&app, &proxy).await, EXPECTED);
}

#[tokio::test]
async fn postgres_one_round_trip_to_read_and_one_to_write() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    let proxy = Proxy::start(upstream(&url, 5432).await, Protocol::Postgres).await;
    let proxied = through(&url, proxy.addr);
    // The proxy reads the protocol, so no TLS; one connection, so that
    // the statements prepared in the first run are reused in the second;
    // no ping before each statement, as `store_from_url` configures it.
    let proxied = if proxied.contains('?') {
        format!("{proxied}&sslmode=disable")
    } else {
        format!("{proxied}?sslmode=disable")
    };
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(&proxied)
        .await
        .unwrap();
    let store = PostgresStore::new(pool.clone())
        .with_table_name(&unique_name("round_trips"))
        .unwrap();
    store.migrate().await.unwrap();
    let drop = format!("DROP TABLE IF EXISTS {}", store.qualified_table_name());
    let app = app(store);
    count_each_kind(&app, &proxy).await; // statement preparation
    let counts = count_each_kind(&app, &proxy).await;
    let _ = sqlx::query(AssertSqlSafe(drop)).execute(&pool).await;
    assert_eq!(counts, EXPECTED);
}

#[test]
fn the_counters_split_requests_across_reads() {
    let mut resp = Requests::new(Protocol::Resp);
    let command = b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n";
    assert_eq!(resp.feed(&command[..7]), 0);
    assert_eq!(resp.feed(&command[7..]), 1);
    assert_eq!(resp.feed(&[command.as_slice(), command].concat()), 2);

    let mut pg = Requests::new(Protocol::Postgres);
    let startup = [0, 0, 0, 8, 0, 3, 0, 0];
    assert_eq!(pg.feed(&startup), 0);
    // Bind, Execute, Sync: one round trip.
    let bind = [b'B', 0, 0, 0, 4];
    let execute = [b'E', 0, 0, 0, 4];
    let sync = [b'S', 0, 0, 0, 4];
    assert_eq!(pg.feed(&[bind, execute].concat()), 0);
    assert_eq!(pg.feed(&sync[..2]), 0);
    assert_eq!(pg.feed(&sync[2..]), 1);
    // A ping (a Sync alone) is not a statement; a simple query is.
    assert_eq!(pg.feed(&sync), 0);
    assert_eq!(pg.feed(&[b'Q', 0, 0, 0, 5, 0]), 1);
}
