//! Our iron codec against iron-webcrypto 1.2.1 itself, on random payloads:
//! what we seal it unseals to the same value, and the other way round.
//!
//! The seed is random per run and printed on failure; set
//! `INTEROP_SEED=<n>` to replay a run, `INTEROP_CASES=<n>` for more cases.

use sealed_session::{Keyring, Secret, iron};
use serde_json::{Map, Number, Value, json};

use crate::harness::{IronJs, NodeEnv, now_ms};

/// splitmix64: a small seeded generator, enough to make test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Characters that stress JSON and UTF-8/UTF-16 handling on both sides.
const SPECIALS: &[char] = &[
    '"',
    '\\',
    '/',
    '\n',
    '\r',
    '\t',
    '\u{0}',
    '\u{1}',
    '\u{8}',
    '\u{c}',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    '\u{ff}',
    '\u{2028}',
    '\u{2029}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    'é',
    'ß',
    'Ω',
    'ж',
    'ع',
    'א',
    '中',
    '日',
    '\u{1F600}',
    '\u{1F9D1}',
    '\u{200D}',
    '\u{10FFFF}',
    '\u{1D11E}',
    '*',
    '%',
    ';',
    '=',
    '<',
    '&',
];

fn random_char(rng: &mut Rng) -> char {
    match rng.below(10) {
        0..=4 => char::from(b' ' + u8::try_from(rng.below(95)).unwrap()),
        5..=7 => SPECIALS[rng.below(SPECIALS.len())],
        // Any scalar value: the BMP outside surrogates, or an astral one.
        8 => char::from_u32(u32::try_from(rng.below(0xD800)).unwrap()).unwrap(),
        _ => char::from_u32(0x1_0000 + u32::try_from(rng.below(0x10_0000)).unwrap()).unwrap(),
    }
}

fn random_string(rng: &mut Rng, max_len: usize) -> String {
    let len = rng.below(max_len + 1);
    (0..len).map(|_| random_char(rng)).collect()
}

/// A number JSON round-trips identically in both languages: an integer
/// within ±2^53, or a non-integer with a short binary fraction (Rust would
/// write an integral float as `2.0`, JavaScript as `2`).
fn random_number(rng: &mut Rng) -> Number {
    const SAFE: i64 = (1 << 53) - 1;
    let span = u64::try_from(SAFE).unwrap() * 2 + 1;
    match rng.below(4) {
        0 => Number::from(i64::try_from(rng.next() % span).unwrap() - SAFE),
        1 => Number::from(i64::try_from(rng.below(2001)).unwrap() - 1000),
        2 => {
            #[allow(clippy::cast_precision_loss)]
            let whole = (rng.below(2_000_001) as f64) - 1_000_000.0;
            let fraction: f64 = [0.5, 0.25, 0.125, 0.75, 0.0625][rng.below(5)];
            Number::from_f64(whole + fraction.copysign(whole)).unwrap()
        }
        _ => Number::from(rng.next() % (1 << 53)),
    }
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let leaf = depth == 0 || rng.chance(60);
    if leaf {
        return match rng.below(6) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(50)),
            2 => Value::Number(random_number(rng)),
            _ => Value::String(random_string(rng, 24)),
        };
    }
    if rng.chance(50) {
        Value::Array(
            (0..rng.below(6))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        )
    } else {
        Value::Object(random_object(rng, depth - 1, 6))
    }
}

fn random_object(rng: &mut Rng, depth: usize, max_fields: usize) -> Map<String, Value> {
    (0..rng.below(max_fields + 1))
        .map(|_| (random_string(rng, 12), random_value(rng, depth)))
        .collect()
}

/// A session-like record: fields, maybe a large (~3 KB) value, `_expires`.
fn random_record(rng: &mut Rng) -> Value {
    let mut record = random_object(rng, 3, 8);
    if rng.chance(10) {
        let large: String = (0..1500).map(|_| random_char(rng)).collect();
        record.insert("large".to_owned(), Value::String(large));
    }
    if rng.chance(80) {
        record.insert("_expires".to_owned(), json!(now_ms() + 86_400_000));
    }
    Value::Object(record)
}

/// The secrets: long ASCII, exactly 32, unicode (astral characters count
/// twice in JavaScript's length), hono-style 32 code points in 0..=255.
fn passwords(rng: &mut Rng) -> Vec<String> {
    vec![
        "a-long-ascii-secret-for-the-property-test-0123456789".to_owned(),
        "exactly-32-characters-long-12345".to_owned(),
        "sécret-ünïcødé-😀-密码-パスワード-ключ-🔑🔑".to_owned(),
        (0..32)
            .map(|_| char::from(u8::try_from(rng.below(256)).unwrap()))
            .collect(),
    ]
}

#[test]
fn iron_agrees_with_iron_webcrypto_on_random_payloads() {
    let Some(node) = NodeEnv::require("iron_agrees_with_iron_webcrypto_on_random_payloads") else {
        return;
    };
    let seed = std::env::var("INTEROP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() ^ u64::from(std::process::id()).rotate_left(32));
    let cases: usize = std::env::var("INTEROP_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500);
    let mut rng = Rng(seed);
    let replay = format!("(replay with INTEROP_SEED={seed})");

    let mut js = IronJs::start(&node);
    let passwords = passwords(&mut rng);
    let mut large = 0;
    for case in 0..cases {
        let record = random_record(&mut rng);
        let password = &passwords[case % passwords.len()];
        // Every fifth case seals under a password id, as key rotation does.
        let with_id = case % 5 == 4;
        let secret = Secret::new(password).expect("a valid secret");
        let (keyring, js_seal_password, js_unseal_password) = if with_id {
            (
                Keyring::new([(Some("k1"), secret)]).unwrap(),
                json!({ "id": "k1", "secret": password }),
                json!({ "k1": password }),
            )
        } else {
            (Keyring::single(secret), json!(password), json!(password))
        };
        let text = record.to_string();
        if text.len() > 2500 {
            large += 1;
        }
        let what = format!("case {case}, {} bytes {replay}", text.len());

        // Rust seals, iron-webcrypto unseals.
        let ours = iron::seal_json(&record, keyring.current());
        assert_eq!(ours.starts_with("Fe26.2*k1*"), with_id, "{what}");
        let opened = js
            .unseal(&ours, &js_unseal_password)
            .unwrap_or_else(|e| panic!("iron-webcrypto refused our token: {e}; {what}: {text}"));
        assert_eq!(opened, record, "rust sealed, js unsealed; {what}");

        // iron-webcrypto seals, Rust unseals.
        let theirs = js.seal(&record, &js_seal_password);
        let (opened, key_index) = iron::unseal_json(&theirs, &keyring, now_ms())
            .unwrap_or_else(|e| panic!("we refused iron-webcrypto's token: {e:?}; {what}: {text}"));
        assert_eq!(key_index, 0, "{what}");
        assert_eq!(opened, record, "js sealed, rust unsealed; {what}");

        // Either side's token under another secret is refused by the other.
        if case % 25 == 0 {
            let other = json!("another-secret-of-at-least-32-characters");
            assert!(js.unseal(&ours, &other).is_err(), "{what}");
            let wrong = Keyring::single(Secret::new(other.as_str().unwrap()).unwrap());
            assert!(
                iron::unseal_json(&theirs, &wrong, now_ms()).is_err(),
                "{what}"
            );
        }
    }
    assert!(
        cases < 100 || large > 0,
        "no large record among {cases} cases {replay}"
    );
}
