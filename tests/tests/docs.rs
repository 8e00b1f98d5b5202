//! The guides' shell samples, run against the binaries they describe.
//!
//! Every ```` ```console ```` block of `docs/getting-started.md` and
//! `docs/operations.md` is a transcript: `$ command` lines (a trailing `\`
//! continues one) followed by what it prints, stdout and stderr together. The
//! blocks of one guide run in order, in one `bash` per session (so `export`,
//! `cd` and `echo $?` behave as in a terminal), in a fresh directory with
//! `bank-account` and `ops` on the `PATH`, and each output is compared with
//! the transcript.
//!
//! What varies from run to run is compared as a placeholder on both sides:
//! times, UUIDs, transfer and demo ids, durations, rates, scores, process ids
//! (see [`normalise`]), and in the PostgreSQL session the transaction id in
//! a checkpoint (`<xid>:<position>`). In the transcript, `…` stands for any text within a
//! line, and a line holding only `…` for any number of lines.
//!
//! HTML comments before a block steer the run, unseen by a reader:
//!
//! - `<!-- doc-test: session NAME -->`: the following blocks run in session
//!   `NAME` (its own directory and shell); `main` until then;
//! - `<!-- doc-test: $ COMMAND -->`: runs `COMMAND` in the session first; it
//!   must succeed, and its output is not compared (setting up what the
//!   text describes in words: a worker started in another terminal, an
//!   event written by hand);
//! - `<!-- doc-test: until $ COMMAND -->`: runs `COMMAND` until it succeeds
//!   (at most 60 s);
//! - `<!-- doc-test: alias TEXT $ COMMAND -->`: `TEXT` in the guide (an id
//!   drawn at random, say) stands for what `COMMAND` prints here, in the
//!   commands run and in their output;
//! - `<!-- doc-test: background -->`: the next block's one command keeps
//!   running (a server, a worker) while the guide goes on; what it has
//!   printed is compared once it has printed as many lines as the block
//!   shows (at most 60 s), and it is stopped with its session;
//! - `<!-- doc-test: not run: REASON -->`: the next block is not run; the
//!   test prints each such block with its reason.
//!
//! A shell transcript in any other kind of block fails the test, so no sample
//! escapes it. `ES_DOCS_BLESS=1` writes what the binaries printed into the
//! guides instead of comparing (the placeholders' real values included);
//! review the diff.
//!
//! The PostgreSQL session (`session postgres`) needs the servers of the rest
//! of the suite; it uses a database and a Redis namespace of its own.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use regex::Regex;

/// A command's output ends at this line, followed by its status.
const MARK: &str = "\u{1}es-doc-test-done";
/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an `until` directive keeps trying.
const UNTIL_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn getting_started_samples_run_as_written() {
    check("docs/getting-started.md");
}

#[test]
fn operations_samples_run_as_written() {
    check("docs/operations.md");
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_owned()
}

/// The directory holding `bank-account` and `examples/ops`, built by `cargo
/// test --workspace` beside this test.
fn binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned();
    for needed in ["bank-account", "examples/ops"] {
        assert!(
            profile.join(needed).exists(),
            "{} is not built: run the whole suite (`bash .ci/test`), or `cargo build -p \
             bank-account -p es-app --examples` first",
            profile.join(needed).display()
        );
    }
    profile
}

// ---------------------------------------------------------------- parsing

/// One line of a guide that the test reads.
#[derive(Debug)]
enum Item {
    Session(String),
    Hidden { command: String, until: bool },
    NotRun(String),
    Background,
    Alias { text: String, command: String },
    Block(Block),
}

#[derive(Debug)]
struct Block {
    /// The line of the opening fence (1-based).
    line: usize,
    /// The lines between the fences.
    steps: Vec<Step>,
}

#[derive(Debug)]
struct Step {
    command: String,
    /// Lines of the guide holding the expected output.
    output: std::ops::Range<usize>,
}

