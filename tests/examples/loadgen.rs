//! A bounded load generator for the demo server, on loopback only: each
//! virtual user logs in, then alternates `GET /me` and `GET /count` with its
//! cookies, over one keep-alive connection, until the time or request
//! budget runs out. Used by `scripts/load.sh`; not part of the test suite.
//!
//! Environment: `LOAD_URL` (default `http://127.0.0.1:3000`; only loopback
//! addresses are accepted), `LOAD_USERS` (32), `LOAD_SECONDS` (15),
//! `LOAD_MAX_REQUESTS` (1_000_000). Exits non-zero when any response was
//! neither 2xx nor the expected 401.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Method, Request, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    unauthorised: AtomicU64,
    other: AtomicU64,
    requests: AtomicU64,
}

/// Follows `Set-Cookie` like a browser.
fn receive(jar: &mut BTreeMap<String, String>, response: &http::Response<hyper::body::Incoming>) {
    for line in response.headers().get_all(header::SET_COOKIE) {
        let Ok(line) = line.to_str() else { continue };
        let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        if attributes.contains("Max-Age=0") {
            jar.remove(name);
        } else {
            jar.insert(name.to_owned(), value.to_owned());
        }
    }
}

async fn user(
    n: usize,
    addr: SocketAddr,
    deadline: Instant,
    budget: u64,
    tally: Arc<Tally>,
    latencies: Arc<std::sync::Mutex<Vec<u32>>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut jar = BTreeMap::new();
    let mut own = Vec::new();
    let mut i = 0u64;
    while Instant::now() < deadline && tally.requests.fetch_add(1, Ordering::Relaxed) < budget {
        let (method, path) = match i {
            0 => (Method::POST, format!("/login?user=u{n}")),
            i if i % 2 == 1 => (Method::GET, "/me".to_owned()),
            _ => (Method::GET, "/count".to_owned()),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1");
        if !jar.is_empty() {
            let cookie = jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(header::COOKIE, cookie);
        }
        let started = Instant::now();
        sender.ready().await?;
        let response = sender
            .send_request(request.body(Empty::<Bytes>::new())?)
            .await?;
        receive(&mut jar, &response);
        let status = response.status();
        response.into_body().collect().await?;
        own.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
        let counter = if status.is_success() {
            &tally.ok
        } else if status == http::StatusCode::UNAUTHORIZED {
            &tally.unauthorised
        } else {
            &tally.other
        };
        counter.fetch_add(1, Ordering::Relaxed);
        i += 1;
    }
    latencies.lock().map_err(|_| "poisoned")?.extend(own);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url: String = env("LOAD_URL", "http://127.0.0.1:3000".to_owned());
    let authority = url
        .strip_prefix("http://")
        .ok_or("LOAD_URL must be http://…")?;
    let authority = authority.trim_end_matches('/');
    let addr: SocketAddr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or("LOAD_URL does not resolve")?;
    let loopback = match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    if !loopback {
        return Err(format!("refusing to load {addr}: only loopback addresses are allowed").into());
    }
    let users: usize = env("LOAD_USERS", 32);
    let seconds: u64 = env("LOAD_SECONDS", 15);
    let budget: u64 = env("LOAD_MAX_REQUESTS", 1_000_000);
    let tally = Arc::new(Tally::default());
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..users)
        .map(|n| {
            tokio::spawn(user(
                n,
                addr,
                deadline,
                budget,
                Arc::clone(&tally),
                Arc::clone(&latencies),
            ))
        })
        .collect();
    let mut failures = 0;
    for task in tasks {
        if let Err(error) = task.await? {
            eprintln!("a user stopped: {error}");
            failures += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().map_err(|_| "poisoned")?.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let (ok, unauthorised, other) = (
        tally.ok.load(Ordering::Relaxed),
        tally.unauthorised.load(Ordering::Relaxed),
        tally.other.load(Ordering::Relaxed),
    );
    let total = ok + unauthorised + other;
    println!(
        "load: {total} requests in {elapsed:.1} s ({:.0} req/s), 2xx={ok} 401={unauthorised} other={other}, p50={}µs p99={}µs, users={users}",
        total as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
    if other > 0 || failures > 0 || unauthorised > 0 {
        return Err(format!("{other} unexpected statuses, {unauthorised} 401s for logged-in users, {failures} users stopped").into());
    }
    Ok(())
}
