//! A hand-written SessionData, with and without accessors of its own.
use std::sync::Arc;

use sealed_session::data::{self, Handle, SessionAccessors};
use sealed_session::{Record, Session, SessionData};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Default, Serialize, Deserialize)]
struct Plain {
    #[serde(default)]
    n: u32,
}

impl SessionData for Plain {
    type Accessors = Handle<Self>;

    fn from_record(record: &Arc<Record>) -> Result<Self, serde_json::Error> {
        data::from_record(record)
    }

    fn to_record(&self) -> Result<Record, serde_json::Error> {
        data::to_record(self)
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    #[serde(default)]
    n: u32,
}

#[derive(Debug)]
struct CounterAccessors(Handle<Counter>);

impl SessionAccessors<Counter> for CounterAccessors {
    fn from_handle(handle: Handle<Counter>) -> Self {
        Self(handle)
    }
    fn handle(&self) -> &Handle<Counter> {
        &self.0
    }
}

impl CounterAccessors {
    fn increment(&self) -> u32 {
        let n = self.0.read(|c| c.n) + 1;
        self.0.set_tracked(0, |c| &mut c.n, n);
        n
    }
}

impl SessionData for Counter {
    type Accessors = CounterAccessors;
    const TRACKED_KEYS: &'static [&'static str] = &["n"];

    fn from_record(record: &Arc<Record>) -> Result<Self, serde_json::Error> {
        data::from_record(record)
    }

    fn to_record(&self) -> Result<Record, serde_json::Error> {
        data::to_record(self)
    }

    fn tracked_value(&self, index: usize) -> Result<Value, serde_json::Error> {
        match index {
            0 => serde_json::to_value(self.n),
            _ => Ok(Value::Null),
        }
    }
}

fn main() {
    let plain = Session::<Plain>::detached();
    plain.update(|p| p.n = 1);
    assert!(plain.has_changed());

    let counter = Session::<Counter>::detached();
    assert_eq!(counter.increment(), 1);
    assert!(counter.has_changed());
}
