//! The services the store tests talk to, found from the environment.
//!
//! | Variable | Example |
//! | --- | --- |
//! | `SESSION_TEST_POSTGRES_URL` | `postgres://postgres@127.0.0.1:5432/test` |
//! | `SESSION_TEST_MYSQL_URL` | `mysql://root@127.0.0.1:3306/test` |
//! | `SESSION_TEST_REDIS_URL` | `redis://127.0.0.1:6379` |
//! | `SESSION_TEST_REDIS_CLUSTER_URLS` | `redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103` |
//!
//! A test whose variable is unset is skipped with a note on stderr, except
//! under CI (`CI` set), where a missing service is a failure: CI never
//! skips silently.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sealed_session::SessionId;

/// Postgres URL variable.
pub const POSTGRES_URL: &str = "SESSION_TEST_POSTGRES_URL";
/// MySQL / MariaDB URL variable.
pub const MYSQL_URL: &str = "SESSION_TEST_MYSQL_URL";
/// Redis URL variable.
pub const REDIS_URL: &str = "SESSION_TEST_REDIS_URL";
/// Redis Cluster node URLs variable (comma-separated).
pub const REDIS_CLUSTER_URLS: &str = "SESSION_TEST_REDIS_CLUSTER_URLS";

/// Whether this is a CI run (`CI` set and not empty, `0` or `false`).
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The value of `var`, the test service it names.
///
/// Unset or empty: outside CI, prints why the test is skipped and returns
/// `None` (the test should return); under CI, panics naming the variable.
///
/// # Panics
///
/// Under CI, when `var` is unset.
#[must_use]
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        _ => skip_or_fail(&format!(
            "{var} is not set; set it to the service's URL (see scripts/check-services.sh), \
             or run bash .ci/run which exports it"
        )),
    }
}

/// Skips the test with `reason` outside CI; panics with it under CI.
///
/// # Panics
///
/// Under CI, always.
pub fn skip_or_fail<T>(reason: &str) -> Option<T> {
    assert!(!in_ci(), "CI must run every store test: {reason}");
    eprintln!("skipped: {reason}");
    None
}

/// A fresh lowercase name (`prefix_<16 random letters and digits>`) for a
/// test's own table, schema or key prefix, so parallel and repeated runs
/// never meet.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    let random: String = std::iter::repeat_with(SessionId::generate)
        .flat_map(|id| id.as_str().to_owned().into_bytes())
        .filter(u8::is_ascii_alphanumeric)
        .take(16)
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect();
    format!("{prefix}_{random}")
}

/// A fresh directory under the system's temporary directory, removed when
/// dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates it.
    ///
    /// # Panics
    ///
    /// When the directory cannot be created.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    /// Its path.
    #[must_use]
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
///
/// # Panics
///
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A port on 127.0.0.1 where nothing listens (port 1 needs root to
/// listen on, and nothing does).
pub const CLOSED_PORT: u16 = 1;

/// A throwaway `redis-server` on a port of its own, killed when dropped;
/// for tests that stop and restart Redis.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// Arguments beyond port, bind and persistence (cluster mode).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one on a free port, or returns `None` (after
    /// [`skip_or_fail`]) when `redis-server` is not installed.
    ///
    /// # Panics
    ///
    /// Under CI when `redis-server` is missing, and when the server does
    /// not come up on any of five free ports.
    #[must_use]
    pub fn start() -> Option<Self> {
        Self::start_with(|_| Vec::new())
    }

    /// Starts one in cluster mode (not yet part of a cluster), keeping its
    /// cluster state in `dir`; `None` as for [`start`](Self::start).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    #[must_use]
    pub fn start_cluster_node(dir: &std::path::Path) -> Option<Self> {
        Self::start_with(|port| {
            vec![
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                dir.join(format!("nodes-{port}.conf")).display().to_string(),
                "--cluster-node-timeout".into(),
                "1000".into(),
                // The bus port defaults to the port + 10000, past 65535 for
                // some ephemeral ports.
                "--cluster-port".into(),
                free_port().to_string(),
                // A replica writes the snapshot it syncs from its master
                // into its working directory: keep it out of the checkout.
                "--dir".into(),
                dir.display().to_string(),
                "--dbfilename".into(),
                format!("dump-{port}.rdb"),
            ]
        })
    }

    /// Starts one on a free port with `extra(port)` arguments. A port is
    /// free when picked, not when the server binds it: when another
    /// process took it meanwhile, the server exits and the next port is
    /// tried.
    fn start_with(extra: impl Fn(u16) -> Vec<String>) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return skip_or_fail("redis-server is not installed (apt-get install redis-server)");
        }
        for _ in 0..5 {
            let port = free_port();
            let mut server = Self {
                port,
                child: None,
                extra: extra(port),
            };
            if server.spawn() {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of five free ports");
    }

    /// Its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (as a crash would) and waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and waits until it answers.
    ///
    /// # Panics
    ///
    /// When it does not come up within 10 s, or another process took the
    /// port while it was down.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "redis-server could not start again on port {}: another process took it",
            self.port
        );
    }

    /// Starts the process and waits until it answers on its port as
    /// itself (its `INFO` gives its own process id, not another server's
    /// that took the port); `false` when it exited first (port taken).
    fn spawn(&mut self) -> bool {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().expect("redis-server status").is_some() {
                return false;
            }
            if redis_pid(self.port) == Some(child.id()) {
                self.child = Some(child);
                return true;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not start on port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The process id of the Redis server answering on `port`, if one does.
fn redis_pid(port: u16) -> Option<u32> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&reply);
        if let Some(rest) = text.split("\r\nprocess_id:").nth(1)
            && let Some((pid, _)) = rest.split_once("\r\n")
        {
            return pid.parse().ok();
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&buf[..n]);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_already_on_the_port_is_not_taken_for_a_new_one() {
        let Some(first) = RedisServer::start() else {
            return;
        };
        assert_eq!(redis_pid(first.port()), first.child.as_ref().map(Child::id));
        let mut second = RedisServer {
            port: first.port(),
            child: None,
            extra: Vec::new(),
        };
        assert!(!second.spawn(), "the second server cannot bind the port");
        assert!(second.child.is_none());
    }
}
