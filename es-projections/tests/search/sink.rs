//! The sink's behaviours on a real index in a temporary directory.

use es_core::{Checkpoint, CommitId, Position};
use es_projections::{Generations, SearchBatch, SearchIndex, Sink, SinkError, Switch};

use crate::disk::{FIELDS, open};

fn at(n: u64) -> Checkpoint {
    Checkpoint::new(CommitId::new(n), Position::new(n))
}

fn owner(id: &str, subject: &str, name: &str) -> SearchBatch {
    let mut batch = SearchBatch::default();
    batch.upsert(id, [subject], [("owner_name", name), ("account", id)]);
    batch
}

async fn ids(index: &SearchIndex, query: &str) -> Vec<String> {
    let mut ids: Vec<String> = index
        .search(query, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_commit_round_trips_documents_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    assert_eq!(index.checkpoint("owners").await.unwrap(), None);
    index
        .commit("owners", owner("a1", "o1", "Ada Lovelace"), None, at(1))
        .await
        .unwrap();
    assert_eq!(index.checkpoint("owners").await.unwrap(), Some(at(1)));
    assert_eq!(
        index.get("a1").await.unwrap().unwrap(),
        [
            ("owner_name".to_owned(), "Ada Lovelace".to_owned()),
            ("account".to_owned(), "a1".to_owned())
        ]
    );
    let hits = index.search("ada", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "a1");
    assert!(hits[0].score > 0.0);
    assert!(index.search("ada", 0).await.unwrap().is_empty());
    assert!(index.search("", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_upsert_replaces_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index
        .commit("owners", owner("a1", "o1", "Ada Lovelace"), None, at(1))
        .await
        .unwrap();
    let mut batch = owner("a1", "o1", "Grace Hopper");
    // Twice in one batch: still one document.
    batch.upsert("a1", ["o1"], [("owner_name", "Grace Brewster Hopper")]);
    index
        .commit("owners", batch, Some(at(1)), at(2))
        .await
        .unwrap();
    assert_eq!(ids(&index, "hopper").await, ["a1"]);
    assert!(ids(&index, "lovelace").await.is_empty());
    assert_eq!(
        index.get("a1").await.unwrap().unwrap(),
        [("owner_name".to_owned(), "Grace Brewster Hopper".to_owned())]
    );
}

#[tokio::test]
async fn a_delete_removes_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    let mut batch = owner("a1", "o1", "Ada Lovelace");
    batch.upsert("a2", ["o2"], [("owner_name", "Ada Byron")]);
    index.commit("owners", batch, None, at(1)).await.unwrap();
    let mut batch = SearchBatch::default();
    batch.delete("a1").delete("missing");
    index
        .commit("owners", batch, Some(at(1)), at(2))
        .await
        .unwrap();
    assert_eq!(index.get("a1").await.unwrap(), None);
    assert_eq!(ids(&index, "ada").await, ["a2"]);
}

#[tokio::test]
async fn fuzzy_and_prefix_words_find_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    let mut batch = owner("a1", "o1", "Ada Lovelace");
    batch.upsert("a2", ["o2"], [("owner_name", "Charles Babbage")]);
    index.commit("owners", batch, None, at(1)).await.unwrap();
    for query in [
        "Lovelace",
        "Lovelase",
        "lovelac",
        "Lov",
        "LOV",
        "ada lovelase",
    ] {
        assert_eq!(ids(&index, query).await, ["a1"], "{query}");
    }
    // Every word must match.
    assert!(ids(&index, "Lovelase Babage").await.is_empty());
    assert!(ids(&index, "Hopper").await.is_empty());
    // Unbalanced syntax is text like any other.
    assert_eq!(ids(&index, "\"babbage (").await, ["a2"]);
    // The exact match ranks first.
    let hits = index.search("ada", 10).await.unwrap();
    assert_eq!(hits[0].id, "a1");
}

#[tokio::test]
async fn a_stale_expected_checkpoint_is_fenced_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index
        .commit("owners", owner("a1", "o1", "Ada"), None, at(1))
        .await
        .unwrap();
    for stale in [None, Some(at(7))] {
        let err = index
            .commit("owners", owner("a2", "o2", "Stale Writer"), stale, at(2))
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Fenced { .. }), "{err:?}");
    }
    assert_eq!(index.checkpoint("owners").await.unwrap(), Some(at(1)));
    assert_eq!(index.get("a2").await.unwrap(), None);
    // The fenced writes do not ride along with the next commit either.
    index
        .commit("owners", SearchBatch::default(), Some(at(1)), at(3))
        .await
        .unwrap();
    assert_eq!(index.get("a2").await.unwrap(), None);
    assert!(ids(&index, "stale").await.is_empty());
}

