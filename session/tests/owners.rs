//! Per-user sessions at the engine: the owner in the record, and stateless
//! revocation through a revocation store. Time is a `ManualClock`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use common::{Browser, SECRET, T0};
use sealed_session::{
    Error, ManualClock, MemoryStore, NoStore, Record, RequestContext, Secret, SessionEngine,
    SessionId, Store, StoreError,
};

/// A memory store that counts its reads.
#[derive(Clone, Default)]
struct CountingStore {
    inner: MemoryStore,
    gets: Arc<AtomicUsize>,
}

impl Store for CountingStore {
    async fn get(
        &self,
        id: &SessionId,
        cx: &RequestContext,
    ) -> Result<Option<Arc<Record>>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(id, cx).await
    }
    async fn set(
        &self,
        id: &SessionId,
        record: Arc<Record>,
        expires_at: SystemTime,
        cx: &RequestContext,
    ) -> Result<(), StoreError> {
        self.inner.set(id, record, expires_at, cx).await
    }
    async fn delete(&self, id: &SessionId, cx: &RequestContext) -> Result<(), StoreError> {
        self.inner.delete(id, cx).await
    }
}

fn stateless(clock: &ManualClock, revocation: Option<CountingStore>) -> SessionEngine<NoStore> {
    let builder = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .with_clock(clock.clone());
    match revocation {
        Some(store) => builder.with_revocation_store(store),
        None => builder,
    }
    .build()
    .unwrap()
}

async fn login(browser: &mut Browser, engine: &SessionEngine<NoStore>, owner: &str) {
    browser
        .request(engine, |s| {
            s.set("userId", owner);
            s.set_owner(owner);
        })
        .await;
    assert!(!browser.last_set_cookies.is_empty(), "a login writes");
}

async fn user(browser: &mut Browser, engine: &SessionEngine<NoStore>) -> Option<String> {
    browser.request(engine, |s| s.get::<String>("userId")).await
}

#[tokio::test]
async fn revoke_all_logs_out_every_earlier_cookie_of_the_owner_only() {
    let clock = ManualClock::new(T0);
    let store = CountingStore::default();
    let engine = stateless(&clock, Some(store.clone()));
    let (mut phone, mut laptop, mut other) =
        (Browser::default(), Browser::default(), Browser::default());
    login(&mut phone, &engine, "ada").await;
    login(&mut laptop, &engine, "ada").await;
    login(&mut other, &engine, "bob").await;
    clock.advance(Duration::from_secs(1));

    assert_eq!(
        engine.revoke_all("ada", None).await.unwrap(),
        0,
        "cookies are not counted"
    );
    assert_eq!(
        user(&mut phone, &engine).await,
        None,
        "the phone's cookie still opens"
    );
    assert_eq!(user(&mut laptop, &engine).await, None);
    assert_eq!(user(&mut other, &engine).await.as_deref(), Some("bob"));

    // A login after the revocation holds.
    clock.advance(Duration::from_secs(1));
    login(&mut phone, &engine, "ada").await;
    assert_eq!(user(&mut phone, &engine).await.as_deref(), Some("ada"));
}

#[tokio::test]
async fn keeping_the_current_session_sets_its_owner_anew() {
    let clock = ManualClock::new(T0);
    let engine = stateless(&clock, Some(CountingStore::default()));
    let (mut here, mut there) = (Browser::default(), Browser::default());
    login(&mut here, &engine, "ada").await;
    login(&mut there, &engine, "ada").await;
    clock.advance(Duration::from_secs(1));

    // The request that revokes ("log out my other devices") keeps its own
    // session by setting its owner anew.
    let cx = RequestContext::default();
    let session = engine
        .load::<sealed_session::SessionMap>(&here.headers(), &cx)
        .await
        .unwrap();
    engine.revoke_all("ada", None).await.unwrap();
    session.clear_owner();
    session.set_owner("ada");
    here.receive(&engine.commit(&session, &cx).await.unwrap());
    assert_eq!(user(&mut here, &engine).await.as_deref(), Some("ada"));
    assert_eq!(user(&mut there, &engine).await, None);
}

#[tokio::test]
async fn only_owned_cookies_cost_a_store_read() {
    let clock = ManualClock::new(T0);
    let store = CountingStore::default();
    let engine = stateless(&clock, Some(store.clone()));
    let mut anonymous = Browser::default();
    anonymous.request(&engine, |s| s.set("cart", 1)).await;
    for _ in 0..3 {
        anonymous.request(&engine, |s| s.get::<u32>("cart")).await;
    }
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        0,
        "an unowned session read the store"
    );

    let mut owned = Browser::default();
    login(&mut owned, &engine, "ada").await;
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        0,
        "a login reads nothing"
    );
    for _ in 0..3 {
        assert_eq!(user(&mut owned, &engine).await.as_deref(), Some("ada"));
    }
    assert_eq!(
        store.gets.load(Ordering::SeqCst),
        3,
        "one read per owned request"
    );
}

