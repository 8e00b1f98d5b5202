//! The opener of a full-text read model, beside [`Kv::open`](crate::Kv::open).

use es_projections::SearchIndex;

use crate::{Config, Error};

/// The directory of the data directory that holds the search indexes.
pub const SEARCH_DIR: &str = "search";

/// Opens the search index (tantivy) of read model `name` with the text
/// `fields`, in `search/<name>/` of the configured data directory: what a
/// full-text projection's runner writes and its queries read, on every
/// backend (the index is always a directory on the machine that runs the
/// process). `name` is one path segment: letters, digits, `-`, `_` and `.`,
/// not `.` or `..`.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let config = es_app::Config::embedded(dir.path());
/// let books = es_app::open_search(&config, "books", &["title"]).await.unwrap();
/// assert!(books.search("anything", 10).await.unwrap().is_empty());
/// assert!(dir.path().join("search/books").is_dir());
/// assert!(es_app::open_search(&config, "../elsewhere", &["title"]).await.is_err());
/// # });
/// ```
///
/// # Errors
///
/// [`Error::Kv`] when the name is not one path segment or the index cannot
/// be opened (its schema differs, say).
pub async fn open_search(
    config: &Config,
    name: &str,
    fields: &[&str],
) -> Result<SearchIndex, Error> {
    let valid = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(Error::Kv(es_core::SinkError::Failed {
            message: format!(
                "a search index name is one path segment of letters, digits, '-', '_' and '.' \
                 ({} bytes given)",
                name.len()
            ),
            source: None,
        }));
    }
    SearchIndex::open(config.data_dir().join(SEARCH_DIR).join(name), fields)
        .await
        .map_err(Error::Kv)
}
