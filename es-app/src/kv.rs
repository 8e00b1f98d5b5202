//! [`Kv`]: the key-value read model that the configuration selects.

use std::collections::BTreeMap;

use es_core::{Checkpoint, Generations, KvBatch, KvSink, Sink, SinkError, Switch};
use es_projections::RedisKv;
use es_store_postgres::PgKv;
use es_store_sqlite::SqliteKv;

use crate::config::{REDIS_URL, scheme};
use crate::{Config, Error, Store};

/// What `REDIS_URL` may hold.
const EXPECTED_REDIS_URL: &str =
    "redis://…, rediss://… or unix://… (or nothing, for the SQL model)";

/// A key-value read model: Redis when `REDIS_URL` is set, else the SQL
/// key-value model in the event store's own database (SQLite or PostgreSQL).
///
/// It implements [`Sink`] and [`KvSink`] by delegation, so a projection
/// written against those traits runs on any of them.
///
/// ```
/// use es_app::{Config, Kv, Store};
/// use es_core::{Checkpoint, KvBatch, KvSink, Sink};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir().unwrap();
/// let config = Config::embedded(dir.path());
/// let store = Store::connect(&config).await?;
/// store.migrate().await?;
/// let balances = Kv::open(&config, &store, "balances").await?;
/// assert!(matches!(balances, Kv::Sqlite(_)));
///
/// let mut batch = KvBatch::default();
/// batch.incr_by("account-1:balance", 250);
/// balances.commit("balances", batch, None, Checkpoint::START).await?;
/// assert_eq!(balances.get("account-1:balance").await?.as_deref(), Some("250"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Kv {
    /// Redis (`REDIS_URL`), every key under a prefix derived from the name.
    Redis(RedisKv),
    /// The SQL model in the SQLite file.
    Sqlite(SqliteKv),
    /// The SQL model in the PostgreSQL database.
    Postgres(PgKv),
}

impl Kv {
    /// Opens the read model `name`: in Redis under the prefix
    /// [`redis_prefix_in(namespace, name)`](Self::redis_prefix_in) when `config` has a Redis
    /// URL, else in the namespace `name` of `store`'s database.
    ///
    /// A Redis URL that does not parse, or of another scheme than `redis`,
    /// `rediss` or `unix`, is a typed error naming `REDIS_URL`; a Redis that
    /// cannot be reached is [`Error::Kv`].
    pub async fn open(config: &Config, store: &Store, name: &str) -> Result<Self, Error> {
        if let Some(url) = config.redis_url() {
            let url = url.trim();
            match scheme(url) {
                "redis" | "rediss" | "unix" | "redis+unix" => {}
                "" => {
                    return Err(Error::InvalidUrl {
                        variable: REDIS_URL,
                        expected: EXPECTED_REDIS_URL,
                        reason: "it has no scheme".into(),
                    });
                }
                other => {
                    return Err(Error::UnsupportedScheme {
                        variable: REDIS_URL,
                        scheme: other.to_owned(),
                        expected: EXPECTED_REDIS_URL,
                    });
                }
            }
            return match RedisKv::connect(
                url,
                Self::redis_prefix_in(config.redis_namespace(), name),
            )
            .await
            {
                Ok(kv) => Ok(Self::Redis(kv)),
                Err(SinkError::Failed { .. }) => Err(Error::InvalidUrl {
                    variable: REDIS_URL,
                    expected: EXPECTED_REDIS_URL,
                    reason: "the redis client does not accept it".into(),
                }),
                Err(error) => Err(Error::Kv(error)),
            };
        }
        Ok(match store {
            Store::Postgres(store) => Self::Postgres(PgKv::new(store.clone(), name)),
            Store::Sqlite(store) => Self::Sqlite(SqliteKv::new(store.clone(), name)),
        })
    }

    /// The Redis key prefix of the read model `name`: `es:<name>:`, with `%`
    /// and `:` in the name percent-encoded, so that no model's prefix starts
    /// with another's.
    ///
    /// ```
    /// use es_app::Kv;
    ///
    /// assert_eq!(Kv::redis_prefix("balances"), "es:balances:");
    /// assert_eq!(Kv::redis_prefix("a:b"), "es:a%3Ab:");
    /// assert!(!Kv::redis_prefix("a:b").starts_with(&Kv::redis_prefix("a")));
    /// ```
    pub fn redis_prefix(name: &str) -> String {
        Self::redis_prefix_in("es", name)
    }

    /// The Redis key prefix of the read model `name` in the deployment
    /// `namespace` ([`Config::redis_namespace`]): `<namespace>:<name>:`,
    /// both percent-encoded as in [`redis_prefix`](Self::redis_prefix).
    ///
    /// ```
    /// use es_app::Kv;
    ///
    /// assert_eq!(Kv::redis_prefix_in("staging", "balances"), "staging:balances:");
    /// assert!(!Kv::redis_prefix_in("a:b", "c").starts_with(&Kv::redis_prefix_in("a", "b")));
    /// ```
    pub fn redis_prefix_in(namespace: &str, name: &str) -> String {
        let mut prefix = String::with_capacity(namespace.len() + name.len() + 2);
        for part in [namespace, name] {
            for c in part.chars() {
                match c {
                    '%' => prefix.push_str("%25"),
                    ':' => prefix.push_str("%3A"),
                    c => prefix.push(c),
                }
            }
            prefix.push(':');
        }
        prefix
    }
}

/// Calls the same method on whichever sink is configured.
macro_rules! delegate {
    ($self:expr, $kv:ident => $call:expr) => {
        match $self {
            Kv::Redis($kv) => $call,
            Kv::Sqlite($kv) => $call,
            Kv::Postgres($kv) => $call,
        }
    };
}

impl Sink for Kv {
    type Batch = KvBatch;

    async fn checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        delegate!(self, kv => kv.checkpoint(projection).await)
    }

    async fn commit(
        &self,
        projection: &str,
        batch: KvBatch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        delegate!(self, kv => kv.commit(projection, batch, expected, next).await)
    }
}

impl Generations for Kv {
    async fn live_generation(&self) -> Result<u64, SinkError> {
        delegate!(self, kv => kv.live_generation().await)
    }

    async fn generations(&self) -> Result<Vec<u64>, SinkError> {
        delegate!(self, kv => kv.generations().await)
    }

    fn at_generation(&self, generation: u64) -> Self {
        match self {
            Self::Redis(kv) => Self::Redis(kv.at_generation(generation)),
            Self::Sqlite(kv) => Self::Sqlite(kv.at_generation(generation)),
            Self::Postgres(kv) => Self::Postgres(kv.at_generation(generation)),
        }
    }

    async fn switch_generation(
        &self,
        projection: &str,
        from: u64,
        to: u64,
    ) -> Result<Switch, SinkError> {
        delegate!(self, kv => kv.switch_generation(projection, from, to).await)
    }

    async fn drop_generation(&self, generation: u64) -> Result<(), SinkError> {
        delegate!(self, kv => kv.drop_generation(generation).await)
    }
}

impl KvSink for Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, SinkError> {
        delegate!(self, kv => KvSink::get(kv, key).await)
    }

    async fn entries(&self) -> Result<BTreeMap<String, String>, SinkError> {
        delegate!(self, kv => KvSink::entries(kv).await)
    }

    async fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, SinkError> {
        delegate!(self, kv => KvSink::scan(kv, prefix, after, limit).await)
    }
}