#[tokio::test]
async fn a_reopened_index_resumes_from_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index
        .commit("owners", owner("a1", "o1", "Ada"), None, at(1))
        .await
        .unwrap();
    index
        .commit("owners", owner("a2", "o2", "Grace"), Some(at(1)), at(2))
        .await
        .unwrap();
    drop(index);
    let index = open(dir.path()).await;
    assert_eq!(index.checkpoint("owners").await.unwrap(), Some(at(2)));
    assert_eq!(ids(&index, "ada").await, ["a1"]);
    assert_eq!(ids(&index, "grace").await, ["a2"]);
    index
        .commit("owners", owner("a3", "o3", "Edsger"), Some(at(2)), at(3))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_crash_before_the_commit_leaves_the_previous_commit() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index
        .commit("owners", owner("a1", "o1", "Ada"), None, at(1))
        .await
        .unwrap();
    index.crash_before_next_commit();
    assert!(
        index
            .commit(
                "owners",
                owner("a2", "o2", "Uncommitted"),
                Some(at(1)),
                at(2)
            )
            .await
            .is_err()
    );
    // The crashed sink refuses everything after.
    assert!(
        index
            .commit("owners", SearchBatch::default(), Some(at(1)), at(2))
            .await
            .is_err()
    );
    drop(index);
    let index = open(dir.path()).await;
    assert_eq!(index.checkpoint("owners").await.unwrap(), Some(at(1)));
    assert_eq!(index.get("a2").await.unwrap(), None);
    assert!(ids(&index, "uncommitted").await.is_empty());
    assert_eq!(ids(&index, "ada").await, ["a1"]);
    // The runner's retry from the previous checkpoint applies the batch once.
    index
        .commit(
            "owners",
            owner("a2", "o2", "Uncommitted"),
            Some(at(1)),
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(ids(&index, "uncommitted").await, ["a2"]);
}

#[tokio::test]
async fn a_failed_commit_is_rolled_back_and_its_retry_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index.fail_next_commits(2);
    let mut batch = owner("a1", "o1", "Ada");
    batch.upsert("a2", ["o2"], [("owner_name", "Ada")]);
    for _ in 0..2 {
        let err = index
            .commit("owners", batch.clone(), None, at(1))
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Unavailable { .. }), "{err:?}");
        assert_eq!(index.checkpoint("owners").await.unwrap(), None);
    }
    index.commit("owners", batch, None, at(1)).await.unwrap();
    assert_eq!(index.search("ada", 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_batch_naming_an_unknown_field_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    let mut batch = owner("a1", "o1", "Ada");
    batch.upsert("a2", ["o2"], [("nickname", "Countess")]);
    let err = index
        .commit("owners", batch, None, at(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Failed { .. }), "{err:?}");
    assert_eq!(index.checkpoint("owners").await.unwrap(), None);
    index
        .commit("owners", SearchBatch::default(), None, at(1))
        .await
        .unwrap();
    assert_eq!(index.get("a1").await.unwrap(), None);
}

#[tokio::test]
async fn a_second_writer_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index
        .commit("owners", SearchBatch::default(), None, at(1))
        .await
        .unwrap();
    // Another handle (as another process would) can read, but not write while
    // the first holds the writer: unavailable, so a runner retries.
    let other = SearchIndex::open(dir.path(), FIELDS).await.unwrap();
    let err = other
        .commit("owners", owner("a9", "o9", "Zed"), Some(at(1)), at(2))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SinkError::Unavailable { message, .. } if message.contains("lock")),
        "{err:?}"
    );
    assert_eq!(other.checkpoint("owners").await.unwrap(), Some(at(1)));
    drop(other);
    // Clones share the one writer.
    let clone = index.clone();
    clone
        .commit("owners", owner("a1", "o1", "Ada"), Some(at(1)), at(2))
        .await
        .unwrap();
    assert_eq!(ids(&index, "ada").await, ["a1"]);
    drop((index, clone));
    open(dir.path()).await;
}

