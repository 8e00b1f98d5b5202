//! End-to-end tests of the bank-account binary and its HTTP server, each on
//! the embedded default (SQLite, the embedded key-value model, a development
//! key) and on PostgreSQL + Redis.

#[path = "e2e/cli.rs"]
mod cli;
#[path = "e2e/files.rs"]
mod files;
#[path = "e2e/forget.rs"]
mod forget;
#[path = "e2e/http.rs"]
mod http;
#[path = "e2e/runners.rs"]
mod runners;
#[path = "e2e/secrets.rs"]
mod secrets;
#[path = "e2e/server.rs"]
mod server;
#[path = "e2e/stored.rs"]
mod stored;
#[path = "e2e/support.rs"]
mod support;
#[path = "e2e/transfers.rs"]
mod transfers;
#[path = "e2e/trust.rs"]
mod trust;
