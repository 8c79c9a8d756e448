//! Starting the JavaScript side, talking HTTP to both sides, and the rule
//! for a machine without Node or Redis.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Method;
use serde_json::Value;

use crate::http1::{self, Response};

/// The secret both sides seal with (at least 32 characters).
pub const SECRET: &str = "interop-secret-shared-by-node-and-rust-0123456789";

/// hono-session's default max age, in seconds; our engine's too.
pub const MAX_AGE_SECS: u64 = 86_400;

/// How long a child gets to start listening before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The folder of the Node side: `tests/interop`.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// Now, in milliseconds since the Unix epoch (as `Date.now()`).
pub fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

/// A requirement of a test is missing: in CI (`CI` set) that is a failure,
/// on a developer machine the test is skipped with the reason printed.
///
/// The reason goes straight to the process's stderr, past the test
/// harness's output capture, so `cargo test` shows it.
fn missing(test: &str, reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {reason}");
    }
    let _ = writeln!(std::io::stderr(), "skipping {test}: {reason}");
}

/// Node 20+ and the npm packages of `tests/interop`, checked once per call.
#[derive(Debug, Clone)]
pub struct NodeEnv {
    dir: PathBuf,
}

impl NodeEnv {
    /// The Node side, or `None` (after printing why) when it is missing
    /// on a developer machine.
    ///
    /// # Panics
    ///
    /// When it is missing and `CI` is set.
    pub fn require(test: &str) -> Option<Self> {
        const NEEDED: &str =
            "Node 20 and `npm ci --prefix tests/interop` are required for the interop tests";
        let dir = interop_dir();
        let version = Command::new("node")
            .arg("--version")
            .stderr(Stdio::null())
            .output();
        let version = match version {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            Ok(_) | Err(_) => {
                missing(test, &format!("{NEEDED} (`node` was not found on PATH)"));
                return None;
            }
        };
        let major = version
            .trim()
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok());
        if major.is_none_or(|m| m < 20) {
            missing(test, &format!("{NEEDED} (found node {})", version.trim()));
            return None;
        }
        if !dir.join("node_modules/hono-session/package.json").is_file() {
            missing(
                test,
                &format!("{NEEDED} ({} has no node_modules)", dir.display()),
            );
            return None;
        }
        Some(Self { dir })
    }

    fn command(&self, script: &str) -> Command {
        let mut command = Command::new("node");
        command.arg(script).current_dir(&self.dir);
        // hono-session logs through `debug` when DEBUG names it; keep the
        // child quiet unless the developer asked for it.
        command.env_remove("NODE_OPTIONS");
        command
    }
}

/// `SESSION_TEST_REDIS_URL`, or `None` (after printing why) when unset on
/// a developer machine.
///
/// # Panics
///
/// When unset and `CI` is set.
pub fn require_redis(test: &str) -> Option<String> {
    match std::env::var("SESSION_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            missing(
                test,
                "set SESSION_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run the store-mode interop tests",
            );
            None
        }
    }
}

/// A child process that is killed when dropped, even when the test panics.
#[derive(Debug)]
struct ChildGuard {
    child: Child,
    log: PathBuf,
}

impl ChildGuard {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.stderr();
            if !log.is_empty() {
                eprintln!("--- stderr of the Node child ---\n{log}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A file for a child's stderr (a pipe nobody reads could fill and block
/// the child).
fn log_file(what: &str) -> (PathBuf, File) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "sealed-session-interop-{}-{what}-{n}.log",
        std::process::id()
    ));
    let file = File::create(&path).expect("cannot create a log file in the temp dir");
    (path, file)
}

