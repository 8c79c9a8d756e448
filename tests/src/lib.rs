//! Cross-crate tests for sealed-session (not published).
//!
//! - [`conformance`]: the store conformance suite, written once and run
//!   against every store by the `tests/stores_*.rs` files.
//! - [`services`]: finding the test services (Postgres, MariaDB, Redis,
//!   Redis Cluster) from the environment, and throwaway Redis servers.
//! - [`demo`]: the axum demo binary as a child process (start, restart,
//!   kill on drop).
//! - the guide: every page of `docs/src` is included below as
//!   documentation, so `cargo test` compiles (and runs) each Rust block of
//!   the guide, and the guide cannot rot.

pub mod conformance;
pub mod demo;
pub mod services;

/// Includes guide pages as doc-tested modules.
macro_rules! guide {
    ($($name:ident => $path:literal,)*) => {
        $(
            #[doc = include_str!($path)]
            pub mod $name {}
        )*
    };
}

guide! {
    readme => "../../README.md",
    guide_introduction => "../../docs/src/introduction.md",
    guide_getting_started => "../../docs/src/getting-started.md",
    guide_frameworks_axum => "../../docs/src/frameworks/axum.md",
    guide_frameworks_actix_web => "../../docs/src/frameworks/actix-web.md",
    guide_frameworks_rocket => "../../docs/src/frameworks/rocket.md",
    guide_frameworks_poem => "../../docs/src/frameworks/poem.md",
    guide_frameworks_salvo => "../../docs/src/frameworks/salvo.md",
    guide_modes => "../../docs/src/modes.md",
    guide_custom_store => "../../docs/src/custom-store.md",
    guide_stores => "../../docs/src/stores/README.md",
    guide_store_file => "../../docs/src/stores/file.md",
    guide_store_sqlite => "../../docs/src/stores/sqlite.md",
    guide_store_postgres => "../../docs/src/stores/postgres.md",
    guide_store_mysql => "../../docs/src/stores/mysql.md",
    guide_store_redis => "../../docs/src/stores/redis.md",
    guide_store_caching => "../../docs/src/stores/caching.md",
    guide_store_hashed_ids => "../../docs/src/stores/hashed-ids.md",
    guide_sessions => "../../docs/src/sessions.md",
    guide_typed_sessions => "../../docs/src/typed-sessions.md",
    guide_per_user_sessions => "../../docs/src/per-user-sessions.md",
    guide_custom_encoder => "../../docs/src/custom-encoder.md",
    guide_cookies => "../../docs/src/cookies.md",
    guide_key_rotation => "../../docs/src/key-rotation.md",
    guide_expiry => "../../docs/src/expiry.md",
    guide_cookie_size => "../../docs/src/cookie-size.md",
    guide_observability => "../../docs/src/observability.md",
    guide_inspect => "../../docs/src/inspect.md",
    guide_security => "../../docs/src/security.md",
    guide_performance => "../../docs/src/performance.md",
    guide_differences => "../../docs/src/differences.md",
    guide_migrating_from_hono_session => "../../docs/src/migrating-from-hono-session.md",
    guide_migrating_from_tower_sessions => "../../docs/src/migrating-from-tower-sessions.md",
    guide_faq => "../../docs/src/faq.md",
}
