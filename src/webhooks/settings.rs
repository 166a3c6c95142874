//! The `[webhooks]` settings.

use std::time::Duration;

/// How webhooks are delivered.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Whether receivers on loopback, private, link-local or metadata addresses are allowed
    /// (off in production: such a target could reach internal services).
    pub allow_private_targets: bool,
    /// Seconds to wait before each retry after a failed attempt: the first attempt is at once;
    /// when the list is used up the delivery fails for good. Each wait varies by ±10 %.
    pub retry_delays_secs: Vec<f64>,
    /// A subscription whose deliveries have failed for this many seconds in a row, without a
    /// success in between, is deactivated with the reason.
    pub deactivate_after_failing_secs: f64,
    /// Seconds an attempt may take (connect, send, answer).
    pub timeout_secs: f64,
    /// Milliseconds between two looks for due deliveries when nothing else wakes the worker
    /// (a commit of this process wakes it at once).
    pub poll_interval_ms: u64,
    /// Seconds a claimed delivery stays with its worker; another instance takes it over once
    /// this has passed without an answer (the holder died). Longer than `timeout_secs`.
    pub lease_secs: f64,
    /// Deliveries one worker has under way at most (claimed, being sent); it claims more as
    /// each finishes, so a slow receiver holds one of them, not the worker.
    pub batch_size: i64,
    /// Whether the server starts the delivery worker.
    pub worker: bool,
    /// Days that delivered and failed deliveries stay listed before they are deleted.
    pub keep_deliveries_days: u32,
}

impl WebhookSettings {
    /// The wait before the retry after `failed` failed attempts, without jitter; `None` when
    /// the schedule is used up.
    pub fn retry_delay(&self, failed: usize) -> Option<Duration> {
        let secs = *self.retry_delays_secs.get(failed.checked_sub(1)?)?;
        Some(secs_duration(secs))
    }

    /// The attempt timeout.
    pub fn timeout(&self) -> Duration {
        secs_duration(self.timeout_secs)
    }

    /// The lease of a claim.
    pub fn lease(&self) -> Duration {
        secs_duration(self.lease_secs)
    }

    /// Checks the values that would stall delivery.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |name: &str, what: &str| Err(format!("webhooks.{name} {what}"));
        if self
            .retry_delays_secs
            .iter()
            .any(|s| !s.is_finite() || *s < 0.0)
        {
            return bad("retry_delays_secs", "must be seconds of 0 or more");
        }
        if !(self.timeout_secs.is_finite() && self.timeout_secs > 0.0) {
            return bad("timeout_secs", "must be more than 0");
        }
        if !(self.lease_secs.is_finite() && self.lease_secs > self.timeout_secs) {
            return bad("lease_secs", "must be longer than webhooks.timeout_secs");
        }
        if !(self.deactivate_after_failing_secs.is_finite()
            && self.deactivate_after_failing_secs >= 0.0)
        {
            return bad("deactivate_after_failing_secs", "must be 0 or more");
        }
        if !(1..=500).contains(&self.batch_size) {
            return bad("batch_size", "must be between 1 and 500");
        }
        if self.poll_interval_ms == 0 {
            return bad("poll_interval_ms", "must be at least 1");
        }
        Ok(())
    }
}

/// Seconds as a duration; negative or not finite reads as zero.
pub fn secs_duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO)
}
