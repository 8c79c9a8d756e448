//! A whole `Cookie` header through the stateless engine: never panics, and
//! arbitrary input never yields a loaded (non-new) session.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{NoStore, IronEncoder, RequestContext, Secret, SessionEngine, SessionMap};

fn engine() -> &'static SessionEngine<NoStore, IronEncoder> {
    static ENGINE: OnceLock<SessionEngine<NoStore, IronEncoder>> = OnceLock::new();
    ENGINE.get_or_init(|| SessionEngine::builder().with_secret(Secret::new(common::SECRET).unwrap()).build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let cx = RequestContext::default();
    let session = common::block_on(engine().load_from_cookie_header::<SessionMap>(Some(header), &cx)).unwrap();
    assert!(session.is_new(), "forged a session from {header:?}");
    let _ = common::block_on(engine().commit(&session, &cx)).unwrap();
});
