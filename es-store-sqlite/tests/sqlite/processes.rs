//! Several OS processes on one file: two writers racing on shared streams, and a
//! writer killed with SIGKILL in the middle of a batch.
//!
//! The children are this test binary itself, started with
//! `ES_SQLITE_TEST_CHILD` set and running only [`child_process`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use es_core::{
    AppendRequest, Error, EventStore, ExpectedVersion, Idempotency, IdempotencyKey, RecordedEvent,
    StreamVersion,
};
use es_store_sqlite::{DATABASE_FILE, SqliteStore};

use crate::support::{assert_consistent, events_with, stream};

/// Selects the child's role; unset in a normal test run.
const CHILD_ENV: &str = "ES_SQLITE_TEST_CHILD";
/// The database file the child opens.
const DB_ENV: &str = "ES_SQLITE_TEST_DB";
/// The writer's name, or the killed writer's round.
const ARG_ENV: &str = "ES_SQLITE_TEST_ARG";
/// Prefix of the lines a child reports on; the test harness prints others.
const REPORT: &str = "child-report";

/// Batches each writer appends to each of its streams.
const WRITER_BATCHES: u64 = 60;
/// Events per writer batch.
const WRITER_BATCH_SIZE: u64 = 3;
/// Every this many batches, a writer appends an intent both writers share.
const INTENT_EVERY: u64 = 5;
/// Events per batch of the writer that gets killed: big enough that a batch
/// takes a while, so the kill lands inside one.
const BURST_SIZE: u32 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the entry point of the child processes spawned by the other tests in this module; \
            without ES_SQLITE_TEST_CHILD set it does nothing"]
async fn child_process() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = PathBuf::from(std::env::var_os(DB_ENV).expect("ES_SQLITE_TEST_DB"));
    let arg = std::env::var(ARG_ENV).expect("ES_SQLITE_TEST_ARG");
    match role.as_str() {
        "writer" => writer(&db, &arg).await,
        "burst" => burst(&db, arg.parse().expect("round")).await,
        other => panic!("unknown child role {other}"),
    }
}

