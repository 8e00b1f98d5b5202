//! One active runner per projection across processes: a PostgreSQL advisory
//! lock held on a dedicated connection.

use std::time::Duration;

use es_core::Error;
use sqlx::{Connection, PgConnection};

use crate::PgStore;
use crate::error::store_error;

/// The first key of the two-int advisory lock: this framework's projections.
const NAMESPACE: i32 = 0x6573_0001;

/// The second key: a stable 32-bit hash (FNV-1a) of the projection's name.
fn name_key(projection: &str) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in projection.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// The right to run a projection, held while this value lives.
///
/// The lock lives on a connection of its own, outside the pool: dropping the
/// value closes the connection, and a process that dies (or a connection that
/// is killed) releases the lock with it, so another runner can take over. The
/// sinks' checkpoint compare-and-set still fences a runner that lost its lock
/// without noticing.
#[derive(Debug)]
pub struct RunnerLock {
    connection: PgConnection,
    projection: String,
}

impl RunnerLock {
    /// The projection it is held for.
    pub fn projection(&self) -> &str {
        &self.projection
    }

    /// Whether the lock is still held (its connection still answers).
    pub async fn is_held(&mut self) -> bool {
        self.connection.ping().await.is_ok()
    }

    /// The backend pid of the lock's connection (for diagnostics).
    pub async fn backend_pid(&mut self) -> Result<i32, Error> {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut self.connection)
            .await
            .map_err(|e| store_error("reading the runner lock's backend", e))
    }

    /// Releases the lock. The unlock is explicit (not left to the connection's
    /// end, which the server processes asynchronously), so the lock is free
    /// when this returns.
    pub async fn release(mut self) -> Result<(), Error> {
        sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(NAMESPACE)
            .bind(name_key(&self.projection))
            .execute(&mut self.connection)
            .await
            .map_err(|e| store_error("releasing a runner lock", e))?;
        self.connection
            .close()
            .await
            .map_err(|e| store_error("releasing a runner lock", e))
    }
}

impl PgStore {
    /// Takes the runner lock of `projection` if no other runner holds it.
    pub async fn try_lock_projection(&self, projection: &str) -> Result<Option<RunnerLock>, Error> {
        let mut connection = self
            .pool()
            .acquire()
            .await
            .map_err(|e| store_error("connecting for a runner lock", e))?
            .detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(NAMESPACE)
            .bind(name_key(projection))
            .fetch_one(&mut connection)
            .await
            .map_err(|e| store_error("taking a runner lock", e))?;
        if !locked {
            let _ = connection.close().await;
            return Ok(None);
        }
        Ok(Some(RunnerLock {
            connection,
            projection: projection.to_owned(),
        }))
    }

    /// Waits until the runner lock of `projection` is free and takes it,
    /// trying every `retry`.
    pub async fn lock_projection(
        &self,
        projection: &str,
        retry: Duration,
    ) -> Result<RunnerLock, Error> {
        loop {
            if let Some(lock) = self.try_lock_projection(projection).await? {
                return Ok(lock);
            }
            tokio::time::sleep(retry).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::name_key;

    #[test]
    fn name_keys_are_stable_and_spread() {
        assert_eq!(name_key("balances"), name_key("balances"));
        assert_ne!(name_key("balances"), name_key("search"));
    }
}
