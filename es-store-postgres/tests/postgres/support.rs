//! Helpers shared by the PostgreSQL tests.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use es_core::{
    AppendRequest, AppendResult, Checkpoint, Error, EventId, EventStore, ExpectedVersion, Metadata,
    NewEvent, RecordedEvent, StreamId,
};
use es_store_postgres::{PgStore, mark_appender};
use sqlx::{Executor, Postgres, Transaction};

pub(crate) fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

pub(crate) fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent {
            event_id: EventId::new(),
            event_type: "Numbered".into(),
            schema_version: 1,
            payload: (i as u64).to_le_bytes().to_vec(),
            metadata: Metadata::now(),
        })
        .collect()
}

pub(crate) async fn append(
    store: &PgStore,
    s: &StreamId,
    expected: ExpectedVersion,
    n: usize,
) -> Result<AppendResult, Error> {
    store
        .append(AppendRequest::new(s.clone(), expected, events(n)))
        .await
}

/// Opens a transaction that appends one event to `s` (as the store would, with
/// its own transaction id and an early position) and holds it open for `hold`
/// before committing: the out-of-order commit the global read must survive.
pub(crate) async fn held_append(store: &PgStore, s: &StreamId, hold: Duration) -> EventId {
    let (tx, id) = open_append(store, s).await;
    tokio::time::sleep(hold).await;
    tx.commit().await.expect("commit");
    id
}

/// Begins a transaction that appends one event to `s` by hand (marked as an
/// appender first, as the store's own appends are) and returns it open: the
/// caller commits or rolls it back.
pub(crate) async fn open_append(
    store: &PgStore,
    s: &StreamId,
) -> (Transaction<'static, Postgres>, EventId) {
    let id = EventId::new();
    loop {
        let mut tx = store.pool().begin().await.expect("begin");
        mark_appender(&mut tx).await.expect("mark");
        // The store's own rule (see es_streams.last_xid): only a transaction
        // younger than the stream's last writer may append to it.
        let bumped = sqlx::query(
            "INSERT INTO es_streams (stream_id, version) VALUES ($1, 1)
             ON CONFLICT (stream_id) DO UPDATE
             SET version = es_streams.version + 1, last_xid = pg_current_xact_id()
             WHERE es_streams.last_xid < pg_current_xact_id()",
        )
        .bind(s.as_str())
        .execute(&mut *tx)
        .await
        .expect("bump");
        if bumped.rows_affected() == 0 {
            tx.rollback().await.expect("rollback");
            continue;
        }
        sqlx::query(
            "INSERT INTO es_events (stream_id, version, event_id, event_type, schema_version,
                                    payload, recorded_at)
             SELECT $1, version, $2, 'Held', 1, '\\x00', now() FROM es_streams WHERE stream_id = $1",
        )
        .bind(s.as_str())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .expect("insert");
        return (tx, id);
    }
}

/// Begins a transaction that touches no event table but draws a transaction
/// id (`how` is its one statement) and returns it open, with its backend pid.
pub(crate) async fn open_bystander(
    store: &PgStore,
    how: &'static str,
) -> (Transaction<'static, Postgres>, i32) {
    let mut tx = store.pool().begin().await.expect("begin");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await
        .expect("pid");
    (&mut *tx).execute(how).await.expect("bystander statement");
    (tx, pid)
}

/// A transaction that appends nothing but holds a transaction id for `hold`,
/// then commits or rolls back: it must not hold subscribers back, and letting
/// readers pass it must not make them skip an appender.
pub(crate) async fn bystander(store: &PgStore, writes_a_table: bool, hold: Duration, commit: bool) {
    let how = if writes_a_table {
        "INSERT INTO bystanders VALUES (1)"
    } else {
        "SELECT pg_current_xact_id()"
    };
    let (tx, _) = open_bystander(store, how).await;
    tokio::time::sleep(hold).await;
    if commit {
        tx.commit().await.expect("commit");
    } else {
        tx.rollback().await.expect("rollback");
    }
}

/// Creates the table that [`bystander`]s write.
pub(crate) async fn create_bystanders_table(store: &PgStore) {
    store
        .pool()
        .execute("CREATE TABLE bystanders (n int)")
        .await
        .expect("create bystanders");
}

/// Runs `sql` as a marked appender transaction of its own: for events
/// inserted by hand.
pub(crate) async fn append_by_hand<'q>(
    store: &PgStore,
    sql: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
) {
    let mut tx = store.pool().begin().await.expect("begin");
    mark_appender(&mut tx).await.expect("mark");
    sql.execute(&mut *tx).await.expect("insert");
    tx.commit().await.expect("commit");
}

/// A subscriber: reads the global log in small batches from a checkpoint and
/// records what it saw.
pub(crate) struct Tail {
    pub(crate) checkpoint: Checkpoint,
    pub(crate) seen: Vec<RecordedEvent>,
    /// Events that arrived with a lower position than one already seen: proof
    /// that commits happened out of position order.
    pub(crate) late_arrivals: usize,
}

impl Tail {
    pub(crate) fn new() -> Self {
        Self {
            checkpoint: Checkpoint::START,
            seen: Vec::new(),
            late_arrivals: 0,
        }
    }

    pub(crate) async fn poll(&mut self, store: &PgStore, batch: usize) -> usize {
        let page = store
            .read_all(self.checkpoint, batch)
            .await
            .expect("read_all");
        let n = page.len();
        for event in page {
            assert!(event.checkpoint() > self.checkpoint, "checkpoints increase");
            if self
                .seen
                .iter()
                .rev()
                .take(64)
                .any(|seen| seen.position > event.position)
            {
                self.late_arrivals += 1;
            }
            self.checkpoint = event.checkpoint();
            self.seen.push(event);
        }
        n
    }

    /// Polls until `count` events were seen, or panics after 30 s.
    pub(crate) async fn until(&mut self, store: &PgStore, count: usize, batch: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.seen.len() < count {
            assert!(
                Instant::now() < deadline,
                "the subscriber saw {} of {count} events",
                self.seen.len()
            );
            if self.poll(store, batch).await == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }

    /// Asserts each event was seen exactly once and every stream in version
    /// order without gaps.
    #[track_caller]
    pub(crate) fn assert_exactly_once_in_stream_order(&self) {
        let mut ids = std::collections::HashSet::new();
        let mut versions: HashMap<&StreamId, u64> = HashMap::new();
        for e in &self.seen {
            assert!(ids.insert(e.event_id), "event {} seen twice", e.event_id);
            let last = versions.entry(&e.stream_id).or_insert(0);
            assert_eq!(
                e.version.get(),
                *last + 1,
                "stream {} out of order or with a gap",
                e.stream_id
            );
            *last = e.version.get();
        }
    }
}

/// The backend pid of the first session matching `predicate_sql` (a WHERE
/// clause over pg_stat_activity), waiting up to 10 s for it to appear.
pub(crate) async fn backend_pid(store: &PgStore, predicate_sql: &'static str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sql = format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND {predicate_sql} LIMIT 1"
        );
        let pid: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_optional(store.pool())
            .await
            .expect("pg_stat_activity");
        if let Some(pid) = pid {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "no backend matched {predicate_sql}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) async fn terminate(store: &PgStore, pid: i32) {
    store
        .pool()
        .execute(sqlx::query("SELECT pg_terminate_backend($1)").bind(pid))
        .await
        .expect("pg_terminate_backend");
}
