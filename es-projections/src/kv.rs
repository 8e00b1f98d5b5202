//! Key-value sinks. The vocabulary ([`KvBatch`], [`KvOp`]) and the contracts
//! ([`Sink`](es_core::Sink), [`KvSink`](es_core::KvSink)) live in es-core, so
//! that store crates can implement SQL sinks.

mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::RedisKv;
pub use es_core::{KvBatch, KvOp};
pub use memory::MemoryKv;
