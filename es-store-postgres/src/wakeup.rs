//! Wake-ups for subscribers: LISTEN/NOTIFY with a polling fallback.

use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::PgStore;

/// The channel the append trigger notifies, once per appending statement.
pub(crate) const CHANNEL: &str = "es_events";

/// Tells a subscriber when to read the global log again.
///
/// [`wait`](Self::wait) returns when an append was notified or when the polling
/// interval passed, whichever comes first; a lost listener connection also
/// returns (so the caller reads and misses nothing) and is re-established on the
/// next call. Notifications are only hints: the caller always reads from its
/// checkpoint, so a lost or coalesced notification delays, never drops, an event.
pub struct Wakeups {
    store: PgStore,
    listener: Option<PgListener>,
    /// Appends of this process, woken in memory.
    local: tokio::sync::watch::Receiver<u64>,
    poll: Duration,
}

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeups")
            .field("listening", &self.listener.is_some())
            .field("poll", &self.poll)
            .finish()
    }
}

/// Why [`Wakeups::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// An append was notified.
    Notified,
    /// The polling interval passed.
    Poll,
    /// The listener connection failed; read to catch up.
    Reconnect,
}

impl Wakeups {
    /// Waits for the next reason to read the global log.
    pub async fn wait(&mut self) -> Wakeup {
        if self.listener.is_none() {
            match PgListener::connect_with(self.store.pool()).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => self.listener = Some(listener),
                    Err(error) => {
                        tracing::warn!(%error, "cannot LISTEN; polling");
                    }
                },
                Err(error) => tracing::warn!(%error, "cannot connect a listener; polling"),
            }
            if self.listener.is_none() {
                tokio::time::sleep(self.poll).await;
                return Wakeup::Reconnect;
            }
        }
        let Some(listener) = self.listener.as_mut() else {
            return Wakeup::Reconnect;
        };
        let local = &mut self.local;
        let received = tokio::select! {
            received = tokio::time::timeout(self.poll, listener.try_recv()) => received,
            changed = local.changed() => {
                if changed.is_ok() {
                    return Wakeup::Notified;
                }
                // The store is gone; the listener and the timer still work.
                tokio::time::timeout(self.poll, listener.try_recv()).await
            }
        };
        match received {
            Err(_) => Wakeup::Poll,
            Ok(Ok(Some(_))) => {
                // Drain what else is already queued: one read serves them all.
                Wakeup::Notified
            }
            Ok(Ok(None)) | Ok(Err(_)) => {
                // The connection was lost: notifications sent meanwhile are gone,
                // so the caller must read now.
                self.listener = None;
                Wakeup::Reconnect
            }
        }
    }
}

impl PgStore {
    /// Wake-ups for a subscriber, polling every `poll` at the latest.
    pub fn wakeups(&self, poll: Duration) -> Wakeups {
        let mut local = self.local_wakeups();
        local.mark_unchanged();
        Wakeups {
            store: self.clone(),
            listener: None,
            local,
            poll,
        }
    }
}

impl es_core::Wakeup for Wakeups {
    async fn wait(&mut self) {
        Wakeups::wait(self).await;
    }
}
