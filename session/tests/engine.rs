//! The behaviour of DESIGN.md, lines 1 to 9, in both modes: the scenarios
//! of hono-session's own suite plus ours. Time is a `ManualClock`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Browser, SECRET, T0};
use http::{HeaderMap, HeaderValue, header};
use sealed_session::{
    Encoder, IronEncoder, Keyring, ManualClock, MemoryStore, NoStore, Record, RequestContext,
    Secret, SessionEngine, SessionMap, Store,
};

const DAY: Duration = Duration::from_secs(86_400);

fn stateless(clock: &ManualClock) -> SessionEngine<NoStore, IronEncoder> {
    SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .with_clock(clock.clone())
        .build()
        .unwrap()
}

fn stored(clock: &ManualClock) -> SessionEngine<MemoryStore, IronEncoder> {
    SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .with_store(MemoryStore::new())
        .with_clock(clock.clone())
        .build()
        .unwrap()
}

/// Runs one scenario against the stateless engine and the memory store.
macro_rules! both_modes {
    ($($name:ident => $scenario:ident;)*) => {
        mod stateless_mode {
            use super::*;
            $(#[tokio::test] async fn $name() {
                let clock = ManualClock::new(T0);
                $scenario(stateless(&clock), clock).await;
            })*
        }
        mod store_mode {
            use super::*;
            $(#[tokio::test] async fn $name() {
                let clock = ManualClock::new(T0);
                $scenario(stored(&clock), clock).await;
            })*
        }
    };
}

both_modes! {
    login_me_logout => login_flow;
    untouched_session_sets_no_cookie => untouched;
    empty_new_session_is_never_saved => empty_new_session;
    flash_lives_for_one_more_request => flash;
    reflash_keeps_flash_one_more_request => reflash;
    expired_session_is_not_loaded => expiry;
    expiry_does_not_move_without_renew => expiry_is_absolute;
    renew_extends_and_forces_a_write => renew;
    renew_of_an_expired_session_gives_a_fresh_one => renew_expired;
    regenerate_sends_deletions_then_a_new_session => regenerate;
    tampered_cookie_gives_a_fresh_session => tampered;
    has_changed_and_is_new => change_tracking;
    setting_an_equal_value_writes_nothing => equal_value;
}

async fn login_flow<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    let user = browser
        .request(&engine, |s| s.get::<String>("userId"))
        .await;
    assert_eq!(user, None);
    browser.request(&engine, |s| s.set("userId", "123")).await;
    assert_eq!(browser.last_set_cookies.len(), 2, "sid and sx");
    assert!(browser.last_set_cookies[1].starts_with("sx=1;"));
    let user = browser
        .request(&engine, |s| s.get::<String>("userId"))
        .await;
    assert_eq!(user.as_deref(), Some("123"));
    assert!(
        browser.last_set_cookies.is_empty(),
        "read-only request writes nothing"
    );

    browser.request(&engine, |s| s.destroy()).await;
    assert_eq!(browser.last_set_cookies.len(), 2);
    assert!(
        browser
            .last_set_cookies
            .iter()
            .all(|c| c.contains("Max-Age=0"))
    );
    assert!(browser.jar.is_empty());
    let user = browser
        .request(&engine, |s| s.get::<String>("userId"))
        .await;
    assert_eq!(user, None);
}

async fn untouched<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("a", 1)).await;
    let before = browser.jar.clone();
    for _ in 0..3 {
        browser.request(&engine, |_| ()).await;
        assert!(browser.last_set_cookies.is_empty());
    }
    assert_eq!(browser.jar, before);
}

async fn empty_new_session<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    let is_new = browser.request(&engine, |s| s.is_new()).await;
    assert!(is_new);
    assert!(browser.last_set_cookies.is_empty());
    // Setting then removing leaves the new session empty: still not saved.
    browser
        .request(&engine, |s| {
            s.set("a", 1);
            s.remove("a");
        })
        .await;
    assert!(browser.last_set_cookies.is_empty());
    assert!(browser.jar.is_empty());
}

