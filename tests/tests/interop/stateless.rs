//! Stateless mode (the record sealed into the cookie): every behaviour in
//! both directions, hono-session writing and our engine reading, then the
//! other way round.

use http::{Method, StatusCode};
use sealed_session::{Keyring, Secret, iron};
use serde_json::{Value, json};

use crate::harness::{
    Browser, IronJs, MAX_AGE_SECS, NodeApp, NodeEnv, SECRET, Server, SetCookie, listening, now_ms,
    send,
};
use crate::rust_app::{self, RustApp};

/// The hono-session app and our engine side by side, one secret, plus
/// each side's codec to seal and open cookies by hand.
struct Pair {
    node: NodeApp,
    rust: RustApp,
    iron_js: IronJs,
    keyring: Keyring,
}

impl Pair {
    async fn start(test: &str) -> Option<Self> {
        let node = NodeEnv::require(test)?;
        let rust = RustApp::start(rust_app::builder().build().unwrap()).await;
        Some(Self {
            node: NodeApp::start(&node, &[]).await,
            rust,
            iron_js: IronJs::start(&node),
            keyring: Keyring::single(Secret::new(SECRET).unwrap()),
        })
    }

    fn js(&self) -> Server {
        self.node.server()
    }

    fn rust(&self) -> Server {
        self.rust.server()
    }

    /// (writer, reader): hono-session then us, us then hono-session.
    fn directions(&self) -> [(Server, Server); 2] {
        [(self.js(), self.rust()), (self.rust(), self.js())]
    }

    fn is_js(&self, server: Server) -> bool {
        server.addr == self.js().addr
    }

    /// Seals `record` as `side` does: iron-webcrypto for hono-session,
    /// `iron::seal_json` for us.
    fn seal_as(&mut self, side: Server, record: &Value) -> String {
        if self.is_js(side) {
            self.iron_js.seal(record, &json!(SECRET))
        } else {
            iron::seal_json(record, self.keyring.current())
        }
    }

    /// Opens a session cookie as `side` does; `None` when it refuses it.
    fn open_as(&mut self, side: Server, token: &str) -> Option<Value> {
        if self.is_js(side) {
            self.iron_js.unseal(token, &json!(SECRET)).ok()
        } else {
            iron::unseal_json(token, &self.keyring, now_ms())
                .ok()
                .map(|(v, _)| v)
        }
    }
}

/// The `_expires` of a record, as an integer number of milliseconds.
fn expires(record: &Value) -> u64 {
    record
        .get("_expires")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("_expires is not an integer in {record}"))
}

/// Asserts `record._expires` is now + max age, for a "now" in
/// `[before, after]`.
fn assert_fresh_expiry(record: &Value, before: u64, after: u64, what: &str) {
    let max_age_ms = MAX_AGE_SECS * 1000;
    let expires = expires(record);
    assert!(
        (before + max_age_ms..=after + max_age_ms).contains(&expires),
        "{what}: _expires {expires} is not now + {MAX_AGE_SECS} s (now in {before}..={after})"
    );
}

fn keys(record: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = record
        .as_object()
        .expect("a record is an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn login_on_one_then_me_on_the_other() {
    let Some(mut t) = Pair::start("login_on_one_then_me_on_the_other").await else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("{} wrote, {} read", a.name, b.name);
        let mut browser = Browser::default();
        let me = browser.get(b, "/me").await;
        assert_eq!(
            (me.status, me.body.as_str()),
            (StatusCode::UNAUTHORIZED, "Unauthorised")
        );

        let user = format!("user-of-{}", a.name);
        let before = now_ms();
        let login = browser.post(a, &format!("/login?user={user}")).await;
        let after = now_ms();
        assert_eq!(login.status, StatusCode::NO_CONTENT, "{dir}");
        let token = browser.sid().expect("login sets sid").to_owned();
        assert!(token.starts_with("Fe26.2**"), "{dir}: {token}");
        assert_eq!(browser.jar.get("sx").map(String::as_str), Some("1"));

        // The reader's codec opens the writer's cookie: the same record.
        let record = t.open_as(b, &token).expect("the reader opens the cookie");
        assert_eq!(keys(&record), ["_expires", "userId"], "{dir}: {record}");
        assert_eq!(record["userId"], json!(user));
        assert_fresh_expiry(&record, before, after, &dir);

        let me = browser.get(b, "/me").await;
        assert_eq!(
            (me.status, me.body.as_str()),
            (StatusCode::OK, user.as_str()),
            "{dir}"
        );
        assert!(me.set_cookies.is_empty(), "{dir}: a read writes no cookie");
        let me = browser.get(a, "/me").await;
        assert_eq!(
            (me.status, me.body.as_str()),
            (StatusCode::OK, user.as_str()),
            "{dir}"
        );
    }
}

