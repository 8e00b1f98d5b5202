//! es-app against real services: backend selection from configuration, the
//! master key, private files, the store conformance suite on both backends,
//! and the CLI kit as a real binary (its `projections` commands included).

#[path = "app/cli.rs"]
mod cli;
#[path = "app/cli_projections.rs"]
mod cli_projections;
#[path = "app/conformance.rs"]
mod conformance;
#[path = "app/files.rs"]
mod files;
#[path = "app/kv.rs"]
mod kv;
#[path = "app/master_key.rs"]
mod master_key;
#[path = "app/selection.rs"]
mod selection;
