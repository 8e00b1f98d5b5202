//! Write transactions: this process's writers queue on the store's writer lock,
//! then take SQLite's write lock with `BEGIN IMMEDIATE`, which writers of other
//! processes wait for within the busy timeout.

use es_core::Error;
use sqlx::{Sqlite, Transaction};
use tokio::sync::MutexGuard;

use crate::SqliteStore;
use crate::error::store_error;

const BEGIN: &str = include_str!("transaction/sql/begin.sql");

/// A transaction holding both write locks until it commits or is dropped.
pub(crate) struct WriteTransaction<'a> {
    /// Declared before the guard: on drop it is rolled back before the next
    /// writer of this process is let in.
    pub(crate) tx: Transaction<'static, Sqlite>,
    _writer: MutexGuard<'a, ()>,
}

impl SqliteStore {
    /// Waits for this store's earlier writers, then for SQLite's write lock.
    pub(crate) async fn begin_write(
        &self,
        context: &'static str,
    ) -> Result<WriteTransaction<'_>, Error> {
        let writer = self.writer.lock().await;
        let tx = self
            .pool
            .begin_with(BEGIN)
            .await
            .map_err(|e| store_error(context, e))?;
        Ok(WriteTransaction {
            tx,
            _writer: writer,
        })
    }
}

impl WriteTransaction<'_> {
    pub(crate) async fn commit(self, context: &'static str) -> Result<(), Error> {
        self.tx.commit().await.map_err(|e| store_error(context, e))
    }

    pub(crate) async fn rollback(self, context: &'static str) -> Result<(), Error> {
        self.tx
            .rollback()
            .await
            .map_err(|e| store_error(context, e))
    }

    /// Rolls back after a failure that is the caller's answer; should the
    /// rollback fail too, the connection still ends the transaction when it
    /// returns to the pool.
    pub(crate) async fn abandon(self) {
        let _ = self.tx.rollback().await;
    }
}
