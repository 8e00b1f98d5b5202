//! Running the real binary on a backend, and a minimal HTTP client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// Runs `$body` (an async fn taking `&Env`) on both backends, as two tests.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    let env = $crate::support::Env::embedded();
                    super::$name(&env).await;
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    let env = $crate::support::Env::servers().await;
                    super::$name(&env).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// The test master key (all zero bytes): never for real data.
pub(crate) const TEST_MASTER_KEY: &str = es_app::testing::TEST_MASTER_KEY;

/// A backend and a data directory for the binary.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) database_url: Option<String>,
    pub(crate) redis_url: Option<String>,
    pub(crate) redis_namespace: String,
}

/// What a run of the binary printed.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// stdout as one JSON document.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts success and returns the JSON.
    #[track_caller]
    pub(crate) fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "the command failed: {self:?}");
        self.json()
    }

    /// Asserts a failure of `kind` with `code` and returns the message.
    #[track_caller]
    pub(crate) fn fails(&self, kind: &str, code: i32) -> String {
        let json = self.json();
        assert_eq!(json["error"], kind, "{self:?}");
        assert_eq!(self.code, code, "{self:?}");
        let message = json["message"].as_str().expect("a message").to_owned();
        assert!(!message.is_empty());
        message
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

fn redis_reachable(url: &str) -> bool {
    let Some(host) = url.strip_prefix("redis://") else {
        return true;
    };
    let host = host.trim_end_matches('/');
    let host = host.split('/').next().unwrap_or(host);
    TcpStream::connect(host).is_ok()
}

impl Env {
    /// The embedded default: nothing configured but the data directory.
    pub(crate) fn embedded() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            database_url: None,
            redis_url: None,
            redis_namespace: String::new(),
        }
    }

    /// A fresh PostgreSQL database and a fresh Redis namespace.
    pub(crate) async fn servers() -> Self {
        let redis = es_app::testing::redis_url();
        assert!(
            redis_reachable(&redis),
            "Redis is not reachable at {redis}. Start it (`bash .ci/services` finds, starts or \
             installs it) or point ES_TEST_REDIS_URL at a server."
        );
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            database_url: Some(es_store_postgres::testing::fresh_database_url().await),
            redis_url: Some(redis),
            redis_namespace: format!("bank-test-{}", uuid::Uuid::now_v7().simple()),
        }
    }

    /// Whether this is the embedded default.
    pub(crate) fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }

    /// The data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The binary, configured by the environment for this backend.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bank-account"));
        command
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("ES_MASTER_KEY")
            .env_remove("ES_MASTER_KEY_FILE")
            .env("ES_DATA_DIR", self.data_dir())
            .env("ES_REDIS_NAMESPACE", &self.redis_namespace)
            .stdin(Stdio::null());
        if let Some(url) = &self.database_url {
            command
                .env("DATABASE_URL", url)
                .env("ES_MASTER_KEY", TEST_MASTER_KEY);
        }
        if let Some(url) = &self.redis_url {
            command.env("REDIS_URL", url);
        }
        command
    }

    /// Runs the binary with `--json` and `args`.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.command()
            .arg("--json")
            .args(args)
            .output()
            .expect("the binary runs")
            .into()
    }

    /// The balance the read model shows.
    #[track_caller]
    pub(crate) fn balance(&self, account: &str) -> u64 {
        let json = self.run(&["balance", "--account", account]).ok();
        assert_eq!(json["account"], account);
        json["balance"].as_u64().expect("an integer balance")
    }

    /// Opens `account` for `owner` with `initial` cents.
    #[track_caller]
    pub(crate) fn open(&self, account: &str, owner: &str, name: &str, initial: u64) {
        let initial = printed(initial);
        self.run(&[
            "open",
            "--account",
            account,
            "--owner-id",
            owner,
            "--owner-name",
            name,
            "--initial",
            &initial,
        ])
        .ok();
    }

    /// The store this backend's binary uses, opened from the test.
    pub(crate) async fn store(&self) -> es_app::Store {
        let mut config = es_app::Config::embedded(self.data_dir());
        if let Some(url) = &self.database_url {
            config = config.with_database_url(url.clone());
        }
        es_app::Store::connect(&config).await.expect("the store")
    }

    /// Starts the binary with `args` and returns it once its stderr has a
    /// whole line that `ready` picks (what it returns), stderr then drained
    /// in the background so that the child never blocks on it.
    fn spawn_until<T>(&self, args: &[&str], ready: impl Fn(&str) -> Option<T>) -> (Child, T) {
        let mut child = self
            .command()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let mut stderr = child.stderr.take().expect("stderr");
        let mut seen = String::new();
        let mut byte = [0u8; 1];
        let found = loop {
            match stderr.read(&mut byte) {
                Ok(1) => {
                    seen.push(char::from(byte[0]));
                    if seen.ends_with('\n')
                        && let Some(found) = seen.lines().find_map(&ready)
                    {
                        break found;
                    }
                }
                _ => {
                    let _ = child.kill();
                    panic!("{args:?} exited before it was ready: {seen}");
                }
            }
        };
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = stderr.read_to_end(&mut sink);
        });
        (child, found)
    }

    /// Starts `projections run` (a worker with no HTTP) and returns once it
    /// says it runs.
    pub(crate) fn worker(&self) -> Worker {
        let (child, ()) = self.spawn_until(&["projections", "run"], |line| {
            line.starts_with("running").then_some(())
        });
        Worker { child }
    }

    /// Starts `serve` on a free port.
    pub(crate) fn serve(&self) -> Server {
        self.serve_with(&[])
    }

    /// Starts `serve` on a free port with more arguments.
    pub(crate) fn serve_with(&self, args: &[&str]) -> Server {
        let args: Vec<&str> = ["serve", "--addr", "127.0.0.1:0"]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        let (child, addr) = self.spawn_until(&args, |line| {
            line.strip_prefix("listening on http://")
                .map(|addr| addr.parse::<SocketAddr>().expect("an address"))
        });
        Server { child, addr }
    }
}

