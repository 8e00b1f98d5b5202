//! [`RedisKv`]: the key-value sink in Redis (feature `redis`).
//!
//! Layout, every key under the sink's prefix (a rebuild writes a new
//! generation under a new prefix, and drops the old one with
//! [`RedisKv::drop_all`]):
//!
//! - `{prefix}{key}`: a value of the model, a plain Redis string;
//! - `{prefix}__tags:{subject}`: a Redis set of the keys tagged with a subject;
//! - `{prefix}__checkpoint:{projection}`: a projection's checkpoint, as the
//!   [`Checkpoint`]'s display text.
//!
//! A commit is one Lua script (`redis/commit.lua`, run with `EVALSHA`): it
//! compares the stored checkpoint, checks the whole batch before its first
//! write (Lua errors do not roll back), applies the ops in order and moves the
//! checkpoint. Redis runs a script alone, so the commit is atomic.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, Script, ServerErrorKind, Value};
use es_core::{Checkpoint, KvBatch, KvOp, KvSink, Sink, SinkError};

/// The commit script; see the file for its arguments and replies.
static COMMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/commit.lua")));

/// Where tag sets live, after the prefix.
const TAGS: &str = "__tags:";
/// Where checkpoints live, after the prefix.
const CHECKPOINTS: &str = "__checkpoint:";
/// Keys per `SCAN` page, `MGET` and `UNLINK`.
const PAGE: usize = 500;