#[tokio::test]
async fn counter_and_data_alternate_between_the_two() {
    let Some(t) = Pair::start("counter_and_data_alternate_between_the_two").await else {
        return;
    };
    for (a, b) in t.directions() {
        let mut browser = Browser::default();
        for (n, server) in [a, b, a, b].into_iter().enumerate() {
            let count = browser.get(server, "/count").await;
            assert_eq!(count.body, (n + 1).to_string(), "count on {}", server.name);
        }
        let data = "données ✓ 😀 \"quoted\" \\ back; semi=colon";
        let put = browser.request(a, Method::PUT, "/data", data).await;
        assert_eq!(put.status, StatusCode::NO_CONTENT);
        assert_eq!(browser.get(b, "/data").await.body, data, "{} wrote", a.name);
        assert_eq!(browser.get(b, "/count").await.body, "5");
    }
}

#[tokio::test]
async fn flash_on_one_read_on_the_other_gone_on_the_third() {
    let Some(mut t) = Pair::start("flash_on_one_read_on_the_other_gone_on_the_third").await else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("{} flashed, {} read", a.name, b.name);
        let mut browser = Browser::default();
        // "héllo 😀", percent-encoded in the query.
        let flash = browser
            .post(a, "/flash?msg=h%C3%A9llo%20%F0%9F%98%80")
            .await;
        assert_eq!(flash.status, StatusCode::NO_CONTENT, "{dir}");
        let record = t.open_as(b, browser.sid().unwrap()).unwrap();
        assert_eq!(record["_flashKeys"], json!(["message"]), "{dir}: {record}");

        assert_eq!(browser.get(b, "/flash").await.body, "héllo 😀", "{dir}");
        assert_eq!(
            browser.get(a, "/flash").await.body,
            "",
            "{dir}: third request"
        );
        assert_eq!(
            browser.get(b, "/flash").await.body,
            "",
            "{dir}: fourth request"
        );
        let record = t.open_as(a, browser.sid().unwrap()).unwrap();
        assert_eq!(
            keys(&record),
            ["_expires"],
            "{dir}: the flash is gone: {record}"
        );
    }
}

#[tokio::test]
async fn reflash_on_the_other_keeps_the_flash_one_more_request() {
    let Some(t) = Pair::start("reflash_on_the_other_keeps_the_flash_one_more_request").await else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("{} flashed, {} reflashed", a.name, b.name);
        let mut browser = Browser::default();
        browser.post(a, "/login?user=reflasher").await;
        browser.post(a, "/flash?msg=kept").await;
        // Reflash alone changes nothing in the record: neither side writes
        // (the cookie already says "flashed by the previous request").
        let reflash = browser.post(b, "/reflash").await;
        assert_eq!(reflash.status, StatusCode::NO_CONTENT, "{dir}");
        assert!(
            reflash.set_cookies.is_empty(),
            "{dir}: {:?}",
            reflash.set_cookies
        );
        assert_eq!(browser.get(a, "/flash").await.body, "kept", "{dir}");
        assert_eq!(browser.get(b, "/flash").await.body, "", "{dir}");
        // b read a's cookies all along.
        assert_eq!(browser.get(b, "/me").await.body, "reflasher", "{dir}");
    }
}

#[tokio::test]
async fn logout_on_one_logs_out_of_the_other() {
    let Some(t) = Pair::start("logout_on_one_logs_out_of_the_other").await else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("login on {}, logout on {}", a.name, b.name);
        let mut browser = Browser::default();
        browser.post(a, "/login?user=leaving").await;
        assert_eq!(browser.get(b, "/me").await.status, StatusCode::OK, "{dir}");

        let logout = browser.post(b, "/logout").await;
        assert_eq!(logout.status, StatusCode::NO_CONTENT, "{dir}");
        let expired: Vec<(String, Option<String>)> = logout
            .set_cookies
            .iter()
            .map(|l| SetCookie::parse(l))
            .map(|c| (c.name.clone(), c.attribute("Max-Age").map(str::to_owned)))
            .collect();
        assert_eq!(
            expired,
            [
                ("sid".to_owned(), Some("0".to_owned())),
                ("sx".to_owned(), Some("0".to_owned()))
            ],
            "{dir}"
        );
        assert!(browser.jar.is_empty(), "{dir}: {:?}", browser.jar);
        assert_eq!(
            browser.get(a, "/me").await.status,
            StatusCode::UNAUTHORIZED,
            "{dir}"
        );
        assert_eq!(
            browser.get(b, "/me").await.status,
            StatusCode::UNAUTHORIZED,
            "{dir}"
        );
    }
}

