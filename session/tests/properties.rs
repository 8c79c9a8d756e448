//! Property tests: iron round trips, single-byte tampering, and the flash
//! semantics against a model of hono-session's `Session` class.

mod common;

use std::collections::BTreeMap;

use common::{Browser, SECRET};
use proptest::prelude::*;
use sealed_session::{Encoder, IronEncoder, Keyring, Record, Secret, SessionEngine};
use serde_json::Value;

fn keyring() -> Keyring {
    Keyring::single(Secret::new(SECRET).unwrap())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e15f64..1e15).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn record() -> impl Strategy<Value = Record> {
    prop::collection::btree_map(any::<String>(), json_value(), 0..8)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn seal_then_unseal_is_identity(record in record()) {
        let ring = keyring();
        let token = IronEncoder.encode(&record, &ring).unwrap();
        let decoded = IronEncoder.decode(&token, &ring).unwrap();
        prop_assert_eq!(decoded.record, record);
        prop_assert!(!decoded.stale);
    }

    #[test]
    fn any_single_byte_change_is_rejected(record in record(), pos in any::<prop::sample::Index>(), byte in 0x21u8..0x7f) {
        let ring = keyring();
        let token = IronEncoder.encode(&record, &ring).unwrap();
        let mut bytes = token.clone().into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert!(IronEncoder.decode(&tampered, &ring).is_err(), "accepted a change at {}", i);
    }
}

/// One request's operations on the flash.
#[derive(Debug, Clone)]
enum Op {
    Set(u8, u8),
    Flash(u8, u8),
    Reflash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, any::<u8>()).prop_map(|(k, v)| Op::Set(k, v)),
        (0u8..3, any::<u8>()).prop_map(|(k, v)| Op::Flash(k, v)),
        Just(Op::Reflash),
    ]
}

/// hono-session's `Session` flash logic, transcribed: the model.
#[derive(Default, Debug)]
struct Model {
    values: BTreeMap<String, u8>,
    /// `_flashKeys` as stored.
    stored_flash: Vec<String>,
}

impl Model {
    fn request(&mut self, ops: &[Op]) -> BTreeMap<String, u8> {
        let mut old = std::mem::take(&mut self.stored_flash); // #oldFlashKeys
        let mut flash: Vec<String> = Vec::new(); // _flashKeys
        for op in ops {
            match op {
                Op::Set(k, v) => {
                    self.values.insert(format!("k{k}"), *v);
                }
                Op::Flash(k, v) => {
                    let key = format!("k{k}");
                    self.values.insert(key.clone(), *v);
                    if !flash.contains(&key) {
                        flash.push(key.clone());
                    }
                    old.retain(|o| *o != key);
                }
                Op::Reflash => {
                    if !old.is_empty() {
                        let mut set = std::mem::take(&mut old);
                        for k in flash.drain(..) {
                            if !set.contains(&k) {
                                set.push(k);
                            }
                        }
                        flash = set;
                    }
                }
            }
        }
        let seen = self.values.clone();
        // ageFlash at commit.
        for key in &old {
            self.values.remove(key);
        }
        self.stored_flash = flash;
        seen
    }
}

fn apply(session: &sealed_session::Session, ops: &[Op]) -> BTreeMap<String, u8> {
    for op in ops {
        match op {
            Op::Set(k, v) => session.set(&format!("k{k}"), v),
            Op::Flash(k, v) => session.flash(&format!("k{k}"), v),
            Op::Reflash => session.reflash(),
        }
    }
    session.read(|m| {
        m.iter()
            .map(|(k, v)| (k.to_owned(), u8::try_from(v.as_u64().unwrap()).unwrap()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn flash_and_reflash_match_the_model(requests in prop::collection::vec(prop::collection::vec(op(), 0..4), 1..8)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let engine = SessionEngine::builder().with_secret(Secret::new(SECRET).unwrap()).build().unwrap();
        let mut model = Model::default();
        let mut browser = Browser::default();
        for ops in &requests {
            let expected = model.request(ops);
            let got = rt.block_on(browser.request(&engine, |s| apply(s, ops)));
            prop_assert_eq!(&got, &expected, "ops {:?}", ops);
        }
        // One last read-only request sees what the model kept.
        let expected = model.request(&[]);
        let got = rt.block_on(browser.request(&engine, |s| apply(s, &[])));
        prop_assert_eq!(got, expected);
    }
}
