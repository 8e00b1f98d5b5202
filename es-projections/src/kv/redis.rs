//! [`RedisKv`]: the key-value sink in Redis (feature `redis`).
//!
//! Layout, every key under the sink's prefix, in [`Generations`] (a rebuild
//! builds generation `n + 1` beside the live generation `n`):
//!
//! - `{prefix}live`: the live generation's number (missing: 1);
//! - `{prefix}g{n}:v:{key}`: a value of generation `n`, a plain Redis string;
//! - `{prefix}g{n}:t:{subject}`: a Redis set of the keys tagged with a
//!   subject;
//! - `{prefix}g{n}:c:{projection}`: a projection's checkpoint, as the
//!   [`Checkpoint`]'s display text.
//!
//! The three spaces are told apart by the letter after the generation, so no
//! application key, whatever its bytes, can name a tag set or a checkpoint:
//! the key spaces are disjoint by construction, not by a list of refused
//! names.
//!
//! A commit is one Lua script (`redis/commit.lua`, run with `EVALSHA`): it
//! refuses a generation older than the live one, compares the stored
//! checkpoint, checks the whole batch before its first write (Lua errors do not
//! roll back), applies the ops in order and moves the checkpoint. Redis runs a
//! script alone, so the commit is atomic, and so is a switch of the live
//! generation (`redis/switch.lua`) and a read through it.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{ErrorKind, RedisError, Script, ServerErrorKind, Value};
use es_core::{
    Checkpoint, GenerationBinding, Generations, KvBatch, KvOp, KvSink, Sink, SinkError, Switch,
};

/// The commit script; see the file for its arguments and replies.
static COMMIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/commit.lua")));
/// The switch of the live generation; see the file.
static SWITCH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/switch.lua")));
/// A page of values from a generation's key index; see the file.
static SCAN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("redis/scan.lua")));
/// A read of one value in the live generation, atomic with respect to a switch.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local g = redis.call('GET', KEYS[1]) or '1'\n\
         return redis.call('GET', ARGV[1] .. 'g' .. g .. ':v:' .. ARGV[2])",
    )
});

/// The live generation's key, after the prefix.
const LIVE: &str = "live";

