//! Helpers on the index directory.

use std::path::Path;

use es_projections::SearchIndex;

/// The text fields of the test indexes.
pub(crate) const FIELDS: &[&str] = &["owner_name", "account"];

pub(crate) async fn open(dir: &Path) -> SearchIndex {
    SearchIndex::open(dir, FIELDS).await.unwrap()
}

/// The files under `dir` (recursively) whose bytes contain `needle`, in any
/// case (the term dictionary holds lowercased tokens).
pub(crate) fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let needles = [
        needle.as_bytes().to_vec(),
        needle.to_lowercase().into_bytes(),
        needle.to_uppercase().into_bytes(),
    ];
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    let mut scanned = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            scanned += 1;
            if needles
                .iter()
                .any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
            {
                found.push(path.display().to_string());
            }
        }
    }
    assert!(scanned > 0, "no file in {}", dir.display());
    found
}