async fn flash<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    browser
        .request(&engine, |s| s.flash("message", "hello"))
        .await;
    // The next request sees it...
    let seen = browser
        .request(&engine, |s| s.get::<String>("message"))
        .await;
    assert_eq!(seen.as_deref(), Some("hello"));
    assert!(
        !browser.last_set_cookies.is_empty(),
        "ageing the flash is a change"
    );
    // ...and the one after does not.
    let seen = browser
        .request(&engine, |s| s.get::<String>("message"))
        .await;
    assert_eq!(seen, None);
}

async fn reflash<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    browser
        .request(&engine, |s| s.flash("message", "hello"))
        .await;
    let seen = browser
        .request(&engine, |s| {
            s.reflash();
            s.get::<String>("message")
        })
        .await;
    assert_eq!(seen.as_deref(), Some("hello"));
    let seen = browser
        .request(&engine, |s| s.get::<String>("message"))
        .await;
    assert_eq!(
        seen.as_deref(),
        Some("hello"),
        "reflash kept it one more request"
    );
    let seen = browser
        .request(&engine, |s| s.get::<String>("message"))
        .await;
    assert_eq!(seen, None);
    // reflash with nothing flashed is a no-op.
    browser.request(&engine, |s| s.reflash()).await;
    assert!(browser.last_set_cookies.is_empty());
}

async fn expiry<S: Store, E: Encoder>(engine: SessionEngine<S, E>, clock: ManualClock) {
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("userId", "1")).await;
    clock.advance(DAY);
    let user = browser
        .request(&engine, |s| s.get::<String>("userId"))
        .await;
    assert_eq!(
        user.as_deref(),
        Some("1"),
        "valid up to and including its _expires"
    );
    clock.advance(Duration::from_millis(1));
    let (user, is_new) = browser
        .request(&engine, |s| (s.get::<String>("userId"), s.is_new()))
        .await;
    assert_eq!(user, None);
    assert!(is_new);
}

async fn expiry_is_absolute<S: Store, E: Encoder>(engine: SessionEngine<S, E>, clock: ManualClock) {
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("n", 1)).await;
    clock.advance(DAY / 2);
    browser.request(&engine, |s| s.set("n", 2)).await;
    clock.advance(DAY / 2 + Duration::from_millis(1));
    let n = browser.request(&engine, |s| s.get::<u32>("n")).await;
    assert_eq!(n, None, "writes do not extend the session");
}

async fn renew<S: Store, E: Encoder>(engine: SessionEngine<S, E>, clock: ManualClock) {
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("n", 1)).await;
    clock.advance(DAY / 2);
    browser.request(&engine, |s| s.renew()).await;
    assert!(!browser.last_set_cookies.is_empty(), "renew forces a write");
    clock.advance(DAY / 2 + Duration::from_secs(1));
    let n = browser.request(&engine, |s| s.get::<u32>("n")).await;
    assert_eq!(n, Some(1), "renew moved the expiry");
    let expires = browser.request(&engine, |s| s.expires_at()).await;
    let expected = std::time::UNIX_EPOCH + Duration::from_millis(T0) + DAY / 2 + DAY;
    assert_eq!(expires, expected);
    browser
        .request(&engine, |s| s.renew_for(Duration::from_secs(60)))
        .await;
    clock.advance(Duration::from_secs(61));
    let n = browser.request(&engine, |s| s.get::<u32>("n")).await;
    assert_eq!(n, None, "renew_for set a short expiry");
}

async fn renew_expired<S: Store, E: Encoder>(engine: SessionEngine<S, E>, clock: ManualClock) {
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("n", 1)).await;
    clock.advance(DAY * 2);
    let (n, is_new) = browser
        .request(&engine, |s| {
            s.renew();
            (s.get::<u32>("n"), s.is_new())
        })
        .await;
    assert_eq!(n, None, "an expired session is not revived by renew");
    assert!(is_new);
}

