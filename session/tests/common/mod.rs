//! A browser stand-in for driving the engine request by request.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderValue, header};
use sealed_session::{
    Encoder, RequestContext, Session, SessionEngine, SessionMap, SetCookies, Store,
};

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";
pub const T0: u64 = 1_800_000_000_000;

/// A cookie jar that follows `Set-Cookie` like a browser (`Max-Age=0`
/// deletes; the last value for a name wins).
#[derive(Default, Debug, Clone)]
pub struct Browser {
    pub jar: BTreeMap<String, String>,
    pub last_set_cookies: Vec<String>,
}

impl Browser {
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if !self.jar.is_empty() {
            let line = self
                .jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            headers.insert(header::COOKIE, HeaderValue::from_str(&line).unwrap());
        }
        headers
    }

    pub fn receive(&mut self, set_cookies: &SetCookies) {
        self.last_set_cookies = set_cookies
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &self.last_set_cookies {
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub fn sid(&self) -> Option<&str> {
        self.jar.get("sid").map(String::as_str)
    }

    /// One request: load, run the handler, commit, take the cookies.
    pub async fn request<S: Store, E: Encoder, R>(
        &mut self,
        engine: &SessionEngine<S, E>,
        handler: impl FnOnce(&Session<SessionMap>) -> R,
    ) -> R {
        let cx = RequestContext::default();
        let session = engine
            .load::<SessionMap>(&self.headers(), &cx)
            .await
            .unwrap();
        let out = handler(&session);
        let set_cookies = engine.commit(&session, &cx).await.unwrap();
        self.receive(&set_cookies);
        out
    }
}