fn parse(path: &str, lines: &[&str]) -> Vec<Item> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(directive) = line
            .trim()
            .strip_prefix("<!-- doc-test:")
            .and_then(|d| d.strip_suffix("-->"))
        {
            let directive = directive.trim();
            if let Some(name) = directive.strip_prefix("session ") {
                items.push(Item::Session(name.trim().to_owned()));
            } else if let Some(command) = directive.strip_prefix("until $ ") {
                items.push(Item::Hidden {
                    command: command.to_owned(),
                    until: true,
                });
            } else if let Some(command) = directive.strip_prefix("$ ") {
                items.push(Item::Hidden {
                    command: command.to_owned(),
                    until: false,
                });
            } else if let Some(alias) = directive.strip_prefix("alias ") {
                let (text, command) = alias
                    .split_once(" $ ")
                    .unwrap_or_else(|| panic!("{path}:{}: `alias TEXT $ COMMAND`", i + 1));
                items.push(Item::Alias {
                    text: text.trim().to_owned(),
                    command: command.to_owned(),
                });
            } else if directive == "background" {
                items.push(Item::Background);
            } else if let Some(reason) = directive.strip_prefix("not run:") {
                items.push(Item::NotRun(reason.trim().to_owned()));
            } else {
                panic!("{path}:{}: unknown doc-test directive `{directive}`", i + 1);
            }
            i += 1;
            continue;
        }
        if let Some(info) = line.strip_prefix("```") {
            let start = i;
            let mut end = i + 1;
            while end < lines.len() && !lines[end].starts_with("```") {
                end += 1;
            }
            let body = start + 1..end;
            let transcript = lines[body.clone()].iter().any(|l| l.starts_with("$ "));
            if info.trim() == "console" {
                items.push(Item::Block(Block {
                    line: start + 1,
                    steps: steps(lines, body),
                }));
            } else {
                assert!(
                    !transcript,
                    "{path}:{}: a shell transcript in a ```{info} block: make it ```console \
                     so that it runs (or say why not with `<!-- doc-test: not run: … -->`)",
                    start + 1
                );
            }
            i = end + 1;
            continue;
        }
        i += 1;
    }
    items
}

fn steps(lines: &[&str], body: std::ops::Range<usize>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut i = body.start;
    while i < body.end {
        let Some(first) = lines[i].strip_prefix("$ ") else {
            assert!(
                !steps.is_empty(),
                "line {}: output before the first `$ ` command",
                i + 1
            );
            i += 1;
            continue;
        };
        let mut command = first.to_owned();
        while command.ends_with('\\') && i + 1 < body.end {
            i += 1;
            command.push('\n');
            command.push_str(lines[i]);
        }
        i += 1;
        let start = i;
        while i < body.end && !lines[i].starts_with("$ ") {
            i += 1;
        }
        steps.push(Step {
            command,
            output: start..i,
        });
    }
    steps
}

// ---------------------------------------------------------------- comparing

/// Replaces what varies between runs with placeholders.
fn normalise(text: &str) -> String {
    static RULES: std::sync::OnceLock<Vec<(Regex, &'static str)>> = std::sync::OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
                "[TIME]",
            ),
            (
                r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "[UUID]",
            ),
            (r"\bt-[0-9a-f]{16,32}\b", "t-[ID]"),
            (r"-[0-9a-f]{12}\b", "-[ID]"),
            (r"\d+(\.\d+)? (events/s|s\b|ms\b)", "[N] $2"),
            (r"eta \d+ s", "eta [N] s"),
            (
                r#""(seconds|lag_seconds|transaction_age_secs|score|elapsed_ms)":[0-9.e-]+"#,
                "\"$1\":[N]",
            ),
            (r"\bpid \d+", "pid [N]"),
            (r#""pid":\d+"#, "\"pid\":[N]"),
        ]
        .into_iter()
        .map(|(pattern, with)| (Regex::new(pattern).expect("pattern"), with))
        .collect()
    });
    let mut text = text.to_owned();
    for (pattern, with) in rules {
        text = pattern.replace_all(&text, *with).into_owned();
    }
    text
}

