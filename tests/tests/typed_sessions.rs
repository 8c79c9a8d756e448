//! Typed sessions: `#[derive(SessionData)]`, its accessors, change
//! tracking, typed flash and the `Required` guard, through the engine and
//! through axum.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, header};
use sealed_session::{
    ManualClock, MemoryStore, Record, RequestContext, Required, Secret, Session, SessionData,
    SessionEngine, SessionMap, SetCookies, Store,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const SECRET: &str = "a-secret-of-at-least-32-characters!!";
const NOW: u64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------
// Session types

#[derive(SessionData, Default, Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MySession {
    #[session(required)]
    user_id: Option<String>,
    cart: Vec<u64>,
    message: Option<String>,
    count: u64,
    profile: Option<Profile>,
}

/// A nested serde type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    name: String,
    tags: Vec<String>,
    #[serde(rename = "isAdmin")]
    admin: bool,
}

/// Defaults and renames through `#[session(...)]`.
#[derive(SessionData, Debug, Clone)]
struct Prefs {
    #[session(rename = "colourTheme", default = "default_theme")]
    theme: String,
    #[session(default)]
    page_size: u32,
    #[session(skip)]
    scratch: Option<String>,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            theme: "struct default".to_owned(),
            page_size: 50,
            scratch: None,
        }
    }
}

fn default_theme() -> String {
    "light".to_owned()
}

/// Generic session data.
#[derive(SessionData, Default, Debug, Clone)]
struct Generic<T> {
    #[session(required = "HasValue")]
    value: Option<T>,
    history: Vec<T>,
}

/// A struct in another module, used from here.
mod app {
    use sealed_session::SessionData;

    #[derive(SessionData, Default, Debug, Clone)]
    pub(crate) struct AppSession {
        #[serde(rename = "userId")]
        #[session(required = "LoggedIn")]
        pub(crate) user_id: Option<u64>,
    }
}

/// The per-app default type: name the session type once.
type AppSession = Session<MySession>;

/// Counts serialisations, to prove which fields are serialised when.
static COUNTED_SERIALISED: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct Counted(String);

impl Serialize for Counted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        COUNTED_SERIALISED.fetch_add(1, Ordering::SeqCst);
        s.serialize_str(&self.0)
    }
}

#[derive(SessionData, Default, Debug, Clone)]
struct Tracked {
    counted: Counted,
    other: u32,
}

// ---------------------------------------------------------------------------
// Harness: requests through the engine, the cookie fed back each time.

struct Browser<S: Store = sealed_session::NoStore> {
    engine: SessionEngine<S>,
    clock: ManualClock,
    cookie: Option<String>,
}

impl Browser {
    fn stateless() -> Self {
        let clock = ManualClock::new(NOW);
        let engine = SessionEngine::builder()
            .with_secret(Secret::new(SECRET).unwrap())
            .with_clock(clock.clone())
            .build()
            .unwrap();
        Self {
            engine,
            clock,
            cookie: None,
        }
    }
}

impl Browser<Arc<MemoryStore>> {
    /// Store mode. The clock starts at the system time: the memory store
    /// expires records by the system clock.
    fn with_store() -> (Self, Arc<MemoryStore>) {
        let clock = ManualClock::starting_now();
        let store = Arc::new(MemoryStore::new());
        let engine = SessionEngine::builder()
            .with_store(Arc::clone(&store))
            .with_clock(clock.clone())
            .build()
            .unwrap();
        let browser = Self {
            engine,
            clock,
            cookie: None,
        };
        (browser, store)
    }

    /// The record stored for the browser's session.
    async fn record(&self) -> Option<Arc<Record>> {
        let cookie = self.cookie.as_deref()?;
        let id = sealed_session::SessionId::parse(cookie.strip_prefix("sid=")?)?;
        self.engine
            .store()?
            .get(&id, &RequestContext::default())
            .await
            .unwrap()
    }
}

impl<S: Store> Browser<S> {
    /// One request: load, run the handler, commit; returns the
    /// `Set-Cookie` values and keeps the new session cookie.
    async fn request<T: SessionData, R>(
        &mut self,
        handler: impl FnOnce(&Session<T>) -> R,
    ) -> (R, SetCookies) {
        let mut headers = HeaderMap::new();
        if let Some(cookie) = &self.cookie {
            headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        let cx = RequestContext::default();
        let session = self.engine.load::<T>(&headers, &cx).await.unwrap();
        let out = handler(&session);
        let set_cookies = self.engine.commit(&session, &cx).await.unwrap();
        for value in set_cookies.iter() {
            let pair = value.to_str().unwrap().split(';').next().unwrap().trim();
            if let Some(v) = pair.strip_prefix("sid=") {
                self.cookie = (!v.is_empty()).then(|| pair.to_owned());
            }
        }
        (out, set_cookies)
    }
}

fn record_of(value: Value) -> Record {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("not an object"),
    }
}

