//! `es-bench`: the framework's benchmark report. Every scenario runs beside
//! its reference in the same run, so that the report quotes ratios that hold
//! on a noisy machine; every figure is the median of the repetitions, with
//! min and max.
//!
//! ```sh
//! cargo run --release -p es-bench -- report            # docs/benchmarks.md and docs/benchmarks/*.svg
//! cargo run --release -p es-bench -- report --quick --out /tmp/quick.md   # a smoke run
//! ```
//!
//! Needs PostgreSQL (`ES_TEST_DATABASE_URL`, default the local server) and
//! Redis (`ES_TEST_REDIS_URL`); `bash .ci/services` starts them. The
//! cqrs-es reference is built from `bench/cqrs-reference` (`--skip-cqrs`
//! leaves it out, and the report says so).

mod chart;
mod cqrs;
mod domain;
mod report;
mod scenario;
mod stats;

use std::path::PathBuf;

use anyhow::Context as _;

use crate::scenario::{Plan, progress};

/// What the command line asked for.
struct Args {
    quick: bool,
    skip_cqrs: bool,
    out: Option<PathBuf>,
    only: Option<Vec<String>>,
}

fn usage() -> anyhow::Error {
    anyhow::anyhow!(
        "usage: es-bench report [--quick] [--skip-cqrs] [--out FILE.md] [--only headline,append,commands,load,projections,personal,embedded]"
    )
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut parsed = Args {
        quick: false,
        skip_cqrs: false,
        out: None,
        only: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => parsed.quick = true,
            "--skip-cqrs" => parsed.skip_cqrs = true,
            "--out" => parsed.out = Some(args.next().ok_or_else(usage)?.into()),
            "--only" => {
                parsed.only = Some(
                    args.next()
                        .ok_or_else(usage)?
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                );
            }
            _ => return Err(usage()),
        }
    }
    Ok(parsed)
}

fn redis_url() -> String {
    std::env::var("ES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("child-projection") => {
            let sink = args.next().ok_or_else(usage)?;
            let database_url = args.next().ok_or_else(usage)?;
            let redis = args.next().ok_or_else(usage)?;
            let raw = args.next().as_deref() == Some("raw");
            runtime.block_on(scenario::projections::child(
                &sink,
                &database_url,
                &redis,
                raw,
            ));
            Ok(())
        }
        Some("child-headline") => {
            let mut next = || args.next().ok_or_else(usage);
            let (database_url, phase, variant, prefix) = (next()?, next()?, next()?, next()?);
            runtime.block_on(scenario::headline::child(
                &database_url,
                &phase,
                &variant,
                &prefix,
            ));
            Ok(())
        }
        Some("report") => runtime.block_on(report(parse(args)?)),
        _ => Err(usage()),
    }
}

async fn report(args: Args) -> anyhow::Result<()> {
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let wanted = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|n| n == name))
    };
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = args.out.clone().unwrap_or_else(|| {
        if args.quick {
            std::env::temp_dir().join("es-bench-quick.md")
        } else {
            workspace.join("docs/benchmarks.md")
        }
    });
    let started = std::time::Instant::now();
    let database_url = es_store_postgres::testing::fresh_database_url().await;
    let pg = es_store_postgres::PgStore::connect(&database_url)
        .await
        .context("connecting to the benchmark database")?;
    pg.migrate().await.context("migrating")?;
    let cqrs_url = es_store_postgres::testing::fresh_database_url().await;
    let cqrs = cqrs::Cqrs::prepare(&cqrs_url, args.skip_cqrs).await?;
    let redis = redis_url();
    let mut results = report::Results {
        plan: plan.clone(),
        cqrs: cqrs.enabled(),
        ..report::Results::default()
    };
    if wanted("headline") {
        results.headline = Some(scenario::headline::run(&pg, &database_url, &cqrs, &plan).await);
    }
    if wanted("append") {
        results.append = scenario::append::run(&pg, &plan).await;
    }
    if wanted("commands") {
        let (rows, contention) = scenario::commands::run(&pg, &cqrs, &plan).await;
        results.commands = rows;
        results.contention = Some(contention);
    }
    if wanted("load") {
        results.load = scenario::load::run(&pg, &cqrs, &plan).await;
    }
    if wanted("personal") {
        results.personal = Some(scenario::personal::run(&pg, &plan).await);
    }
    if wanted("embedded") {
        let sqlite = es_store_sqlite::testing::fresh_store().await;
        results.embedded = scenario::embedded::run(&sqlite, &pg, &plan).await;
    }
    if wanted("projections") {
        // A database of its own: the projections read the whole log.
        let url = es_store_postgres::testing::fresh_database_url().await;
        let store = es_store_postgres::PgStore::connect(&url).await?;
        store.migrate().await?;
        let (events, rows) = scenario::projections::run(&url, &redis, &plan).await;
        results.projection_events = events;
        results.projections = rows;
    }
    results.seconds = started.elapsed().as_secs_f64();
    results.machine = report::machine(&pg, &redis).await;
    let charts_dir = out
        .parent()
        .map(|p| p.join("benchmarks"))
        .unwrap_or_else(|| PathBuf::from("benchmarks"));
    std::fs::create_dir_all(&charts_dir)?;
    for (name, svg) in report::charts(&results) {
        std::fs::write(charts_dir.join(name), svg)?;
    }
    std::fs::write(&out, report::markdown(&results))?;
    progress(format_args!(
        "wrote {} and its charts in {}",
        out.display(),
        charts_dir.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let args = parse(
            ["--quick", "--only", "append,load"]
                .map(String::from)
                .into_iter(),
        )
        .unwrap();
        assert!(args.quick && !args.skip_cqrs);
        assert_eq!(args.only.unwrap(), ["append", "load"]);
        assert!(parse(["--bogus"].map(String::from).into_iter()).is_err());
        assert!(parse(["--out"].map(String::from).into_iter()).is_err());
    }
}
