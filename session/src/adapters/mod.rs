//! Framework adapters, each behind a feature of the framework's name.
//!
//! Every adapter is the same glue around the engine: a middleware puts a
//! per-request slot where the framework's extractor finds it; the session is
//! loaded from the store or cookie the first time a handler asks for it, and
//! committed after the handler answered. A route that never asks costs no
//! store call and sets no cookie.

#[cfg(adapters)]
mod lazy;

#[cfg(feature = "actix-web")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix-web")))]
pub mod actix_web;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(feature = "poem")]
#[cfg_attr(docsrs, doc(cfg(feature = "poem")))]
pub mod poem;
#[cfg(feature = "rocket")]
#[cfg_attr(docsrs, doc(cfg(feature = "rocket")))]
pub mod rocket;
#[cfg(feature = "salvo")]
#[cfg_attr(docsrs, doc(cfg(feature = "salvo")))]
pub mod salvo;