async fn regenerate<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("userId", "1")).await;
    let old_sid = browser.sid().unwrap().to_owned();
    let old_id = browser.request(&engine, |s| s.id()).await;
    browser.request(&engine, |s| s.regenerate()).await;
    let sets = &browser.last_set_cookies;
    assert_eq!(sets.len(), 4, "{sets:?}");
    assert!(sets[0].starts_with("sid=;") && sets[0].contains("Max-Age=0"));
    assert!(sets[1].starts_with("sx=;") && sets[1].contains("Max-Age=0"));
    assert!(sets[2].starts_with("sid=") && !sets[2].contains("Max-Age=0"));
    assert!(sets[3].starts_with("sx=1"));
    assert_ne!(browser.sid().unwrap(), old_sid);
    let user = browser
        .request(&engine, |s| s.get::<String>("userId"))
        .await;
    assert_eq!(user.as_deref(), Some("1"), "data moves to the new session");
    if let Some(old_id) = old_id {
        // Store mode: the old record is gone, the old cookie is worthless.
        let mut attacker = Browser::default();
        attacker
            .jar
            .insert("sid".into(), old_id.as_str().to_owned());
        let (user, id) = attacker
            .request(&engine, |s| (s.get::<String>("userId"), s.id()))
            .await;
        assert_eq!(user, None);
        assert_ne!(id, Some(old_id), "an unknown id is never adopted");
    }
}

async fn tampered<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("userId", "1")).await;
    let sid = browser.sid().unwrap().to_owned();
    let mut bad = vec![
        String::new(),
        "garbage".to_owned(),
        "x".repeat(100_000),
        sid[..sid.len() / 2].to_owned(),
        format!("{sid}x"),
    ];
    let mut flipped = sid.clone().into_bytes();
    let mid = flipped.len() / 2;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    bad.push(String::from_utf8(flipped).unwrap());
    for value in bad {
        let mut mallory = Browser::default();
        mallory.jar.insert("sid".into(), value.clone());
        let (user, is_new) = mallory
            .request(&engine, |s| (s.get::<String>("userId"), s.is_new()))
            .await;
        assert_eq!(user, None, "{value:.40}");
        assert!(is_new);
        assert!(mallory.last_set_cookies.is_empty());
    }
}

async fn change_tracking<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    let (changed, new) = browser
        .request(&engine, |s| {
            let before = s.has_changed();
            s.set("a", 1);
            (before, (s.has_changed(), s.is_new()))
        })
        .await;
    assert!(!changed);
    assert_eq!(new, (true, true));
    let (changed, is_new) = browser
        .request(&engine, |s| (s.has_changed(), s.is_new()))
        .await;
    assert!(!changed);
    assert!(!is_new, "saved sessions are not new");
}

async fn equal_value<S: Store, E: Encoder>(engine: SessionEngine<S, E>, _: ManualClock) {
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("a", "x")).await;
    let changed = browser
        .request(&engine, |s| {
            s.set("a", "x");
            s.update(|m| m.insert("b", 1));
            s.update(|m| m.remove("b"));
            s.has_changed()
        })
        .await;
    assert!(!changed);
    assert!(browser.last_set_cookies.is_empty());
}

#[tokio::test]
async fn cookie_header_with_many_sid_entries_uses_the_first() {
    let clock = ManualClock::new(T0);
    let engine = stateless(&clock);
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("userId", "1")).await;
    let good = browser.sid().unwrap().to_owned();
    let cx = RequestContext::default();
    let mut headers = HeaderMap::new();
    let line = format!("sid={good}; {}", "sid=junk; ".repeat(500));
    headers.insert(header::COOKIE, HeaderValue::from_str(&line).unwrap());
    let s = engine.load::<SessionMap>(&headers, &cx).await.unwrap();
    assert_eq!(s.get::<String>("userId").as_deref(), Some("1"));
    let line = format!("sid=junk; sid={good}");
    headers.insert(header::COOKIE, HeaderValue::from_str(&line).unwrap());
    let s = engine.load::<SessionMap>(&headers, &cx).await.unwrap();
    assert!(s.is_new(), "like hono, the first sid counts");
}

#[tokio::test]
async fn non_utf8_cookie_header_gives_a_fresh_session() {
    let engine = stateless(&ManualClock::new(T0));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::from_bytes(b"sid=\xff\xfe\x80").unwrap(),
    );
    let s = engine
        .load::<SessionMap>(&headers, &RequestContext::default())
        .await
        .unwrap();
    assert!(s.is_new());
}