#[tokio::test]
async fn renew_on_one_writes_an_expiry_the_other_reads() {
    let Some(mut t) = Pair::start("renew_on_one_writes_an_expiry_the_other_reads").await else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("{} renewed, {} read", a.name, b.name);
        // A session sealed by the reader's side, one hour from its end.
        let old_expires = now_ms() + 3_600_000;
        let token = t.seal_as(b, &json!({ "userId": "renewed", "_expires": old_expires }));
        let mut browser = Browser::with_sid(&token);

        let before = now_ms();
        let renew = browser.post(a, "/renew").await;
        let after = now_ms();
        assert_eq!(renew.status, StatusCode::NO_CONTENT, "{dir}");
        let sid = SetCookie::parse(&renew.set_cookies[0]);
        assert_eq!(
            (sid.name.as_str(), sid.attribute("Max-Age")),
            ("sid", Some("86400")),
            "{dir}"
        );
        let record = t.open_as(b, browser.sid().unwrap()).unwrap();
        assert_fresh_expiry(&record, before, after, &dir);
        assert_eq!(record["userId"], json!("renewed"), "{dir}");
        let renewed = expires(&record);

        let me = browser.get(b, "/me").await;
        assert_eq!(
            (me.status, me.body.as_str()),
            (StatusCode::OK, "renewed"),
            "{dir}"
        );
        // Without renew the expiry does not move, whoever writes.
        browser.get(b, "/count").await;
        let record = t.open_as(a, browser.sid().unwrap()).unwrap();
        assert_eq!(expires(&record), renewed, "{dir}: {record}");
    }
}

#[tokio::test]
async fn a_past_expires_sealed_by_one_is_refused_by_the_other() {
    let Some(mut t) = Pair::start("a_past_expires_sealed_by_one_is_refused_by_the_other").await
    else {
        return;
    };
    for (a, b) in t.directions() {
        let dir = format!("{} sealed, {} read", a.name, b.name);
        let live = t.seal_as(
            a,
            &json!({ "userId": "u", "count": 41, "_expires": now_ms() + 60_000 }),
        );
        let past = t.seal_as(
            a,
            &json!({ "userId": "u", "count": 41, "_expires": now_ms() - 1_000 }),
        );

        let me = send(b, Method::GET, "/me", Some(&format!("sid={live}")), "").await;
        assert_eq!(me.status, StatusCode::OK, "{dir}: the live control");
        let me = send(b, Method::GET, "/me", Some(&format!("sid={past}")), "").await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{dir}");
        assert!(me.set_cookies.is_empty(), "{dir}: {:?}", me.set_cookies);

        let mut browser = Browser::with_sid(&live);
        assert_eq!(browser.get(b, "/count").await.body, "42", "{dir}");
        let mut browser = Browser::with_sid(&past);
        assert_eq!(
            browser.get(b, "/count").await.body,
            "1",
            "{dir}: a fresh session"
        );
    }
}

/// Ways to spoil a token: each must be refused.
fn tampered(token: &str) -> Vec<(&'static str, String)> {
    let parts: Vec<&str> = token.split('*').collect();
    assert_eq!(parts.len(), 8, "{token}");
    let with_part = |i: usize, f: &dyn Fn(&str) -> String| {
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        p[i] = f(parts[i]);
        p.join("*")
    };
    // Replace the character in the middle with another base64url one.
    let flip_mid = |s: &str| {
        let mid = s.len() / 2;
        let c = if &s[mid..=mid] == "A" { "B" } else { "A" };
        format!("{}{c}{}", &s[..mid], &s[mid + 1..])
    };
    let flip_last = |s: &str| {
        let c = if s.ends_with('A') { "B" } else { "A" };
        format!("{}{c}", &s[..s.len() - 1])
    };
    vec![
        ("ciphertext changed", with_part(4, &flip_mid)),
        ("iv changed", with_part(3, &flip_mid)),
        ("hmac changed", with_part(7, &flip_last)),
        ("hmac salt changed", with_part(6, &flip_mid)),
        ("encryption salt changed", with_part(2, &flip_mid)),
        (
            "expiration added",
            with_part(5, &|_| "9999999999999".to_owned()),
        ),
        ("password id added", with_part(1, &|_| "other".to_owned())),
        ("prefix changed", with_part(0, &|_| "Fe26.1".to_owned())),
        ("truncated", token[..token.len() - 10].to_owned()),
        ("one part more", format!("{token}*")),
        ("not a token", "hello".to_owned()),
    ]
}

