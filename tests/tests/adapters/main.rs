//! One behaviour suite for every framework adapter.
//!
//! The scenarios (`scenarios.rs`) are written once against the demo
//! server's routes and run against each adapter's own example
//! (`session/examples/{axum,actix,rocket,poem,salvo}.rs`, included here so
//! the suite tests exactly the code the examples run), each served on a real
//! socket on `127.0.0.1:0` and driven by a bare HTTP/1 client with a cookie
//! jar (`client.rs`), and again through the framework's in-process test
//! client where it has one (`in_process.rs`).
//!
//! Concurrency semantics pinned by `concurrent_requests_last_write_wins`:
//! requests on one session are not serialised. Each loads the session on
//! its own and commits on its own, so the last write wins and concurrent
//! increments may be lost; every request still answers `200`, no request
//! fails, nothing panics.

// The modules share helpers with `pub`; nothing leaves this test crate.
#![allow(unreachable_pub)]

mod client;
#[path = "../common/http1.rs"]
mod http1;
mod in_process;
mod missing;
mod rocket_catchers;
mod scenarios;
mod servers;

/// One `#[tokio::test]` per scenario per adapter.
macro_rules! suite {
    ($($adapter:ident => $server:ty,)*) => {
        $(
            mod $adapter {
                use crate::scenarios;
                type A = $server;

                suite!(@tests A:
                    login_me_logout,
                    login_me_logout_in_store_mode,
                    flash_and_reflash,
                    renew_rewrites_the_cookie,
                    regenerate_removes_the_old_id_from_the_store,
                    untouched_route_costs_no_store_call_and_sets_no_cookie,
                    read_only_request_sets_no_cookie,
                    tampered_cookie_is_401_not_500,
                    store_failure_on_load_is_a_clear_500,
                    store_failure_on_commit_is_a_clear_500,
                    count_and_data,
                    concurrent_requests_last_write_wins,
                    concurrent_requests_last_write_wins_in_store_mode,
                    logout_everywhere_in_store_mode,
                    logout_everywhere_stateless_with_a_revocation_store,
                    logout_everywhere_stateless_without_a_revocation_store_is_501,
                );
            }
        )*
    };
    (@tests $a:ident: $($scenario:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                scenarios::$scenario::<$a>().await;
            }
        )*
    };
}

suite! {
    axum => crate::servers::Axum,
    actix_web => crate::servers::ActixWeb,
    rocket => crate::servers::Rocket,
    poem => crate::servers::Poem,
    salvo => crate::servers::Salvo,
    axum_in_process => crate::in_process::AxumInProcess,
    actix_web_in_process => crate::in_process::ActixTest,
    rocket_in_process => crate::in_process::RocketLocal,
    poem_in_process => crate::in_process::PoemInProcess,
}
