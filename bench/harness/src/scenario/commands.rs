//! Commands per second (load, decide, append) for a deposit workload, beside
//! raw single-row insert transactions and cqrs-es + postgres-es; and the
//! contended case, many clients on one account.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use es_core::{Repository, Storage};
use es_store_postgres::PgStore;

use super::{Plan, progress};
use crate::cqrs::{Cqrs, CqrsRun};
use crate::domain::Account;
use crate::stats::Samples;

/// Commands/s of one client count.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) clients: usize,
    /// With the repository's state cache.
    pub(crate) es: Samples,
    /// Without it: every command loads the account.
    pub(crate) es_uncached: Samples,
    pub(crate) raw: Samples,
    pub(crate) cqrs: Samples,
}

/// The contended case.
#[derive(Debug, Clone, Default)]
pub(crate) struct Contention {
    pub(crate) clients: usize,
    pub(crate) es: Samples,
    /// Errors the repository surfaced (conflicts that outlasted its retries).
    pub(crate) es_errors: u64,
    /// Conflicts it retried.
    pub(crate) es_retries: u64,
    pub(crate) cqrs: Samples,
    /// Errors cqrs-es surfaced (it does not retry conflicts).
    pub(crate) cqrs_errors: u64,
}

/// What one measurement counted.
#[derive(Debug, Default)]
pub(crate) struct Counted {
    pub(crate) succeeded: u64,
    pub(crate) errors: u64,
    pub(crate) retries: u64,
    pub(crate) seconds: f64,
}

impl Counted {
    pub(crate) fn rate(&self) -> f64 {
        self.succeeded as f64 / self.seconds.max(1e-9)
    }
}

/// `clients` tasks depositing for `time`, each on its own fresh account, or
/// all on one (`same_account`); through one repository, with its state cache
/// when `cached`.
pub(crate) async fn framework<S: Storage>(
    store: &S,
    tag: &str,
    clients: usize,
    time: Duration,
    same_account: bool,
    cached: bool,
) -> Counted {
    let mut repo = Repository::<Account, S>::new(store.clone());
    repo = if cached {
        repo.with_cache(10_000)
    } else {
        repo.without_cache()
    };
    let repo = Arc::new(repo);
    let (succeeded, errors, retries) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let repo = Arc::clone(&repo);
            let (succeeded, errors, retries) = (
                Arc::clone(&succeeded),
                Arc::clone(&errors),
                Arc::clone(&retries),
            );
            let account = if same_account {
                format!("cmd-{tag}")
            } else {
                format!("cmd-{tag}-{c}")
            };
            tokio::spawn(async move {
                while started.elapsed() < time {
                    match repo.execute(&account, 1).await {
                        Ok(done) => {
                            succeeded.fetch_add(1, Ordering::Relaxed);
                            retries.fetch_add(u64::from(done.retries), Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    let seconds = started.elapsed().as_secs_f64();
    let counted = Counted {
        succeeded: succeeded.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        retries: retries.load(Ordering::Relaxed),
        seconds,
    };
    // Nothing lost or doubled: the balances equal the successes.
    let mut total = 0;
    let accounts: Vec<String> = if same_account {
        vec![format!("cmd-{tag}")]
    } else {
        (0..clients).map(|c| format!("cmd-{tag}-{c}")).collect()
    };
    for account in accounts {
        total += repo.load(&account).await.expect("load").state.balance;
    }
    assert_eq!(
        u64::try_from(total).unwrap_or(0),
        counted.succeeded,
        "balances"
    );
    counted
}

/// `clients` tasks each inserting one row per transaction for `time`.
async fn raw(store: &PgStore, tag: &str, clients: usize, time: Duration) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let pool = store.pool().clone();
            let count = Arc::clone(&count);
            let stream = format!("rawcmd-{tag}-{c}");
            tokio::spawn(async move {
                let mut version: i64 = 0;
                while started.elapsed() < time {
                    version += 1;
                    let event = crate::domain::deposits(1).remove(0);
                    let mut tx = pool.begin().await.expect("begin");
                    sqlx::query(
                        "INSERT INTO raw_events (stream_id, version, event_id, event_type, \
                         schema_version, payload, recorded_at, headers) \
                         VALUES ($1, $2, $3, $4, 1, $5, $6, '{}'::jsonb)",
                    )
                    .bind(&stream)
                    .bind(version)
                    .bind(*event.event_id.as_uuid())
                    .bind(&event.event_type)
                    .bind(&event.payload)
                    .bind(event.metadata.recorded_at)
                    .execute(&mut *tx)
                    .await
                    .expect("insert");
                    tx.commit().await.expect("commit");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// 1 and 8 clients on distinct accounts, then 8 on one.
pub(crate) async fn run(store: &PgStore, cqrs: &Cqrs, plan: &Plan) -> (Vec<Row>, Contention) {
    super::append::prepare(store).await;
    let mut rows = Vec::new();
    for clients in [1usize, 8] {
        progress(format_args!("commands: {clients} client(s)"));
        let mut row = Row {
            clients,
            es: Samples::default(),
            es_uncached: Samples::default(),
            raw: Samples::default(),
            cqrs: Samples::default(),
        };
        let warm = format!("warm-{clients}");
        framework(store, &warm, clients, plan.command_time / 3, false, true).await;
        for run in 0..plan.repetitions {
            let tag = format!("{run}-{clients}");
            let cached = framework(store, &tag, clients, plan.command_time, false, true).await;
            row.es.push(cached.rate());
            let untag = format!("u{tag}");
            let uncached = framework(store, &untag, clients, plan.command_time, false, false).await;
            row.es_uncached.push(uncached.rate());
            row.raw
                .push(raw(store, &tag, clients, plan.command_time).await);
            if let Some(done) = cqrs.commands(clients, plan.command_time, false).await {
                row.cqrs.push(done.per_second);
            }
        }
        rows.push(row);
    }
    progress("contention: 8 clients on one account");
    let mut contention = Contention {
        clients: 8,
        ..Contention::default()
    };
    for run in 0..plan.repetitions {
        let done = framework(
            store,
            &format!("hot-{run}"),
            8,
            plan.command_time,
            true,
            true,
        )
        .await;
        contention.es.push(done.rate());
        contention.es_errors += done.errors;
        contention.es_retries += done.retries;
        if let Some(CqrsRun {
            per_second,
            conflicts,
            other_errors,
            ..
        }) = cqrs.commands(8, plan.command_time, true).await
        {
            contention.cqrs.push(per_second);
            contention.cqrs_errors += conflicts + other_errors;
        }
    }
    (rows, contention)
}
