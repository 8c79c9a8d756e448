//! A bare HTTP/1 client and a cookie jar that follows `Set-Cookie` like a
//! browser.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// How long one HTTP exchange may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP response, reduced to what the tests look at.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub body: String,
    /// The `Set-Cookie` values, in order.
    pub set_cookies: Vec<String>,
}

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
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path_and_query)
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned())))?;
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Response {
            status: parts.status,
            body: String::from_utf8_lossy(&body).into_owned(),
            set_cookies: parts
                .headers
                .get_all(header::SET_COOKIE)
                .iter()
                .map(|v| v.to_str().expect("ASCII Set-Cookie").to_owned())
                .collect(),
        })
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => panic!("{method} {path_and_query} on {addr}: {error}"),
        Err(_) => {
            panic!("{method} {path_and_query} on {addr}: no answer within {REQUEST_TIMEOUT:?}")
        }
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