/// A key-value read model in Redis: [`KvBatch`] writes and the projection's
/// checkpoint committed by one atomic Lua script, a compare-and-set on the
/// checkpoint. Clones share the connection.
///
/// It talks to a single Redis instance (or a primary) through a reconnecting
/// [`ConnectionManager`]: when Redis goes away, calls fail with
/// [`SinkError::Unavailable`], which the runner retries, and the next calls
/// reconnect.
///
/// Keys starting with `__tags:` or `__checkpoint:` are reserved for the
/// sink's own records: writing or reading one is refused.
///
/// ```
/// use es_core::Checkpoint;
/// use es_projections::{KvBatch, RedisKv, Sink};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let url = std::env::var("ES_TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
/// #     .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
/// let kv = RedisKv::connect(&url, "doc:redis-kv:").await?;
/// # kv.drop_all().await?;
/// let mut batch = KvBatch::default();
/// batch.set("account:1:owner", "Ada").incr_by("account:1:balance", 250);
/// kv.commit("balances", batch, None, Checkpoint::START).await?;
/// assert_eq!(kv.get("account:1:balance").await?.as_deref(), Some("250"));
/// assert_eq!(kv.checkpoint("balances").await?, Some(Checkpoint::START));
/// # kv.drop_all().await?;
/// # Ok::<(), es_projections::SinkError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct RedisKv {
    connection: ConnectionManager,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisKv {
    /// Connects to the Redis at `url` (`redis://host:port/db`), with every key
    /// under `prefix` (for instance `"es:"`; not empty).
    ///
    /// No prefix should start with another one in the same database (`"es:"`
    /// and `"es:v2:"`): listing and [`drop_all`](Self::drop_all) of the
    /// shorter one would take the longer one's keys. End prefixes with a
    /// separator and give each generation its own (`"es:v1:"`, `"es:v2:"`).
    ///
    /// Waits for the first connection; a server that cannot be reached is
    /// [`SinkError::Unavailable`], a malformed URL or an empty prefix
    /// [`SinkError::Failed`].
    ///
    /// ```
    /// use es_projections::{RedisKv, SinkError};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let url = std::env::var("ES_TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
    /// #     .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    /// let kv = RedisKv::connect(&url, "doc:connect:").await?;
    /// assert_eq!(kv.prefix(), "doc:connect:");
    /// assert!(matches!(
    ///     RedisKv::connect(&url, "").await,
    ///     Err(SinkError::Failed { .. })
    /// ));
    /// # Ok::<(), SinkError>(())
    /// # }).unwrap();
    /// ```
    pub async fn connect(url: &str, prefix: impl Into<String>) -> Result<Self, SinkError> {
        let prefix = prefix.into();
        if prefix.is_empty() {
            return Err(SinkError::Failed {
                message: "the key prefix of a redis sink is empty".into(),
                source: None,
            });
        }
        let client = ::redis::Client::open(url)
            .map_err(|e| SinkError::failed("the redis url does not parse", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            // Long enough for a large batch's script; a timeout is ambiguous,
            // and the runner then reads the checkpoint back.
            .set_response_timeout(Some(Duration::from_secs(5)))
            // Reconnection attempts per failed call; the runner's own backoff
            // retries beyond them.
            .set_number_of_retries(4)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| classify("connecting to redis", e))?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
        })
    }

    /// The prefix of every key.
    ///
    /// ```
    /// # use es_projections::RedisKv;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let url = std::env::var("ES_TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
    /// #     .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    /// let kv = RedisKv::connect(&url, "doc:prefix:").await?;
    /// assert_eq!(kv.prefix(), "doc:prefix:");
    /// # Ok::<(), es_projections::SinkError>(())
    /// # }).unwrap();
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The value at `key` (without the prefix).
    ///
    /// ```
    /// use es_core::Checkpoint;
    /// use es_projections::{KvBatch, RedisKv, Sink};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let url = std::env::var("ES_TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
    /// #     .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    /// let kv = RedisKv::connect(&url, "doc:get:").await?;
    /// # kv.drop_all().await?;
    /// let mut batch = KvBatch::default();
    /// batch.set("greeting", "hello");
    /// kv.commit("p", batch, None, Checkpoint::START).await?;
    /// assert_eq!(kv.get("greeting").await?.as_deref(), Some("hello"));
    /// assert_eq!(kv.get("missing").await?, None);
    /// # kv.drop_all().await?;
    /// # Ok::<(), es_projections::SinkError>(())
    /// # }).unwrap();
    /// ```
    pub async fn get(&self, key: &str) -> Result<Option<String>, SinkError> {
        refuse_reserved(key)?;
        let value: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(self.value_key(key))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|e| classify("reading a value from redis", e))?;
        value.map(utf8).transpose()
    }

    /// The model's keys (without the prefix; not the tags and checkpoints), in
    /// order. Found with `SCAN`, so not a snapshot: a key written or deleted
    /// during the listing may or may not be in it.
    ///
    /// ```
    /// use es_core::Checkpoint;
    /// use es_projections::{KvBatch, RedisKv, Sink};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let url = std::env::var("ES_TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
    /// #     .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    /// let kv = RedisKv::connect(&url, "doc:keys:").await?;
    /// # kv.drop_all().await?;
    /// let mut batch = KvBatch::default();
    /// batch.set("b", "2").set("a", "1").tag("subject-1", "a");
    /// kv.commit("p", batch, None, Checkpoint::START).await?;
    /// assert_eq!(kv.keys().await?, ["a", "b"]);
    /// # kv.drop_all().await?;
    /// # Ok::<(), es_projections::SinkError>(())
    /// # }).unwrap();
    /// ```
    pub async fn keys(&self) -> Result<Vec<String>, SinkError> {
        let mut keys = Vec::new();
        for key in self.scan().await? {
            let key = utf8(key.get(self.prefix.len()..).unwrap_or_default().to_vec())?;
            if !is_reserved(&key) {
                keys.push(key);
            }
        }
        keys.sort_unstable();
        Ok(keys)
    }

    /// Every key of the model and its value, in key order (what
    /// [`MemoryKv::entries`](crate::MemoryKv::entries) gives). Like
    /// [`keys`](Self::keys), not a snapshot.
    ///
    /// ```
    /// use es_core::Checkpoint;
    /// use es_projections::{KvBatch, RedisKv, Sink};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let url = std::env::var("ES_TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
    /// #     .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    /// let kv = RedisKv::connect(&url, "doc:entries:").await?;
    /// # kv.drop_all().await?;
    /// let mut batch = KvBatch::default();
    /// batch.set("a", "1").incr_by("b", 2);
    /// kv.commit("p", batch, None, Checkpoint::START).await?;
    /// let entries = kv.entries().await?;
    /// assert_eq!(entries.get("a").map(String::as_str), Some("1"));
    /// assert_eq!(entries.get("b").map(String::as_str), Some("2"));
    /// # kv.drop_all().await?;
    /// # Ok::<(), es_projections::SinkError>(())
    /// # }).unwrap();
    /// ```
    pub async fn entries(&self) -> Result<BTreeMap<String, String>, SinkError> {
        let keys = self.keys().await?;
        let mut entries = BTreeMap::new();
        for page in keys.chunks(PAGE) {
            let mut mget = ::redis::cmd("MGET");
            for key in page {
                mget.arg(self.value_key(key));
            }
            let values: Vec<Option<Vec<u8>>> = mget
                .query_async(&mut self.connection.clone())
                .await
                .map_err(|e| classify("reading values from redis", e))?;
            for (key, value) in page.iter().zip(values) {
                // Deleted since the scan: not in the model any more.
                if let Some(value) = value {
                    entries.insert(key.clone(), utf8(value)?);
                }
            }
        }
        Ok(entries)
    }

    /// Deletes every key under the prefix: the model, its tags and the
    /// checkpoints (`SCAN` and `UNLINK`; the memory is freed in the
    /// background). A runner still writing under the prefix may leave keys
    /// behind; stop it first.
    ///
    /// ```
    /// use es_core::Checkpoint;
    /// use es_projections::{KvBatch, RedisKv, Sink};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let url = std::env::var("ES_TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
    /// #     .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    /// let kv = RedisKv::connect(&url, "doc:drop-all:").await?;
    /// let mut batch = KvBatch::default();
    /// batch.set("k", "v");
    /// kv.commit("p", batch, kv.checkpoint("p").await?, Checkpoint::START).await?;
    /// kv.drop_all().await?;
    /// assert!(kv.keys().await?.is_empty());
    /// assert_eq!(kv.checkpoint("p").await?, None);
    /// # Ok::<(), es_projections::SinkError>(())
    /// # }).unwrap();
    /// ```
    pub async fn drop_all(&self) -> Result<(), SinkError> {
        let keys = self.scan().await?;
        for page in keys.chunks(PAGE) {
            let _: u64 = ::redis::cmd("UNLINK")
                .arg(page)
                .query_async(&mut self.connection.clone())
                .await
                .map_err(|e| classify("deleting keys from redis", e))?;
        }
        Ok(())
    }

    /// Every Redis key under the prefix, with the prefix, deduplicated (`SCAN`
    /// may return a key twice).
    async fn scan(&self) -> Result<Vec<Vec<u8>>, SinkError> {
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut connection = self.connection.clone();
        let (mut cursor, mut keys) = (0_u64, Vec::new());
        loop {
            let (next, page): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut connection)
                .await
                .map_err(|e| classify("listing keys in redis", e))?;
            keys.extend(page);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    fn value_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn tags_key(&self, subject: &str) -> String {
        format!("{}{TAGS}{subject}", self.prefix)
    }

    fn checkpoint_key(&self, projection: &str) -> String {
        format!("{}{CHECKPOINTS}{projection}", self.prefix)
    }
}