// ---------------------------------------------------------------------------
// Generated methods

#[test]
fn getters_setters_take_and_flash_on_a_detached_session() {
    let session = Session::<MySession>::detached();
    assert_eq!(session.user_id(), None);
    assert_eq!(session.cart(), Vec::<u64>::new());
    assert!(!session.has_changed());

    session.set_user_id(Some("42".to_owned()));
    session.set_cart(vec![1, 2]);
    session.set_count(3);
    assert_eq!(session.user_id().as_deref(), Some("42"));
    assert_eq!(session.cart(), [1, 2]);
    assert_eq!(session.count(), 3);
    assert!(session.has_changed());

    assert_eq!(session.take_cart(), [1, 2]);
    assert!(session.cart().is_empty());
    assert_eq!(session.take_count(), 3);
    assert_eq!(session.count(), 0);
    assert_eq!(session.take_user_id().as_deref(), Some("42"));
    assert_eq!(session.user_id(), None);

    session.flash_message(Some("saved".to_owned()));
    assert_eq!(session.message().as_deref(), Some("saved"));
    // The accessors sit beside the data: `read` sees what setters wrote.
    assert_eq!(
        session.read(|d| d.message.clone()).as_deref(),
        Some("saved")
    );
}

#[tokio::test]
async fn fields_map_to_renamed_record_keys_and_back() {
    let (mut browser, _store) = Browser::with_store();
    let profile = Profile {
        name: "Ada".to_owned(),
        tags: vec!["x".to_owned()],
        admin: true,
    };
    let p = profile.clone();
    browser
        .request::<MySession, _>(|s| {
            s.set_user_id(Some("42".to_owned()));
            s.set_cart(vec![7]);
            s.set_profile(Some(p));
        })
        .await;
    let record = browser.record().await.unwrap();
    let now = sealed_session::Clock::now_ms(&browser.clock);
    let expected = record_of(json!({
        "userId": "42",
        "cart": [7],
        "count": 0,
        "profile": {"name": "Ada", "tags": ["x"], "isAdmin": true},
        "_expires": now + 86_400_000,
    }));
    assert_eq!(
        *record, expected,
        "empty values (message: null) are left out"
    );

    let (loaded, set_cookies) = browser
        .request::<MySession, _>(|s| (s.user_id(), s.cart(), s.profile(), s.message()))
        .await;
    assert_eq!(
        loaded,
        (Some("42".to_owned()), vec![7], Some(profile), None)
    );
    assert!(set_cookies.is_empty(), "a read-only request writes nothing");
}

#[tokio::test]
async fn a_record_written_by_hono_session_loads_into_the_typed_session() {
    let (mut browser, store) = Browser::with_store();
    let expires = sealed_session::Clock::now_ms(&browser.clock) + 1_000;
    let id = sealed_session::SessionId::generate();
    let record = record_of(json!({
        "userId": "7",
        "message": "hello",
        "unknownToRust": 1,
        "_expires": expires,
        "_flashKeys": ["message"],
    }));
    store
        .set(
            &id,
            Arc::new(record),
            SystemTime::UNIX_EPOCH + Duration::from_millis(expires),
            &RequestContext::default(),
        )
        .await
        .unwrap();
    browser.cookie = Some(format!("sid={}", id.as_str()));
    let (seen, _) = browser
        .request::<MySession, _>(|s| (s.user_id(), s.message()))
        .await;
    assert_eq!(seen, (Some("7".to_owned()), Some("hello".to_owned())));
    // The flash aged: `message` is gone, `userId` stays.
    let record = browser.record().await.unwrap();
    assert_eq!(record.get("userId"), Some(&json!("7")));
    assert_eq!(record.get("message"), None);
    assert_eq!(record.get("_flashKeys"), None);
}

