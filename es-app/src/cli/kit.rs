//! [`Kit`]: what the application registers with the CLI kit (its event and
//! aggregate types), and the dispatch of a [`Command`].

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use es_core::{
    Aggregate, Bincode, BoxFuture, Codec, Crypto, Event, Personal, RecordedEvent, Repository,
    StreamVersion, SystemEvent,
};
use serde::Serialize;

use super::{
    CliError, Command, DeadLettersCommand, KeysCommand, ProjectionsCommand, SnapshotsCommand,
    StreamsCommand, commands,
};
use crate::projections::{Context, Projections};
use crate::{Config, Store};

/// Builds the application's projections for a connected store.
type ProjectionsFactory = Arc<
    dyn for<'a> Fn(&'a Config, &'a Store) -> BoxFuture<'a, Result<Projections, crate::Error>>
        + Send
        + Sync,
>;

/// How an operator sees an event: a JSON value of its fields, personal data
/// included through [`personal`]. `streams show` prints it.
///
/// Personal values cannot be serialized outside the framework's encryption
/// scope (that is what keeps them out of logs), so the kit cannot use the
/// event's serde form; the application says what to show, once per event
/// type:
///
/// ```
/// use es_app::cli::{Inspect, personal};
/// use es_core::{Personal, SubjectId};
/// use serde_json::json;
///
/// #[derive(Debug, es_core::Event)]
/// enum AccountEvent {
///     Opened {
///         #[event(subject)]
///         owner: SubjectId,
///         #[event(personal)]
///         name: Personal<String>,
///     },
///     Deposited { amount: u64 },
/// }
///
/// impl Inspect for AccountEvent {
///     fn inspect(&self) -> serde_json::Value {
///         match self {
///             Self::Opened { owner, name } => json!({ "owner": owner, "name": personal(name) }),
///             Self::Deposited { amount } => json!({ "amount": amount }),
///         }
///     }
/// }
///
/// let owner = SubjectId::new("owner-1").unwrap();
/// let opened = AccountEvent::Opened { owner: owner.clone(), name: Personal::new(owner.clone(), "Ada".into()) };
/// assert_eq!(opened.inspect(), json!({ "owner": "owner-1", "name": "Ada" }));
/// let forgotten = AccountEvent::Opened { owner: owner.clone(), name: Personal::shredded(owner) };
/// assert_eq!(forgotten.inspect()["name"], "<shredded>");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be shown by the CLI kit",
    note = "implement `es_app::cli::Inspect` for it: a JSON value of its fields, personal data through `es_app::cli::personal`"
)]
pub trait Inspect {
    /// The event's fields as JSON.
    fn inspect(&self) -> serde_json::Value;
}

/// A personal value for [`Inspect`]: the value, or the string `<shredded>`
/// once its subject is forgotten.
///
/// ```
/// use es_core::{Personal, SubjectId};
///
/// let subject = SubjectId::new("s-1").unwrap();
/// let name = Personal::new(subject.clone(), "Ada".to_owned());
/// assert_eq!(es_app::cli::personal(&name), "Ada");
/// assert_eq!(es_app::cli::personal(&Personal::<String>::shredded(subject)), "<shredded>");
/// ```
pub fn personal<T: Serialize>(value: &Personal<T>) -> serde_json::Value {
    value
        .value()
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or_else(|| serde_json::Value::String(SHREDDED.to_owned()))
}

/// What a shredded personal value shows.
pub(crate) const SHREDDED: &str = "<shredded>";

impl Inspect for SystemEvent {
    fn inspect(&self) -> serde_json::Value {
        match self {
            Self::SubjectForgotten { subject } => serde_json::json!({ "subject": subject }),
        }
    }
}

/// What a command produced: text for people, JSON for scripts, and notices
/// for stderr (a development key just created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The human-readable output.
    pub text: String,
    /// The JSON output.
    pub json: serde_json::Value,
    /// Lines for stderr, whatever the format.
    pub notices: Vec<String>,
}

