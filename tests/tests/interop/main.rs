//! Interoperability with the real hono-session 1.2.0, both ways.
//!
//! Each test starts the JavaScript side from `tests/interop/` (a hono app
//! with hono-session, `app.mjs`, or the iron-webcrypto helper, `iron.mjs`)
//! as a child process of the test, and our engine in-process (the demo's
//! routes on axum, served on `127.0.0.1:0`). Both share one secret, and one
//! cookie jar plays the browser in front of both, the way one browser talks
//! to two servers behind one domain.
//!
//! Needs Node 20 and `npm ci --prefix tests/interop`; the store-mode tests
//! also need Redis at `SESSION_TEST_REDIS_URL`. Without them a test prints
//! why it is skipped and passes, except in CI (`CI` set), where it fails.

// The modules share helpers with `pub`; nothing leaves this test crate.
#![allow(unreachable_pub)]

mod harness;
#[path = "../common/http1.rs"]
mod http1;
mod iron_property;
mod rust_app;
mod stateless;
mod store;
