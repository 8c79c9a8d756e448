//! When sessions expire: [`ExpiryPolicy`].

use std::time::Duration;

/// How a session's expiry moves.
///
/// - [`absolute`](Self::absolute) (the default, hono-session's behaviour):
///   `_expires` is set when the session is made and moves only when the
///   handler calls [`Session::renew`](crate::Session::renew).
/// - [`rolling`](Self::rolling): use keeps the session alive. A request
///   that finds less than a fraction of the lifetime left (half, by
///   default) moves the expiry to now + max age, which writes the session;
///   other requests write nothing, so read-heavy traffic causes no store
///   writes and no new cookies.
///
/// Either can be capped by [`with_max_lifetime`](Self::with_max_lifetime):
/// whatever the activity or `renew()` calls, a session ends that long after
/// it was made (recorded in the reserved field `_created`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{ExpiryPolicy, SessionEngine};
///
/// // Idle timeout of 30 minutes, refreshed when under 20 minutes remain,
/// // never longer than 12 hours in all.
/// let engine = SessionEngine::builder()
///     .with_max_age(Duration::from_secs(30 * 60))
///     .with_expiry_policy(
///         ExpiryPolicy::rolling()
///             .with_refresh_below(2.0 / 3.0)
///             .with_max_lifetime(Duration::from_secs(12 * 3600)),
///     )
///     .build()?;
/// # let _ = engine;
/// # Ok::<(), sealed_session::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpiryPolicy {
    rolling: bool,
    refresh_below: f64,
    max_lifetime: Option<Duration>,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self::absolute()
    }
}

impl ExpiryPolicy {
    /// The expiry moves only on `renew()` (the default).
    #[must_use]
    pub const fn absolute() -> Self {
        Self {
            rolling: false,
            refresh_below: 0.5,
            max_lifetime: None,
        }
    }

    /// Activity extends the session, with a write only when less than half
    /// of its lifetime remains.
    #[must_use]
    pub const fn rolling() -> Self {
        Self {
            rolling: true,
            refresh_below: 0.5,
            max_lifetime: None,
        }
    }

    /// Rolling: refresh when less than `fraction` (0 to 1) of the lifetime
    /// remains (default 0.5). `1.0` refreshes on every request (a write
    /// each time); small values write rarely but let idle sessions end
    /// sooner after their last refresh.
    #[must_use]
    pub fn with_refresh_below(mut self, fraction: f64) -> Self {
        self.refresh_below = if fraction.is_nan() {
            0.5
        } else {
            fraction.clamp(0.0, 1.0)
        };
        self
    }

    /// An absolute upper bound on a session's life, whatever the activity.
    ///
    /// # Warning
    ///
    /// Without it, a rolling session used at least once per max age never
    /// ends; a stolen cookie then works for as long as the thief keeps using
    /// it.
    #[must_use]
    pub fn with_max_lifetime(mut self, max_lifetime: Duration) -> Self {
        self.max_lifetime = Some(max_lifetime);
        self
    }

    pub(crate) fn is_rolling(&self) -> bool {
        self.rolling
    }

    /// The refresh threshold in milliseconds of remaining life.
    pub(crate) fn refresh_below_ms(&self, max_age_ms: u64) -> u64 {
        // Precision loss is irrelevant at millisecond scale.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let ms = (max_age_ms as f64 * self.refresh_below) as u64;
        ms
    }

    pub(crate) fn max_lifetime_ms(&self) -> Option<u64> {
        self.max_lifetime
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
