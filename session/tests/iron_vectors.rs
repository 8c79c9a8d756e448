//! iron `Fe26.2` interoperability: the vectors written by iron-webcrypto
//! 1.2.1 (as hono-session 1.2.0 uses it) in `tests/data/iron_vectors.json`,
//! and a mutation test of `unseal`.

use sealed_session::iron::{self, IronError};
use sealed_session::{Keyring, Secret};
use serde_json::Value;

/// 2026-11-27T04:06:40Z: after the `expired_ttl` vector's expiration
/// (1795705712080, plus 60 s of skew), before every positive's.
const NOW_MS: u64 = 1_795_750_000_000;

/// The messages iron-webcrypto throws itself (not the engine).
const IRON_MESSAGES: [&str; 7] = [
    "Bad hmac value",
    "Wrong mac prefix",
    "Incorrect number of sealed components",
    "Invalid expiration",
    "Expired seal",
    "Password string too short (min 32 characters required)",
    "Empty password",
];

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/iron_vectors.json");
    let text = std::fs::read_to_string(path).expect("read iron_vectors.json");
    serde_json::from_str(&text).expect("parse iron_vectors.json")
}

fn list<'a>(vectors: &'a Value, key: &str) -> &'a [Value] {
    vectors[key]
        .as_array()
        .unwrap_or_else(|| panic!("`{key}` is not an array"))
}

fn str_field<'a>(vector: &'a Value, key: &str) -> &'a str {
    vector[key]
        .as_str()
        .unwrap_or_else(|| panic!("{}: `{key}` is not a string", vector["name"]))
}

fn ring(vector: &Value) -> Keyring {
    Keyring::single(Secret::new(str_field(vector, "password")).expect("valid password"))
}

#[test]
fn positive_vectors_unseal_to_expected() {
    let vectors = vectors();
    let positives = list(&vectors, "positive");
    assert_eq!(positives.len(), 42);
    for vector in positives {
        let name = str_field(vector, "name");
        let (value, key_index) =
            iron::unseal_json(str_field(vector, "token"), &ring(vector), NOW_MS)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(value, vector["expected"], "{name}");
        assert_eq!(key_index, 0, "{name}");
        // The plaintext is exactly what JS's JSON.stringify wrote.
        let opened = iron::unseal(str_field(vector, "token"), &ring(vector), NOW_MS).unwrap();
        assert_eq!(
            opened.plaintext,
            str_field(vector, "plaintext_json").as_bytes(),
            "{name}"
        );
    }
}

#[test]
fn positive_values_round_trip_through_our_seal() {
    let vectors = vectors();
    for vector in list(&vectors, "positive") {
        let name = str_field(vector, "name");
        let ring = ring(vector);
        let token = iron::seal_json(&vector["expected"], ring.current());
        let (value, key_index) =
            iron::unseal_json(&token, &ring, NOW_MS).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(value, vector["expected"], "{name}");
        assert_eq!(key_index, 0, "{name}");
        // Same shape as the JS token: same part lengths, except the random
        // parts' content.
        let ours: Vec<usize> = token.split('*').map(str::len).collect();
        let theirs: Vec<usize> = str_field(vector, "token")
            .split('*')
            .map(str::len)
            .collect();
        if !name.ends_with("password_id_k1") && !name.ends_with("with_ttl_10y") {
            assert_eq!(ours, theirs, "{name}");
        }
    }
}

#[test]
fn edge_positive_vectors_give_the_decided_result() {
    let vectors = vectors();
    let edges = list(&vectors, "edge_positive");
    assert_eq!(edges.len(), 4);
    for vector in edges {
        let name = str_field(vector, "name");
        let (value, _) = iron::unseal_json(str_field(vector, "token"), &ring(vector), NOW_MS)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(value, vector["expected"], "{name}");
    }
}

#[test]
fn negative_vectors_are_rejected_with_the_js_error() {
    let vectors = vectors();
    let negatives = list(&vectors, "negative");
    assert_eq!(negatives.len(), 30);
    let (mut unseals, mut seals, mut password_checks) = (0, 0, 0);
    for vector in negatives {
        let name = str_field(vector, "name");
        let password = str_field(vector, "password");
        let js_error = str_field(vector, "error");
        if vector["op"] == "seal" {
            // Refused before anything is sealed: by Secret::new, with the
            // message check_password reproduces.
            assert!(Secret::new(password).is_err(), "{name}");
            let err = iron::check_password(password).expect_err(name);
            assert_eq!(err.js_message(), js_error, "{name}");
            seals += 1;
            continue;
        }
        let Ok(secret) = Secret::new(password) else {
            // iron refuses the password when it derives the HMAC key.
            let err = iron::check_password(password).expect_err(name);
            assert_eq!(err.js_message(), js_error, "{name}");
            password_checks += 1;
            continue;
        };
        let result =
            iron::unseal_json(str_field(vector, "token"), &Keyring::single(secret), NOW_MS);
        let err = result.expect_err(name);
        if IRON_MESSAGES.contains(&js_error) {
            assert_eq!(err.js_message(), js_error, "{name}: {err}");
        } else {
            assert_eq!(
                err.js_message(),
                str_field(vector, "error_name"),
                "{name}: {err}"
            );
        }
        unseals += 1;
    }
    assert_eq!((unseals, seals, password_checks), (26, 2, 2));
}

