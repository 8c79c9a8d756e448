//! One HTTP server per stack, for `scripts/bench-sockets.sh`: the same
//! three routes on every stack, each written the stack's idiomatic way.
//!
//! - `GET /login` starts a session with five fields (about 100 bytes).
//! - `GET /read` returns the session's `userId` (read-only).
//! - `GET /write` increments the session's `count` (read+write).
//!
//! The stacks without sessions answer `/read` and `/write` with a constant.
//!
//! `socket-server <stack> <port>`; stacks: `axum`, `axum-sealed-stateless`,
//! `axum-sealed-stateless-around` (the same layer around the whole router
//! rather than through `Router::layer`, as the axum adapter's docs show),
//! `axum-sealed-memory`, `axum-sealed-redis`, `axum-tower-memory`,
//! `axum-tower-redis`, `actix`, `actix-session-cookie`,
//! `actix-session-redis`. Binds 127.0.0.1 only, serves on one worker
//! thread (pin it with `taskset`), and reads the Redis URL from
//! `SESSION_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`); each Redis
//! stack uses a database of its own (12 ours, 13 tower-sessions, 14
//! actix-session), which the script empties afterwards.
//!
//! With `SOCKET_SERVER_COUNT_ALLOCS=1` a global allocator counts the
//! process's allocations (reallocations included) and the bytes asked for,
//! and `GET /allocs` answers `<allocations> <bytes>` so far; the script
//! divides the difference over a run by the requests served. Without the
//! variable the allocator adds one relaxed load of a flag per allocation.

use std::net::{Ipv4Addr, SocketAddr};

use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The allocation counter behind `SOCKET_SERVER_COUNT_ALLOCS` and `/allocs`.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// Set once at start-up from `SOCKET_SERVER_COUNT_ALLOCS`.
    pub(super) static ON: AtomicBool = AtomicBool::new(false);
    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
    static BYTES: AtomicU64 = AtomicU64::new(0);

    /// The system allocator, counting allocations and bytes while [`ON`].
    pub(super) struct Counting;

    fn count(size: usize) {
        if ON.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(size as u64, Ordering::Relaxed);
        }
    }

    // SAFETY: every call is forwarded unchanged to the system allocator;
    // the counters are plain atomics.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size());
            // SAFETY: the caller's contract is the one `System.alloc` needs.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count(layout.size());
            // SAFETY: as for `alloc_zeroed` on `System`, whose contract the
            // caller upholds.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` was allocated by `System` with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(new_size);
            // SAFETY: as for `realloc` on `System`, whose contract the
            // caller upholds.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// `<allocations> <bytes>` counted so far.
    pub(super) async fn report() -> String {
        format!(
            "{} {}",
            ALLOCATIONS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed)
        )
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// The session every login starts: as in the in-process benches.
fn login_fields() -> [(&'static str, Value); 5] {
    [
        ("userId", json!("user-000042")),
        ("email", json!("alice@example.com")),
        ("roles", json!(["admin", "editor"])),
        ("theme", json!("dark")),
        ("count", json!(0)),
    ]
}

const SECRET: &str = sealed_session_benches::SECRET;

/// The Redis URL of `db` on the configured server.
fn redis_url(db: u8) -> String {
    let base = std::env::var("SESSION_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // Drop a database already in the URL: each stack picks its own.
    let host = base
        .trim_end_matches('/')
        .rsplit_once('/')
        .filter(|(_, db)| db.parse::<u8>().is_ok())
        .map_or(base.as_str(), |(host, _)| host);
    format!("{}/{db}", host.trim_end_matches('/'))
}

async fn constant() -> &'static str {
    "user-000042"
}

mod sealed {
    use sealed_session::{Session, SessionMap};

    pub(super) async fn login(session: Session<SessionMap>) -> &'static str {
        for (key, value) in super::login_fields() {
            session.set(key, value);
        }
        "ok"
    }

    pub(super) async fn read(session: Session<SessionMap>) -> String {
        session.get::<String>("userId").unwrap_or_default()
    }

    pub(super) async fn write(session: Session<SessionMap>) -> String {
        let n = session.get::<u64>("count").unwrap_or(0) + 1;
        session.set("count", n);
        n.to_string()
    }
}

/// tower-sessions' handlers, for the version at `$krate` (the Redis store
/// needs 0.14, the memory row runs the current 0.15).
macro_rules! tower_handlers {
    ($module:ident, $krate:ident) => {
        mod $module {
            use axum::http::StatusCode;
            use $krate::Session;

            type Result<T> = std::result::Result<T, StatusCode>;

            fn failed(_: $krate::session::Error) -> StatusCode {
                StatusCode::INTERNAL_SERVER_ERROR
            }

            pub(super) async fn login(session: Session) -> Result<&'static str> {
                for (key, value) in super::login_fields() {
                    session.insert(key, value).await.map_err(failed)?;
                }
                Ok("ok")
            }

            pub(super) async fn read(session: Session) -> Result<String> {
                Ok(session
                    .get::<String>("userId")
                    .await
                    .map_err(failed)?
                    .unwrap_or_default())
            }

            pub(super) async fn write(session: Session) -> Result<String> {
                let n = session
                    .get::<u64>("count")
                    .await
                    .map_err(failed)?
                    .unwrap_or(0)
                    + 1;
                session.insert("count", n).await.map_err(failed)?;
                Ok(n.to_string())
            }

            pub(super) fn routes() -> axum::Router {
                use axum::routing::get;
                axum::Router::new()
                    .route("/login", get(login))
                    .route("/read", get(read))
                    .route("/write", get(write))
            }
        }
    };
}

tower_handlers!(tower, tower_sessions);
tower_handlers!(tower014, tower_sessions_014);

