//! The CLI kit as a real binary: the `ops` example (an application embedding
//! the kit), run against PostgreSQL and the embedded SQLite default, checking
//! output and exit codes, error paths included.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use es_app::testing::TEST_MASTER_KEY;
use es_app::{Config, Store};
use es_core::{Snapshot, SnapshotStore, StreamId, StreamVersion};
use serde_json::Value;

/// A second master key, for rotations.
const NEW_MASTER_KEY: &str = "new:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// The `ops` example, built once per test run with the cargo that builds
/// these tests, into their target directory: always up to date, even when
/// only this test target was asked for (`cargo test --test app` does not
/// build examples).
pub(crate) fn ops_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_ops).clone()
}

fn build_ops() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    // target/<profile>/deps/<test>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test executable in target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("the target directory");
    let mut cargo = std::process::Command::new(env!("CARGO"));
    cargo
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "--example",
            "ops",
        ])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        cargo.arg("--release");
    }
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building the ops example failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["target"]["name"] == "ops")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reports the ops executable")
}

/// The binary in `dir`, with none of the configuration of this process's
/// environment.
pub(crate) struct Ops {
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
}

/// What a run gave.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    #[track_caller]
    pub(crate) fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    /// A failure with `--json`: the exit code and `{"error", "message"}`.
    #[track_caller]
    pub(crate) fn json_error(&self, kind: &str, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let json = self.json();
        assert_eq!(json["error"], kind, "{json}");
        assert_eq!(self.stdout.trim().lines().count(), 1, "one line");
        json["message"].as_str().expect("a message").to_owned()
    }

    /// A failure in text: the exit code and one `error: …` line on stderr.
    #[track_caller]
    pub(crate) fn text_error(&self, code: i32) -> String {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let line = self.stderr.trim();
        assert_eq!(line.lines().count(), 1, "one line: {line}");
        line.strip_prefix("error: ")
            .unwrap_or_else(|| panic!("`error: …`: {line}"))
            .to_owned()
    }
}

impl Ops {
    pub(crate) fn embedded(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            env: Vec::new(),
        }
    }

    pub(crate) fn postgres(dir: &Path, url: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            env: vec![("DATABASE_URL", url.to_owned())],
        }
    }

    pub(crate) fn env(mut self, name: &'static str, value: &str) -> Self {
        self.env.push((name, value.to_owned()));
        self
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let mut command = std::process::Command::new(ops_binary());
        command.current_dir(&self.dir).args(args);
        for name in [
            "DATABASE_URL",
            "REDIS_URL",
            "ES_DATA_DIR",
            "ES_MASTER_KEY",
            "ES_MASTER_KEY_FILE",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let Output {
            status,
            stdout,
            stderr,
        } = command.output().expect("the ops binary runs");
        Run {
            code: status.code().expect("exited, not killed"),
            stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
        }
    }
}