/// A running `bank-account serve`, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

/// A running `bank-account projections run`, killed when dropped.
pub(crate) struct Worker {
    pub(crate) child: Child,
}

impl Worker {
    /// Kills it as a crash would (SIGKILL).
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: String,
}

impl Response {
    /// The body as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

impl Server {
    /// Sends one request (HTTP/1.1, `Connection: close`).
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let addr = self.addr;
        let method = method.to_owned();
        let path = path.to_owned();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let body = body.map(<[u8]>::to_vec);
        tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).expect("connect");
            let mut head =
                format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
            for (k, v) in &headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            if let Some(body) = &body {
                head.push_str(&format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                ));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).expect("write");
            if let Some(body) = &body {
                // A server may answer (413) before reading a large body.
                let _ = stream.write_all(body);
            }
            let mut raw = Vec::new();
            let _ = stream.read_to_end(&mut raw);
            let text = String::from_utf8_lossy(&raw).into_owned();
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no status line: {text}"));
            Response {
                status,
                headers: head.to_ascii_lowercase(),
                body: body.to_owned(),
            }
        })
        .await
        .expect("the request task")
    }

    /// `request` with a JSON body.
    pub(crate) async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Response {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.request("POST", path, headers, Some(&bytes)).await
    }

    /// A GET.
    pub(crate) async fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], None).await
    }
}

/// A fresh id with `prefix`, unique across tests sharing a Redis.
pub(crate) fn fresh(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    )
}

/// A TCP proxy in front of PostgreSQL that a test can cut: the database
/// "goes away" (connections dropped, new ones refused) and comes back.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    upstream: String,
    cut: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    /// A proxy to the host and port of `database_url`.
    pub(crate) async fn to(database_url: &str) -> Self {
        let after_scheme = database_url.split_once("://").expect("a URL").1;
        let authority = after_scheme.split('/').next().expect("an authority");
        let upstream = authority.rsplit('@').next().expect("a host").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("an address");
        let (cut, _) = tokio::sync::watch::channel(false);
        let proxy = Self {
            addr,
            upstream,
            cut,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream.clone();
        let mut cut = self.cut.subscribe();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = cut.wait_for(|c| *c) => return,
                };
                let Ok((mut client, _)) = accepted else {
                    return;
                };
                let upstream = upstream.clone();
                let mut cut = cut.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
    }

    /// `database_url` through this proxy.
    pub(crate) fn url(&self, database_url: &str) -> String {
        database_url.replacen(&self.upstream, &self.addr.to_string(), 1)
    }

    /// Drops every connection and refuses new ones.
    pub(crate) fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Accepts connections again, on the same address.
    pub(crate) async fn restore(&self) {
        self.cut.send_replace(false);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }
}

/// Whether `needle` appears in any file under `dir`.
pub(crate) fn in_files(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// Where `needle` appears in PostgreSQL: every row of every table as text
/// (bytea shows as hex, so the hex form is searched too).
pub(crate) async fn in_postgres(url: &str, needle: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let tables: Vec<String> = sqlx::query(
        "SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.get(0))
    .collect();
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    let mut found = Vec::new();
    for table in tables {
        let sql = format!(
            "SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%' OR t::text LIKE '%' || $2 || '%'"
        );
        let n: i64 = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(needle)
            .bind(&hex)
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            found.push(table);
        }
    }
    found
}

/// Keys of the namespace whose value holds `needle` (or whose name does).
pub(crate) async fn in_redis(url: &str, namespace: &str, needle: &str) -> Vec<String> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{namespace}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the read models are in Redis");
    let mut found = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let dump: String = match kind.as_str() {
            "string" => redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap(),
            "hash" => {
                let all: Vec<String> = redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                all.join(" ")
            }
            "set" => {
                let all: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                all.join(" ")
            }
            // A key index: the model's keys, in order.
            "zset" => {
                let all: Vec<String> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                all.join(" ")
            }
            other => panic!("unexpected Redis type {other}"),
        };
        if dump.contains(needle) || key.contains(needle) {
            found.push(key);
        }
    }
    found
}

/// Where `needle` appears: files of the data directory, PostgreSQL tables,
/// Redis keys of the namespace.
pub(crate) async fn places(env: &Env, needle: &str) -> Vec<String> {
    let mut found = in_files(env.data_dir(), needle.as_bytes());
    if let Some(url) = &env.database_url {
        found.extend(in_postgres(url, needle).await);
    }
    if let Some(url) = &env.redis_url {
        found.extend(in_redis(url, &env.redis_namespace, needle).await);
    }
    found
}

/// `cents` as the CLI takes and prints an amount (`25.00`).
pub(crate) fn printed(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}
