// Shared by the engine targets: one runtime, engines built once.
use std::sync::OnceLock;

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
        .block_on(f)
}

pub const SECRET: &str = "fuzz-secret-number-one-0123456789abcdef";