impl Sink for RedisKv {
    type Batch = KvBatch;

    async fn checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        let stored: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(self.checkpoint_key(projection))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|e| classify("reading a checkpoint from redis", e))?;
        stored.map(parse_checkpoint).transpose()
    }

    /// One `EVALSHA` (plus a `SCRIPT LOAD` and a retry when Redis does not
    /// know the script yet, as after a restart).
    async fn commit(
        &self,
        projection: &str,
        batch: KvBatch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        let mut script = COMMIT.prepare_invoke();
        let mut keys = KeyIndex::default();
        keys.index(self.checkpoint_key(projection));
        let mut ops: Vec<Vec<u8>> = Vec::new();
        for op in batch.into_ops() {
            match op {
                KvOp::Set { key, value } => {
                    refuse_reserved(&key)?;
                    let at = keys.index(self.value_key(&key));
                    ops.extend([b"set".to_vec(), at, value.into_bytes()]);
                }
                KvOp::Delete { key } => {
                    refuse_reserved(&key)?;
                    let at = keys.index(self.value_key(&key));
                    ops.extend([b"del".to_vec(), at]);
                }
                KvOp::IncrBy { key, delta } => {
                    refuse_reserved(&key)?;
                    let at = keys.index(self.value_key(&key));
                    ops.extend([b"incr".to_vec(), at, delta.to_string().into_bytes()]);
                }
                KvOp::Tag { subject, key } => {
                    refuse_reserved(&key)?;
                    let at = keys.index(self.tags_key(&subject));
                    ops.extend([b"tag".to_vec(), at, key.into_bytes()]);
                }
                KvOp::Purge { subject } => {
                    let at = keys.index(self.tags_key(&subject));
                    ops.extend([b"purge".to_vec(), at]);
                }
            }
        }
        script.key(keys.keys);
        script
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.map(|c| c.to_string()).unwrap_or_default())
            .arg(next.to_string())
            .arg(&*self.prefix)
            .arg(ops);
        let reply: Value = script
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|e| classify("committing to redis", e))?;
        match reply {
            Value::Array(items) => match items.as_slice() {
                [Value::BulkString(status)] if status == b"ok" => Ok(()),
                [Value::BulkString(status), stored] if status == b"fenced" => {
                    // A stored checkpoint that does not parse is corruption,
                    // not another runner.
                    if let Value::BulkString(stored) = stored {
                        parse_checkpoint(stored.clone())?;
                    }
                    Err(SinkError::Fenced {
                        projection: projection.to_owned(),
                    })
                }
                [Value::BulkString(status), Value::BulkString(message)] if status == b"failed" => {
                    Err(SinkError::Failed {
                        message: format!(
                            "redis refused the batch: {}",
                            String::from_utf8_lossy(message)
                        ),
                        source: None,
                    })
                }
                _ => Err(unexpected_reply()),
            },
            _ => Err(unexpected_reply()),
        }
    }
}

