#![doc = include_str!("../README.md")]

pub mod cli;
mod config;
mod error;
mod kv;
pub mod projections;
mod search;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{Backend, Config, DEFAULT_DATA_DIR, DEVELOPMENT_KEY_FILE, KeySource, MasterKeys};
pub use error::Error;
pub use kv::Kv;
pub use search::{SEARCH_DIR, open_search};
pub use store::{ProjectionGuard, Store, StoreWakeups};

/// An error and its sources on one line, each cause once:
/// `cannot use the SQLite store: database error while opening the database: …`.
///
/// ```
/// let error = es_app::Error::MissingMasterKey;
/// assert!(es_app::report(&error).starts_with("no master key is configured"));
/// ```
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace(['\n', '\r'], " ")
}
