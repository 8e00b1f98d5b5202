//! The appender mark: a transaction that appends events says so before it
//! draws its transaction id, so that subscribers wait for appenders only.
//!
//! The global read stops below the oldest open transaction that may append
//! (see `event_store/sql/read_horizon.sql`). Which ones may: those that hold
//! the mark, a shared transaction-level advisory lock on a fixed key, taken
//! before the transaction has a transaction id and held until it ends. The
//! store's own appends take it in their statement; [`mark_appender`] takes it
//! for events appended by hand.

use sqlx::PgConnection;

use crate::Error;

/// The first key of the mark's two-int advisory lock: this framework's
/// appenders (the runner locks use `0x6573_0001`).
pub(crate) const MARK_NAMESPACE: i32 = 0x6573_0002;

/// The second key of the mark.
pub(crate) const MARK_OBJECT: i32 = 0;

const MARK: &str = include_str!("appender/sql/mark.sql");

/// Takes the mark; `false` when refused (the transaction wrote without it).
pub(crate) async fn take_mark(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(MARK)
        .bind(MARK_NAMESPACE)
        .bind(MARK_OBJECT)
        .fetch_one(conn)
        .await
}

/// Marks the current transaction as one that appends events, which makes
/// subscribers of the global log wait for it.
///
/// [`PgStore`](crate::PgStore)'s own appends mark themselves. Call this only
/// to insert into `es_events` in a transaction of your own, and call it
/// first, before any write: subscribers read past open transactions that
/// have written without the mark, so events of a transaction marked late
/// could be skipped. A transaction that already has a transaction id (it
/// wrote something) and no mark is refused with
/// [`Error::AppenderMarkedLate`]; calling it again in a marked transaction is
/// fine. The mark is released when the transaction ends, and when a
/// savepoint taken before it is rolled back to (so mark outside savepoints
/// that may roll back). The mark is the shared transaction-level advisory
/// lock `pg_advisory_xact_lock_shared(0x6573_0002, 0)`, for SQL clients that
/// cannot call this function.
///
/// ```no_run
/// # async fn run(store: &es_store_postgres::PgStore) -> Result<(), Box<dyn std::error::Error>> {
/// let mut tx = store.pool().begin().await?;
/// es_store_postgres::mark_appender(&mut tx).await?;
/// // … your own writes, and the INSERT INTO es_events …
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub async fn mark_appender(conn: &mut PgConnection) -> Result<(), Error> {
    let marked = take_mark(conn)
        .await
        .map_err(Error::database("marking an appender"))?;
    if marked {
        Ok(())
    } else {
        Err(Error::AppenderMarkedLate)
    }
}