/// The memory store judges expiry by the engine's clock, which set it:
/// with a clock years behind the system's, sessions still live their day.
#[tokio::test]
async fn the_memory_store_expires_by_the_engines_clock() {
    let clock = ManualClock::new(1_000_000_000_000);
    let engine = stored(&clock);
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("a", 1)).await;
    clock.advance(DAY);
    let a = browser.request(&engine, |s| s.get::<u32>("a")).await;
    assert_eq!(a, Some(1), "live up to its expiry by the engine's clock");
    clock.advance(Duration::from_millis(1));
    let a = browser.request(&engine, |s| s.get::<u32>("a")).await;
    assert_eq!(a, None);
    assert!(
        engine.store().unwrap().is_empty(),
        "the expired record was removed when met"
    );
}

/// The same with optimistic concurrency: the compare-and-set judges the
/// stored record live by the engine's clock too.
#[tokio::test]
async fn optimistic_memory_store_writes_by_the_engines_clock() {
    let clock = ManualClock::new(1_000_000_000_000);
    let engine = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .with_store(MemoryStore::new())
        .with_optimistic_concurrency(true)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("a", 1)).await;
    clock.advance(DAY / 2);
    browser.request(&engine, |s| s.set("a", 2)).await;
    let a = browser.request(&engine, |s| s.get::<u32>("a")).await;
    assert_eq!(a, Some(2), "the second write was not a conflict");
}

#[tokio::test]
async fn records_are_hono_shaped() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(Mutex::new(HashMap::<String, Arc<Record>>::new()));
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&store))
        .with_clock(clock)
        .build()
        .unwrap();
    let mut browser = Browser::default();
    browser
        .request(&engine, |s| {
            s.set("userId", "1");
            s.set("empty", Vec::<u8>::new());
            s.set("nothing", ());
            s.set("blank", "");
            s.flash("message", "hi");
        })
        .await;
    let map = store.lock().unwrap();
    let record = map
        .get(browser.sid().unwrap())
        .expect("a plain map works as a store");
    let expected = serde_json::json!({
        "userId": "1",
        "blank": "",
        "message": "hi",
        "_flashKeys": ["message"],
        "_expires": T0 + 86_400_000,
    });
    assert_eq!(serde_json::Value::Object((**record).clone()), expected);
}

