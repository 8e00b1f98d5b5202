//! A runner process over one SQLite data directory, killed with SIGKILL at
//! random moments while this process appends deposits, then restarted to the
//! end of the log: after every kill the read model is exactly the log up to
//! its stored checkpoint, and at the end the balances are exactly the sums.
//!
//! The runner processes are this test binary itself, started with
//! `ES_TESTS_RUNNER_CHILD` set and running only [`runner_child`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use es_core::{
    AppendRequest, Bincode, Checkpoint, Crypto, DeadLetters, Event, EventId, EventStore,
    ExpectedVersion, KvSink, MasterKey, MasterKeyring, Metadata, NewEvent, RecordedEvent,
    Repository, Sink, StreamId, SubjectId, encode_events,
};
use es_projections::{FailurePolicy, Runner, RunnerOptions, Step};
use es_store_sqlite::{SqliteKv, SqliteStore};
use rand::Rng;

use crate::accounts::{Account, AccountEvent, Balances, Command as AccountCommand};
use crate::behaviours::{PROJECTION, head, log, options, repo};

/// Selects the child's role (`run`: until killed; `drain`: until idle); unset
/// in a normal test run.
const CHILD_ENV: &str = "ES_TESTS_RUNNER_CHILD";
/// The data directory the child opens.
const DIR_ENV: &str = "ES_TESTS_RUNNER_DIR";
/// The master key (text form), so the child opens the owners' names.
const KEY_ENV: &str = "ES_TESTS_RUNNER_KEY";
/// Prefix of the lines a child reports on; the test harness prints others.
const REPORT: &str = "child-report";

/// Times the runner process is killed.
const KILLS: usize = 6;
/// The longest a runner process lives after its first commit.
const MAX_LIFE_MS: u64 = 300;
/// Accounts the deposits are spread over.
const ACCOUNTS: i64 = 5;
/// Events per batch of the child's runner.
const CHILD_BATCH: usize = 25;
/// The largest batch of deposits the writer appends.
const WRITER_BATCH: i64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the entry point of the runner processes that the crash test spawns and kills; \
            without ES_TESTS_RUNNER_CHILD set it does nothing"]
async fn runner_child() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).expect("ES_TESTS_RUNNER_DIR"));
    let key = MasterKey::parse(&std::env::var(KEY_ENV).expect("ES_TESTS_RUNNER_KEY"))
        .expect("master key");
    let crypto = Arc::new(Crypto::new(MasterKeyring::new(key)));
    let store = SqliteStore::open_in(&dir).await.expect("open the store");
    // As a runner process would: one per projection, released when it dies.
    let _lock = store
        .lock_projection(PROJECTION, Duration::from_millis(5))
        .await
        .expect("the runner lock");
    let mut runner = Runner::new(
        Balances::<SqliteKv>::default(),
        SqliteKv::new(store.clone(), PROJECTION),
        store.clone(),
        Arc::new(store.clone()),
    )
    .with_crypto(crypto)
    .with_options(RunnerOptions {
        batch_size: CHILD_BATCH,
        ..options(FailurePolicy::Halt)
    });
    loop {
        match runner.step().await {
            Ok(Step::Committed { read, .. }) => {
                let at = runner.checkpoint().expect("committed");
                println!("{REPORT} committed {read} {at}");
            }
            Ok(Step::Idle) if role == "drain" => return,
            Ok(Step::Idle) => tokio::time::sleep(Duration::from_millis(2)).await,
            Err(error) => panic!("the runner stopped: {error}"),
        }
    }
}

/// A runner process and the reader threads of its output.
struct RunnerProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: JoinHandle<()>,
    /// Taken when the child's failure is reported.
    stderr: Option<JoinHandle<String>>,
}

impl RunnerProcess {
    fn spawn(role: &str, dir: &Path, key: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "crash::runner_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(CHILD_ENV, role)
            .env(DIR_ENV, dir)
            .env(KEY_ENV, key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a runner process");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (send, lines) = mpsc::channel();
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Self {
            child,
            lines,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Waits for the child's first commit report; panics with its stderr if it
    /// exits first or takes more than a minute.
    fn first_commit(&mut self) -> Checkpoint {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(at) = committed(&line) {
                        return at;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    assert!(Instant::now() < deadline, "the runner committed nothing");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("wait");
                    let stderr = self.stderr.take().map(JoinHandle::join);
                    let stderr = stderr.and_then(Result::ok).unwrap_or_default();
                    panic!("the runner process exited ({status}): {stderr}");
                }
            }
        }
    }

    /// SIGKILLs the child; the last checkpoint it reported committed.
    fn kill(mut self) -> Option<Checkpoint> {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        self.stdout.join().expect("stdout reader");
        drop(self.stderr);
        self.lines.try_iter().filter_map(|l| committed(&l)).last()
    }

    /// Waits for the child to exit on its own, successfully.
    fn finish(mut self) {
        let status = self.child.wait().expect("wait");
        self.stdout.join().expect("stdout reader");
        let stderr = self.stderr.map(JoinHandle::join);
        let stderr = stderr.and_then(Result::ok).unwrap_or_default();
        assert!(
            status.success(),
            "the runner process failed ({status}): {stderr}"
        );
    }
}

/// The checkpoint of a `committed` report line.
fn committed(line: &str) -> Option<Checkpoint> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(REPORT), Some("committed"), Some(_read), Some(at)) => {
            Some(at.parse().expect("a checkpoint"))
        }
        _ => None,
    }
}