/// Where values live, after the generation.
const VALUES: &str = "v:";
/// Where tag sets live, after the generation.
const TAGS: &str = "t:";
/// Where checkpoints live, after the generation.
const CHECKPOINTS: &str = "c:";
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
/// Any UTF-8 key is the application's: the sink's own records (tags,
/// checkpoints) live in key spaces of their own.
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
    binding: GenerationBinding,
    /// Whether commits keep each generation's key index (for `scan`).
    key_index: bool,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("prefix", &self.prefix)
            .field("binding", &self.binding)
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
            binding: GenerationBinding::follow(),
            key_index: true,
        })
    }

    /// A model without the key index: commits do not keep the sorted set of
    /// each generation's keys that [`KvSink::scan`] pages through, and a scan
    /// reads the whole generation instead ([`KvSink::entries`]) to cut its
    /// page. For a write-heavy model that is never scanned: the index costs
    /// a `ZADD` per written key (a quarter of the throughput on a log whose
    /// every event writes keys of its own, see docs/benchmarks.md) and its
    /// memory in Redis. The choice belongs to the model: open every handle
    /// of it the same way, and rebuild it after changing.
    #[must_use]
    pub fn without_key_index(mut self) -> Self {
        self.key_index = false;
        self
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
        let value: Option<Vec<u8>> = match self.binding.pinned_generation() {
            Some(generation) => {
                ::redis::cmd("GET")
                    .arg(self.value_key(generation, key))
                    .query_async(&mut self.connection.clone())
                    .await
            }
            None => {
                READ.key(self.live_key())
                    .arg(&*self.prefix)
                    .arg(key)
                    .invoke_async(&mut self.connection.clone())
                    .await
            }
        }
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
        let generation = self.binding.read(self.live().await?);
        self.keys_in(generation).await
    }

    async fn keys_in(&self, generation: u64) -> Result<Vec<String>, SinkError> {
        let prefix = self.value_key(generation, "");
        let mut keys = Vec::new();
        for key in self.scan_keys(&prefix).await? {
            keys.push(utf8(key.get(prefix.len()..).unwrap_or_default().to_vec())?);
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
        let generation = self.binding.read(self.live().await?);
        let keys = self.keys_in(generation).await?;
        let mut entries = BTreeMap::new();
        for page in keys.chunks(PAGE) {
            let mut mget = ::redis::cmd("MGET");
            for key in page {
                mget.arg(self.value_key(generation, key));
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

    /// Deletes every key under the prefix: every generation of the model, its
    /// tags and checkpoints, and the live pointer (`SCAN` and `UNLINK`; the
    /// memory is freed in the background). A runner still writing under the
    /// prefix may leave keys behind; stop it first.
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
        self.unlink_under(&self.prefix).await
    }

    /// `SCAN` and `UNLINK` every key under `prefix`, a page at a time: the
    /// keys are never all in memory (a model of millions of keys would be
    /// hundreds of megabytes of names). A key `SCAN` returns twice is
    /// unlinked twice, which is harmless.
    async fn unlink_under(&self, prefix: &str) -> Result<(), SinkError> {
        let pattern = format!("{}*", glob_escape(prefix));
        let mut connection = self.connection.clone();
        let mut cursor = 0_u64;
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
            if !page.is_empty() {
                let _: u64 = ::redis::cmd("UNLINK")
                    .arg(&page)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| classify("deleting keys from redis", e))?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Every Redis key under `prefix`, with the prefix, deduplicated (`SCAN`
    /// may return a key twice).
    async fn scan_keys(&self, prefix: &str) -> Result<Vec<Vec<u8>>, SinkError> {
        self.scan_pattern(&format!("{}*", glob_escape(prefix)))
            .await
    }

    /// Every Redis key matching the `SCAN` pattern, deduplicated.
    async fn scan_pattern(&self, pattern: &str) -> Result<Vec<Vec<u8>>, SinkError> {
        let mut connection = self.connection.clone();
        let (mut cursor, mut keys) = (0_u64, Vec::new());
        loop {
            let (next, page): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
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

    /// The live generation.
    async fn live(&self) -> Result<u64, SinkError> {
        let stored: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(self.live_key())
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|e| classify("reading the live generation from redis", e))?;
        match stored {
            None => Ok(1),
            Some(text) => utf8(text)?.parse::<u64>().map_err(|e| {
                SinkError::failed("the live generation stored in redis is malformed", e)
            }),
        }
    }

    fn live_key(&self) -> String {
        format!("{}{LIVE}", self.prefix)
    }

    fn generation_prefix(&self, generation: u64) -> String {
        format!("{}g{generation}:", self.prefix)
    }

    fn value_key(&self, generation: u64, key: &str) -> String {
        format!("{}g{generation}:{VALUES}{key}", self.prefix)
    }

    fn tags_key(&self, generation: u64, subject: &str) -> String {
        format!("{}g{generation}:{TAGS}{subject}", self.prefix)
    }

    fn checkpoint_key(&self, generation: u64, projection: &str) -> String {
        format!("{}g{generation}:{CHECKPOINTS}{projection}", self.prefix)
    }

    async fn checkpoint_in(
        &self,
        generation: u64,
        projection: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        let stored: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(self.checkpoint_key(generation, projection))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|e| classify("reading a checkpoint from redis", e))?;
        stored.map(parse_checkpoint).transpose()
    }
}

impl Sink for RedisKv {
    type Batch = KvBatch;

    async fn checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        let generation = match self.binding.pinned_generation() {
            Some(generation) => generation,
            None => self.binding.bind(self.live().await?),
        };
        self.checkpoint_in(generation, projection).await
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
        let generation = match self.binding.write() {
            Some(generation) => generation,
            None => self.live().await?,
        };
        let mut script = COMMIT.prepare_invoke();
        let mut keys = KeyIndex::default();
        keys.index(self.checkpoint_key(generation, projection));
        keys.index(self.live_key());
        let mut ops: Vec<Vec<u8>> = Vec::new();
        for op in batch.compacted().into_ops() {
            match op {
                KvOp::Set { key, value } => {
                    let at = keys.index(self.value_key(generation, &key));
                    ops.extend([b"set".to_vec(), at, value.into_bytes()]);
                }
                KvOp::Delete { key } => {
                    let at = keys.index(self.value_key(generation, &key));
                    ops.extend([b"del".to_vec(), at]);
                }
                KvOp::IncrBy { key, delta } => {
                    let at = keys.index(self.value_key(generation, &key));
                    ops.extend([b"incr".to_vec(), at, delta.to_string().into_bytes()]);
                }
                KvOp::Tag { subject, key } => {
                    let at = keys.index(self.tags_key(generation, &subject));
                    ops.extend([b"tag".to_vec(), at, key.into_bytes()]);
                }
                KvOp::Purge { subject } => {
                    let at = keys.index(self.tags_key(generation, &subject));
                    ops.extend([b"purge".to_vec(), at]);
                }
            }
        }
        script.key(keys.keys);
        script
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.map(|c| c.to_string()).unwrap_or_default())
            .arg(next.to_string())
            .arg(self.value_key(generation, ""))
            .arg(generation)
            .arg(if self.key_index { "1" } else { "0" })
            .arg(ops);
        let reply: Value = script
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|e| classify("committing to redis", e))?;
        match reply {
            Value::Array(items) => match items.as_slice() {
                [Value::BulkString(status)] if status == b"ok" => Ok(()),
                [Value::BulkString(status), Value::BulkString(live)] if status == b"superseded" => {
                    Err(SinkError::Superseded {
                        projection: projection.to_owned(),
                        generation,
                        live: String::from_utf8_lossy(live).parse().unwrap_or(u64::MAX),
                    })
                }
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

impl Generations for RedisKv {
    async fn live_generation(&self) -> Result<u64, SinkError> {
        self.live().await
    }

    /// Found with `SCAN` over the checkpoint keys.
    async fn generations(&self) -> Result<Vec<u64>, SinkError> {
        let pattern = format!("{}g*:{CHECKPOINTS}*", glob_escape(&self.prefix));
        // The pattern's `*` also matches values whose key holds `:c:`: keep
        // only `g<digits>:c:…`.
        let mut generations: Vec<u64> = self
            .scan_pattern(&pattern)
            .await?
            .iter()
            .filter_map(|key| {
                let rest = key.get(self.prefix.len() + 1..)?;
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                if digits == 0 || !rest[digits..].starts_with(b":c:") {
                    return None;
                }
                std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
            })
            .collect();
        generations.sort_unstable();
        generations.dedup();
        Ok(generations)
    }

    fn at_generation(&self, generation: u64) -> Self {
        Self {
            connection: self.connection.clone(),
            prefix: Arc::clone(&self.prefix),
            binding: GenerationBinding::pinned(generation),
            key_index: self.key_index,
        }
    }

    /// Reads both checkpoints, compares them, then switches with one script
    /// that checks nothing moved in between (and reads again if something did).
    async fn switch_generation(
        &self,
        projection: &str,
        from: u64,
        to: u64,
    ) -> Result<Switch, SinkError> {
        let fenced = || SinkError::Fenced {
            projection: projection.to_owned(),
        };
        if to <= from {
            return Err(fenced());
        }
        loop {
            if self.live().await? != from {
                return Err(fenced());
            }
            let live = self.checkpoint_in(from, projection).await?;
            let next = self.checkpoint_in(to, projection).await?;
            if next < live {
                return Ok(Switch::Behind { live, next });
            }
            let reply: String = SWITCH
                .key(self.live_key())
                .key(self.checkpoint_key(from, projection))
                .key(self.checkpoint_key(to, projection))
                .arg(from)
                .arg(to)
                .arg(live.map(|c| c.to_string()).unwrap_or_default())
                .arg(next.map(|c| c.to_string()).unwrap_or_default())
                .invoke_async(&mut self.connection.clone())
                .await
                .map_err(|e| classify("switching generations in redis", e))?;
            match reply.as_str() {
                "ok" => return Ok(Switch::Done),
                "fenced" => return Err(fenced()),
                // A checkpoint moved between the reads and the script.
                _ => {}
            }
        }
    }

    async fn drop_generation(&self, generation: u64) -> Result<(), SinkError> {
        if generation == self.live().await? {
            return Err(SinkError::Failed {
                message: format!("generation {generation} is live and cannot be dropped"),
                source: None,
            });
        }
        self.unlink_under(&self.generation_prefix(generation)).await
    }
}

impl KvSink for RedisKv {
    async fn get(&self, key: &str) -> Result<Option<String>, SinkError> {
        RedisKv::get(self, key).await
    }

    async fn entries(&self) -> Result<BTreeMap<String, String>, SinkError> {
        RedisKv::entries(self).await
    }

    /// A page from the generation's key index (a sorted set kept by every
    /// commit), the live generation resolved in the same script.
    async fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, SinkError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        if !self.key_index {
            let all = RedisKv::entries(self).await?;
            return Ok(es_core::kv_page(&all, prefix, after, limit));
        }
        let start = match after {
            Some(after) if after >= prefix => format!("({after}"),
            _ => format!("[{prefix}"),
        };
        let generation = self
            .binding
            .pinned_generation()
            .map(|g| g.to_string())
            .unwrap_or_default();
        let flat: Vec<Vec<u8>> = SCAN
            .key(self.live_key())
            .arg(generation)
            .arg(&*self.prefix)
            .arg(start)
            .arg("+")
            .arg(limit)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|e| classify("reading a page of values from redis", e))?;
        let mut page = Vec::with_capacity(flat.len() / 2);
        let mut flat = flat.into_iter();
        while let (Some(key), Some(value)) = (flat.next(), flat.next()) {
            let key = utf8(key)?;
            // The index runs on past the prefix: the page ends there.
            if !key.starts_with(prefix) {
                break;
            }
            page.push((key, utf8(value)?));
        }
        Ok(page)
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