/// The hono-session app (`tests/interop/app.mjs`), listening on 127.0.0.1.
#[derive(Debug)]
pub struct NodeApp {
    _child: ChildGuard,
    /// Kept open: the app exits when its stdin closes, so it cannot
    /// outlive the test process even if that is killed.
    _stdin: Option<ChildStdin>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl NodeApp {
    /// Starts the app with `SESSION_SECRET` = [`SECRET`] and `extra_env`,
    /// and waits until it listens (it prints its port).
    ///
    /// # Panics
    ///
    /// When it does not start within 20 s (its stderr is in the message).
    pub async fn start(node: &NodeEnv, extra_env: &[(&str, &str)]) -> Self {
        // Node picks the port and says which once it listens. Probing a
        // port picked here could be fooled: another test's server could
        // take it first, or a probe could connect to itself.
        let (log, log_handle) = log_file("app");
        let mut command = node.command("app.mjs");
        command
            .env("PORT", "0")
            .env("SESSION_SECRET", SECRET)
            .env_remove("SESSION_STORE")
            .envs(extra_env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_handle);
        let mut child = command.spawn().expect("cannot spawn node");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut child = ChildGuard { child, log };
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Read to the end, so the app never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.strip_prefix("listening ") {
                    let _ = port_tx.send(port.trim().parse::<u16>());
                }
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(port) = port_rx.try_recv() {
                let port = port.expect("the hono-session app printed a port number");
                return Self {
                    _child: child,
                    _stdin: stdin,
                    addr: SocketAddr::from(([127, 0, 0, 1], port)),
                };
            }
            if let Ok(Some(status)) = child.child.try_wait() {
                panic!(
                    "the hono-session app exited ({status}) before listening:\n{}",
                    child.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the hono-session app did not listen within {READY_TIMEOUT:?}:\n{}",
                child.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server as the tests address it.
    pub fn server(&self) -> Server {
        Server {
            name: "hono-session",
            addr: self.addr,
        }
    }
}

/// iron-webcrypto itself (`tests/interop/iron.mjs`): one long-lived Node
/// process answering seal and unseal requests, one JSON line each.
#[derive(Debug)]
pub struct IronJs {
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    child: ChildGuard,
}

impl IronJs {
    /// Starts the helper.
    pub fn start(node: &NodeEnv) -> Self {
        let (log, log_handle) = log_file("iron");
        let mut child = node
            .command("iron.mjs")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_handle)
            .spawn()
            .expect("cannot spawn node");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Self {
            stdin,
            stdout,
            child: ChildGuard { child, log },
        }
    }

    /// Sends one request and reads its answer.
    pub fn call(&mut self, request: &Value) -> Value {
        let stdin = self.stdin.as_mut().expect("helper stdin open");
        let mut line = request.to_string();
        line.push('\n');
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("iron.mjs stopped ({e}):\n{}", self.child.stderr()));
        let mut answer = String::new();
        let read = self.stdout.read_line(&mut answer).unwrap_or(0);
        assert!(
            read > 0,
            "iron.mjs closed its output:\n{}",
            self.child.stderr()
        );
        serde_json::from_str(&answer).expect("iron.mjs answers JSON")
    }

    /// `Iron.seal(crypto, value, password, Iron.defaults)`. `password` is a
    /// string, or `{"id": …, "secret": …}`.
    pub fn seal(&mut self, value: &Value, password: &Value) -> String {
        let answer =
            self.call(&serde_json::json!({ "op": "seal", "password": password, "value": value }));
        match answer.get("token").and_then(Value::as_str) {
            Some(token) => token.to_owned(),
            None => panic!("iron-webcrypto could not seal: {answer}"),
        }
    }

    /// `Iron.unseal(...)`: the value, or the message iron-webcrypto threw.
    /// `password` is a string, or `{id: secret}`.
    pub fn unseal(&mut self, token: &str, password: &Value) -> Result<Value, String> {
        let answer =
            self.call(&serde_json::json!({ "op": "unseal", "password": password, "token": token }));
        match (answer.get("value"), answer.get("error")) {
            (Some(value), _) => Ok(value.clone()),
            (None, Some(error)) => Err(error.as_str().unwrap_or_default().to_owned()),
            (None, None) => panic!("iron.mjs answered neither value nor error: {answer}"),
        }
    }
}

impl Drop for IronJs {
    fn drop(&mut self) {
        // Closing stdin ends the helper's loop; the guard then reaps it.
        drop(self.stdin.take());
    }
}

/// One of the two servers under test.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    /// `hono-session` or `sealed-session`, for messages.
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// One HTTP/1.1 exchange on a fresh connection.
///
/// Node's server now and then resets a fresh connection before reading the
/// request ("error writing a body to connection"): no response came, so
/// the request was not handled, and it is sent once more.
pub async fn send(
    server: Server,
    method: Method,
    path_and_query: &str,
    cookie: Option<&str>,
    body: &str,
) -> Response {
    let mut result =
        http1::exchange(server.addr, &method, path_and_query, cookie, None, body).await;
    if let Ok(Err(error)) = &result
        && error.to_string().contains("connection")
    {
        eprintln!(
            "{method} {path_and_query} on {}: {error}; sending again",
            server.name
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        result = http1::exchange(server.addr, &method, path_and_query, cookie, None, body).await;
    }
    match result {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => panic!("{method} {path_and_query} on {}: {error}", server.name),
        Err(_) => panic!(
            "{method} {path_and_query} on {}: no answer within {:?}",
            server.name,
            http1::REQUEST_TIMEOUT
        ),
    }
}

/// A cookie jar in front of both servers, following `Set-Cookie` like a
/// browser: the last value for a name wins, `Max-Age=0` deletes. Cookies
/// are `Secure`, so over plain HTTP the jar sends them itself, as a
/// browser would to `https://` on one host.
#[derive(Debug, Default, Clone)]
pub struct Browser {
    pub jar: BTreeMap<String, String>,
}

impl Browser {
    /// The `Cookie` header for the jar's content.
    pub fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Takes the cookies of a response.
    pub fn receive(&mut self, set_cookies: &[String]) {
        for line in set_cookies {
            let cookie = SetCookie::parse(line);
            if cookie.attribute("Max-Age") == Some("0") {
                self.jar.remove(&cookie.name);
            } else {
                self.jar.insert(cookie.name, cookie.value);
            }
        }
    }

    /// One request with the jar's cookies; the response's cookies go into
    /// the jar.
    pub async fn request(
        &mut self,
        server: Server,
        method: Method,
        path_and_query: &str,
        body: &str,
    ) -> Response {
        let cookie = self.cookie_header();
        let response = send(server, method, path_and_query, cookie.as_deref(), body).await;
        assert!(
            !response.status.is_server_error(),
            "{path_and_query} on {}: {} {}",
            server.name,
            response.status,
            response.body
        );
        self.receive(&response.set_cookies);
        response
    }

    pub async fn get(&mut self, server: Server, path: &str) -> Response {
        self.request(server, Method::GET, path, "").await
    }

    pub async fn post(&mut self, server: Server, path: &str) -> Response {
        self.request(server, Method::POST, path, "").await
    }

    /// The session cookie's value.
    pub fn sid(&self) -> Option<&str> {
        self.jar.get("sid").map(String::as_str)
    }

    /// A jar holding only `sid=value`.
    pub fn with_sid(value: &str) -> Self {
        let mut browser = Self::default();
        browser.jar.insert("sid".to_owned(), value.to_owned());
        browser
    }
}

/// A `Set-Cookie` value taken apart: name, value, and attributes as a set
/// (hono and our engine write them in different orders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// `Name=value` or `Name`, as written.
    pub attributes: std::collections::BTreeSet<String>,
}

impl SetCookie {
    pub fn parse(line: &str) -> Self {
        let mut parts = line.split(';').map(str::trim);
        let pair = parts.next().unwrap_or_default();
        let (name, value) = pair.split_once('=').expect("Set-Cookie has name=value");
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: parts.filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        }
    }

    /// The value of attribute `name` (`Max-Age`, `Path`, …), if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find_map(|a| {
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            k.eq_ignore_ascii_case(name).then_some(v)
        })
    }
}

/// Whether something listens on `addr` (for the guard's own test).
#[allow(dead_code)]
pub fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}
