//! Record keys: serde's rename_all and rename, session's rename and
//! rename_all, aliases, raw identifiers.
use std::sync::Arc;

use sealed_session::{Record, SessionData};
use serde::{Deserialize, Serialize};

#[derive(SessionData, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Serde {
    user_id: Option<String>,
    #[serde(rename = "msg", alias = "message")]
    flash_message: Option<String>,
    r#type: Option<String>,
}

#[derive(SessionData, Default)]
#[session(rename_all = "SCREAMING-KEBAB-CASE", accessors = "OwnAccessors")]
struct Session {
    user_id: Option<String>,
    #[session(rename = "n", accessor = "number")]
    count: u32,
}

fn main() {
    assert_eq!(Serde::TRACKED_KEYS, ["userId", "msg", "type"]);
    assert_eq!(Session::TRACKED_KEYS, ["USER-ID", "n"]);

    let record: Record = serde_json::from_str(r#"{"message": "hi", "type": "t"}"#).unwrap();
    let data = Serde::from_record(&Arc::new(record)).unwrap();
    assert_eq!(data.flash_message.as_deref(), Some("hi"));
    assert_eq!(data.r#type.as_deref(), Some("t"));
    // What serde writes, the record holds.
    let serde_value = serde_json::to_value(&data).unwrap();
    let record = data.to_record().unwrap();
    assert_eq!(record.get("msg"), serde_value.get("msg"));

    let session = sealed_session::Session::<Session>::detached();
    let _: &OwnAccessors = &session;
    session.set_number(3);
    assert_eq!(session.number(), 3);
    let typed = sealed_session::Session::<Serde>::detached();
    typed.set_type(Some("x".to_owned()));
    assert_eq!(typed.r#type().as_deref(), Some("x"));
}