impl Report {
    pub(crate) fn new(text: String, json: serde_json::Value) -> Self {
        Self {
            text,
            json,
            notices: Vec::new(),
        }
    }
}

/// Decodes the recorded events of one registered event enum to JSON.
pub(crate) trait EventDecoder: Send + Sync {
    /// The enum's Rust type name, for messages.
    fn type_name(&self) -> &'static str;

    /// Decodes `events` (all of this enum's types) in one batch: keys fetched
    /// once.
    fn decode<'a>(
        &'a self,
        crypto: &'a Crypto,
        store: &'a Store,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, es_core::Error>>;
}

struct TypedEvents<E, C> {
    codec: C,
    event: PhantomData<fn() -> E>,
}

impl<E: Event + Inspect, C: Codec> EventDecoder for TypedEvents<E, C> {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<E>()
    }

    fn decode<'a>(
        &'a self,
        crypto: &'a Crypto,
        store: &'a Store,
        events: &'a [RecordedEvent],
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, es_core::Error>> {
        Box::pin(async move {
            let decoded: Vec<E> =
                es_core::decode_events(Some(crypto), store, &self.codec, events).await?;
            Ok(decoded.iter().map(Inspect::inspect).collect())
        })
    }
}

/// What the kit does with one registered aggregate type.
pub(crate) trait AggregateOps: Send + Sync {
    /// The stable type name: its streams are `<type name>-<id>`.
    fn type_name(&self) -> &'static str;

    /// The snapshot schema version it loads; `None` when snapshots are
    /// disabled (every snapshot of it is useless).
    fn snapshot_schema(&self) -> Option<u32>;

    /// Snapshots the aggregate `id` now.
    fn take_snapshot<'a>(
        &'a self,
        store: &'a Store,
        crypto: Arc<Crypto>,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StreamVersion>, es_core::Error>>;
}

struct TypedAggregate<A, C> {
    codec: C,
    aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate, C: Codec> AggregateOps for TypedAggregate<A, C> {
    fn type_name(&self) -> &'static str {
        A::TYPE_NAME
    }

    fn snapshot_schema(&self) -> Option<u32> {
        A::SNAPSHOT_EVERY.map(|_| A::SNAPSHOT_VERSION)
    }

    fn take_snapshot<'a>(
        &'a self,
        store: &'a Store,
        crypto: Arc<Crypto>,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<StreamVersion>, es_core::Error>> {
        Box::pin(async move {
            Repository::<A, Store, C>::with_codec(store.clone(), self.codec.clone())
                .with_crypto(crypto)
                .take_snapshot(id)
                .await
        })
    }
}

/// The CLI kit with the application's registered types: event enums (to
/// show events) and aggregates (to take and prune snapshots).
///
/// ```
/// use es_app::cli::Kit;
/// # use es_app::cli::{Inspect, personal};
/// # #[derive(Debug, es_core::Event)]
/// # enum AccountEvent { Deposited { amount: u64 } }
/// # impl Inspect for AccountEvent {
/// #     fn inspect(&self) -> serde_json::Value { serde_json::json!({}) }
/// # }
/// # #[derive(Debug, Default, serde::Serialize, serde::Deserialize, es_core::Aggregate)]
/// # #[aggregate(name = "account", snapshot_every = 100)]
/// # struct Account { balance: u64 }
/// # impl es_core::Aggregate for Account {
/// #     type Command = ();
/// #     type Event = AccountEvent;
/// #     type Error = std::convert::Infallible;
/// #     fn handle(&self, _: ()) -> Result<Vec<AccountEvent>, Self::Error> { Ok(vec![]) }
/// #     fn apply(&mut self, _: &AccountEvent) {}
/// # }
///
/// let kit = Kit::new().events::<AccountEvent>().aggregate::<Account>();
/// assert_eq!(kit.event_types().collect::<Vec<_>>(), ["$SubjectForgotten", "Deposited"]);
/// ```
#[derive(Clone)]
pub struct Kit {
    /// Event type name → the decoder of the enum it belongs to.
    pub(crate) events: BTreeMap<&'static str, Arc<dyn EventDecoder>>,
    /// By type name.
    pub(crate) aggregates: BTreeMap<&'static str, Arc<dyn AggregateOps>>,
    /// The application's projections, built once the store is connected.
    pub(crate) projections: Option<ProjectionsFactory>,
}