#[tokio::test]
async fn store_ids_are_random_url_safe_and_long() {
    let engine = stored(&ManualClock::new(T0));
    let mut ids = std::collections::HashSet::new();
    for _ in 0..200 {
        let mut browser = Browser::default();
        browser.request(&engine, |s| s.set("a", 1)).await;
        let sid = browser.sid().unwrap().to_owned();
        assert!(sid.len() >= 22, "at least 128 bits");
        assert!(
            sid.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        ids.insert(sid);
    }
    assert_eq!(ids.len(), 200);
}

#[tokio::test]
async fn a_cookie_for_an_unknown_id_is_not_adopted() {
    let engine = stored(&ManualClock::new(T0));
    let mut attacker = Browser::default();
    let planted = "attacker-chosen-session-id-0001";
    attacker.jar.insert("sid".into(), planted.into());
    attacker
        .request(&engine, |s| s.set("userId", "victim"))
        .await;
    assert_ne!(attacker.sid(), Some(planted));
    assert_eq!(engine.store().unwrap().len(), 1);
}

#[tokio::test]
async fn expired_store_record_is_deleted_when_met() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(Mutex::new(HashMap::<String, Arc<Record>>::new()));
    let engine = SessionEngine::builder()
        .with_store(Arc::clone(&store))
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let mut browser = Browser::default();
    browser.request(&engine, |s| s.set("a", 1)).await;
    assert_eq!(store.lock().unwrap().len(), 1);
    clock.advance(DAY * 2);
    browser.request(&engine, |_| ()).await;
    assert!(store.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rotated_keys_open_old_cookies_and_reseal_them() {
    let clock = ManualClock::new(T0);
    let old = Secret::new("old-secret-old-secret-old-secret-0001").unwrap();
    let new = Secret::new("new-secret-new-secret-new-secret-0002").unwrap();
    let engine_v1 = SessionEngine::builder()
        .with_keyring(Keyring::new([(Some("k1"), old.clone())]).unwrap())
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let engine_v2 = SessionEngine::builder()
        .with_keyring(Keyring::new([(Some("k2"), new.clone()), (Some("k1"), old)]).unwrap())
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let engine_v3 = SessionEngine::builder()
        .with_keyring(Keyring::new([(Some("k2"), new)]).unwrap())
        .with_clock(clock)
        .build()
        .unwrap();
    let mut browser = Browser::default();
    browser.request(&engine_v1, |s| s.set("userId", "1")).await;
    let user = browser
        .request(&engine_v2, |s| s.get::<String>("userId"))
        .await;
    assert_eq!(user.as_deref(), Some("1"));
    assert!(
        !browser.last_set_cookies.is_empty(),
        "re-sealed with the newest key"
    );
    let user = browser
        .request(&engine_v3, |s| s.get::<String>("userId"))
        .await;
    assert_eq!(
        user.as_deref(),
        Some("1"),
        "the re-sealed cookie opens without the old key"
    );
}

#[test]
fn short_secret_is_a_construction_error() {
    let err = Secret::new("only-twenty-characters").unwrap_err();
    assert!(err.to_string().contains("22 characters"), "{err}");
}

#[test]
fn build_refuses_bad_options() {
    assert!(
        SessionEngine::builder()
            .with_max_age(Duration::ZERO)
            .build()
            .is_err()
    );
    assert!(
        SessionEngine::builder()
            .with_cookie_name("bad name")
            .build()
            .is_err()
    );
    assert!(
        SessionEngine::builder()
            .with_max_age(Duration::from_secs(401 * 86_400))
            .build()
            .is_err()
    );
}

mod cookie_size {
    use super::*;
    use sealed_session::{CookieSizePolicy, Error, MAX_COOKIE_SIZE};

    fn engine(policy: CookieSizePolicy) -> SessionEngine<NoStore, IronEncoder> {
        SessionEngine::builder()
            .with_secret(Secret::new(SECRET).unwrap())
            .with_cookie_size_policy(policy)
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn oversized_session_is_an_error_naming_size_and_limit() {
        let engine = engine(CookieSizePolicy::Error);
        let cx = RequestContext::default();
        let session = engine
            .load::<SessionMap>(&HeaderMap::new(), &cx)
            .await
            .unwrap();
        session.set("data", "x".repeat(5_000));
        match engine.commit(&session, &cx).await {
            Err(Error::CookieTooLarge { size, limit }) => {
                assert!(size > 5_000);
                assert_eq!(limit, MAX_COOKIE_SIZE);
                let message = Error::CookieTooLarge { size, limit }.to_string();
                assert!(
                    message.contains(&size.to_string()) && message.contains("4096"),
                    "{message}"
                );
            }
            other => panic!("expected CookieTooLarge, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn chunked_session_grows_reads_back_and_shrinks() {
        let engine = engine(CookieSizePolicy::Chunk { max_chunks: 5 });
        let mut browser = Browser::default();
        let big = "é🚀x".repeat(1_500);
        browser.request(&engine, |s| s.set("data", &big)).await;
        assert!(browser.jar.contains_key("sid.0") && browser.jar.contains_key("sid.1"));
        assert!(!browser.jar.contains_key("sid"));
        assert!(
            browser
                .last_set_cookies
                .iter()
                .all(|c| c.len() <= MAX_COOKIE_SIZE)
        );
        let read = browser.request(&engine, |s| s.get::<String>("data")).await;
        assert_eq!(read.as_deref(), Some(big.as_str()));
        assert!(
            browser.last_set_cookies.is_empty(),
            "read-only: nothing written"
        );
        browser.request(&engine, |s| s.set("data", "small")).await;
        assert!(browser.jar.contains_key("sid"));
        assert!(
            !browser.jar.keys().any(|k| k.starts_with("sid.")),
            "{:?}",
            browser.jar
        );
        let read = browser.request(&engine, |s| s.get::<String>("data")).await;
        assert_eq!(read.as_deref(), Some("small"));
        browser.request(&engine, |s| s.set("data", &big)).await;
        browser.request(&engine, |s| s.destroy()).await;
        assert!(
            browser.jar.is_empty(),
            "logout expires every chunk: {:?}",
            browser.jar
        );
    }

    #[tokio::test]
    async fn tampered_chunk_gives_a_fresh_session() {
        let engine = engine(CookieSizePolicy::Chunk { max_chunks: 5 });
        let mut browser = Browser::default();
        browser
            .request(&engine, |s| s.set("data", "y".repeat(6_000)))
            .await;
        browser.jar.remove("sid.1");
        let (data, is_new) = browser
            .request(&engine, |s| (s.get::<String>("data"), s.is_new()))
            .await;
        assert_eq!(data, None);
        assert!(is_new);
    }
}

mod expiry_policy {
    use super::*;
    use sealed_session::ExpiryPolicy;

    fn engine(
        clock: &ManualClock,
        policy: ExpiryPolicy,
    ) -> SessionEngine<MemoryStore, IronEncoder> {
        SessionEngine::builder()
            .with_store(MemoryStore::new())
            .with_clock(clock.clone())
            .with_max_age(Duration::from_secs(100))
            .with_expiry_policy(policy)
            .build()
            .unwrap()
    }

    const S: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn rolling_extends_on_use_but_writes_only_when_running_low() {
        let clock = ManualClock::new(T0);
        let engine = engine(&clock, ExpiryPolicy::rolling());
        let mut browser = Browser::default();
        browser.request(&engine, |s| s.set("n", 1)).await;
        // 40 s in: 60% left, above the 50% threshold: no write.
        clock.advance(S * 40);
        browser.request(&engine, |_| ()).await;
        assert!(browser.last_set_cookies.is_empty());
        // 60 s in: 40% left: refreshed to now + 100 s, written.
        clock.advance(S * 20);
        let expires = browser.request(&engine, |s| s.expires_at()).await;
        assert!(!browser.last_set_cookies.is_empty());
        assert_eq!(
            expires,
            std::time::UNIX_EPOCH + Duration::from_millis(T0) + S * 160
        );
        // Kept alive well past the first max age by activity alone.
        for _ in 0..5 {
            clock.advance(S * 60);
            let n = browser.request(&engine, |s| s.get::<u32>("n")).await;
            assert_eq!(n, Some(1));
        }
        // Idle for longer than max age: gone.
        clock.advance(S * 101);
        let n = browser.request(&engine, |s| s.get::<u32>("n")).await;
        assert_eq!(n, None);
    }

    #[tokio::test]
    async fn absolute_is_the_default_and_ignores_activity() {
        let clock = ManualClock::new(T0);
        let engine = engine(&clock, ExpiryPolicy::default());
        let mut browser = Browser::default();
        browser.request(&engine, |s| s.set("n", 1)).await;
        for _ in 0..4 {
            clock.advance(S * 24);
            browser.request(&engine, |s| s.get::<u32>("n")).await;
            assert!(browser.last_set_cookies.is_empty());
        }
        clock.advance(S * 5);
        let n = browser.request(&engine, |s| s.get::<u32>("n")).await;
        assert_eq!(n, None);
    }

    #[tokio::test]
    async fn max_lifetime_bounds_rolling_and_renew() {
        let clock = ManualClock::new(T0);
        let policy = ExpiryPolicy::rolling().with_max_lifetime(S * 250);
        let engine = engine(&clock, policy);
        let mut browser = Browser::default();
        browser.request(&engine, |s| s.set("n", 1)).await;
        let record = engine.store().unwrap();
        assert_eq!(record.len(), 1);
        for _ in 0..4 {
            clock.advance(S * 60);
            let n = browser
                .request(&engine, |s| {
                    s.renew();
                    s.get::<u32>("n")
                })
                .await;
            assert_eq!(n, Some(1));
        }
        // 240 s in; renew could not push expiry past created + 250 s.
        let expires = browser.request(&engine, |s| s.expires_at()).await;
        assert_eq!(
            expires,
            std::time::UNIX_EPOCH + Duration::from_millis(T0) + S * 250
        );
        clock.advance(S * 11);
        let n = browser.request(&engine, |s| s.get::<u32>("n")).await;
        assert_eq!(n, None, "dead at its max lifetime despite activity");
    }

    #[tokio::test]
    async fn created_is_reserved_and_an_empty_session_is_still_not_saved() {
        let clock = ManualClock::new(T0);
        let engine = engine(&clock, ExpiryPolicy::absolute().with_max_lifetime(S * 500));
        let mut browser = Browser::default();
        let keys = browser
            .request(&engine, |s| s.read(|m| m.keys().count()))
            .await;
        assert_eq!(keys, 0);
        assert!(browser.last_set_cookies.is_empty());
        browser.request(&engine, |s| s.set("a", 1)).await;
        let keys: Vec<String> = browser
            .request(&engine, |s| {
                s.read(|m| m.keys().map(str::to_owned).collect())
            })
            .await;
        assert_eq!(keys, ["a"], "_created is hidden like _expires");
    }
}

mod overflow_store {
    use super::*;
    use sealed_session::MAX_COOKIE_SIZE;

    fn engine(store: &MemoryStore) -> SessionEngine<NoStore, IronEncoder> {
        SessionEngine::builder()
            .with_secret(Secret::new(SECRET).unwrap())
            .with_overflow_store(store.clone())
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn big_sessions_move_to_the_store_and_back() {
        let store = MemoryStore::new();
        let engine = engine(&store);
        let mut browser = Browser::default();
        browser.request(&engine, |s| s.set("userId", "1")).await;
        assert!(store.is_empty(), "small sessions stay in the cookie");
        let big = "z".repeat(10_000);
        browser.request(&engine, |s| s.set("data", &big)).await;
        assert_eq!(store.len(), 1);
        assert!(
            browser.sid().unwrap().len() < 400,
            "the cookie holds a sealed pointer"
        );
        assert!(
            browser
                .last_set_cookies
                .iter()
                .all(|c| c.len() <= MAX_COOKIE_SIZE)
        );
        let (data, user) = browser
            .request(&engine, |s| {
                (s.get::<String>("data"), s.get::<String>("userId"))
            })
            .await;
        assert_eq!(data.as_deref(), Some(big.as_str()));
        assert_eq!(user.as_deref(), Some("1"));
        assert!(browser.last_set_cookies.is_empty());
        browser.request(&engine, |s| s.remove("data")).await;
        assert!(
            store.is_empty(),
            "back in the cookie: the store record is deleted"
        );
        let user = browser
            .request(&engine, |s| s.get::<String>("userId"))
            .await;
        assert_eq!(user.as_deref(), Some("1"));
    }

    /// The overflow store judges expiry by the engine's clock, as a store
    /// of store mode does.
    #[tokio::test]
    async fn the_overflow_store_expires_by_the_engines_clock() {
        let clock = ManualClock::new(1_000_000_000_000);
        let store = MemoryStore::new();
        let engine = SessionEngine::builder()
            .with_secret(Secret::new(SECRET).unwrap())
            .with_overflow_store(store.clone())
            .with_clock(clock.clone())
            .build()
            .unwrap();
        let mut browser = Browser::default();
        let big = "z".repeat(10_000);
        browser.request(&engine, |s| s.set("data", &big)).await;
        assert_eq!(store.len(), 1);
        clock.advance(DAY);
        let data = browser.request(&engine, |s| s.get::<String>("data")).await;
        assert_eq!(data.as_deref(), Some(big.as_str()));
        clock.advance(Duration::from_millis(1));
        let data = browser.request(&engine, |s| s.get::<String>("data")).await;
        assert_eq!(data, None);
    }

    #[tokio::test]
    async fn destroy_and_regenerate_clean_the_overflow_store() {
        let store = MemoryStore::new();
        let engine = engine(&store);
        let mut browser = Browser::default();
        browser
            .request(&engine, |s| s.set("data", "q".repeat(8_000)))
            .await;
        let before = browser.sid().unwrap().to_owned();
        browser.request(&engine, |s| s.regenerate()).await;
        assert_eq!(
            store.len(),
            1,
            "old overflow record deleted, new one written"
        );
        assert_ne!(browser.sid().unwrap(), before);
        let mut replay = Browser::default();
        replay.jar.insert("sid".into(), before);
        let data = replay.request(&engine, |s| s.get::<String>("data")).await;
        assert_eq!(data, None, "the pre-regenerate cookie points nowhere");
        browser.request(&engine, |s| s.destroy()).await;
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn a_pointer_cookie_without_an_overflow_store_is_no_session() {
        let store = MemoryStore::new();
        let mut browser = Browser::default();
        browser
            .request(&engine(&store), |s| s.set("data", "q".repeat(8_000)))
            .await;
        let plain = stateless(&ManualClock::starting_now());
        let (data, is_new) = browser
            .request(&plain, |s| (s.get::<String>("data"), s.is_new()))
            .await;
        assert_eq!(data, None);
        assert!(is_new);
    }
}

mod key_rotation {
    use super::*;

    fn secret(n: u8) -> Secret {
        Secret::new(format!("rotation-secret-number-{n:02}-padding-padding")).unwrap()
    }

    fn engine(ids: &[u8]) -> SessionEngine<NoStore, IronEncoder> {
        let ring = Keyring::new(ids.iter().map(|&n| (Some(format!("k{n}")), secret(n)))).unwrap();
        SessionEngine::builder().with_keyring(ring).build().unwrap()
    }

    #[tokio::test]
    async fn rotate_twice_while_a_client_keeps_its_cookie() {
        let mut browser = Browser::default();
        browser
            .request(&engine(&[1]), |s| s.set("userId", "1"))
            .await;
        assert!(browser.sid().unwrap().starts_with("Fe26.2*k1*"));
        // Rotation 1: k2 is new, k1 still opens; the cookie is re-sealed.
        let user = browser
            .request(&engine(&[2, 1]), |s| s.get::<String>("userId"))
            .await;
        assert_eq!(user.as_deref(), Some("1"));
        assert!(browser.sid().unwrap().starts_with("Fe26.2*k2*"));
        // Rotation 2: k3 is new; k1 is retired.
        let user = browser
            .request(&engine(&[3, 2]), |s| s.get::<String>("userId"))
            .await;
        assert_eq!(user.as_deref(), Some("1"));
        assert!(browser.sid().unwrap().starts_with("Fe26.2*k3*"));
        let user = browser
            .request(&engine(&[3]), |s| s.get::<String>("userId"))
            .await;
        assert_eq!(user.as_deref(), Some("1"));
        assert!(
            browser.last_set_cookies.is_empty(),
            "sealed with the current key: nothing to do"
        );
    }

    #[tokio::test]
    async fn removing_the_oldest_secret_turns_its_cookies_into_fresh_sessions() {
        let mut stale = Browser::default();
        stale.request(&engine(&[1]), |s| s.set("userId", "1")).await;
        let (user, is_new) = stale
            .request(&engine(&[3, 2]), |s| {
                (s.get::<String>("userId"), s.is_new())
            })
            .await;
        assert_eq!(user, None);
        assert!(is_new);
    }

    #[tokio::test]
    async fn a_hono_style_cookie_without_id_opens_with_the_bare_secret_in_the_ring() {
        let bare = Secret::new(SECRET).unwrap();
        let hono_like = SessionEngine::builder()
            .with_secret(bare.clone())
            .build()
            .unwrap();
        let mut browser = Browser::default();
        browser.request(&hono_like, |s| s.set("userId", "1")).await;
        assert!(browser.sid().unwrap().starts_with("Fe26.2**"));
        let ring = Keyring::new([(Some("k2".to_owned()), secret(2)), (None, bare)]).unwrap();
        let rotated = SessionEngine::builder().with_keyring(ring).build().unwrap();
        let user = browser
            .request(&rotated, |s| s.get::<String>("userId"))
            .await;
        assert_eq!(user.as_deref(), Some("1"));
        assert!(browser.sid().unwrap().starts_with("Fe26.2*k2*"));
    }
}