#[test]
fn session_attributes_rename_and_default_fields() {
    let record = Arc::new(record_of(json!({"colourTheme": "dark"})));
    let prefs = Prefs::from_record(&record).unwrap();
    assert_eq!(prefs.theme, "dark");
    assert_eq!(
        prefs.page_size, 0,
        "#[session(default)]: the field's Default"
    );

    let prefs = Prefs::from_record(&Arc::new(Record::new())).unwrap();
    assert_eq!(prefs.theme, "light", "#[session(default = \"path\")]");
    assert_eq!(Prefs::TRACKED_KEYS, ["colourTheme", "page_size"]);

    let session = Session::<Prefs>::detached();
    session.set_theme("dark".to_owned());
    assert_eq!(session.take_theme(), "dark");
    assert_eq!(
        session.theme(),
        "light",
        "take resets to the field's default"
    );
    session.update(|p| p.scratch = Some("not stored".to_owned()));
    let record = session.read(|p| p.to_record().unwrap());
    assert_eq!(
        record,
        record_of(json!({"colourTheme": "light", "page_size": 50}))
    );
}

#[tokio::test]
async fn option_and_non_option_fields_missing_from_the_record_take_the_default() {
    let (mut browser, _store) = Browser::with_store();
    browser.request::<MySession, _>(|s| s.set_count(2)).await;
    let (seen, _) = browser
        .request::<MySession, _>(|s| (s.user_id(), s.cart(), s.count()))
        .await;
    assert_eq!(seen, (None, vec![], 2));
}

#[tokio::test]
async fn generic_session_data_round_trips() {
    let mut browser = Browser::stateless();
    browser
        .request::<Generic<u32>, _>(|s| {
            s.set_value(Some(5));
            s.set_history(vec![1, 2]);
        })
        .await;
    let (seen, _) = browser
        .request::<Generic<u32>, _>(|s| {
            let required = Required::<Generic<u32>, HasValue>::from_session(s.clone()).unwrap();
            (s.value(), s.history(), *required)
        })
        .await;
    assert_eq!(seen, (Some(5), vec![1, 2], 5));
}

#[tokio::test]
async fn a_struct_in_another_module_and_a_type_alias_work() {
    fn login(session: &AppSession, user: &str) {
        session.regenerate();
        session.set_user_id(Some(user.to_owned()));
    }
    let mut browser = Browser::stateless();
    browser.request(|s: &AppSession| login(s, "9")).await;
    let (seen, _) = browser.request(|s: &AppSession| s.user_id()).await;
    assert_eq!(seen.as_deref(), Some("9"));

    let session = Session::<app::AppSession>::detached();
    assert!(Required::<app::AppSession, app::LoggedIn>::from_session(session.clone()).is_err());
    session.set_user_id(Some(3));
    let user = Required::<app::AppSession, app::LoggedIn>::from_session(session).unwrap();
    assert_eq!(user.into_value(), 3);
}

#[tokio::test]
async fn the_untyped_session_map_keeps_working() {
    let mut browser = Browser::stateless();
    browser
        .request::<SessionMap, _>(|s| {
            s.set("userId", "42");
            s.flash("message", "hi");
        })
        .await;
    let (seen, _) = browser
        .request::<SessionMap, _>(|s| {
            (
                s.get::<String>("userId"),
                s.get::<String>("message"),
                s.remove("userId"),
            )
        })
        .await;
    assert_eq!(seen.0.as_deref(), Some("42"));
    assert_eq!(seen.1.as_deref(), Some("hi"));
    assert_eq!(seen.2, Some(json!("42")));
}

// ---------------------------------------------------------------------------
// Change tracking

#[tokio::test]
async fn setting_a_field_to_the_value_it_has_is_not_a_change() {
    let mut browser = Browser::stateless();
    browser
        .request::<MySession, _>(|s| s.set_user_id(Some("42".to_owned())))
        .await;
    let (changed, set_cookies) = browser
        .request::<MySession, _>(|s| {
            s.set_user_id(Some("42".to_owned()));
            s.set_cart(Vec::new());
            s.set_message(None);
            s.has_changed()
        })
        .await;
    assert!(!changed);
    assert!(set_cookies.is_empty());
}

#[tokio::test]
async fn a_field_set_back_to_its_loaded_value_is_not_a_change() {
    let mut browser = Browser::stateless();
    browser.request::<MySession, _>(|s| s.set_count(1)).await;
    let (changed, set_cookies) = browser
        .request::<MySession, _>(|s| {
            s.set_count(2);
            assert!(s.has_changed());
            s.set_count(1);
            s.has_changed()
        })
        .await;
    assert!(!changed, "has_changed compares with what was loaded");
    assert!(set_cookies.is_empty());
}

#[tokio::test]
async fn a_new_session_with_only_default_values_is_not_saved() {
    let mut browser = Browser::stateless();
    let (changed, set_cookies) = browser
        .request::<MySession, _>(|s| {
            s.set_user_id(None);
            s.set_count(0);
            s.has_changed()
        })
        .await;
    assert!(!changed);
    assert!(set_cookies.is_empty());
    assert!(browser.cookie.is_none());
}

