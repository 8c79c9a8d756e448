//! Sets `cfg(adapters)` when any framework adapter is enabled, so that the
//! code the adapters share is gated on one name instead of a list of
//! features repeated at each use.

const ADAPTER_FEATURES: [&str; 5] = ["AXUM", "ACTIX_WEB", "ROCKET", "POEM", "SALVO"];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(adapters)");
    let any_adapter = ADAPTER_FEATURES
        .iter()
        .any(|feature| std::env::var_os(format!("CARGO_FEATURE_{feature}")).is_some());
    if any_adapter {
        println!("cargo::rustc-cfg=adapters");
    }
}