mod actix {
    use actix_session::Session;
    use actix_web::error::ErrorInternalServerError as failed;

    pub(super) async fn login(session: Session) -> actix_web::Result<&'static str> {
        for (key, value) in super::login_fields() {
            session.insert(key, value).map_err(failed)?;
        }
        Ok("ok")
    }

    pub(super) async fn read(session: Session) -> actix_web::Result<String> {
        Ok(session
            .get::<String>("userId")
            .map_err(failed)?
            .unwrap_or_default())
    }

    pub(super) async fn write(session: Session) -> actix_web::Result<String> {
        let n = session.get::<u64>("count").map_err(failed)?.unwrap_or(0) + 1;
        session.insert("count", n).map_err(failed)?;
        Ok(n.to_string())
    }
}

fn sealed_routes() -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/login", get(sealed::login))
        .route("/read", get(sealed::read))
        .route("/write", get(sealed::write))
}

async fn axum_router(stack: &str) -> Result<axum::Router, Error> {
    use axum::routing::get;
    use sealed_session::adapters::axum::SessionLayer;
    use sealed_session::{MemoryStore, Secret, SessionEngine};

    let engine = || SessionEngine::builder().with_secret(Secret::new(SECRET).expect("long secret"));
    Ok(match stack {
        "axum" => axum::Router::new()
            .route("/read", get(constant))
            .route("/write", get(constant)),
        "axum-sealed-stateless" => sealed_routes().layer(SessionLayer::new(engine().build()?)),
        "axum-sealed-memory" => sealed_routes().layer(SessionLayer::new(
            engine().with_store(MemoryStore::new()).build()?,
        )),
        "axum-sealed-redis" => {
            let store = sealed_session_stores::RedisStore::connect(&redis_url(12))
                .await?
                .with_prefix("bench-sockets:");
            sealed_routes().layer(SessionLayer::new(engine().with_store(store).build()?))
        }
        "axum-tower-memory" => tower::routes().layer(
            tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                .with_secure(false),
        ),
        "axum-tower-redis" => {
            use tower_sessions_redis_store::fred::prelude::*;
            let pool = Pool::new(Config::from_url(&redis_url(13))?, None, None, None, 2)?;
            pool.init().await?;
            tower014::routes().layer(
                tower_sessions_014::SessionManagerLayer::new(
                    tower_sessions_redis_store::RedisStore::new(pool),
                )
                .with_secure(false),
            )
        }
        other => return Err(format!("unknown stack {other}").into()),
    })
}

fn serve_axum(stack: &str, addr: SocketAddr) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        if stack == "axum-sealed-stateless-around" {
            use ::tower::Layer as _;
            use axum::ServiceExt;
            use sealed_session::adapters::axum::SessionLayer;
            use sealed_session::{Secret, SessionEngine};

            let engine = SessionEngine::builder()
                .with_secret(Secret::new(SECRET).expect("long secret"))
                .build()?;
            let router = sealed_routes().route("/allocs", axum::routing::get(counting::report));
            let app = SessionLayer::new(engine).layer(router);
            println!("listening {}", listener.local_addr()?.port());
            axum::serve(
                listener,
                ServiceExt::<axum::extract::Request>::into_make_service(app),
            )
            .await?;
            return Ok(());
        }
        // Outside the session layers: the counter's reads are no session's.
        let router = axum_router(stack)
            .await?
            .route("/allocs", axum::routing::get(counting::report));
        println!("listening {}", listener.local_addr()?.port());
        axum::serve(listener, router).await?;
        Ok(())
    })
}

fn serve_actix(stack: &str, addr: SocketAddr) -> Result<(), Error> {
    use actix_session::SessionMiddleware;
    use actix_session::storage::{CookieSessionStore, RedisSessionStore};
    use actix_web::{App, HttpServer, web};

    let key = actix_web::cookie::Key::from(&[7u8; 64]);
    actix_web::rt::System::new().block_on(async move {
        let server = match stack {
            "actix" => HttpServer::new(|| {
                App::new()
                    .route("/read", web::get().to(constant))
                    .route("/write", web::get().to(constant))
                    .route("/allocs", web::get().to(counting::report))
            })
            .workers(1)
            .bind(addr)?
            .run(),
            "actix-session-cookie" => HttpServer::new(move || {
                App::new()
                    .wrap(
                        SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                            .cookie_secure(false)
                            .build(),
                    )
                    .route("/login", web::get().to(actix::login))
                    .route("/read", web::get().to(actix::read))
                    .route("/write", web::get().to(actix::write))
                    .route("/allocs", web::get().to(counting::report))
            })
            .workers(1)
            .bind(addr)?
            .run(),
            "actix-session-redis" => {
                let store = RedisSessionStore::new(redis_url(14)).await?;
                HttpServer::new(move || {
                    App::new()
                        .wrap(
                            SessionMiddleware::builder(store.clone(), key.clone())
                                .cookie_secure(false)
                                .build(),
                        )
                        .route("/login", web::get().to(actix::login))
                        .route("/read", web::get().to(actix::read))
                        .route("/write", web::get().to(actix::write))
                        .route("/allocs", web::get().to(counting::report))
                })
                .workers(1)
                .bind(addr)?
                .run()
            }
            other => return Err(format!("unknown stack {other}").into()),
        };
        println!("listening {}", addr.port());
        server.await?;
        Ok(())
    })
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(stack), Some(port)) = (args.next(), args.next()) else {
        return Err("usage: socket-server <stack> <port>".into());
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port.parse::<u16>()?));
    if std::env::var_os("SOCKET_SERVER_COUNT_ALLOCS").is_some_and(|v| v == "1") {
        counting::ON.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if stack.starts_with("actix") {
        serve_actix(&stack, addr)
    } else {
        serve_axum(&stack, addr)
    }
}
