//! iron unseal of arbitrary text: never panics; only a token we sealed opens.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sealed_session::{Keyring, Secret, iron};

fn keyring() -> &'static Keyring {
    static RING: OnceLock<Keyring> = OnceLock::new();
    RING.get_or_init(|| {
        Keyring::new([
            (Some("k2"), Secret::new("fuzz-secret-number-two-0123456789abcdef").unwrap()),
            (Some("k1"), Secret::new("fuzz-secret-number-one-0123456789abcdef").unwrap()),
        ])
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let _ = iron::unseal(token, keyring(), 1_800_000_000_000);
    let _ = iron::unseal_json(token, keyring(), 1_800_000_000_000);
});
