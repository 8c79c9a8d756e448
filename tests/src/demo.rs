//! The axum demo binary (`session/examples/axum.rs`, built by `cargo test
//! --workspace --all-features` with the other examples), run as a user runs
//! it: a child process with its environment, on a port it picks itself
//! (`PORT=0`; the test reads the bound port from its `listening on` line),
//! restartable, killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long the demo may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The demo binary next to this test executable (`target/<profile>/examples/axum`).
///
/// # Panics
///
/// When it is missing: build it with `cargo test --workspace --all-features`
/// (or `cargo build -p sealed-session --example axum --features axum`).
#[must_use]
pub fn demo_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test> → target/<profile>/examples/axum
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("axum{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "the axum demo binary is missing at {}: build it with `cargo test --workspace \
         --all-features` (which builds the examples) or `cargo build -p sealed-session \
         --example axum --features axum`",
        binary.display()
    );
    assert_built_after_its_sources(&binary);
    binary
}

/// Panics when a source file the demo binary was built from (as cargo's
/// dep-info next to it lists them) changed after the build: a test run
/// of one test target (`cargo test --test browser`) does not rebuild the
/// examples, and would otherwise test an old demo.
fn assert_built_after_its_sources(binary: &Path) {
    let Ok(dep_info) = std::fs::read_to_string(binary.with_extension("d")) else {
        return; // Nothing to compare with.
    };
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return;
    };
    let stale: Vec<String> = dep_info_sources(&dep_info)
        .into_iter()
        .filter(|source| {
            std::fs::metadata(source)
                .and_then(|m| m.modified())
                .is_ok_and(|changed| changed > built)
        })
        .collect();
    assert!(
        stale.is_empty(),
        "the axum demo binary at {} is older than its sources ({}): rebuild it with \
         `cargo build -p sealed-session --example axum --all-features` (the test command \
         `cargo test --workspace --all-features` does it)",
        binary.display(),
        stale.join(", ")
    );
}

/// The files a Makefile-style dep-info line (`target: a.rs b\ c.rs`) lists
/// after its target, with `\ ` read as a space in a path.
fn dep_info_sources(dep_info: &str) -> Vec<String> {
    let mut sources = Vec::new();
    for line in dep_info.lines() {
        let Some((_, deps)) = line.split_once(": ") else {
            continue;
        };
        let mut current = String::new();
        let mut chars = deps.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    current.push(' ');
                    chars.next();
                }
                ' ' => sources.extend((!current.is_empty()).then(|| std::mem::take(&mut current))),
                c => current.push(c),
            }
        }
        sources.extend((!current.is_empty()).then_some(current));
    }
    sources
}

/// A running demo server, killed when dropped.
#[derive(Debug)]
pub struct Demo {
    env: Vec<(String, String)>,
    child: Child,
    addr: SocketAddr,
}

impl Demo {
    /// Starts the demo with `env` (added to this process's environment,
    /// `PORT=0` and `NO_COLOR=1` set) and waits until it listens.
    ///
    /// # Panics
    ///
    /// When the binary is missing, or does not start listening (its output
    /// is in the message).
    #[must_use]
    pub fn start(env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (child, addr) = spawn(&env);
        Self { env, child, addr }
    }

    /// Where it listens.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL on `host` (`localhost` or `127.0.0.1`).
    #[must_use]
    pub fn url(&self, host: &str) -> String {
        format!("http://{host}:{}", self.addr.port())
    }

    /// Stops it and starts it again with the same environment (and
    /// `extra` on top); it may listen on another port.
    ///
    /// # Panics
    ///
    /// As [`Demo::start`].
    pub fn restart(&mut self, extra: &[(&str, &str)]) {
        self.stop();
        for (k, v) in extra {
            self.env.retain(|(key, _)| key != k);
            self.env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let (child, addr) = spawn(&self.env);
        self.child = child;
        self.addr = addr;
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(env: &[(String, String)]) -> (Child, SocketAddr) {
    let mut child = Command::new(demo_binary())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PORT", "0")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the axum demo binary");
    let (tx, rx) = mpsc::channel();
    // Both streams are read to the end (so the demo never blocks on a full
    // pipe); each line goes to the channel, and to stderr for the test log.
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("demo: {line}");
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut output = Vec::new();
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(addr) = listening_addr(&line) {
                    return (child, addr);
                }
                output.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "the axum demo did not start listening (status {status:?}); its output:\n{}",
                    output.join("\n")
                );
            }
        }
    }
}

/// The address in a `listening on http://127.0.0.1:PORT` log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on http://").nth(1)?;
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{dep_info_sources, listening_addr};

    #[test]
    fn reads_the_port_from_the_log_line() {
        assert_eq!(
            listening_addr("2026-01-01T00:00:00Z  INFO axum: listening on http://127.0.0.1:4321"),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(listening_addr("INFO starting"), None);
    }

    #[test]
    fn dep_info_lists_each_source_once_with_escaped_spaces() {
        let dep_info = "/t/examples/axum: /w/session/examples/axum.rs /w/my\\ dir/lib.rs\n\n\
                        /w/session/examples/axum.rs:\n";
        assert_eq!(
            dep_info_sources(dep_info),
            ["/w/session/examples/axum.rs", "/w/my dir/lib.rs"]
        );
    }
}
