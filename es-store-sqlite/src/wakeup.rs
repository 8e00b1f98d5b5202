//! Wake-ups for subscribers of the embedded store: a cheap change check with a
//! polling fallback.

use std::time::Duration;

use sqlx::SqliteConnection;
use tokio::time::Instant;

use crate::SqliteStore;

/// How often [`Wakeups::wait`] asks SQLite whether the file changed.
const CHECK_EVERY: Duration = Duration::from_millis(10);

/// Tells a subscriber when to read the global log again.
///
/// SQLite has no notifications, but `PRAGMA data_version` on a connection
/// changes whenever another connection (of this process or another) commits to
/// the file, and costs no read of the database: [`wait`](Self::wait) asks every
/// 10 ms on a connection of its own and returns when the answer changes, so an
/// event appended anywhere is seen within milliseconds. It also returns when
/// the polling interval passed or the check failed: the caller always reads
/// from its checkpoint, so a wake-up is a hint, and a missed one delays, never
/// drops, an event. Commits to the read models in the same file wake it too
/// (the caller then reads nothing new).
///
/// ```
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), es_store_sqlite::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let store = es_store_sqlite::SqliteStore::open_in(dir.path()).await?;
/// let mut wakeups = store.wakeups(Duration::from_millis(50));
/// wakeups.wait().await; // the polling interval passed
/// # Ok(()) }
/// ```
pub struct Wakeups {
    store: SqliteStore,
    connection: Option<SqliteConnection>,
    version: Option<i64>,
    poll: Duration,
}

impl std::fmt::Debug for Wakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeups")
            .field("checking", &self.connection.is_some())
            .field("poll", &self.poll)
            .finish()
    }
}

impl Wakeups {
    /// Waits for the next reason to read the global log: a commit to the
    /// file, the polling interval, or a failed check.
    pub async fn wait(&mut self) {
        let deadline = Instant::now() + self.poll;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            tokio::time::sleep(CHECK_EVERY.min(deadline - now)).await;
            match self.data_version().await {
                Some(version) if self.version.is_some_and(|v| v != version) => {
                    self.version = Some(version);
                    return;
                }
                Some(version) => self.version = Some(version),
                None => return,
            }
        }
    }

    async fn data_version(&mut self) -> Option<i64> {
        if self.connection.is_none() {
            match self.store.pool().acquire().await {
                // A connection of its own: data_version only moves for
                // commits made on other connections.
                Ok(connection) => self.connection = Some(connection.detach()),
                Err(error) => {
                    tracing::warn!(%error, "cannot connect for change checks; polling");
                    return None;
                }
            }
        }
        let connection = self.connection.as_mut()?;
        match sqlx::query_scalar::<_, i64>("PRAGMA data_version")
            .fetch_one(connection)
            .await
        {
            Ok(version) => Some(version),
            Err(error) => {
                tracing::warn!(%error, "the change check failed; reconnecting");
                self.connection = None;
                self.version = None;
                None
            }
        }
    }
}

impl es_core::Wakeup for Wakeups {
    async fn wait(&mut self) {
        Wakeups::wait(self).await;
    }
}

impl SqliteStore {
    /// Wake-ups for a subscriber of the global log: a change check every
    /// 10 ms, and a read at least every `poll` whatever it says.
    pub fn wakeups(&self, poll: Duration) -> Wakeups {
        Wakeups {
            store: self.clone(),
            connection: None,
            version: None,
            poll,
        }
    }
}