#[tokio::test]
async fn mutating_through_a_closure_is_tracked() {
    let mut browser = Browser::stateless();
    let (changed, set_cookies) = browser
        .request::<MySession, _>(|s| {
            s.update(|d| d.cart.push(3));
            s.has_changed()
        })
        .await;
    assert!(changed);
    assert!(!set_cookies.is_empty());
    let (cart, set_cookies) = browser
        .request::<MySession, _>(|s| {
            // Touched, but left as loaded: compared, not written.
            s.update(|d| d.cart.push(4));
            s.update(|d| d.cart.pop());
            s.cart()
        })
        .await;
    assert_eq!(cart, [3]);
    assert!(set_cookies.is_empty());
}

#[tokio::test]
async fn read_only_requests_serialise_nothing_and_writes_only_changed_fields() {
    let (mut browser, _store) = Browser::with_store();
    browser
        .request::<Tracked, _>(|s| s.set_counted(Counted("a".to_owned())))
        .await;

    // Read-only: no serialisation at all.
    let before = COUNTED_SERIALISED.load(Ordering::SeqCst);
    let (seen, set_cookies) = browser
        .request::<Tracked, _>(|s| (s.counted(), s.other(), s.has_changed()))
        .await;
    assert_eq!(seen, (Counted("a".to_owned()), 0, false));
    assert!(set_cookies.is_empty());
    assert_eq!(COUNTED_SERIALISED.load(Ordering::SeqCst), before);

    // A write of another field: `counted` is not serialised again.
    let (_, set_cookies) = browser.request::<Tracked, _>(|s| s.set_other(5)).await;
    assert!(!set_cookies.is_empty());
    assert_eq!(COUNTED_SERIALISED.load(Ordering::SeqCst), before);
    let record = browser.record().await.unwrap();
    assert_eq!(record.get("counted"), Some(&json!("a")));
    assert_eq!(record.get("other"), Some(&json!(5)));
}

// ---------------------------------------------------------------------------
// Typed flash

#[tokio::test]
async fn typed_flash_lasts_for_the_next_request_only() {
    let mut browser = Browser::stateless();
    // 1: flash.
    let (_, set_cookies) = browser
        .request::<MySession, _>(|s| s.flash_message(Some("Saved".to_owned())))
        .await;
    assert!(!set_cookies.is_empty());
    // 2: the message is there, and is removed at the end of the request.
    let (seen, set_cookies) = browser.request::<MySession, _>(|s| s.message()).await;
    assert_eq!(seen.as_deref(), Some("Saved"));
    assert!(!set_cookies.is_empty(), "the aged flash is written away");
    // 3: gone.
    let (seen, _) = browser.request::<MySession, _>(|s| s.message()).await;
    assert_eq!(seen, None);
}

#[tokio::test]
async fn reflash_keeps_a_typed_flash_one_more_request() {
    let mut browser = Browser::stateless();
    browser
        .request::<MySession, _>(|s| s.flash_message(Some("Saved".to_owned())))
        .await;
    browser.request::<MySession, _>(|s| s.reflash()).await;
    let (seen, _) = browser.request::<MySession, _>(|s| s.message()).await;
    assert_eq!(seen.as_deref(), Some("Saved"));
    let (seen, _) = browser.request::<MySession, _>(|s| s.message()).await;
    assert_eq!(seen, None);
}

#[tokio::test]
async fn typed_flash_uses_the_record_key() {
    let (mut browser, _store) = Browser::with_store();
    browser
        .request::<MySession, _>(|s| {
            s.set_user_id(Some("1".to_owned()));
            s.flash_user_id(Some("1".to_owned()));
        })
        .await;
    let record = browser.record().await.unwrap();
    assert_eq!(record.get("_flashKeys"), Some(&json!(["userId"])));
}

#[tokio::test]
async fn expiry_still_applies_to_typed_sessions() {
    let mut browser = Browser::stateless();
    browser.request::<MySession, _>(|s| s.set_count(1)).await;
    browser.clock.advance(Duration::from_secs(86_401));
    let (seen, _) = browser
        .request::<MySession, _>(|s| (s.count(), s.is_new()))
        .await;
    assert_eq!(seen, (0, true));
}

// ---------------------------------------------------------------------------
// The guard

