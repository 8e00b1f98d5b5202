//! Aggregate load latency (p50, p99) by stream length, without and with
//! snapshots, beside cqrs-es + postgres-es for one length.

use std::time::Instant;

use es_core::{Aggregate, AggregateType, Repository, Storage, StreamVersion};

use super::{Plan, progress};
use crate::cqrs::Cqrs;
use crate::domain::{Account, AccountEvent, SnapAccount};
use crate::stats::{Samples, percentile_ms};

/// The stream length cqrs-es is measured at.
pub(crate) const CQRS_LENGTH: usize = 10_000;

/// Latencies at one stream length.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub(crate) length: usize,
    pub(crate) p50: Samples,
    pub(crate) p99: Samples,
    pub(crate) snap_p50: Samples,
    pub(crate) snap_p99: Samples,
    pub(crate) cqrs_p50: Samples,
    pub(crate) cqrs_p99: Samples,
    pub(crate) cqrs_snap_p50: Samples,
    pub(crate) cqrs_snap_p99: Samples,
    /// The raw read of the same rows (one query, every column the store
    /// reads, each decoded as the plain driver type), p50 in ms.
    pub(crate) raw_p50: Samples,
}

/// Appends `length` deposits to `A`'s aggregate `id`.
pub(crate) async fn fill<A: AggregateType, S: Storage>(store: &S, id: &str, length: usize) {
    let stream = es_core::StreamId::for_aggregate(A::TYPE_NAME, id).expect("stream id");
    let mut version = StreamVersion::INITIAL;
    let mut left = length;
    while left > 0 {
        let n = left.min(1_000);
        version = store
            .append(es_core::AppendRequest::new(
                stream.clone(),
                es_core::ExpectedVersion::Exact(version),
                crate::domain::deposits(n),
            ))
            .await
            .expect("append")
            .version;
        left -= n;
    }
}

/// `loads` loads of `id`; p50 and p99 in ms.
pub(crate) async fn measure<A, S>(store: &S, id: &str, length: usize, loads: usize) -> (f64, f64)
where
    A: Aggregate<Event = AccountEvent, Command = i64>,
    S: Storage,
{
    let repo = Repository::<A, S>::new(store.clone());
    let mut took = Vec::with_capacity(loads);
    for _ in 0..loads {
        let started = Instant::now();
        let loaded = repo.load(id).await.expect("load");
        took.push(started.elapsed());
        assert_eq!(loaded.version.get(), u64::try_from(length).unwrap_or(0));
    }
    took.sort();
    (percentile_ms(&took, 50), percentile_ms(&took, 99))
}

/// `loads` raw reads of `id`'s rows through sqlx: p50 in ms.
async fn raw_read<S: Storage>(store: &S, id: &str, length: usize, loads: usize) -> f64 {
    use sqlx::Row as _;
    let Some(pg) = (store as &dyn std::any::Any).downcast_ref::<es_store_postgres::PgStore>()
    else {
        return f64::NAN;
    };
    let stream = es_core::StreamId::for_aggregate(Account::TYPE_NAME, id).expect("stream id");
    let mut took = Vec::with_capacity(loads);
    for _ in 0..loads {
        let started = Instant::now();
        let rows = sqlx::query(
            "SELECT position, transaction_id::text AS xid, stream_id, version, event_id, \
             event_type, schema_version, payload, recorded_at, correlation_id, causation_id, \
             idempotency_key, headers::text AS headers FROM es_events WHERE stream_id = $1 \
             ORDER BY version",
        )
        .bind(stream.as_str())
        .fetch_all(pg.pool())
        .await
        .expect("raw read");
        let mut bytes = 0;
        for row in &rows {
            let payload: &[u8] = row.try_get("payload").expect("payload");
            let _: i64 = row.try_get("version").expect("version");
            let _: uuid::Uuid = row.try_get("event_id").expect("event id");
            bytes += payload.len();
        }
        took.push(started.elapsed());
        assert_eq!(rows.len(), length);
        assert!(bytes > 0);
    }
    took.sort();
    percentile_ms(&took, 50)
}

/// Fills one stream per length and aggregate, snapshots the snapshotted ones
/// at their head.
/// Ids are `{prefix}load-{length}`.
pub(crate) async fn prepare<S: Storage>(store: &S, plan: &Plan, prefix: &str) {
    for &(length, _) in &plan.loads {
        progress(format_args!("load: filling streams of {length} events"));
        let id = format!("{prefix}load-{length}");
        fill::<Account, S>(store, &id, length).await;
        fill::<SnapAccount, S>(store, &id, length).await;
        Repository::<SnapAccount, S>::new(store.clone())
            .take_snapshot(&id)
            .await
            .expect("snapshot");
    }
}

/// Every length, both aggregates, interleaved; cqrs-es at [`CQRS_LENGTH`].
pub(crate) async fn run<S: Storage>(store: &S, cqrs: &Cqrs, plan: &Plan) -> Vec<Row> {
    prepare(store, plan, "").await;
    let mut rows = Vec::new();
    for &(length, loads) in &plan.loads {
        progress(format_args!("load: {length} events"));
        let id = format!("load-{length}");
        let mut row = Row {
            length,
            ..Row::default()
        };
        measure::<Account, S>(store, &id, length, 1).await;
        measure::<SnapAccount, S>(store, &id, length, 1).await;
        for _ in 0..plan.repetitions {
            let (p50, p99) = measure::<Account, S>(store, &id, length, loads).await;
            row.p50.push(p50);
            row.p99.push(p99);
            let (p50, p99) = measure::<SnapAccount, S>(store, &id, length, loads).await;
            row.snap_p50.push(p50);
            row.snap_p99.push(p99);
            if length == CQRS_LENGTH {
                row.raw_p50.push(raw_read(store, &id, length, loads).await);
                if let Some(load) = cqrs.load(length, loads, None).await {
                    row.cqrs_p50.push(load.p50_ms);
                    row.cqrs_p99.push(load.p99_ms);
                }
                if let Some(load) = cqrs.load(length, loads, Some(100)).await {
                    row.cqrs_snap_p50.push(load.p50_ms);
                    row.cqrs_snap_p99.push(load.p99_ms);
                }
            }
        }
        rows.push(row);
    }
    rows
}
