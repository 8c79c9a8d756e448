//! The conformance suite on the in-process stores of `sealed-session`:
//! `MemoryStore` and plain maps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use sealed_session::{MemoryStore, Record};
use sealed_session_tests::conformance;

#[tokio::test]
async fn memory_store_conforms() {
    let store = Arc::new(MemoryStore::new());
    conformance::run(Arc::clone(&store)).await;
    conformance::expired_records_are_not_returned(&*store).await;
    conformance::optimistic_concurrency(Arc::clone(&store)).await;
    conformance::session_index(Arc::clone(&store)).await;
}

#[tokio::test]
async fn memory_store_sweeps_expired_records() {
    conformance::sweep_removes_only_expired(&MemoryStore::new()).await;
}

#[tokio::test]
async fn mutex_map_conforms() {
    let store: Mutex<HashMap<String, Arc<Record>>> = Mutex::default();
    conformance::run(Arc::new(store)).await;
}

#[tokio::test]
async fn rwlock_map_conforms() {
    let store: RwLock<HashMap<String, Arc<Record>>> = RwLock::default();
    conformance::run(Arc::new(store)).await;
}