/// Lines as compared: normalised, without the headers the guide leaves out
/// of HTTP answers (`date`, `content-length`) and without trailing blank
/// lines.
fn comparable(lines: &[String], postgres: bool) -> Vec<String> {
    static XID: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let xid = XID.get_or_init(|| Regex::new(r"\b\d+:(\d+)\b").expect("pattern"));
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| l.trim_end().to_owned())
        .filter(|l| !left_out(l))
        .map(|l| normalise(&l))
        .map(|l| {
            if postgres {
                xid.replace_all(&l, "[XID]:$1").into_owned()
            } else {
                l
            }
        })
        .collect();
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

/// The HTTP headers the guide leaves out of its answers.
fn left_out(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.starts_with("date: ") || lower.starts_with("content-length: ")
}

/// Whether `actual` matches `expected` (both normalised): `…` is any text in
/// a line, a line of only `…` any lines.
fn matches(expected: &[String], actual: &[String]) -> bool {
    let Some((first, rest)) = expected.split_first() else {
        return actual.is_empty();
    };
    if first.trim() == "…" {
        return (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]));
    }
    match actual.split_first() {
        Some((line, others)) => line_matches(first, line) && matches(rest, others),
        None => false,
    }
}

fn line_matches(expected: &str, actual: &str) -> bool {
    if !expected.contains('…') {
        return expected.trim_end() == actual.trim_end();
    }
    let pattern = expected
        .trim_end()
        .split('…')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    Regex::new(&format!("^{pattern}$"))
        .expect("pattern")
        .is_match(actual.trim_end())
}

// ---------------------------------------------------------------- running

/// One shell, its directory and what the guide's names stand for in it.
struct Session {
    dir: tempfile::TempDir,
    child: Child,
    stdin: ChildStdin,
    output: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    /// Names in the guide (ports, a database) and what they are here.
    aliases: Vec<(String, String)>,
    /// Background jobs started.
    jobs: usize,
}