fn spawn_child(role: &str, db: &Path, arg: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "processes::child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CHILD_ENV, role)
        .env(DB_ENV, db)
        .env(ARG_ENV, arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a child process")
}

fn payload(parts: &[&str]) -> Vec<u8> {
    parts.join("/").into_bytes()
}

fn text(event: &RecordedEvent) -> String {
    String::from_utf8(event.payload.clone()).expect("text payload")
}

/// Waits until `path` exists (the start signal), or panics after 30 s.
async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "no start signal within 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A child writer: batches to its own stream (never contended), to a stream it
/// shares with the other writer (optimistic: read the version, append at it,
/// retry on conflict), and intents shared with the other writer under one
/// idempotency key each.
async fn writer(db: &Path, name: &str) {
    let store = SqliteStore::open(db).await.expect("open");
    let dir = db.parent().expect("directory");
    std::fs::write(dir.join(format!("ready-{name}")), b"").expect("ready");
    wait_for_file(&dir.join("go")).await;

    let own = stream(&format!("own-{name}"));
    let shared = stream("shared");
    let intents = stream("intents");
    let (mut conflicts, mut deduplicated) = (0u64, 0u64);
    let batch = |kind: &str, i: u64| {
        events_with(
            (0..WRITER_BATCH_SIZE).map(|j| payload(&[name, kind, &i.to_string(), &j.to_string()])),
        )
    };
    for i in 0..WRITER_BATCHES {
        let expected = ExpectedVersion::Exact(StreamVersion::new(i * WRITER_BATCH_SIZE));
        store
            .append(AppendRequest::new(own.clone(), expected, batch("own", i)))
            .await
            .expect("append to the writer's own stream");
        loop {
            let seen = store.stream_version(&shared).await.expect("version");
            let request = AppendRequest::new(
                shared.clone(),
                ExpectedVersion::Exact(seen),
                batch("shared", i),
            );
            match store.append(request).await {
                Ok(result) => {
                    assert_eq!(result.version, seen.advance(WRITER_BATCH_SIZE));
                    break;
                }
                Err(Error::Conflict { actual, .. }) => {
                    assert!(actual > seen, "a conflict reports the newer version");
                    conflicts += 1;
                }
                Err(other) => panic!("shared append failed: {other:?}"),
            }
        }
        if i % INTENT_EVERY == 0 {
            let request =
                AppendRequest::new(intents.clone(), ExpectedVersion::Any, batch("intent", i))
                    .idempotent(Idempotency {
                        key: IdempotencyKey::new(format!("intent-{i}")).expect("key"),
                        fingerprint: [7; 32],
                    });
            let result = store.append(request).await.expect("idempotent append");
            deduplicated += u64::from(result.deduplicated);
        }
    }
    // A deliberately stale append: a typed conflict carrying the actual version.
    let stale = store
        .append(AppendRequest::new(
            shared.clone(),
            ExpectedVersion::Exact(StreamVersion::new(1)),
            batch("stale", 0),
        ))
        .await;
    match stale {
        Err(Error::Conflict { actual, .. }) => {
            assert!(actual.get() >= WRITER_BATCHES * WRITER_BATCH_SIZE);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    println!("{REPORT} conflicts={conflicts} deduplicated={deduplicated}");
}

/// Output of a finished child, or a panic with its stderr.
fn finished(name: &str, child: Child) -> String {
    let output = child.wait_with_output().expect("wait for the child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "child {name} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn report_value(stdout: &str, field: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(REPORT))
        .flat_map(str::split_whitespace)
        .find_map(|pair| pair.strip_prefix(field)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in the child's report:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_writing_one_file_lose_nothing() {
    let dir = tempfile::Builder::new()
        .prefix("es-store-sqlite-processes-")
        .tempdir()
        .expect("temporary directory");
    let db = dir.path().join(DATABASE_FILE);
    let store = SqliteStore::open(&db).await.expect("open");
    store.migrate().await.expect("migrate");

    let names = ["a", "b"];
    let children: Vec<Child> = names
        .iter()
        .map(|name| spawn_child("writer", &db, name))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !names
        .iter()
        .all(|name| dir.path().join(format!("ready-{name}")).exists())
    {
        assert!(Instant::now() < deadline, "the writers did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::fs::write(dir.path().join("go"), b"").expect("start signal");
    let reports: Vec<String> = names
        .iter()
        .zip(children)
        .map(|(name, child)| finished(name, child))
        .collect();

    let log = assert_consistent(&store).await;
    let mut by_stream: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for event in &log {
        by_stream
            .entry(event.stream_id.to_string())
            .or_default()
            .push(text(event));
    }
    let in_order = |name: &str, kind: &str, is: &mut dyn Iterator<Item = u64>| -> Vec<String> {
        is.flat_map(|i| (0..WRITER_BATCH_SIZE).map(move |j| format!("{name}/{kind}/{i}/{j}")))
            .collect()
    };
    for name in names {
        assert_eq!(
            by_stream[&format!("own-{name}")],
            in_order(name, "own", &mut (0..WRITER_BATCHES)),
            "writer {name}'s own stream holds each of its batches once, in order"
        );
        let mine: Vec<String> = by_stream["shared"]
            .iter()
            .filter(|p| p.starts_with(&format!("{name}/")))
            .cloned()
            .collect();
        assert_eq!(
            mine,
            in_order(name, "shared", &mut (0..WRITER_BATCHES)),
            "writer {name}'s batches on the shared stream: each once, whole, in order"
        );
    }
    assert_eq!(
        u64::try_from(by_stream["shared"].len()).expect("length"),
        2 * WRITER_BATCHES * WRITER_BATCH_SIZE
    );

    // Each intent was appended by both writers under one key: written once.
    let intents: Vec<u64> = (0..WRITER_BATCHES)
        .filter(|i| i % INTENT_EVERY == 0)
        .collect();
    let mut written: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for p in &by_stream["intents"] {
        let parts: Vec<&str> = p.split('/').collect();
        written
            .entry(parts[2].parse().expect("intent number"))
            .or_default()
            .insert(parts[0].to_owned());
    }
    assert_eq!(written.keys().copied().collect::<Vec<_>>(), intents);
    assert!(
        written.values().all(|writers| writers.len() == 1),
        "one writer per intent"
    );
    assert_eq!(
        u64::try_from(by_stream["intents"].len()).expect("length"),
        u64::try_from(intents.len()).expect("count") * WRITER_BATCH_SIZE
    );
    let deduplicated: u64 = reports
        .iter()
        .map(|r| report_value(r, "deduplicated"))
        .sum();
    assert_eq!(
        deduplicated,
        u64::try_from(intents.len()).expect("count"),
        "the second writer of each intent got the first result"
    );
    // Conflicts are likely but not certain (one writer may run ahead); each one
    // was checked to be typed, with a newer actual version, in the child.
    let _conflicts: u64 = reports.iter().map(|r| report_value(r, "conflicts")).sum();
}

/// The marker of event `index` of batch `batch` of `size` events, padded so a
/// batch is big.
fn burst_payload(batch: u64, index: u32, size: u32) -> Vec<u8> {
    let mut payload = format!("{batch}/{index}/{size}/").into_bytes();
    payload.resize(512, b'.');
    payload
}

/// A child writer appending big batches to three streams until it is killed,
/// reporting each batch before and after its append.
async fn burst(db: &Path, round: u64) {
    let store = SqliteStore::open(db).await.expect("open");
    for n in 0.. {
        let batch = round * 1_000_000 + n;
        let events = events_with((0..BURST_SIZE).map(|i| burst_payload(batch, i, BURST_SIZE)));
        let s = stream(&format!("burst-{}", n % 3));
        println!("{REPORT} started {batch}");
        store
            .append(AppendRequest::new(s, ExpectedVersion::Any, events))
            .await
            .expect("append");
        println!("{REPORT} done {batch}");
    }
}

/// The batches a burst child reported as started and as done.
#[derive(Default)]
struct Progress {
    started: Vec<u64>,
    done: BTreeSet<u64>,
}

impl Progress {
    fn record(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(REPORT), Some("started"), Some(n)) => self.started.push(n.parse().expect("n")),
            (Some(REPORT), Some("done"), Some(n)) => {
                self.done.insert(n.parse().expect("n"));
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_mid_batch_leaves_every_batch_whole() {
    let dir = tempfile::Builder::new()
        .prefix("es-store-sqlite-kill-")
        .tempdir()
        .expect("temporary directory");
    let db = dir.path().join(DATABASE_FILE);
    SqliteStore::open(&db)
        .await
        .expect("open")
        .migrate()
        .await
        .expect("migrate");

    let mut killed_mid_batch = 0;
    // Every round's batches: all are checked after each kill.
    let (mut started, mut done) = (BTreeSet::new(), BTreeSet::new());
    for round in 1..=3u64 {
        let mut child = spawn_child("burst", &db, &round.to_string());
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (lines, received) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });

        // Let two batches commit, then kill the writer 200 ms later: inside a
        // batch, almost surely, as a batch takes far longer than the gap
        // between two.
        let mut progress = Progress::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        while progress.done.len() < 2 {
            match received.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => progress.record(&line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    assert!(Instant::now() < deadline, "the writer made no progress");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("wait");
                    panic!(
                        "the writer exited ({status}): {}",
                        errors.join().unwrap_or_default()
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader");
        let _ = errors.join();
        for line in received.try_iter() {
            progress.record(&line);
        }
        let in_flight = progress
            .started
            .last()
            .copied()
            .filter(|last| !progress.done.contains(last));
        killed_mid_batch += u32::from(in_flight.is_some());
        started.extend(progress.started.iter().copied());
        done.extend(progress.done.iter().copied());

        // Reopen, as an application restarting after the crash would.
        let store = SqliteStore::open(&db).await.expect("reopen");
        let log = assert_consistent(&store).await;
        let mut batches: BTreeMap<u64, BTreeSet<u32>> = BTreeMap::new();
        for event in &log {
            let Some(marker) = event.payload.split(|b| *b == b'.').next() else {
                continue;
            };
            let marker = String::from_utf8_lossy(marker);
            let parts: Vec<&str> = marker.split('/').collect();
            if let [batch, index, _size, ..] = parts.as_slice()
                && let (Ok(batch), Ok(index)) = (batch.parse(), index.parse())
            {
                batches.entry(batch).or_default().insert(index);
            }
        }
        for (batch, indexes) in &batches {
            assert_eq!(
                indexes.len(),
                usize::try_from(BURST_SIZE).expect("size"),
                "batch {batch} is partly stored"
            );
            assert!(started.contains(batch), "batch {batch} was never started");
        }
        for batch in &done {
            assert!(
                batches.contains_key(batch),
                "batch {batch} was acknowledged but is lost"
            );
        }

        let after = stream("after-kill");
        let result = store
            .append(AppendRequest::new(
                after.clone(),
                ExpectedVersion::Exact(StreamVersion::new(round - 1)),
                events_with([b"after".to_vec()]),
            ))
            .await
            .expect("an append after the kill succeeds");
        assert_eq!(result.version, StreamVersion::new(round));
    }
    assert!(
        killed_mid_batch >= 1,
        "no kill landed inside a batch in three rounds"
    );
}
