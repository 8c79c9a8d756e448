//! Production session stores for [`sealed-session`](sealed_session).
//!
//! Each backend is a [`Store`](sealed_session::Store) behind its own
//! feature; the wrappers work with every store, including
//! [`MemoryStore`](sealed_session::MemoryStore) and your own.
//!
//! | Item | What it is | Expiry |
//! | --- | --- | --- |
//! | `FileStore` | one file per session in a directory | `delete_expired()` + [`spawn_sweeper`] |
//! | `SqliteStore` | embedded, persistent, nothing to install (the default choice) | filtered in queries, `delete_expired()` + [`spawn_sweeper`] |
//! | `PostgresStore` | an existing `PgPool` | filtered in queries, `delete_expired()` + [`spawn_sweeper`] |
//! | `MySqlStore` | an existing `MySqlPool` (MySQL, MariaDB) | filtered in queries, `delete_expired()` + [`spawn_sweeper`] |
//! | `RedisStore` | a reconnecting connection manager, or a Redis Cluster | native (`SET … PX`) |
//! | [`CachingStore`] | an in-process tier in front of any store, write-through | both tiers |
//! | `MokaStore` | a bounded in-process cache, the cache tier of choice | native (per-entry expiry) |
//! | [`HashedIds`] | keys a store by a keyed hash of the cookie id | as the inner store |
//! | [`AnyStore`], [`store_from_url`] | pick a store at run time (`SESSION_STORE=sqlite:sessions.db`) | as the chosen store |
//!
//! ```
//! use sealed_session::{MemoryStore, SessionEngine};
//! use sealed_session_stores::HashedIds;
//!
//! let key = [7u8; 32]; // use a random key from your secret manager
//! let store = HashedIds::new(MemoryStore::new(), &key)?;
//! let engine = SessionEngine::builder().with_store(store).build()?;
//! # let _ = engine;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every store error is a [`StoreError`](sealed_session::StoreError) that
//! names the backend (`"sqlite"`, `"redis"`, …) and keeps the driver's
//! error as its [`source`](std::error::Error::source).
//!
//! # Features
//!
//! | Name | What it enables | Default |
//! | --- | --- | --- |
//! | `file` | `FileStore` | no |
//! | `sqlite` | `SqliteStore` (SQLite is compiled in) | no |
//! | `postgres` | `PostgresStore` | no |
//! | `mysql` | `MySqlStore` | no |
//! | `redis` | `RedisStore` | no |
//! | `redis-cluster` | Redis Cluster support in `RedisStore` (implies `redis`) | no |
//! | `moka` | `MokaStore`, a bounded cache tier | no |
//! | `full` | all of the above | no |
//!
//! [`CachingStore`], [`HashedIds`], [`AnyStore`] and [`spawn_sweeper`] are
//! always available.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod any;
mod caching;
mod error;
mod hashed;
mod sweep;
mod time;

#[cfg(feature = "file")]
mod file;
#[cfg(feature = "moka")]
mod moka;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use crate::any::{AnyStore, store_from_url};
pub use crate::caching::CachingStore;
pub use crate::error::Error;
pub use crate::hashed::HashedIds;
pub use crate::sweep::{DeleteExpired, Sweeper, spawn_sweeper};

#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use crate::file::FileStore;
#[cfg(feature = "moka")]
#[cfg_attr(docsrs, doc(cfg(feature = "moka")))]
pub use crate::moka::MokaStore;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use crate::mysql::MySqlStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use crate::postgres::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::redis::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use crate::sqlite::SqliteStore;

/// The driver crates, re-exported so that a pool or client you hand to a
/// store is built with the same version.
pub mod drivers {
    #[cfg(feature = "moka")]
    pub use ::moka;
    #[cfg(feature = "redis")]
    pub use ::redis;
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    pub use ::sqlx;
}
