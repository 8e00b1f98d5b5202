//! The Redis the tests talk to, unique prefixes, and a private
//! `redis-server` child process for the restart test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use es_projections::RedisKv;
use rand::Rng;

/// `ES_TEST_REDIS_URL`, or the local default.
pub(crate) fn redis_url() -> String {
    std::env::var("ES_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// A prefix no other test uses.
pub(crate) fn unique_prefix() -> String {
    format!("es-test:{:016x}:", rand::rng().random::<u64>())
}

/// A `RedisKv` on the test Redis under a fresh prefix; fails the test, saying
/// what to do, when Redis cannot be reached.
pub(crate) async fn fresh_kv() -> RedisKv {
    connect(&redis_url(), &unique_prefix()).await
}

pub(crate) async fn connect(url: &str, prefix: &str) -> RedisKv {
    match RedisKv::connect(url, prefix).await {
        Ok(kv) => kv,
        Err(error) => panic!(
            "cannot reach Redis at {url}: start one (`redis-server`, or `bash .ci/services`) \
             or point ES_TEST_REDIS_URL at one: {error}"
        ),
    }
}

/// A plain connection, to look at what the sink stored.
pub(crate) async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}"))
}

/// Every Redis key under `prefix`, with what it holds (a string, or a set's
/// members, sorted), in key order.
pub(crate) async fn dump(url: &str, prefix: &str) -> Vec<(String, Vec<String>)> {
    let mut connection = raw(url).await;
    let mut keys: Vec<String> = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .unwrap();
        keys.extend(page.into_iter().filter(|k| k.starts_with(prefix)));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut connection)
            .await
            .unwrap();
        let contents: Vec<String> = match kind.as_str() {
            "string" => vec![
                redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .unwrap(),
            ],
            "set" => {
                let mut members: Vec<String> = redis::cmd("SMEMBERS")
                    .arg(&key)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
                members.sort();
                members
            }
            // The key index: its members in order.
            "zset" => redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut connection)
                .await
                .unwrap(),
            other => panic!("unexpected type {other} at {key}"),
        };
        out.push((key, contents));
    }
    out
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of the test's own, with an append-only file fsynced on
/// every write (so its data survives a kill), killed when dropped.
pub(crate) struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    pub(crate) async fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "es-redis-test-{}-{:08x}",
            std::process::id(),
            rand::rng().random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.restart().await;
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port and directory, and waits
    /// until it answers.
    pub(crate) async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "yes"])
            .args(["--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server (install it, or `bash .ci/services`): {e}")
            });
        self.child = Some(child);
        for _ in 0..200 {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "the private redis-server on port {} did not answer",
            self.port
        );
    }

    /// SIGKILL, and waits for the process to end.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
