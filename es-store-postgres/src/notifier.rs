//! Wake-ups sent after appends, outside their transactions.
//!
//! A `NOTIFY` in the appending transaction would serialise every append's
//! commit behind PostgreSQL's one notification-queue lock. Instead an append,
//! once committed, pokes this process's [`Notifier`]: subscribers in this
//! process are woken at once, in memory, and one `NOTIFY` is sent for the
//! others on the pool, on its own; pokes that arrive while it is in flight
//! are answered by a single next one, at most one per [`NOTIFY_GAP`]. Wake-ups stay hints: a subscriber
//! reads from its checkpoint, and polls at least every interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::PgPool;
use tokio::sync::watch;

use crate::wakeup::CHANNEL;

/// The least time between two `NOTIFY`s of one pool.
const NOTIFY_GAP: std::time::Duration = std::time::Duration::from_millis(5);

/// Sends the wake-ups of one pool's appends (shared by a store's clones).
#[derive(Debug)]
pub(crate) struct Notifier {
    /// Counts pokes, for the subscribers of this process.
    local: watch::Sender<u64>,
    /// A `NOTIFY` is on its way.
    sending: AtomicBool,
    /// Pokes arrived since it left.
    pending: AtomicBool,
}

impl Notifier {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            local: watch::channel(0).0,
            sending: AtomicBool::new(false),
            pending: AtomicBool::new(false),
        })
    }

    /// What subscribers of this process wait on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.local.subscribe()
    }

    /// Events were committed: wake this process's subscribers, and the
    /// others through one `NOTIFY` (coalesced with any other poke meanwhile).
    pub(crate) fn poke(self: &Arc<Self>, pool: &PgPool) {
        self.local.send_modify(|n| *n = n.wrapping_add(1));
        self.pending.store(true, Ordering::Release);
        if self.sending.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.sending.store(false, Ordering::Release);
            return;
        };
        let (this, pool) = (Arc::clone(self), pool.clone());
        runtime.spawn(async move {
            loop {
                this.pending.store(false, Ordering::Release);
                let started = tokio::time::Instant::now();
                if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANNEL)
                    .execute(&pool)
                    .await
                {
                    // Subscribers elsewhere poll: a lost wake-up only delays.
                    tracing::debug!(%error, "sending a wake-up failed");
                }
                // Pokes of the next moments share the next NOTIFY: at most
                // one per gap, so that a busy writer does not double the
                // server's statements (an isolated append still wakes at once).
                tokio::time::sleep_until(started + NOTIFY_GAP).await;
                this.sending.store(false, Ordering::Release);
                // A poke that came while this one was in flight, and found it
                // sending, left the next one to us.
                if !this.pending.load(Ordering::Acquire)
                    || this.sending.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Notifier;

    /// A poke reaches this process's subscribers in memory, whatever becomes
    /// of the NOTIFY (here: a pool that never connects).
    #[tokio::test]
    async fn a_poke_wakes_this_process_in_memory() {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://127.0.0.1:1/none")
            .expect("a lazy pool");
        let notifier = Notifier::new();
        let mut subscriber = notifier.subscribe();
        subscriber.mark_unchanged();
        assert!(!subscriber.has_changed().expect("open"));
        notifier.poke(&pool);
        assert!(subscriber.has_changed().expect("open"));
        subscriber.mark_unchanged();
        notifier.poke(&pool);
        notifier.poke(&pool);
        assert!(subscriber.has_changed().expect("open"));
    }
}
