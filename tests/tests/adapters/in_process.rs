//! The same demo apps driven through each framework's in-process test
//! client (no socket): tower's `oneshot` for axum, Rocket's local client,
//! actix-web's `test::call_service`, and poem's `Endpoint::get_response`.
//! salvo's test client needs its `test` feature (brotli, zstd, …), so salvo
//! runs on the socket only.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use http::{Method, StatusCode, header};
use http_body_util::BodyExt;
use sealed_session::{Encoder, SessionEngine, SessionIndex};
use tower::ServiceExt;

use crate::client::{Client, Response};
use crate::servers::{DemoServer, Running, actix_demo, axum_demo, poem_demo, rocket_demo};

/// The peer address the in-process clients claim.
const PEER: ([u8; 4], u16) = ([127, 0, 0, 1], 40_000);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub struct AxumInProcess;
pub struct RocketLocal;
pub struct ActixTest;
pub struct PoemInProcess;

struct Tower(axum::Router);

impl Client for Tower {
    fn send<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        cookie: Option<&'a str>,
        body: &'a str,
    ) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let mut request = http::Request::builder().method(method).uri(path);
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            let mut request = request
                .body(axum::body::Body::from(body.to_owned()))
                .unwrap();
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(SocketAddr::from(PEER)));
            let response = self.0.clone().oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            Response {
                status: parts.status,
                body: String::from_utf8_lossy(&body).into_owned(),
                set_cookies: set_cookies(parts.headers.get_all(header::SET_COOKIE)),
            }
        })
    }
}

fn set_cookies(values: http::header::GetAll<'_, http::HeaderValue>) -> Vec<String> {
    values
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

impl DemoServer for AxumInProcess {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        Running::in_process(Tower(axum_demo::app(engine)), true, || {})
    }
}

struct RocketClient(rocket::local::asynchronous::Client);

impl Client for RocketClient {
    fn send<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        cookie: Option<&'a str>,
        body: &'a str,
    ) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let method = match method {
                Method::GET => rocket::http::Method::Get,
                Method::POST => rocket::http::Method::Post,
                Method::PUT => rocket::http::Method::Put,
                other => panic!("no {other} in the demo"),
            };
            let mut request = self
                .0
                .req(method, path.to_owned())
                .remote(SocketAddr::from(PEER))
                .body(body);
            if let Some(cookie) = cookie {
                request = request.header(rocket::http::Header::new("Cookie", cookie.to_owned()));
            }
            let response = request.dispatch().await;
            let status = StatusCode::from_u16(response.status().code).unwrap();
            let set_cookies = response
                .headers()
                .get("Set-Cookie")
                .map(str::to_owned)
                .collect();
            Response {
                status,
                body: response.into_string().await.unwrap_or_default(),
                set_cookies,
            }
        })
    }
}

impl DemoServer for RocketLocal {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        let rocket = rocket_demo::rocket(engine, 0);
        let client = rocket::local::asynchronous::Client::untracked(rocket)
            .await
            .unwrap();
        Running::in_process(RocketClient(client), true, || {})
    }
}

struct PoemClient(poem::endpoint::BoxEndpoint<'static, poem::Response>);

impl Client for PoemClient {
    fn send<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        cookie: Option<&'a str>,
        body: &'a str,
    ) -> BoxFuture<'a, Response> {
        use poem::Endpoint;
        Box::pin(async move {
            let mut request = poem::Request::builder().method(method).uri_str(path);
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            let response = self.0.get_response(request.body(body.to_owned())).await;
            let status = response.status();
            let set_cookies = set_cookies(response.headers().get_all(header::SET_COOKIE));
            Response {
                status,
                body: response.into_body().into_string().await.unwrap(),
                set_cookies,
            }
        })
    }
}

impl DemoServer for PoemInProcess {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        use poem::EndpointExt;
        let app = poem_demo::app(engine).map_to_response().boxed();
        // poem's in-process requests carry no peer address.
        Running::in_process(PoemClient(app), false, || {})
    }
}

/// One request for the actix thread, and where to answer.
type ActixJob = (
    Method,
    String,
    Option<String>,
    String,
    tokio::sync::oneshot::Sender<Response>,
);

/// actix-web's test service is not `Send`: it lives on a thread of its
/// own (a current-thread runtime, as actix runs its workers), and requests
/// reach it through a channel.
struct ActixClient(tokio::sync::mpsc::UnboundedSender<ActixJob>);

impl Client for ActixClient {
    fn send<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        cookie: Option<&'a str>,
        body: &'a str,
    ) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let job = (
                method,
                path.to_owned(),
                cookie.map(str::to_owned),
                body.to_owned(),
                reply,
            );
            self.0.send(job).expect("actix test thread alive");
            answer.await.expect("actix test thread answers")
        })
    }
}

impl DemoServer for ActixTest {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        use actix_web::{App, test};
        use sealed_session::adapters::actix_web::SessionMiddleware;
        use std::rc::Rc;

        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<ActixJob>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, async move {
                let app = test::init_service(
                    App::new()
                        .wrap(SessionMiddleware::new(engine.clone()))
                        .configure(actix_demo::routes(&engine)),
                )
                .await;
                let app = Rc::new(app);
                while let Some((method, path, cookie, body, reply)) = queue.recv().await {
                    let app = Rc::clone(&app);
                    tokio::task::spawn_local(async move {
                        let method =
                            actix_web::http::Method::from_bytes(method.as_str().as_bytes())
                                .unwrap();
                        let mut request = test::TestRequest::default()
                            .method(method)
                            .uri(&path)
                            .peer_addr(SocketAddr::from(PEER))
                            .set_payload(body);
                        if let Some(cookie) = cookie {
                            request = request.insert_header(("Cookie", cookie));
                        }
                        let response = test::call_service(&*app, request.to_request()).await;
                        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
                        let set_cookies = response
                            .headers()
                            .get_all(actix_web::http::header::SET_COOKIE)
                            .map(|v| v.to_str().unwrap().to_owned())
                            .collect();
                        let body = test::read_body(response).await;
                        let _ = reply.send(Response {
                            status,
                            body: String::from_utf8_lossy(&body).into_owned(),
                            set_cookies,
                        });
                    });
                }
            });
        });
        // Dropping the client closes the channel, which ends the thread.
        Running::in_process(ActixClient(jobs), true, || {})
    }
}