impl Session {
    fn start(name: &str, binaries: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = format!(
            "{}:{}:{}",
            binaries.display(),
            binaries.join("examples").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut aliases = Vec::new();
        for port in ["8080", "8081"] {
            let here = free_port();
            aliases.push((format!("localhost:{port}"), format!("localhost:{here}")));
            aliases.push((format!("127.0.0.1:{port}"), format!("127.0.0.1:{here}")));
        }
        let unique = format!("{}_{}", std::process::id(), rand::random::<u32>());
        if name == "postgres" {
            aliases.push(("bank_docs".into(), format!("es_test_docs_{unique}")));
            aliases.push(("bank-docs".into(), format!("es-test-docs-{unique}")));
        }
        // curl as the guide shows it: no progress meter, errors still said.
        std::fs::write(dir.path().join(".curlrc"), "silent\nshow-error\n").expect("curlrc");
        let mut command = Command::new("bash");
        command
            .args(["--norc", "--noprofile"])
            .current_dir(dir.path())
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env("HOME", dir.path())
            .env("PGPASSWORD", "postgres")
            .env_remove("RUST_LOG")
            .env_remove("COLUMNS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for var in [
            "DATABASE_URL",
            "REDIS_URL",
            "ES_DATA_DIR",
            "ES_MASTER_KEY",
            "ES_MASTER_KEY_FILE",
            "ES_REDIS_NAMESPACE",
            "ES_WAIT",
        ] {
            command.env_remove(var);
        }
        let mut child = command.spawn().expect("start bash");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let (send, output) = channel();
        std::thread::spawn(move || {
            let mut buffer = [0; 8192];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 || send.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        writeln!(stdin, "exec 2>&1").expect("bash");
        Self {
            dir,
            child,
            stdin,
            output,
            pending: Vec::new(),
            aliases,
            jobs: 0,
        }
    }

    /// Runs one command; its output (stdout and stderr as one) and status.
    fn run(&mut self, command: &str) -> (String, i32) {
        let mut command = command.to_owned();
        for (name, here) in &self.aliases {
            command = command.replace(name.as_str(), here);
        }
        write!(
            self.stdin,
            "{command}\n__es_status=$?; printf '\\n{MARK} %d\\n' \"$__es_status\"; (exit \"$__es_status\")\n"
        )
        .expect("write to bash");
        self.stdin.flush().expect("flush");
        let started = Instant::now();
        let needle = format!("\n{MARK} ");
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if let Some(at) = text.find(&needle)
                && let Some(end) = text[at + needle.len()..].find('\n')
            {
                let status = text[at + needle.len()..at + needle.len() + end]
                    .parse()
                    .expect("status");
                let consumed = at + needle.len() + end + 1;
                self.pending = text.as_bytes()[consumed..].to_vec();
                let mut output = text[..at].to_owned();
                for (name, here) in &self.aliases {
                    output = output.replace(here.as_str(), name);
                }
                return (output, status);
            }
            let left = COMMAND_TIMEOUT.saturating_sub(started.elapsed());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.pending.extend(bytes),
                Err(_) => panic!(
                    "`{command}` did not finish within {COMMAND_TIMEOUT:?}; it printed:\n{text}"
                ),
            }
        }
    }
}

impl Session {
    /// Starts `command` in the background, its output in a file; returns
    /// that output once it holds `lines` lines (or after a minute).
    fn start_background(&mut self, command: &str, lines: usize) -> String {
        self.jobs += 1;
        let log = format!(".doc-test-job-{}.log", self.jobs);
        let (_, status) = self.run(&format!("{command} > {log} 2>&1 &"));
        assert_eq!(status, 0, "`{command}` did not start");
        let path = self.dir.path().join(&log);
        let started = Instant::now();
        loop {
            let mut output = std::fs::read_to_string(&path).unwrap_or_default();
            for (name, here) in &self.aliases {
                output = output.replace(here.as_str(), name);
            }
            if output.lines().count() >= lines || started.elapsed() > UNTIL_TIMEOUT {
                return output;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Background jobs (servers, workers) go with the session.
        let _ = writeln!(self.stdin, "kill $(jobs -p) 2>/dev/null; wait; exit 0");
        let _ = self.stdin.flush();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.dir.path();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// Runs every sample of the guide at `relative` (to the workspace).
fn check(relative: &str) {
    let path = workspace().join(relative);
    let text = std::fs::read_to_string(&path).expect("read the guide");
    let lines: Vec<&str> = text.lines().collect();
    let items = parse(relative, &lines);
    let binaries = binaries();
    require_tools(relative);
    let bless = std::env::var_os("ES_DOCS_BLESS").is_some();
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    let mut current = "main".to_owned();
    let mut not_run = None;
    let mut background = false;
    let mut failures = Vec::new();
    let mut blessed: BTreeMap<usize, (std::ops::Range<usize>, Vec<String>)> = BTreeMap::new();
    let (mut ran, mut skipped) = (0, Vec::new());
    for item in items {
        match item {
            Item::Session(name) => current = name,
            Item::NotRun(reason) => not_run = Some(reason),
            Item::Background => background = true,
            Item::Alias { text, command } => {
                let session = sessions
                    .entry(current.clone())
                    .or_insert_with(|| Session::start(&current, &binaries));
                let (output, status) = session.run(&command);
                let here = output.trim().to_owned();
                assert!(
                    status == 0 && !here.is_empty(),
                    "{relative}: the alias command `{command}` failed ({status}):\n{output}"
                );
                session.aliases.push((text, here));
            }
            Item::Hidden { command, until } => {
                let session = sessions
                    .entry(current.clone())
                    .or_insert_with(|| Session::start(&current, &binaries));
                let started = Instant::now();
                loop {
                    let (output, status) = session.run(&command);
                    if status == 0 {
                        break;
                    }
                    if !until || started.elapsed() > UNTIL_TIMEOUT {
                        panic!(
                            "{relative}: the hidden step `{command}` failed ({status}):\n{output}"
                        );
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            Item::Block(block) => {
                if let Some(reason) = not_run.take() {
                    skipped.push(format!("{relative}:{}: {reason}", block.line));
                    continue;
                }
                if current == "postgres" {
                    require_servers(relative);
                }
                let session = sessions
                    .entry(current.clone())
                    .or_insert_with(|| Session::start(&current, &binaries));
                let in_background = std::mem::take(&mut background);
                for step in &block.steps {
                    let expected: Vec<String> = lines[step.output.clone()]
                        .iter()
                        .map(|l| (*l).to_owned())
                        .collect();
                    let actual = if in_background {
                        session.start_background(&step.command, expected.len())
                    } else {
                        session.run(&step.command).0
                    };
                    ran += 1;
                    let actual: Vec<String> = actual.lines().map(str::to_owned).collect();
                    let postgres = current == "postgres";
                    if matches(
                        &comparable(&expected, postgres),
                        &comparable(&actual, postgres),
                    ) {
                        continue;
                    }
                    if bless {
                        let mut shown: Vec<String> = actual
                            .iter()
                            .filter(|l| !left_out(l))
                            .map(|l| l.trim_end().to_owned())
                            .collect();
                        while shown.last().is_some_and(String::is_empty) {
                            shown.pop();
                        }
                        if expected.last().is_some_and(|l| l.trim().is_empty()) {
                            shown.push(String::new());
                        }
                        blessed.insert(step.output.start, (step.output.clone(), shown));
                    } else {
                        failures.push(format!(
                            "{relative}:{}: `$ {}`\n--- the guide says\n{}\n--- the binary printed\n{}\n",
                            step.output.start,
                            step.command,
                            expected.join("\n"),
                            actual.join("\n")
                        ));
                    }
                }
            }
        }
    }
    drop(sessions);
    for reason in &skipped {
        eprintln!("not run: {reason}");
    }
    eprintln!(
        "{relative}: {ran} commands run, {} blocks not run",
        skipped.len()
    );
    if bless && !blessed.is_empty() {
        let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        for (range, actual) in blessed.into_values().rev() {
            out.splice(range, actual);
        }
        std::fs::write(&path, out.join("\n") + "\n").expect("write the guide");
        eprintln!("{relative}: blessed; review the diff");
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} samples of {relative} differ from what the binaries print:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The programs the samples call besides the binaries.
fn require_tools(relative: &str) {
    for tool in [
        "bash",
        "curl",
        "jq",
        "sqlite3",
        "openssl",
        "psql",
        "redis-cli",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{relative}: the samples need `{tool}` on the PATH: install it (`bash .ci/services` \
             installs what is missing on Debian)"
        );
    }
}

/// The PostgreSQL session's servers: reachable, or a failure saying what to
/// start.
fn require_servers(relative: &str) {
    for (what, address) in [
        ("PostgreSQL", "127.0.0.1:5432"),
        ("Redis", "127.0.0.1:6379"),
    ] {
        let reachable = std::net::TcpStream::connect_timeout(
            &address.parse().expect("address"),
            Duration::from_secs(2),
        )
        .is_ok();
        assert!(
            reachable,
            "{relative}: the PostgreSQL samples need {what} at {address}: start it \
             (`bash .ci/services` finds, starts or installs it)"
        );
    }
}

#[test]
fn placeholders_hide_only_what_varies() {
    assert_eq!(
        normalise(
            "#1 Opened at 2026-12-04T03:21:17.007426Z  event 01a23f12-0c26-72ae-b4bb-0a6f8ee696e9"
        ),
        "#1 Opened at [TIME]  event [UUID]"
    );
    assert_eq!(
        normalise("rebuild balances: 14/14 events, 1460 events/s, eta 0 s"),
        "rebuild balances: 14/14 events, [N] events/s, eta [N] s"
    );
    assert_eq!(normalise("balance 125.00"), "balance 125.00");
    assert!(matches(
        &["a".into(), "…".into(), "d".into()],
        &["a".into(), "b".into(), "c".into(), "d".into()]
    ));
    assert!(line_matches(
        "{\"events\":[…,{\"x\":1}]}",
        "{\"events\":[{},{\"x\":1}]}"
    ));
    assert!(!matches(&["a".into()], &["b".into()]));
}
