//! es-store-postgres against a real PostgreSQL: the conformance suite (a fresh
//! database per test), torture, faults and properties.

#[path = "postgres/conformance.rs"]
mod conformance;
