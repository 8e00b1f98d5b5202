//! The projection runner over the embedded key-value read model, `SqliteKv`:
//! checkpoint resumption, fencing and dead letters, written once over any
//! backend (an event store, a key-value sink and dead letters) and run on
//! SQLite, and for comparison on PostgreSQL and in memory; then a runner
//! process killed with SIGKILL again and again while a writer appends, over
//! one SQLite data directory.
//!
//! The account domain and its `Balances` projection are es-projections' shared
//! test domain, included from there rather than copied.

#[path = "../../es-projections/tests/common/accounts.rs"]
#[allow(
    dead_code,
    reason = "the shared domain's `repo` is tied to `MemoryStore`; these tests build \
              repositories over every backend"
)]
mod accounts;
#[path = "embedded_runner/backend.rs"]
mod backend;
#[path = "embedded_runner/behaviours.rs"]
mod behaviours;
#[path = "embedded_runner/crash.rs"]
mod crash;

/// The behaviours on the embedded default: `SqliteStore`, `SqliteKv`, and the
/// store's durable dead letters, a fresh file per test.
mod sqlite {
    crate::runner_behaviour_tests!(crate::backend::Sqlite);
}

/// The same behaviours on PostgreSQL (`PgStore`, `PgKv`, durable dead
/// letters), a fresh database per test.
mod postgres {
    crate::runner_behaviour_tests!(crate::backend::Postgres);
}

/// The same behaviours on the in-memory reference implementations.
mod memory {
    crate::runner_behaviour_tests!(crate::backend::Memory);
}
