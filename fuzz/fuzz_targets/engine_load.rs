//! The full load step in store mode: arbitrary cookie values never panic,
//! never reach the store unless shaped like an id, and never adopt the id.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{IronEncoder, MemoryStore, RequestContext, SessionEngine, SessionMap};

fn engine() -> &'static SessionEngine<MemoryStore, IronEncoder> {
    static ENGINE: OnceLock<SessionEngine<MemoryStore, IronEncoder>> = OnceLock::new();
    ENGINE.get_or_init(|| SessionEngine::builder().with_store(MemoryStore::new()).build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    let cx = RequestContext::default();
    let session = common::block_on(engine().load_cookie_value::<SessionMap>(Some(value), &cx)).unwrap();
    assert!(session.is_new());
    assert_ne!(session.id().map(|id| id.as_str().to_owned()).as_deref(), Some(value), "adopted an unknown id");
});
