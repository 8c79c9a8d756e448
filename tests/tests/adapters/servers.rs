//! Each adapter's demo example, served on a real socket on 127.0.0.1.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sealed_session::{Encoder, SessionEngine, SessionIndex};

use crate::client::{Client, Socket};

// The examples themselves: the suite runs exactly their routes. Each one
// includes `examples/common/page.rs` as its own module, as a standalone
// example must, so here the page is compiled five times on purpose.
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
#[path = "../../../session/examples/actix.rs"]
pub(crate) mod actix_demo;
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
#[path = "../../../session/examples/axum.rs"]
pub(crate) mod axum_demo;
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
#[path = "../../../session/examples/poem.rs"]
pub(crate) mod poem_demo;
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
#[path = "../../../session/examples/rocket.rs"]
pub(crate) mod rocket_demo;
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
#[path = "../../../session/examples/salvo.rs"]
mod salvo_demo;

/// A framework serving the demo routes.
pub trait DemoServer {
    /// The demo app on `engine`, listening on 127.0.0.1.
    fn start<S: SessionIndex, E: Encoder>(
        engine: SessionEngine<S, E>,
    ) -> impl Future<Output = Running> + Send;
}

/// A server that stops when dropped.
pub struct Running {
    /// How to reach it.
    pub client: Arc<dyn Client>,
    /// Whether stores see a peer address (127.0.0.1) from this client.
    pub peer_known: bool,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Running {
    fn new(addr: SocketAddr, stop: impl FnOnce() + Send + 'static) -> Self {
        Self {
            client: Arc::new(Socket(addr)),
            peer_known: true,
            stop: Some(Box::new(stop)),
        }
    }

    pub(crate) fn in_process(
        client: impl Client + 'static,
        peer_known: bool,
        stop: impl FnOnce() + Send + 'static,
    ) -> Self {
        Self {
            client: Arc::new(client),
            peer_known,
            stop: Some(Box::new(stop)),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

pub struct Axum;
pub struct ActixWeb;
pub struct Rocket;
pub struct Poem;
pub struct Salvo;

impl DemoServer for Axum {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum_demo::app(engine).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        Running::new(addr, move || task.abort())
    }
}

impl DemoServer for ActixWeb {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = actix_demo::server(engine, listener).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        Running::new(addr, move || {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(handle.stop(false));
            }
        })
    }
}

impl DemoServer for Rocket {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        // Rocket 0.5 cannot report the port it bound for port 0: take a
        // free one, and try another if it was taken meanwhile.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let ignited = rocket_demo::rocket(engine.clone(), port)
                .ignite()
                .await
                .unwrap();
            let shutdown = ignited.shutdown();
            let task = tokio::spawn(ignited.launch());
            if wait_listening(addr, &task).await {
                return Running::new(addr, move || shutdown.notify());
            }
        }
        panic!("Rocket did not start on a free port");
    }
}

impl DemoServer for Poem {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        use poem::listener::{Acceptor, Listener};
        let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
        let app = poem_demo::app(engine);
        let task = tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
        Running::new(addr, move || task.abort())
    }
}

impl DemoServer for Salvo {
    async fn start<S: SessionIndex, E: Encoder>(engine: SessionEngine<S, E>) -> Running {
        use salvo::Listener;
        let acceptor = salvo::conn::TcpListener::new("127.0.0.1:0").bind().await;
        let addr = acceptor.local_addr().unwrap();
        let router = salvo_demo::router(engine);
        let task = tokio::spawn(salvo::Server::new(acceptor).serve(router));
        Running::new(addr, move || task.abort())
    }
}

/// Waits until `addr` accepts connections; `false` if the server task ended.
async fn wait_listening<T>(addr: SocketAddr, task: &tokio::task::JoinHandle<T>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        if task.is_finished() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no server on {addr} within 20 s");
}