#[test]
fn required_rejects_unless_the_field_is_set() {
    let session = Session::<MySession>::detached();
    let missing = Required::<MySession, UserId>::from_session(session.clone()).unwrap_err();
    assert_eq!(missing.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(missing.body(), "Unauthorised");
    assert_eq!(missing.key(), "userId");

    session.set_user_id(Some("42".to_owned()));
    let user = Required::<MySession, UserId>::from_session(session).unwrap();
    assert_eq!(user.value(), "42");
    assert_eq!(user.session().user_id().as_deref(), Some("42"));
    let (value, _session) = user.into_parts();
    assert_eq!(value, "42");
}

mod through_axum {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Query;
    use axum::routing::{get, post};
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use sealed_session::adapters::axum::SessionLayer;
    use tower::ServiceExt;

    #[derive(Deserialize)]
    struct Login {
        user: String,
    }

    #[derive(Deserialize)]
    struct Flash {
        msg: String,
    }

    async fn login(session: AppSession, Query(login): Query<Login>) -> StatusCode {
        session.regenerate();
        session.set_user_id(Some(login.user));
        StatusCode::NO_CONTENT
    }

    async fn me(user_id: Required<MySession, UserId>) -> String {
        user_id.into_value()
    }

    async fn set_flash(session: AppSession, Query(flash): Query<Flash>) -> StatusCode {
        session.flash_message(Some(flash.msg));
        StatusCode::NO_CONTENT
    }

    async fn get_flash(session: AppSession) -> String {
        session.message().unwrap_or_default()
    }

    fn app() -> Router {
        let engine = SessionEngine::builder()
            .with_secret(Secret::new(SECRET).unwrap())
            .build()
            .unwrap();
        Router::new()
            .route("/login", post(login))
            .route("/me", get(me))
            .route("/flash", post(set_flash).get(get_flash))
            .layer(SessionLayer::new(engine))
    }

    /// Sends a request with `cookie`; returns status, body and the new
    /// session cookie (if one was set).
    async fn send(
        app: &Router,
        method: &str,
        uri: &str,
        cookie: Option<&str>,
    ) -> (StatusCode, String, Option<String>) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let cookie = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .rfind(|pair| pair.starts_with("sid=") && pair.len() > 4);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), cookie)
    }

    #[tokio::test]
    async fn required_answers_401_until_login() {
        let app = app();
        let (status, body, cookie) = send(&app, "GET", "/me", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, "Unauthorised");
        assert_eq!(cookie, None);

        let (status, _, cookie) = send(&app, "POST", "/login?user=42", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let cookie = cookie.expect("login sets the session cookie");

        let (status, body, set) = send(&app, "GET", "/me", Some(&cookie)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "42"));
        assert_eq!(set, None, "a read-only request sets no cookie");
    }

    #[tokio::test]
    async fn typed_flash_across_three_requests() {
        let app = app();
        let (_, _, cookie) = send(&app, "POST", "/flash?msg=hello", None).await;
        let cookie = cookie.unwrap();
        let (_, body, cookie) = send(&app, "GET", "/flash", Some(&cookie)).await;
        assert_eq!(body, "hello");
        let cookie = cookie.expect("the aged flash is written");
        let (_, body, _) = send(&app, "GET", "/flash", Some(&cookie)).await;
        assert_eq!(body, "");
    }
}

// ---------------------------------------------------------------------------
// Forced writes keep the data

#[tokio::test]
async fn renew_rewrites_the_whole_record() {
    let (mut browser, _store) = Browser::with_store();
    browser
        .request::<MySession, _>(|s| {
            s.set_user_id(Some("1".to_owned()));
            s.set_count(4);
        })
        .await;
    let (_, set_cookies) = browser
        .request::<MySession, _>(|s| {
            s.set_count(5);
            s.renew();
        })
        .await;
    assert!(!set_cookies.is_empty());
    let record = browser.record().await.unwrap();
    assert_eq!(record.get("userId"), Some(&json!("1")));
    assert_eq!(record.get("count"), Some(&json!(5)));

    let (_, set_cookies) = browser.request::<MySession, _>(|s| s.renew()).await;
    assert!(!set_cookies.is_empty());
    let record = browser.record().await.unwrap();
    assert_eq!(record.get("userId"), Some(&json!("1")));
}

#[tokio::test]
async fn renew_keeps_untyped_data() {
    let (mut browser, _store) = Browser::with_store();
    browser
        .request::<SessionMap, _>(|s| s.set("userId", "1"))
        .await;
    browser.request::<SessionMap, _>(|s| s.renew()).await;
    let record = browser.record().await.unwrap();
    assert_eq!(record.get("userId"), Some(&json!("1")));
}
