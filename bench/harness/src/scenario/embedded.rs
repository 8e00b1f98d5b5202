//! The embedded store beside PostgreSQL: the append (one writer), commands
//! (one client) and load (no snapshots) scenarios on both, interleaved.

use es_store_postgres::PgStore;
use es_store_sqlite::SqliteStore;

use super::{Plan, progress};
use crate::domain::Account;
use crate::stats::Samples;

/// One figure on both stores.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub(crate) figure: String,
    /// Whether higher is better (throughput) or lower (latency).
    pub(crate) higher_is_better: bool,
    pub(crate) sqlite: Samples,
    pub(crate) postgres: Samples,
}

fn row(figure: String, higher_is_better: bool) -> Row {
    Row {
        figure,
        higher_is_better,
        ..Row::default()
    }
}

/// Every figure, SQLite and PostgreSQL taking turns.
pub(crate) async fn run(sqlite: &SqliteStore, pg: &PgStore, plan: &Plan) -> Vec<Row> {
    progress("embedded: preparing");
    let loads: Vec<(usize, usize)> = plan
        .loads
        .iter()
        .copied()
        .filter(|(l, _)| *l <= 10_000)
        .collect();
    let small = Plan {
        loads: loads.clone(),
        ..plan.clone()
    };
    super::load::prepare(sqlite, &small, "emb-").await;
    super::load::prepare(pg, &small, "emb-").await;
    let mut rows: Vec<Row> = plan
        .appends
        .iter()
        .map(|(batch, _)| row(format!("append, batches of {batch} (events/s)"), true))
        .collect();
    rows.push(row("commands, 1 client (commands/s)".into(), true));
    for (length, _) in &loads {
        rows.push(row(format!("load, {length} events, p50 (ms)"), false));
    }
    for run in 0..plan.repetitions {
        progress(format_args!("embedded: repetition {}", run + 1));
        let mut i = 0;
        for &(batch, count) in &plan.appends {
            let tag = format!("emb-{run}-{batch}");
            rows[i]
                .sqlite
                .push(super::append::framework(sqlite, &tag, batch, count, 1).await);
            rows[i]
                .postgres
                .push(super::append::framework(pg, &tag, batch, count, 1).await);
            i += 1;
        }
        let tag = format!("emb-{run}");
        rows[i].sqlite.push(
            super::commands::framework(sqlite, &tag, 1, plan.command_time, false, true)
                .await
                .rate(),
        );
        rows[i].postgres.push(
            super::commands::framework(pg, &tag, 1, plan.command_time, false, true)
                .await
                .rate(),
        );
        i += 1;
        for &(length, count) in &loads {
            let id = format!("emb-load-{length}");
            rows[i].sqlite.push(
                super::load::measure::<Account, _>(sqlite, &id, length, count)
                    .await
                    .0,
            );
            rows[i].postgres.push(
                super::load::measure::<Account, _>(pg, &id, length, count)
                    .await
                    .0,
            );
            i += 1;
        }
    }
    rows
}