/// The life of an account on the embedded default: no configuration at all.
#[test]
fn the_embedded_default_needs_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let ops = Ops::embedded(dir.path());

    let run = ops.run(&["migrate"]).ok();
    assert!(
        run.stdout.contains("migrated the sqlite store"),
        "{}",
        run.stdout
    );
    assert!(
        dir.path().join("data/es.sqlite3").exists(),
        "./data by default"
    );

    let seeded = ops
        .run(&[
            "seed",
            "acc-1",
            "owner-1",
            "Ada Lovelace",
            "--deposits",
            "2",
        ])
        .ok();
    assert!(
        seeded
            .stderr
            .contains("created a development master key at ./data/master.key"),
        "{}",
        seeded.stderr
    );
    let again = ops.run(&["seed", "acc-2", "owner-2", "Grace Hopper"]).ok();
    assert!(
        !again.stderr.contains("master key"),
        "said once: {}",
        again.stderr
    );

    let list = ops.run(&["streams", "list"]).ok();
    assert!(list.stdout.starts_with("STREAM"), "{}", list.stdout);
    assert!(list.stdout.contains("account-acc-1"), "{}", list.stdout);

    let show = ops.run(&["streams", "show", "account-acc-1"]).ok();
    assert!(show.stdout.contains("Ada Lovelace"), "{}", show.stdout);
    assert!(show.stdout.contains("Opened"), "{}", show.stdout);
    assert!(show.stdout.contains("Deposited"), "{}", show.stdout);
    let json = ops
        .run(&["streams", "show", "account-acc-1", "--json"])
        .ok()
        .json();
    assert_eq!(json["version"], 3);
    assert_eq!(json["events"][0]["data"]["owner_name"], "Ada Lovelace");
    assert_eq!(json["events"][0]["headers"], serde_json::json!({}));
    assert_eq!(json["events"][2]["data"]["amount"], 100);

    let forget = ops.run(&["forget", "owner-1", "--json"]).ok().json();
    assert_eq!(forget["forgotten"], true);
    assert_eq!(forget["already_forgotten"], false);
    assert_eq!(forget["wal_truncated"], true);
    let twice = ops.run(&["forget", "owner-1"]).ok();
    assert!(
        twice.stdout.contains("already forgotten"),
        "{}",
        twice.stdout
    );

    let shredded = ops.run(&["streams", "show", "account-acc-1"]).ok();
    assert!(
        shredded.stdout.contains("<shredded>"),
        "{}",
        shredded.stdout
    );
    assert!(!shredded.stdout.contains("Ada"), "{}", shredded.stdout);
    let other = ops.run(&["streams", "show", "account-acc-2"]).ok();
    assert!(other.stdout.contains("Grace Hopper"), "{}", other.stdout);
    let system = ops
        .run(&["streams", "show", "$subject-owner-1", "--json"])
        .ok()
        .json();
    assert_eq!(system["events"][0]["event_type"], "$SubjectForgotten");
    assert_eq!(system["events"][0]["data"]["subject"], "owner-1");
}

