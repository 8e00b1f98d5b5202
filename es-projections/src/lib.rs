//! Projection runners of the `es` framework: read models fed from the global
//! log, with the checkpoint committed atomically with the writes, so a crash
//! never applies an event twice or skips one.
//!
//! - [`Projection`]: names itself, says what it reads, and turns each
//!   [`Change`] (an event, or a forgotten subject to purge) into writes.
//! - [`Sink`]: commits a batch of writes and the checkpoint, all or nothing,
//!   compare-and-set on the checkpoint (which fences out a stale runner).
//!   [`MemoryKv`] is the in-memory key-value sink; [`KvBatch`] is the
//!   key-value vocabulary the Redis and SQL sinks share. `RedisKv` (feature
//!   `redis`) and `SearchIndex`, a tantivy full-text index (feature `tantivy`),
//!   are the production sinks; `PgKv` and `SqliteKv` live in the store crates.
//! - [`Runner`]: batches, decodes (opening personal data), applies, commits,
//!   retries with backoff behind a circuit breaker, and sends poison events to
//!   the [`DeadLetters`] with a halt or skip policy. [`Progress`] gives
//!   read-your-writes.
//! - [`ProcessManager`]: a saga that reacts to events by sending commands,
//!   keyed by the triggering event so a redelivery sends nothing twice; it
//!   runs on the same runner through [`Reactions`] and [`Reactor`].

mod kv;
mod process;
mod projection;
mod rebuild;
mod runner;
#[cfg(feature = "tantivy")]
mod search;

pub use es_core::{BoxFuture, DeadLetter, DeadLetters, MemoryDeadLetters};
pub use es_core::{Generations, KvSink, Sink, SinkError, Switch};
#[cfg(feature = "redis")]
pub use kv::RedisKv;
pub use kv::{KvBatch, KvOp, MemoryKv};
pub use process::{
    Pending, PendingBatch, ProcessManager, Reaction, ReactionError, Reactions, Reactor,
};
pub use projection::{Change, EventMeta, Projection, ProjectionError};
pub use rebuild::{Rebuild, RebuildError, RebuildProgress, RebuildReport};
pub use runner::{
    Backoff, FailurePolicy, Progress, Runner, RunnerError, RunnerOptions, Step, WaitError,
};
#[cfg(feature = "tantivy")]
pub use search::{Hit, SearchBatch, SearchIndex, SearchOp};
