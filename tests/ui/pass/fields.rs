//! Option and non-Option fields, defaults, nested types, serde `with`,
//! skipped fields, an empty struct.
use std::collections::HashMap;

use sealed_session::{Session, SessionData};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
struct Address {
    city: String,
    lines: Vec<String>,
}

mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn ten() -> u32 {
    10
}

#[derive(SessionData, Default, Serialize, Deserialize)]
struct MySession {
    user_id: Option<String>,
    count: u64,
    #[session(default = "ten")]
    limit: u32,
    #[serde(default)]
    tags: Vec<String>,
    address: Option<Address>,
    scores: HashMap<String, f64>,
    #[serde(with = "as_text")]
    big: u64,
    #[serde(skip)]
    #[allow(dead_code)]
    cache: Option<std::time::Instant>,
}

#[derive(SessionData, Default)]
struct Empty {}

fn main() {
    let session = Session::<MySession>::detached();
    session.set_address(Some(Address::default()));
    session.set_big(u64::MAX);
    assert_eq!(session.big(), u64::MAX);
    assert_eq!(session.limit(), 0);
    assert_eq!(session.take_limit(), 0);
    assert_eq!(session.limit(), 10);
    let record = session.read(|d| d.to_record().unwrap());
    assert_eq!(record["big"], serde_json::json!(u64::MAX.to_string()));
    let _ = Session::<Empty>::detached();
}
