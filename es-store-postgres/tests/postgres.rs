//! es-store-postgres against a real PostgreSQL: the conformance suite (a fresh
//! database per test), torture, faults, diagnostics and properties.

#[path = "postgres/appenders.rs"]
mod appenders;
#[path = "postgres/conformance.rs"]
mod conformance;
#[path = "postgres/crypto.rs"]
mod crypto;
#[path = "postgres/faults.rs"]
mod faults;
#[path = "postgres/group_commit.rs"]
mod group_commit;
#[path = "postgres/kv.rs"]
mod kv;
#[path = "postgres/locks.rs"]
mod locks;
#[path = "postgres/ordering.rs"]
mod ordering;
#[path = "postgres/support.rs"]
mod support;