#[tokio::test]
async fn the_index_belongs_to_one_projection() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index
        .commit("owners", SearchBatch::default(), None, at(1))
        .await
        .unwrap();
    let err = index.checkpoint("other").await.unwrap_err();
    assert!(matches!(err, SinkError::Failed { .. }), "{err:?}");
    let err = index
        .commit("other", SearchBatch::default(), None, at(1))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Failed { .. }), "{err:?}");
}

#[tokio::test]
async fn a_malformed_payload_is_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    for payload in ["garbage", "x:y owners"] {
        {
            let index = tantivy::Index::open_in_dir(dir.path().join("g1")).unwrap();
            let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
            let mut prepared = writer.prepare_commit().unwrap();
            prepared.set_payload(payload);
            prepared.commit().unwrap();
        }
        let index = open(dir.path()).await;
        let err = index.checkpoint("owners").await.unwrap_err();
        assert!(
            matches!(err, SinkError::Failed { .. }),
            "{payload}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_schema_is_checked_on_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).await);
    let err = SearchIndex::open(dir.path(), &["nickname"])
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Failed { .. }), "{err:?}");
    for bad in [&["id"][..], &["subject"], &[""], &["a", "a"]] {
        let other = tempfile::tempdir().unwrap();
        let err = SearchIndex::open(other.path(), bad).await.unwrap_err();
        assert!(matches!(err, SinkError::Failed { .. }), "{bad:?}: {err:?}");
    }
}

#[tokio::test]
async fn generations_switch_readers_at_once_and_drop_the_old_directory() {
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    index
        .commit("owners", owner("a1", "o1", "Ada"), None, at(1))
        .await
        .unwrap();
    let next = index.at_generation(2);
    next.commit("owners", owner("a2", "o2", "Ada"), None, at(1))
        .await
        .unwrap();
    assert_eq!(ids(&index, "ada").await, ["a1"]);
    assert_eq!(ids(&next, "ada").await, ["a2"]);
    assert_eq!(index.generations().await.unwrap(), [1, 2]);
    assert_eq!(
        index.switch_generation("owners", 1, 2).await.unwrap(),
        Switch::Done
    );
    assert_eq!(ids(&index, "ada").await, ["a2"]);
    let err = index.drop_generation(2).await.unwrap_err();
    assert!(matches!(err, SinkError::Failed { .. }), "{err:?}");
    index.drop_generation(1).await.unwrap();
    assert!(!dir.path().join("g1").exists());
    assert_eq!(index.generations().await.unwrap(), [2]);
    // A new handle, as a restarted process, reads the live generation.
    drop((index, next));
    let reopened = open(dir.path()).await;
    assert_eq!(reopened.live_generation().await.unwrap(), 2);
    assert_eq!(ids(&reopened, "ada").await, ["a2"]);
}

#[tokio::test]
async fn a_writer_in_another_handle_is_superseded_by_a_switch_and_follows() {
    // Two handles opened separately, as two processes: the live runner's and
    // a rebuild's.
    let dir = tempfile::tempdir().unwrap();
    let live = open(dir.path()).await;
    assert_eq!(live.checkpoint("owners").await.unwrap(), None);
    live.commit("owners", owner("a1", "o1", "Ada"), None, at(1))
        .await
        .unwrap();
    let rebuild = open(dir.path()).await.at_generation(2);
    rebuild
        .commit("owners", owner("a1", "o1", "Ada"), None, at(2))
        .await
        .unwrap();
    let behind = rebuild.switch_generation("owners", 1, 2).await.unwrap();
    assert_eq!(
        behind,
        Switch::Done,
        "generation 2 is ahead of generation 1"
    );
    let err = live
        .commit("owners", owner("a3", "o3", "Stale"), Some(at(1)), at(3))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SinkError::Superseded {
                generation: 1,
                live: 2,
                ..
            }
        ),
        "{err:?}"
    );
    // Reloading binds the live runner's handle to generation 2; it can write
    // there once the rebuild lets go of the writer.
    assert_eq!(live.checkpoint("owners").await.unwrap(), Some(at(2)));
    let held = live
        .commit("owners", owner("a3", "o3", "Fresh"), Some(at(2)), at(3))
        .await
        .unwrap_err();
    assert!(matches!(held, SinkError::Unavailable { .. }), "{held:?}");
    drop(rebuild);
    live.commit("owners", owner("a3", "o3", "Fresh"), Some(at(2)), at(3))
        .await
        .unwrap();
    assert_eq!(ids(&live, "fresh").await, ["a3"]);
    assert!(ids(&live, "stale").await.is_empty());
}
