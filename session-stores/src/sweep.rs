//! Removing expired records from stores that cannot expire them natively.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sealed_session::{MemoryStore, StoreError};
use tokio::task::JoinHandle;

use crate::error::Error;

/// A store that can remove its expired records in one sweep.
///
/// Implemented by the stores without native expiry (file, SQL, memory) and
/// passed through by the wrappers. Redis expires records itself.
pub trait DeleteExpired: Send + Sync + 'static {
    /// Removes every record past its expiry; returns how many.
    ///
    /// # Errors
    ///
    /// The backend failed ([`StoreError::Backend`]).
    fn delete_expired(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

impl DeleteExpired for MemoryStore {
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        Ok(u64::try_from(MemoryStore::delete_expired(self)).unwrap_or(u64::MAX))
    }
}

impl<S: DeleteExpired> DeleteExpired for Arc<S> {
    fn delete_expired(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).delete_expired()
    }
}

/// A background task calling [`DeleteExpired::delete_expired`] every
/// period; stops when dropped (or on [`stop`](Self::stop)).
#[derive(Debug)]
#[must_use = "the sweep stops when the Sweeper is dropped"]
pub struct Sweeper {
    task: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Stops the sweep.
    pub fn stop(self) {}

    /// Keeps the sweep running for the life of the runtime, without a
    /// handle to stop it.
    pub fn detach(mut self) {
        // Dropping a JoinHandle detaches its task; only our Drop aborts.
        drop(self.task.take());
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts a background sweep of `store` every `period` (the first one
/// after one period). Failures are logged at `warn` and retried next
/// period.
///
/// # Errors
///
/// [`Error::NoRuntime`] when called outside a Tokio runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sealed_session::MemoryStore;
/// use sealed_session_stores::spawn_sweeper;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session_stores::Error> {
/// let store = MemoryStore::new();
/// let sweeper = spawn_sweeper(store.clone(), Duration::from_secs(300))?;
/// // … serve requests; the sweep stops when `sweeper` is dropped.
/// sweeper.stop();
/// # Ok(()) }
/// ```
pub fn spawn_sweeper<S>(store: S, period: Duration) -> Result<Sweeper, Error>
where
    S: DeleteExpired,
{
    let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
    let period = period.max(Duration::from_millis(10));
    let task = handle.spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.delete_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "expired sessions removed"),
                Err(error) => tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "sweeping expired sessions failed"
                ),
            }
        }
    });
    Ok(Sweeper { task: Some(task) })
}
