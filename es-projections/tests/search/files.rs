//! Private files (Unix): the index holds personal data in clear, so its
//! directories are 0700 and every file in them 0600, tantivy's own included,
//! whatever the umask; an index directory open to others is tightened.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use es_core::{Checkpoint, CommitId, Position};
use es_projections::{Generations, SearchBatch, Sink, Switch};

use crate::disk::open;

fn at(n: u64) -> Checkpoint {
    Checkpoint::new(CommitId::new(n), Position::new(n))
}

fn owner(id: &str, subject: &str, name: &str) -> SearchBatch {
    let mut batch = SearchBatch::default();
    batch.upsert(id, [subject], [("owner_name", name), ("account", id)]);
    batch
}

/// Every entry under `dir` (itself included) that is not a 0700 directory or
/// a 0600 file, with its mode; and how many files there are.
fn not_private(dir: &Path) -> (Vec<String>, usize) {
    let mut wrong = Vec::new();
    let mut files = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&next).unwrap();
        let mode = metadata.permissions().mode() & 0o7777;
        let want = if metadata.is_dir() { 0o700 } else { 0o600 };
        if mode != want {
            wrong.push(format!("{} {mode:04o}", next.display()));
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&next).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else {
            files += 1;
        }
    }
    (wrong, files)
}

#[tokio::test]
async fn every_directory_and_file_of_the_index_is_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("search/owners");
    let index = open(&dir).await;
    index
        .commit("owners", owner("a1", "o1", "Ada Lovelace"), None, at(1))
        .await
        .unwrap();
    index
        .commit(
            "owners",
            owner("a2", "o2", "Grace Hopper"),
            Some(at(1)),
            at(2),
        )
        .await
        .unwrap();
    // A purge merges and collects the old segments.
    let mut purge = SearchBatch::default();
    purge.purge("o1");
    index
        .commit("owners", purge, Some(at(2)), at(3))
        .await
        .unwrap();
    // A second generation and a switch write `LIVE` and the lock.
    let next = index.at_generation(2);
    next.commit("owners", owner("a2", "o2", "Grace Hopper"), None, at(3))
        .await
        .unwrap();
    assert_eq!(
        index.switch_generation("owners", 1, 2).await.unwrap(),
        Switch::Done
    );
    let (wrong, files) = not_private(&parent.path().join("search"));
    assert!(wrong.is_empty(), "not private: {wrong:#?}");
    assert!(files > 5, "only {files} files: nothing was written?");
    assert!(dir.join("LIVE").exists() && dir.join("generations.lock").exists());
}

#[tokio::test]
async fn an_index_directory_open_to_others_is_tightened() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("owners");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let index = open(&dir).await;
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "{mode:04o}");
    index
        .commit("owners", owner("a1", "o1", "Ada"), None, at(1))
        .await
        .unwrap();
    let (wrong, _) = not_private(&dir);
    assert!(wrong.is_empty(), "not private: {wrong:#?}");
}
