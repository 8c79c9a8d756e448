//! A bare HTTP/1 client and a cookie jar that follows `Set-Cookie` like a
//! browser.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::Method;

use crate::http1;
pub use crate::http1::Response;

impl Response {
    /// The `Set-Cookie` value for cookie `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|line| line.split_once('=').is_some_and(|(n, _)| n == name))
    }
}

/// How the tests reach a server: a socket, or the framework's in-process
/// test client.
pub trait Client: Send + Sync {
    /// One request; `cookie` is the whole `Cookie` header.
    fn send<'a>(
        &'a self,
        method: Method,
        path_and_query: &'a str,
        cookie: Option<&'a str>,
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + 'a>>;
}

/// A server on a socket: each request on a fresh HTTP/1.1 connection.
#[derive(Debug, Clone, Copy)]
pub struct Socket(pub SocketAddr);

impl Client for Socket {
    fn send<'a>(
        &'a self,
        method: Method,
        path_and_query: &'a str,
        cookie: Option<&'a str>,
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = Response> + Send + 'a>> {
        Box::pin(send(self.0, method, path_and_query, cookie, body))
    }
}

/// One HTTP/1.1 exchange on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path_and_query: &str,
    cookie: Option<&str>,
    body: &str,
) -> Response {
    let content_type = Some("text/plain; charset=utf-8");
    match http1::exchange(addr, &method, path_and_query, cookie, content_type, body).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => panic!("{method} {path_and_query} on {addr}: {error}"),
        Err(_) => panic!(
            "{method} {path_and_query} on {addr}: no answer within {:?}",
            http1::REQUEST_TIMEOUT
        ),
    }
}

/// A browser in front of one server: the last value for a name wins,
/// `Max-Age=0` deletes. Cookies are `Secure`, so over plain HTTP the jar
/// sends them itself, as a browser would to `https://`.
#[derive(Clone)]
pub struct Browser {
    client: Arc<dyn Client>,
    pub jar: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(client: Arc<dyn Client>) -> Self {
        Self {
            client,
            jar: BTreeMap::new(),
        }
    }

    /// The `Cookie` header for the jar's content.
    pub fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// Takes the cookies of a response.
    pub fn receive(&mut self, set_cookies: &[String]) {
        for line in set_cookies {
            let mut parts = line.split(';').map(str::trim);
            let (name, value) = parts
                .next()
                .and_then(|pair| pair.split_once('='))
                .expect("Set-Cookie has name=value");
            if parts.any(|a| a.eq_ignore_ascii_case("Max-Age=0")) {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// One request with the jar's cookies; the response's cookies go into
    /// the jar.
    pub async fn request(&mut self, method: Method, path_and_query: &str, body: &str) -> Response {
        let cookie = self.cookie_header();
        let response = self
            .client
            .send(method, path_and_query, cookie.as_deref(), body)
            .await;
        self.receive(&response.set_cookies);
        response
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.request(Method::GET, path, "").await
    }

    pub async fn post(&mut self, path: &str) -> Response {
        self.request(Method::POST, path, "").await
    }

    pub async fn put(&mut self, path: &str, body: &str) -> Response {
        self.request(Method::PUT, path, body).await
    }

    /// The session cookie's value.
    pub fn sid(&self) -> Option<&str> {
        self.jar.get("sid").map(String::as_str)
    }
}
