//! Chunk reassembly: arbitrary `sid.N` cookies never panic, never forge a
//! session, and commits stay within the cookie size limit.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{CookieSizePolicy, IronEncoder, MAX_COOKIE_SIZE, NoStore, RequestContext, Secret, SessionEngine, SessionMap};

fn engine() -> &'static SessionEngine<NoStore, IronEncoder> {
    static ENGINE: OnceLock<SessionEngine<NoStore, IronEncoder>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        SessionEngine::builder()
            .with_secret(Secret::new(common::SECRET).unwrap())
            .with_cookie_size_policy(CookieSizePolicy::Chunk { max_chunks: 4 })
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: (Vec<(u8, String)>, String)| {
    let (chunks, value) = data;
    let header = chunks
        .iter()
        .map(|(n, v)| format!("sid.{}={v}", n % 6))
        .collect::<Vec<_>>()
        .join("; ");
    let cx = RequestContext::default();
    let session = common::block_on(engine().load_from_cookie_header::<SessionMap>(Some(&header), &cx)).unwrap();
    assert!(session.is_new());
    session.set("data", value);
    if let Ok(set) = common::block_on(engine().commit(&session, &cx)) {
        assert!(set.iter().all(|v| v.len() <= MAX_COOKIE_SIZE));
    }
});
