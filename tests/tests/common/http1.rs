//! One HTTP/1.1 exchange on a fresh connection, for the test binaries that
//! talk to real servers (`adapters`, `interop`): each includes this file
//! with `#[path]`, as a module of its own.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// How long one HTTP exchange may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP response, reduced to what the tests look at.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    pub body: String,
    /// The `Set-Cookie` values, in order.
    pub set_cookies: Vec<String>,
}

/// What went wrong on the connection.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// One request to `addr` on a fresh connection, bounded by
/// [`REQUEST_TIMEOUT`]: the outer error is the timeout. `cookie` is the
/// whole `Cookie` header; `content_type`, when given, is sent with the
/// body.
pub async fn exchange(
    addr: SocketAddr,
    method: &Method,
    path_and_query: &str,
    cookie: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> Result<Result<Response, Error>, tokio::time::error::Elapsed> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path_and_query)
            .header(header::HOST, addr.to_string());
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned())))?;
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, Error>(Response {
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
    tokio::time::timeout(REQUEST_TIMEOUT, exchange).await
}
