//! Session id parsing: never panics; whatever it accepts is a safe key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealed_session::SessionId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(id) = SessionId::parse(text) {
        assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!((16..=128).contains(&id.as_str().len()));
    }
});