impl KvSink for RedisKv {
    async fn get(&self, key: &str) -> Result<Option<String>, SinkError> {
        RedisKv::get(self, key).await
    }

    async fn entries(&self) -> Result<BTreeMap<String, String>, SinkError> {
        RedisKv::entries(self).await
    }
}

/// The distinct keys a script names, in `KEYS` order; ops refer to them by
/// their 1-based index.
#[derive(Default)]
struct KeyIndex {
    keys: Vec<String>,
    at: std::collections::HashMap<String, usize>,
}

impl KeyIndex {
    /// The 1-based `KEYS` index of `key`, as a script argument.
    fn index(&mut self, key: String) -> Vec<u8> {
        let next = self.keys.len() + 1;
        let at = *self.at.entry(key.clone()).or_insert_with(|| {
            self.keys.push(key);
            next
        });
        at.to_string().into_bytes()
    }
}

fn is_reserved(key: &str) -> bool {
    key.starts_with(TAGS) || key.starts_with(CHECKPOINTS)
}

fn refuse_reserved(key: &str) -> Result<(), SinkError> {
    if is_reserved(key) {
        return Err(SinkError::Failed {
            message: format!(
                "a key of {} bytes starts with `{TAGS}` or `{CHECKPOINTS}`, reserved by the redis sink",
                key.len()
            ),
            source: None,
        });
    }
    Ok(())
}

fn parse_checkpoint(stored: Vec<u8>) -> Result<Checkpoint, SinkError> {
    utf8(stored)?
        .parse::<Checkpoint>()
        .map_err(|e| SinkError::failed("the checkpoint stored in redis is malformed", e))
}

fn utf8(bytes: Vec<u8>) -> Result<String, SinkError> {
    String::from_utf8(bytes)
        .map_err(|e| SinkError::failed("redis holds a value that is not UTF-8", e))
}

fn unexpected_reply() -> SinkError {
    SinkError::Failed {
        message: "unexpected reply from the redis commit script".into(),
        source: None,
    }
}

/// Escapes the glob characters of `text` for `SCAN MATCH`.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Lost connections, timeouts, and a server loading, read-only or busy: the
/// runner retries these. Anything else (a script error, a value of the wrong
/// type, an authentication failure) is not fixed by retrying.
fn classify(what: &str, error: RedisError) -> SinkError {
    let transient = matches!(
        error.kind(),
        ErrorKind::Io
            | ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
            )
    ) || error.code() == Some("BUSY");
    if transient {
        SinkError::unavailable(what, error)
    } else {
        SinkError::failed(what, error)
    }
}