impl std::fmt::Debug for Kit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kit")
            .field("events", &self.events.keys().collect::<Vec<_>>())
            .field("aggregates", &self.aggregates.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Kit {
    fn default() -> Self {
        Self::new()
    }
}

impl Kit {
    /// A kit that knows only the framework's own events
    /// ([`SystemEvent`](es_core::SystemEvent)).
    pub fn new() -> Self {
        let kit = Self {
            events: BTreeMap::new(),
            aggregates: BTreeMap::new(),
            projections: None,
        };
        kit.events_with_codec::<SystemEvent, _>(Bincode)
    }

    /// Registers an event enum encoded with the default codec ([`Bincode`]).
    ///
    /// # Panics
    ///
    /// When one of its type names is already registered (by another enum).
    #[must_use]
    pub fn events<E: Event + Inspect>(self) -> Self {
        self.events_with_codec::<E, _>(Bincode)
    }

    /// Registers an event enum encoded with `codec` (the repository's).
    ///
    /// # Panics
    ///
    /// When one of its type names is already registered (by another enum).
    #[must_use]
    pub fn events_with_codec<E: Event + Inspect, C: Codec>(mut self, codec: C) -> Self {
        let decoder: Arc<dyn EventDecoder> = Arc::new(TypedEvents::<E, C> {
            codec,
            event: PhantomData,
        });
        for info in E::TYPES {
            if let Some(other) = self.events.insert(info.name, Arc::clone(&decoder)) {
                panic!(
                    "event type `{}` of {} is already registered with the CLI kit by {}",
                    info.name,
                    std::any::type_name::<E>(),
                    other.type_name()
                );
            }
        }
        self
    }

    /// Registers an aggregate whose snapshots use the default codec
    /// ([`Bincode`]), and its event enum (as [`events`](Self::events) does,
    /// unless already registered).
    ///
    /// # Panics
    ///
    /// When an aggregate of the same type name is already registered.
    #[must_use]
    pub fn aggregate<A: Aggregate>(self) -> Self
    where
        A::Event: Inspect,
    {
        self.aggregate_with_codec::<A, _>(Bincode)
    }

    /// Registers an aggregate whose events and snapshots use `codec` (the
    /// repository's), and its event enum unless already registered.
    ///
    /// # Panics
    ///
    /// When an aggregate of the same type name is already registered.
    #[must_use]
    pub fn aggregate_with_codec<A: Aggregate, C: Codec>(mut self, codec: C) -> Self
    where
        A::Event: Inspect,
    {
        let ops = Arc::new(TypedAggregate::<A, C> {
            codec: codec.clone(),
            aggregate: PhantomData,
        });
        if self.aggregates.insert(A::TYPE_NAME, ops).is_some() {
            panic!(
                "aggregate type `{}` is already registered with the CLI kit",
                A::TYPE_NAME
            );
        }
        let known = <A::Event as Event>::TYPES
            .iter()
            .all(|info| self.events.contains_key(info.name));
        if known {
            self
        } else {
            self.events_with_codec::<A::Event, C>(codec)
        }
    }

    /// Registers the application's projections for the `projections …`
    /// commands: `build` makes the [`Projections`] registry (with their sinks)
    /// for the configuration and the connected store.
    ///
    /// ```
    /// use es_app::cli::Kit;
    /// use es_app::projections::Projections;
    ///
    /// let kit = Kit::new().projections(|_config, _store| {
    ///     Box::pin(async { Ok(Projections::new()) })
    /// });
    /// # drop(kit);
    /// ```
    #[must_use]
    pub fn projections<F>(mut self, build: F) -> Self
    where
        F: for<'a> Fn(&'a Config, &'a Store) -> BoxFuture<'a, Result<Projections, crate::Error>>
            + Send
            + Sync
            + 'static,
    {
        self.projections = Some(Arc::new(build));
        self
    }

    /// The registered event type names, in byte order.
    pub fn event_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.events.keys().copied()
    }

    /// The registered aggregate type names, in byte order.
    pub fn aggregate_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.aggregates.keys().copied()
    }

    /// Runs `command` against the store `config` selects and returns what it
    /// produced, without printing ([`run`](Self::run) prints).
    ///
    /// ```
    /// use es_app::Config;
    /// use es_app::cli::{Command, Kit};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let dir = tempfile::tempdir().unwrap();
    /// let report = Kit::new()
    ///     .execute(&Config::embedded(dir.path()), &Command::Migrate)
    ///     .await
    ///     .unwrap();
    /// assert_eq!(report.json["migrated"], true);
    /// # }
    /// ```
    pub async fn execute(&self, config: &Config, command: &Command) -> Result<Report, CliError> {
        self.execute_as(config, command, false).await
    }

    /// [`execute`](Self::execute), for output in JSON (`json`) or text: what
    /// `projections status --watch` prints between reports.
    pub(crate) async fn execute_as(
        &self,
        config: &Config,
        command: &Command,
        json: bool,
    ) -> Result<Report, CliError> {
        let reads_only = matches!(
            command,
            Command::Streams(_)
                | Command::Projections(
                    ProjectionsCommand::List
                        | ProjectionsCommand::Status { .. }
                        | ProjectionsCommand::DeadLetters(DeadLettersCommand::List { .. })
                )
        );
        if reads_only {
            config.require_existing_store()?;
        }
        let store = Store::connect(config).await?;
        match command {
            Command::Migrate => commands::migrate(&store).await,
            Command::Streams(StreamsCommand::List { limit, after }) => {
                commands::list_streams(&store, after.as_deref(), *limit).await
            }
            Command::Streams(StreamsCommand::Show {
                stream,
                after,
                limit,
            }) => {
                let keys = config.master_keyring_for(&store).await?;
                Crypto::new(keys.keyring.clone()).check(&store).await?;
                let mut report =
                    commands::show_stream(self, &store, &keys.keyring, stream, *after, *limit)
                        .await?;
                report.notices.extend(keys.notice());
                Ok(report)
            }
            Command::Forget { subject, force } => commands::forget(&store, subject, *force).await,
            Command::Keys(KeysCommand::Rotate) => {
                let keys = config.master_keyring_for(&store).await?;
                let mut report = commands::rotate(&store, &keys.keyring).await?;
                report.notices.extend(keys.notice());
                Ok(report)
            }
            Command::Snapshots(SnapshotsCommand::Take { stream }) => {
                let keys = config.master_keyring_for(&store).await?;
                Crypto::new(keys.keyring.clone()).check(&store).await?;
                let mut report =
                    commands::take_snapshot(self, &store, &keys.keyring, stream).await?;
                report.notices.extend(keys.notice());
                Ok(report)
            }
            Command::Snapshots(SnapshotsCommand::Prune) => {
                commands::prune_snapshots(self, &store).await
            }
            Command::Projections(command) => {
                // Before the application's builder, which may ask for the keys
                // without the store and so create a development key over a
                // lost one.
                let keys = config.master_keyring_for(&store).await?;
                let projections = match &self.projections {
                    Some(build) => build(config, &store).await?,
                    None => Projections::new(),
                };
                let crypto = Arc::new(Crypto::new(keys.keyring.clone()));
                if command.opens_personal_data() {
                    // A wrong master key is a configuration error now, before
                    // anything is written (dead letters included), not
                    // undecodable events in a rebuilt model later.
                    crypto.check(&store).await?;
                }
                let cx = Context {
                    store,
                    crypto: Some(crypto),
                };
                let mut report =
                    super::projections::execute(&projections, &cx, command, json).await?;
                report.notices.extend(keys.notice());
                Ok(report)
            }
        }
    }
}