#[tokio::test]
async fn a_tampered_cookie_is_refused_by_both() {
    let Some(t) = Pair::start("a_tampered_cookie_is_refused_by_both").await else {
        return;
    };
    for writer in [t.js(), t.rust()] {
        let mut browser = Browser::default();
        browser.post(writer, "/login?user=victim").await;
        let token = browser.sid().unwrap().to_owned();
        for reader in [t.js(), t.rust()] {
            let me = send(
                reader,
                Method::GET,
                "/me",
                Some(&format!("sid={token}")),
                "",
            )
            .await;
            assert_eq!(me.status, StatusCode::OK, "the untampered control");
            for (how, bad) in tampered(&token) {
                let me = send(reader, Method::GET, "/me", Some(&format!("sid={bad}")), "").await;
                let what = format!("{} wrote, {how}, {} read", writer.name, reader.name);
                assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{what}");
                assert!(me.set_cookies.is_empty(), "{what}: {:?}", me.set_cookies);
            }
        }
    }
}

/// The `Set-Cookie` values of a fixed sequence of requests: first login,
/// login again, renew, logout.
async fn cookie_script(server: Server) -> Vec<Vec<SetCookie>> {
    let mut browser = Browser::default();
    let mut steps = Vec::new();
    for (method, path) in [
        (Method::POST, "/login?user=a"),
        (Method::POST, "/login?user=b"),
        (Method::POST, "/renew"),
        (Method::POST, "/logout"),
    ] {
        let response = browser.request(server, method, path, "").await;
        steps.push(
            response
                .set_cookies
                .iter()
                .map(|l| SetCookie::parse(l))
                .collect(),
        );
    }
    steps
}

/// A cookie with its session token replaced by a placeholder.
fn comparable(mut cookie: SetCookie) -> SetCookie {
    if cookie.name == "sid" && !cookie.value.is_empty() {
        cookie.value = "<token>".to_owned();
    }
    cookie
}

#[tokio::test]
async fn set_cookie_attributes_are_hono_sessions() {
    let Some(t) = Pair::start("set_cookie_attributes_are_hono_sessions").await else {
        return;
    };
    let exact = RustApp::start(rust_app::hono_cookies_builder().build().unwrap()).await;
    let hono = cookie_script(t.js()).await;

    // Pin what hono-session writes (shared/interop/README.md), so a change
    // on its side is noticed here first.
    let set = |name: &str, value: &str, attributes: &[&str]| SetCookie {
        name: name.to_owned(),
        value: value.to_owned(),
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
    };
    let sid = set(
        "sid",
        "<token>",
        &["Max-Age=86400", "Path=/", "HttpOnly", "Secure"],
    );
    let sx = set("sx", "1", &["Max-Age=86400", "Path=/", "Secure"]);
    let sid_gone = set("sid", "", &["Max-Age=0", "Path=/", "HttpOnly", "Secure"]);
    let sx_gone = set("sx", "", &["Max-Age=0", "Path=/", "Secure"]);
    let expected = vec![
        vec![sid_gone.clone(), sx_gone.clone(), sid.clone(), sx.clone()],
        vec![sid_gone.clone(), sx_gone.clone(), sid.clone(), sx.clone()],
        vec![sid, sx],
        vec![sid_gone, sx_gone],
    ];
    let hono: Vec<Vec<SetCookie>> = hono
        .into_iter()
        .map(|step| step.into_iter().map(comparable).collect())
        .collect();
    assert_eq!(hono, expected, "hono-session's cookies");

    // Our engine configured `without_same_site()`: exactly hono's cookies,
    // in the same order (attributes compared as sets).
    let ours: Vec<Vec<SetCookie>> = cookie_script(exact.server())
        .await
        .into_iter()
        .map(|step| step.into_iter().map(comparable).collect())
        .collect();
    assert_eq!(ours, expected, "sealed-session without SameSite");

    // Our defaults: the same plus `SameSite=Lax` on every cookie.
    let defaults = cookie_script(t.rust()).await;
    for (step, (ours, theirs)) in defaults.into_iter().zip(&expected).enumerate() {
        assert_eq!(ours.len(), theirs.len(), "step {step}");
        for (mut cookie, theirs) in ours.into_iter().zip(theirs) {
            assert!(
                cookie.attributes.remove("SameSite=Lax"),
                "step {step}: {cookie:?} lacks SameSite=Lax"
            );
            assert_eq!(&comparable(cookie), theirs, "step {step}");
        }
    }
}

#[tokio::test]
async fn the_node_app_is_stopped_when_its_guard_drops() {
    let Some(node) = NodeEnv::require("the_node_app_is_stopped_when_its_guard_drops") else {
        return;
    };
    let app = NodeApp::start(&node, &[]).await;
    let addr = app.addr;
    assert!(listening(addr));
    drop(app);
    assert!(!listening(addr), "the Node app still listens on {addr}");
}