#[tokio::test]
async fn revocation_outlives_every_cookie_it_revokes() {
    let clock = ManualClock::new(T0);
    let store = CountingStore::default();
    let engine = stateless(&clock, Some(store.clone()));
    let mut phone = Browser::default();
    login(&mut phone, &engine, "ada").await;
    clock.advance(Duration::from_secs(1));
    engine.revoke_all("ada", None).await.unwrap();
    // Just before the revocation record expires, the cookie is still refused.
    clock.advance(engine.max_age() - Duration::from_secs(2));
    assert_eq!(user(&mut phone, &engine).await, None);
}

#[tokio::test]
async fn stateless_engines_say_what_they_cannot_do() {
    let clock = ManualClock::new(T0);
    let engine = stateless(&clock, None);
    for (error, operation) in [
        (engine.sessions_of("ada").await.unwrap_err(), "sessions_of"),
        (
            engine
                .revoke("ada", &SessionId::generate())
                .await
                .unwrap_err(),
            "revoke",
        ),
        (
            engine.revoke_all("ada", None).await.unwrap_err(),
            "revoke_all",
        ),
    ] {
        assert!(
            matches!(error, Error::Stateless { operation: op } if op == operation),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains(operation) && message.contains("store"),
            "{message}"
        );
    }
    let engine = stateless(&clock, Some(CountingStore::default()));
    assert!(matches!(
        engine.sessions_of("ada").await,
        Err(Error::Stateless {
            operation: "sessions_of"
        })
    ));
}

#[tokio::test]
async fn a_failing_revocation_store_is_an_error_not_a_logout() {
    #[derive(Clone)]
    struct Down;
    impl Store for Down {
        async fn get(
            &self,
            _: &SessionId,
            _: &RequestContext,
        ) -> Result<Option<Arc<Record>>, StoreError> {
            Err(StoreError::backend("test", std::io::Error::other("down")))
        }
        async fn set(
            &self,
            _: &SessionId,
            _: Arc<Record>,
            _: SystemTime,
            _: &RequestContext,
        ) -> Result<(), StoreError> {
            Err(StoreError::backend("test", std::io::Error::other("down")))
        }
        async fn delete(&self, _: &SessionId, _: &RequestContext) -> Result<(), StoreError> {
            Err(StoreError::backend("test", std::io::Error::other("down")))
        }
    }
    let clock = ManualClock::new(T0);
    let up = stateless(&clock, None);
    let mut phone = Browser::default();
    login(&mut phone, &up, "ada").await;
    let down = SessionEngine::builder()
        .with_secret(Secret::new(SECRET).unwrap())
        .with_clock(clock.clone())
        .with_revocation_store(Down)
        .build()
        .unwrap();
    assert!(matches!(
        down.revoke_all("ada", None).await,
        Err(Error::Store(_))
    ));
    let loaded = down
        .load::<sealed_session::SessionMap>(&phone.headers(), &RequestContext::default())
        .await;
    assert!(
        matches!(loaded, Err(Error::Store(_))),
        "an owned cookie needs the store"
    );
}

/// A typed session keeps its owner through writes of its fields (the
/// record is rebuilt from the fields, the owner carried over).
#[tokio::test]
async fn typed_sessions_keep_their_owner_through_writes() {
    use sealed_session::{SessionData, SessionIndex as _};

    #[derive(SessionData, Default)]
    struct Cart {
        items: u32,
    }

    let store = MemoryStore::new();
    let engine = SessionEngine::builder()
        .with_store(store.clone())
        .build()
        .unwrap();
    let cx = RequestContext::default();
    let session = engine
        .load::<Cart>(&http::HeaderMap::new(), &cx)
        .await
        .unwrap();
    session.set_items(1);
    session.set_owner("ada");
    let mut browser = Browser::default();
    browser.receive(&engine.commit(&session, &cx).await.unwrap());
    for items in 2..4 {
        let session = engine.load::<Cart>(&browser.headers(), &cx).await.unwrap();
        assert_eq!(session.owner().as_deref(), Some("ada"));
        session.set_items(items);
        browser.receive(&engine.commit(&session, &cx).await.unwrap());
    }
    let listed = store.sessions_of("ada").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
}
