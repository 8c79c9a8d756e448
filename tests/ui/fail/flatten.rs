use sealed_session::SessionData;
use serde::{Deserialize, Serialize};

#[derive(Default, Clone, Serialize, Deserialize)]
struct Prefs {
    theme: String,
}

#[derive(SessionData, Default, Serialize, Deserialize)]
struct MySession {
    #[serde(flatten)]
    prefs: Prefs,
}

fn main() {}
