//! The cqrs-es + postgres-es reference, run as a subprocess: the binary of
//! `bench/cqrs-reference`, a crate outside the workspace (it needs sqlx 0.8
//! beside the workspace's 0.9).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::scenario::headline::ChildRun;

/// One commands run of the reference.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CqrsRun {
    pub(crate) per_second: f64,
    pub(crate) conflicts: u64,
    pub(crate) other_errors: u64,
    pub(crate) verified: bool,
}

/// One load run of the reference.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CqrsLoad {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

/// The reference, if built.
#[derive(Debug, Clone)]
pub(crate) struct Cqrs {
    binary: Option<PathBuf>,
    database_url: String,
}

impl Cqrs {
    /// Builds the reference (release) and sets up its tables in the
    /// database at `database_url`; `None` binary when `skip`.
    pub(crate) async fn prepare(database_url: &str, skip: bool) -> anyhow::Result<Self> {
        if skip {
            return Ok(Self {
                binary: None,
                database_url: database_url.to_owned(),
            });
        }
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cqrs-reference");
        super::scenario::progress("building the cqrs-es reference (release)");
        let status = tokio::process::Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(dir.join("Cargo.toml"))
            .status()
            .await?;
        anyhow::ensure!(status.success(), "building bench/cqrs-reference failed");
        let cqrs = Self {
            binary: Some(dir.join("target/release/cqrs-reference")),
            database_url: database_url.to_owned(),
        };
        cqrs.call(&["setup"]).await?;
        Ok(cqrs)
    }

    /// Whether it runs.
    pub(crate) fn enabled(&self) -> bool {
        self.binary.is_some()
    }

    async fn call(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let binary = self
            .binary
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the reference is not built"))?;
        let output = tokio::process::Command::new(binary)
            .arg("--database-url")
            .arg(&self.database_url)
            .args(args)
            .output()
            .await?;
        anyhow::ensure!(
            output.status.success(),
            "cqrs-reference {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(serde_json::from_slice(&output.stdout)?)
    }

    /// `clients` clients depositing for `time`.
    pub(crate) async fn commands(
        &self,
        clients: usize,
        time: Duration,
        same_account: bool,
    ) -> Option<CqrsRun> {
        if !self.enabled() {
            return None;
        }
        let clients = clients.to_string();
        let seconds = format!("{:.3}", time.as_secs_f64());
        let mut args = vec!["commands", "--clients", &clients, "--seconds", &seconds];
        if same_account {
            args.push("--same-account");
        }
        let value = self.call(&args).await.expect("the cqrs-es reference runs");
        let run: CqrsRun = serde_json::from_value(value).expect("its output");
        assert!(run.verified, "cqrs-es lost or doubled a deposit");
        Some(run)
    }

    /// One phase of the headline workload (see `scenario::headline`), on
    /// fresh accounts.
    pub(crate) async fn headline(&self, phase: &str) -> Option<ChildRun> {
        if !self.enabled() {
            return None;
        }
        let value = self
            .call(&["headline", "--phase", phase])
            .await
            .expect("the cqrs-es reference runs");
        let run: ChildRun = serde_json::from_value(value).expect("its output");
        assert!(run.verified, "cqrs-es lost or doubled a deposit ({phase})");
        Some(run)
    }

    /// `loads` loads of an aggregate of `events` events.
    pub(crate) async fn load(
        &self,
        events: usize,
        loads: usize,
        snapshot: Option<usize>,
    ) -> Option<CqrsLoad> {
        if !self.enabled() {
            return None;
        }
        let (events, loads) = (events.to_string(), loads.to_string());
        let size = snapshot.map(|s| s.to_string());
        let mut args = vec!["load", "--events", &events, "--loads", &loads];
        if let Some(size) = &size {
            args.extend(["--snapshot-size", size]);
        }
        let value = self.call(&args).await.expect("the cqrs-es reference runs");
        Some(serde_json::from_value(value).expect("its output"))
    }
}