#[test]
fn negative_vectors_map_to_specific_variants() {
    let vectors = vectors();
    let expected = [
        ("valid_hmac_bad_json", IronError::InvalidJson),
        ("valid_hmac_iv_invalid_base64", IronError::InvalidBase64),
        ("valid_hmac_iv_8_bytes", IronError::InvalidIv),
        (
            "valid_hmac_ciphertext_not_block_multiple",
            IronError::DecryptFailed,
        ),
        ("valid_hmac_ciphertext_empty", IronError::DecryptFailed),
        ("valid_hmac_enc_salt_empty", IronError::DecryptFailed),
        ("expiration_plus_sign", IronError::InvalidExpiration),
        ("expiration_zero", IronError::Expired),
        ("expired_ttl", IronError::Expired),
    ];
    for (name, variant) in expected {
        let vector = list(&vectors, "negative")
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no vector {name}"));
        let err = iron::unseal_json(str_field(vector, "token"), &ring(vector), NOW_MS).unwrap_err();
        assert_eq!(err, variant, "{name}");
    }
    // The expired vector was valid before its expiration.
    let expired = list(&vectors, "negative")
        .iter()
        .find(|v| v["name"] == "expired_ttl")
        .unwrap();
    assert!(
        iron::unseal(
            str_field(expired, "token"),
            &ring(expired),
            1_795_705_712_080
        )
        .is_ok()
    );
}

/// xorshift64*: a small deterministic generator for the mutation test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap()
    }
}

const CHARS: &[char] = &[
    '*', '*', '*', '-', '_', '=', '+', '/', '.', '0', '9', 'A', 'a', 'f', 'z', 'F', ' ', '\0', 'é',
    '🔐', '\u{fffd}', '\u{feff}', '日',
];

fn mutate(rng: &mut XorShift, token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    for _ in 0..=rng.below(3) {
        let len = chars.len();
        let pick = |rng: &mut XorShift| {
            if rng.below(2) == 0 {
                CHARS[rng.below(CHARS.len())]
            } else {
                char::from(b' ' + u8::try_from(rng.below(95)).unwrap())
            }
        };
        match rng.below(8) {
            // Replace one character.
            0 | 1 if len > 0 => {
                let i = rng.below(len);
                chars[i] = pick(rng);
            }
            // Flip a bit of an ASCII character.
            2 if len > 0 => {
                let i = rng.below(len);
                if chars[i].is_ascii() {
                    let bit = 1u8 << rng.below(7);
                    chars[i] = char::from(u8::try_from(chars[i]).unwrap() ^ bit);
                }
            }
            3 => {
                let i = rng.below(len + 1);
                chars.insert(i, pick(rng));
            }
            4 if len > 0 => {
                chars.remove(rng.below(len));
            }
            5 => chars.truncate(rng.below(len + 1)),
            // Duplicate a range.
            6 if len > 0 => {
                let start = rng.below(len);
                let end = start + rng.below(len - start + 1);
                let copy: Vec<char> = chars[start..end].to_vec();
                let at = rng.below(len + 1);
                chars.splice(at..at, copy);
            }
            // Swap two characters.
            _ if len > 1 => {
                let (i, j) = (rng.below(len), rng.below(len));
                chars.swap(i, j);
            }
            _ => chars.push('*'),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn mutated_tokens_never_verify_and_never_panic() {
    let vectors = vectors();
    let secret_text = str_field(&list(&vectors, "positive")[0], "password");
    let ring = Keyring::single(Secret::new(secret_text).unwrap());
    let by_name = |name: &str| {
        list(&vectors, "positive")
            .iter()
            .chain(list(&vectors, "edge_positive"))
            .find(|v| v["name"] == name)
            .map(|v| str_field(v, "token").to_owned())
            .unwrap_or_else(|| panic!("no vector {name}"))
    };
    let tokens = [
        by_name("ascii_long/empty_object"),
        by_name("ascii_long/session_basic"),
        by_name("ascii_long/with_ttl_10y"),
        by_name("ascii_long/password_id_k1"),
        by_name("expiration_leading_zero"),
        iron::seal(br#"{"userId":"42","flash":"hi"}"#, ring.current()),
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut tried, mut identical) = (0, 0);
    let mut seen = std::collections::BTreeSet::new();
    for token in &tokens {
        assert!(iron::unseal(token, &ring, NOW_MS).is_ok());
        for _ in 0..4_000 {
            let mutated = mutate(&mut rng, token);
            if mutated == *token {
                identical += 1;
                continue;
            }
            tried += 1;
            match iron::unseal(&mutated, &ring, NOW_MS) {
                Ok(opened) => panic!(
                    "a mutated token verified ({} bytes of plaintext):\n{token}\n{mutated}",
                    opened.plaintext.len()
                ),
                Err(err) => {
                    seen.insert(err.js_message());
                }
            }
        }
    }
    assert!(
        tried >= 20_000,
        "only {tried} mutations tried ({identical} identical)"
    );
    // The mutations reach every stage of the checks.
    for stage in [
        "Incorrect number of sealed components",
        "Wrong mac prefix",
        "Invalid expiration",
        "Bad hmac value",
    ] {
        assert!(
            seen.contains(stage),
            "no mutation failed with {stage:?}: {seen:?}"
        );
    }
}