/// Listing pages with `--limit` and `--after`.
#[test]
fn streams_list_pages() {
    let dir = tempfile::tempdir().unwrap();
    let ops = Ops::embedded(dir.path());
    for account in ["a", "b", "c"] {
        ops.run(&["seed", account, &format!("owner-{account}"), "X"])
            .ok();
    }
    let first = ops
        .run(&["streams", "list", "--limit", "2", "--json"])
        .ok()
        .json();
    let ids: Vec<&str> = first["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["account-a", "account-b"]);
    assert_eq!(first["streams"][0]["version"], 1);
    assert!(first["streams"][0]["last_recorded_at"].is_string());
    assert_eq!(first["next"], "account-b");

    let text = ops.run(&["streams", "list", "--limit", "2"]).ok();
    assert!(
        text.stdout.contains("more: --after 'account-b'"),
        "{}",
        text.stdout
    );

    let second = ops
        .run(&[
            "streams",
            "list",
            "--limit",
            "2",
            "--after",
            "account-b",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(second["streams"][0]["stream_id"], "account-c");
    assert_eq!(second["streams"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null(), "{second}");
}

/// Unknown streams, malformed ids and bad configuration fail with a clear
/// line, a stable kind and a distinct exit code.
#[test]
fn errors_are_one_line_with_a_kind_and_an_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let ops = Ops::embedded(dir.path());
    ops.run(&["migrate"]).ok();

    let message = ops
        .run(&["streams", "show", "account-nope", "--json"])
        .json_error("not_found", 66);
    assert!(message.contains("no such stream"), "{message}");
    let text = ops.run(&["streams", "show", "account-nope"]).text_error(66);
    assert!(text.contains("no such stream"), "{text}");

    let message = ops
        .run(&["streams", "show", "", "--json"])
        .json_error("invalid_argument", 64);
    assert!(message.contains("stream id"), "{message}");
    ops.run(&["streams", "show", "bad\nid"]).text_error(64);
    ops.run(&["streams", "list", "--after", ""]).text_error(64);
    ops.run(&["forget", "", "--json"])
        .json_error("invalid_argument", 64);
    // A subject that never had a key: nothing to shred, nothing recorded.
    let message = ops
        .run(&["forget", "owner-never-seen", "--json"])
        .json_error("not_found", 66);
    assert!(message.contains("nothing was shredded"), "{message}");
    let forced = ops
        .run(&["forget", "owner-never-seen", "--force", "--json"])
        .ok()
        .json();
    assert_eq!(forced["already_forgotten"], false);

    let bad_url = Ops::embedded(dir.path()).env("DATABASE_URL", "mysql://user:secret@host/db");
    let message = bad_url.run(&["migrate", "--json"]).json_error("config", 78);
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(message.contains("unsupported scheme"), "{message}");
    assert!(
        !message.contains("mysql"),
        "the input is not echoed: {message}"
    );
    assert!(!message.contains("secret"), "{message}");
    let text = bad_url.run(&["streams", "list"]).text_error(78);
    assert!(text.contains("DATABASE_URL"), "{text}");
    let malformed = Ops::embedded(dir.path()).env("DATABASE_URL", "postgres://host:port/db");
    malformed
        .run(&["migrate", "--json"])
        .json_error("config", 78);

    // The flag overrides the environment; an empty variable counts as unset.
    let flag = bad_url.run(&[
        "streams",
        "list",
        "--database-url",
        "sqlite://data/es.sqlite3",
    ]);
    flag.ok();
    Ops::embedded(dir.path())
        .env("DATABASE_URL", "")
        .env("ES_MASTER_KEY", "")
        .run(&["streams", "list"])
        .ok();

    let unreachable = Ops::postgres(dir.path(), "postgres://postgres@127.0.0.1:1/nothing");
    unreachable
        .run(&["migrate", "--json"])
        .json_error("unavailable", 69);

    // clap's own usage errors.
    assert_eq!(ops.run(&["streams", "frobnicate"]).code, 2);
}

/// Snapshots: take one of a registered aggregate, refuse the rest, prune
/// what the registered aggregates can no longer load.
#[tokio::test]
async fn snapshots_take_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let ops = Ops::embedded(dir.path());
    ops.run(&["seed", "acc-1", "owner-1", "Ada", "--deposits", "4"])
        .ok();
    ops.run(&["note", "l-1"]).ok();

    let taken = ops
        .run(&["snapshots", "take", "account-acc-1", "--json"])
        .ok()
        .json();
    assert_eq!(taken["version"], 5);
    assert_eq!(taken["schema_version"], 2);
    assert_eq!(taken["aggregate"], "account");

    ops.run(&["snapshots", "take", "ledger-l-1", "--json"])
        .json_error("unsupported", 65);
    ops.run(&["snapshots", "take", "other-1", "--json"])
        .json_error("unregistered", 65);
    ops.run(&["snapshots", "take", "account-none", "--json"])
        .json_error("not_found", 66);

    // Snapshots no registered aggregate can load: an old schema, and one of an
    // aggregate with snapshots disabled; one of an unregistered type stays.
    let store = Store::connect(&Config::embedded(dir.path().join("data")))
        .await
        .unwrap();
    let stale = |stream: &str, schema_version| Snapshot {
        stream_id: StreamId::new(stream).unwrap(),
        version: StreamVersion::new(1),
        schema_version,
        payload: b"old".to_vec(),
        taken_at: chrono::Utc::now(),
    };
    store.save_snapshot(stale("account-old", 1)).await.unwrap();
    store.save_snapshot(stale("ledger-l-1", 1)).await.unwrap();
    store.save_snapshot(stale("other-1", 1)).await.unwrap();

    let pruned = ops.run(&["snapshots", "prune", "--json"]).ok().json();
    assert_eq!(pruned["pruned"], 2, "{pruned}");
    let load = |stream: &str, schema| {
        let store = store.clone();
        let stream = StreamId::new(stream).unwrap();
        async move { store.load_snapshot(&stream, schema).await.unwrap() }
    };
    assert!(load("account-old", 1).await.is_none());
    assert!(load("ledger-l-1", 1).await.is_none());
    assert!(load("other-1", 1).await.is_some());
    assert!(
        load("account-acc-1", 2).await.is_some(),
        "the current one stays"
    );
    let again = ops.run(&["snapshots", "prune"]).ok();
    assert!(
        again.stdout.contains("pruned 0 snapshots"),
        "{}",
        again.stdout
    );
}

/// PostgreSQL: the master key is required, personal data opens with it,
/// forgetting shreds it, and a rotation re-wraps the keys.
#[tokio::test]
async fn postgres_needs_a_master_key_and_shreds_on_forget() {
    let dir = tempfile::tempdir().unwrap();
    let url = es_store_postgres::testing::fresh_database_url().await;
    let bare = Ops::postgres(dir.path(), &url);

    let migrated = bare.run(&["migrate", "--json"]).ok().json();
    assert_eq!(migrated["backend"], "postgres");

    let message = bare
        .run(&["streams", "show", "account-acc-1", "--json"])
        .json_error("config", 78);
    assert!(message.contains("ES_MASTER_KEY"), "{message}");
    assert!(message.contains("ES_MASTER_KEY_FILE"), "{message}");
    let text = bare.run(&["keys", "rotate"]).text_error(78);
    assert!(text.contains("ES_MASTER_KEY"), "{text}");
    assert!(
        !dir.path().join("data").exists(),
        "no development key with PostgreSQL"
    );

    let ops = Ops::postgres(dir.path(), &url).env("ES_MASTER_KEY", TEST_MASTER_KEY);
    ops.run(&[
        "seed",
        "acc-1",
        "owner-1",
        "Ada Lovelace",
        "--deposits",
        "1",
    ])
    .ok();
    ops.run(&["seed", "acc-2", "owner-2", "Grace Hopper"]).ok();
    let list = ops.run(&["streams", "list", "--json"]).ok().json();
    assert_eq!(list["streams"].as_array().unwrap().len(), 2, "{list}");
    let show = ops
        .run(&["streams", "show", "account-acc-1", "--json"])
        .ok()
        .json();
    assert_eq!(show["events"][0]["data"]["owner_name"], "Ada Lovelace");
    ops.run(&["streams", "show", "account-nope"]).text_error(66);

    // Rotate to a new key, keeping the old one to unwrap; then the new key
    // alone opens everything.
    let rotating = Ops::postgres(dir.path(), &url).env(
        "ES_MASTER_KEY",
        &format!("{NEW_MASTER_KEY},{TEST_MASTER_KEY}"),
    );
    let rotated = rotating.run(&["keys", "rotate", "--json"]).ok().json();
    assert_eq!(rotated["rewrapped"], 2);
    assert_eq!(rotated["master_key_id"], "new");
    let again = rotating.run(&["keys", "rotate"]).ok();
    assert!(again.stdout.contains("re-wrapped 0"), "{}", again.stdout);
    let new_only = Ops::postgres(dir.path(), &url).env("ES_MASTER_KEY", NEW_MASTER_KEY);
    let show = new_only.run(&["streams", "show", "account-acc-2"]).ok();
    assert!(show.stdout.contains("Grace Hopper"), "{}", show.stdout);
    // The old key alone no longer opens them.
    ops.run(&["streams", "show", "account-acc-2", "--json"])
        .json_error("config", 78);

    // Forgetting needs no master key.
    let forgotten = bare.run(&["forget", "owner-1", "--json"]).ok().json();
    assert_eq!(forgotten["forgotten"], true);
    assert!(forgotten.get("wal_truncated").is_none());
    let show = new_only
        .run(&["streams", "show", "account-acc-1", "--json"])
        .ok()
        .json();
    assert_eq!(show["events"][0]["data"]["owner_name"], "<shredded>");
    assert_eq!(show["events"][1]["data"]["amount"], 100);

    let snap = new_only.run(&["snapshots", "take", "account-acc-2"]).ok();
    assert!(snap.stdout.contains("version 1"), "{}", snap.stdout);
}

/// `ES_DATA_DIR` moves the embedded database and the development key; the
/// `--data-dir` flag, anywhere on the line, overrides it.
#[test]
fn the_data_dir_comes_from_the_environment_or_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let env = Ops::embedded(dir.path()).env("ES_DATA_DIR", "from-env");
    env.run(&["seed", "acc-1", "owner-1", "Ada"]).ok();
    assert!(dir.path().join("from-env/es.sqlite3").exists());
    assert!(dir.path().join("from-env/master.key").exists());
    assert!(!dir.path().join("data").exists());

    env.run(&["migrate", "--data-dir", "from-flag"]).ok();
    assert!(dir.path().join("from-flag/es.sqlite3").exists());
    let listed = env
        .run(&["--data-dir", "from-flag", "streams", "list", "--json"])
        .ok()
        .json();
    assert_eq!(listed["streams"], serde_json::json!([]), "the flag's store");
    let listed = env.run(&["streams", "list", "--json"]).ok().json();
    assert_eq!(listed["streams"][0]["stream_id"], "account-acc-1");
}
