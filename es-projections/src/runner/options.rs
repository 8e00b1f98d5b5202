//! How a runner batches, retries and handles poison events.

use std::time::Duration;

use rand::Rng;

/// What a runner does with an event it cannot decode or apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailurePolicy {
    /// Record it in the dead letters and stop before it (the default): nothing
    /// after it is applied until an operator retries or skips it.
    #[default]
    Halt,
    /// Record it in the dead letters and go on.
    SkipAndRecord,
}

/// Exponential backoff with full jitter, with a circuit breaker: after
/// `breaker_after` consecutive failures, every wait is `breaker_cooldown`, so a
/// sink that is down is probed rarely instead of hammered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first delay.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
    /// Consecutive failures after which the circuit opens.
    pub breaker_after: u32,
    /// The wait between probes while the circuit is open.
    pub breaker_cooldown: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(20),
            max: Duration::from_secs(2),
            breaker_after: 10,
            breaker_cooldown: Duration::from_secs(5),
        }
    }
}

impl RunnerOptions {
    /// The size of the read after one of `asked` events that returned
    /// `returned`: doubled while reads come back full, up to
    /// [`catch_up_batch_size`](Self::catch_up_batch_size), and
    /// [`batch_size`](Self::batch_size) again after a short one.
    ///
    /// ```
    /// use es_projections::RunnerOptions;
    ///
    /// let options = RunnerOptions { batch_size: 500, catch_up_batch_size: 3_000, ..RunnerOptions::default() };
    /// assert_eq!(options.next_read(500, 500), 1_000);
    /// assert_eq!(options.next_read(2_000, 2_000), 3_000);
    /// assert_eq!(options.next_read(3_000, 3_000), 3_000);
    /// assert_eq!(options.next_read(3_000, 12), 500);
    /// ```
    pub fn next_read(&self, asked: usize, returned: usize) -> usize {
        let floor = self.batch_size.max(1);
        if returned < asked {
            return floor;
        }
        asked
            .saturating_mul(2)
            .min(self.catch_up_batch_size)
            .max(floor)
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        if attempt > self.breaker_after {
            return self.breaker_cooldown;
        }
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.max);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..nanos))
    }
}

/// A runner's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerOptions {
    /// Events read and committed per batch near the head of the log.
    pub batch_size: usize,
    /// The most events one batch takes while the runner is far behind (a
    /// catch-up, a rebuild). Each read that comes back full doubles the next
    /// one up to this size; a short read (the head is near) goes back to
    /// [`batch_size`](Self::batch_size). Fewer, larger commits are what a
    /// catch-up needs from sinks whose commit costs more than its writes
    /// (tantivy, a fsync); near the head the small batch keeps the read model
    /// fresh. At or below `batch_size`, every batch is `batch_size`.
    pub catch_up_batch_size: usize,
    /// Retries of the store and the sink.
    pub backoff: Backoff,
    /// Poison events: halt (default) or skip and record.
    pub failure_policy: FailurePolicy,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            catch_up_batch_size: 8_000,
            backoff: Backoff::default(),
            failure_policy: FailurePolicy::Halt,
        }
    }
}