/// Appends deposits to `account` in one batch, as its aggregate would emit
/// them.
async fn append_deposits(store: &SqliteStore, account: &str, amounts: &[i64]) {
    let events: Vec<AccountEvent> = amounts
        .iter()
        .map(|&amount| AccountEvent::Deposited { amount })
        .collect();
    let ids: Vec<(EventId, &AccountEvent)> = events.iter().map(|e| (EventId::new(), e)).collect();
    let payloads = encode_events(None, store, &Bincode, &ids)
        .await
        .expect("encode");
    let events = ids
        .iter()
        .zip(payloads)
        .map(|((event_id, event), payload)| NewEvent {
            event_id: *event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload,
            metadata: Metadata::now(),
        })
        .collect();
    let stream = StreamId::new(format!("account-{account}")).expect("stream");
    store
        .append(AppendRequest::new(stream, ExpectedVersion::Any, events))
        .await
        .expect("append deposits");
}

/// The balances the log holds up to `upto`, by key, as `Balances` writes them.
async fn balances_in_log(
    repo: &Repository<Account, SqliteStore>,
    upto: Option<Checkpoint>,
) -> BTreeMap<String, String> {
    let events: Vec<RecordedEvent> = log(repo.store())
        .await
        .into_iter()
        .filter(|e| Some(e.checkpoint()) <= upto)
        .collect();
    let decoded = repo.decode_events(&events).await.expect("decode the log");
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for (recorded, event) in events.iter().zip(decoded) {
        if let AccountEvent::Deposited { amount } = event {
            *sums
                .entry(format!("{}:balance", recorded.stream_id))
                .or_default() += amount;
        }
    }
    sums.into_iter().map(|(k, v)| (k, v.to_string())).collect()
}

/// The balance entries of the read model.
async fn balances_in_model(kv: &SqliteKv) -> BTreeMap<String, String> {
    kv.entries()
        .await
        .expect("entries")
        .into_iter()
        .filter(|(key, _)| key.ends_with(":balance"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_process_killed_again_and_again_applies_each_event_once() {
    let dir = tempfile::Builder::new()
        .prefix("es-tests-runner-crash-")
        .tempdir()
        .expect("temporary directory");
    let store = SqliteStore::open_in(dir.path()).await.expect("open");
    store.migrate().await.expect("migrate");
    let key = MasterKey::generate("crash-test").expect("master key");
    let key_text = key.to_text();
    let crypto = Arc::new(Crypto::new(MasterKeyring::new(key)));
    let repo = repo(&store, &crypto);
    let mut expected = BTreeMap::new();
    for a in 0..ACCOUNTS {
        let owner = SubjectId::new(format!("owner-{a}")).expect("subject");
        repo.execute(
            &format!("a{a}"),
            AccountCommand::Open(owner, format!("Owner {a}")),
        )
        .await
        .expect("open");
        expected.insert(format!("account-a{a}:owner"), format!("Owner {a}"));
    }

    // The writer: batches of deposits round the accounts until told to stop,
    // big enough that the runner falls behind and commits full batches.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        async move {
            let mut sums: BTreeMap<String, i64> = BTreeMap::new();
            let mut i = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                let account = format!("a{}", i % ACCOUNTS);
                let amounts: Vec<i64> = (0..=(i * 7) % WRITER_BATCH)
                    .map(|j| (i * 31 + j) % 89 + 1)
                    .collect();
                append_deposits(&store, &account, &amounts).await;
                *sums.entry(account).or_default() += amounts.iter().sum::<i64>();
                i += 1;
            }
            sums
        }
    });

    let kv = SqliteKv::new(store.clone(), PROJECTION);
    let lives: Vec<u64> = {
        let mut rng = rand::rng();
        (0..KILLS)
            .map(|_| rng.random_range(0..MAX_LIFE_MS))
            .collect()
    };
    let mut previous = None;
    for (kill, life) in lives.iter().enumerate() {
        let mut process = RunnerProcess::spawn("run", dir.path(), &key_text);
        let first = process.first_commit();
        assert!(Some(first) > previous, "the restarted runner moved on");
        tokio::time::sleep(Duration::from_millis(*life)).await;
        let acknowledged = process.kill();
        let stored = kv.checkpoint(PROJECTION).await.expect("checkpoint");
        assert!(
            stored >= acknowledged,
            "kill {kill} ({life} ms): a commit the runner reported is lost \
             ({stored:?} < {acknowledged:?})"
        );
        assert_eq!(
            balances_in_model(&kv).await,
            balances_in_log(&repo, stored).await,
            "kill {kill} ({life} ms): the model is the log up to the checkpoint {stored:?}"
        );
        let head_now = head(&store).await;
        println!(
            "kill {kill} after {life} ms: reported {acknowledged:?}, stored {stored:?}, head {head_now:?}"
        );
        previous = stored;
    }

    stop.store(true, Ordering::Relaxed);
    let mut sums = writer.await.expect("the writer");
    // One more, so that the last run has something to do whenever the last
    // killed runner had caught up.
    repo.execute("a0", AccountCommand::Deposit(1_000))
        .await
        .expect("deposit");
    *sums.entry("a0".to_owned()).or_default() += 1_000;
    for (account, sum) in sums {
        expected.insert(format!("account-{account}:balance"), sum.to_string());
    }
    let head = head(&store).await;
    assert!(previous < head);

    RunnerProcess::spawn("drain", dir.path(), &key_text).finish();
    assert_eq!(kv.checkpoint(PROJECTION).await.expect("checkpoint"), head);
    assert_eq!(kv.entries().await.expect("entries"), expected);
    assert!(
        store
            .list(PROJECTION)
            .await
            .expect("dead letters")
            .is_empty(),
        "no dead letters"
    );
}
