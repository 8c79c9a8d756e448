//! The axum demo binary itself, for every `SESSION_STORE` form the README
//! lists: log in, restart the server, find the session again (`memory`: the
//! documented opposite, the session is gone), log out.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use http::{Method, StatusCode};
use sealed_session_tests::demo::Demo;
use sealed_session_tests::services::{
    MYSQL_URL, POSTGRES_URL, REDIS_CLUSTER_URLS, REDIS_URL, TempDir, service_url,
};

#[allow(dead_code, unreachable_pub)]
#[path = "common/http1.rs"]
mod http1;

const SECRET: &str = "a-demo-binary-test-secret-of-32-chars!!";

/// A browser's cookie handling, reduced: the last `Set-Cookie` per name
/// wins (a login sends a clearing one, then the new one), a cleared cookie
/// is dropped, and one value per name is sent back.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn update(&mut self, set_cookies: &[String]) {
        for line in set_cookies {
            let cookie = cookie::Cookie::parse(line.as_str())
                .unwrap_or_else(|e| panic!("a Set-Cookie the jar cannot parse ({e}): {line}"));
            let cleared =
                cookie.value().is_empty() || cookie.max_age().is_some_and(|age| age.is_zero());
            if cleared {
                self.0.remove(cookie.name());
            } else {
                self.0
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }

    async fn send(&mut self, addr: SocketAddr, method: Method, path: &str) -> http1::Response {
        let response = http1::exchange(addr, &method, path, self.header().as_deref(), None, "")
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: timed out"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.update(&response.set_cookies);
        response
    }
}

/// Login, restart, the session again (or, `persists == false`, gone), logout.
async fn round_trip(store: Option<&str>, persists: bool) {
    let mut env = vec![("SESSION_SECRET", SECRET)];
    if let Some(store) = store {
        env.push(("SESSION_STORE", store));
    }
    let mut demo = Demo::start(&env);
    let mut jar = Jar::default();

    let login = jar.send(demo.addr(), Method::POST, "/login?user=ada").await;
    assert_eq!(login.status, StatusCode::NO_CONTENT, "{login:?}");
    let me = jar.send(demo.addr(), Method::GET, "/me").await;
    assert_eq!((me.status, me.body.as_str()), (StatusCode::OK, "ada"));

    demo.restart(&[]);
    let me = jar.send(demo.addr(), Method::GET, "/me").await;
    if !persists {
        assert_eq!(
            me.status,
            StatusCode::UNAUTHORIZED,
            "the memory store must forget sessions on restart: {me:?}"
        );
        return;
    }
    assert_eq!(
        (me.status, me.body.as_str()),
        (StatusCode::OK, "ada"),
        "the session after a restart ({store:?})"
    );

    let logout = jar.send(demo.addr(), Method::POST, "/logout").await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{logout:?}");
    let me = jar.send(demo.addr(), Method::GET, "/me").await;
    assert_eq!(
        (me.status, me.body.as_str()),
        (StatusCode::UNAUTHORIZED, "Unauthorised")
    );
}

#[tokio::test]
async fn stateless() {
    round_trip(None, true).await;
}

#[tokio::test]
async fn memory_forgets_on_restart() {
    round_trip(Some("memory"), false).await;
}

#[tokio::test]
async fn file() {
    let dir = TempDir::new("demo_file");
    round_trip(Some(&format!("file:{}", dir.path().display())), true).await;
}

#[tokio::test]
async fn sqlite() {
    let dir = TempDir::new("demo_sqlite");
    let path = dir.path().join("sessions.db");
    round_trip(Some(&format!("sqlite:{}", path.display())), true).await;
}

#[tokio::test]
async fn postgres() {
    let Some(url) = service_url(POSTGRES_URL) else {
        return;
    };
    round_trip(Some(&url), true).await;
}

#[tokio::test]
async fn mysql() {
    let Some(url) = service_url(MYSQL_URL) else {
        return;
    };
    round_trip(Some(&url), true).await;
}

#[tokio::test]
async fn redis() {
    let Some(url) = service_url(REDIS_URL) else {
        return;
    };
    round_trip(Some(&url), true).await;
}

#[tokio::test]
async fn redis_cluster() {
    let Some(urls) = service_url(REDIS_CLUSTER_URLS) else {
        return;
    };
    // redis://a:1,redis://b:2 → redis+cluster://a:1,b:2 (the README's form)
    let nodes: Vec<&str> = urls
        .split(',')
        .map(|u| u.trim().trim_start_matches("redis://"))
        .collect();
    round_trip(Some(&format!("redis+cluster://{}", nodes.join(","))), true).await;
}
