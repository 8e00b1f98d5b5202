//! A runner feeding the search index from the log, then forgetting an owner.

use std::path::Path;
use std::sync::Arc;

use es_core::{Crypto, MemoryStore, SubjectId};
use es_projections::{MemoryDeadLetters, Runner, RunnerError, Sink, Step};

use crate::disk::{files_containing, open};
use crate::domain::{Command, OwnerSearch, crypto, repo};

const CANARY: &str = "Thistlewaite5521";

async fn runner(
    store: &MemoryStore,
    crypto: &Arc<Crypto>,
    dir: &Path,
) -> Runner<OwnerSearch, MemoryStore> {
    Runner::new(
        OwnerSearch,
        open(dir).await,
        store.clone(),
        Arc::new(MemoryDeadLetters::new()),
    )
    .with_crypto(Arc::clone(crypto))
}

async fn drain(runner: &mut Runner<OwnerSearch, MemoryStore>) -> Result<(), RunnerError> {
    while runner.step().await? != Step::Idle {}
    Ok(())
}

#[tokio::test]
async fn forgetting_an_owner_removes_the_name_from_the_index_files() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    let owner = SubjectId::new("owner-x").unwrap();
    repo.execute("x", Command::Open(owner.clone(), "Ada Lovelace".into()))
        .await
        .unwrap();
    repo.execute("x", Command::Rename(owner.clone(), format!("Ada {CANARY}")))
        .await
        .unwrap();
    repo.execute(
        "y",
        Command::Open(SubjectId::new("owner-y").unwrap(), "Grace Hopper".into()),
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut r = runner(&store, &crypto, dir.path()).await;
    drain(&mut r).await.unwrap();
    let hits = r.sink().search("thistlewaite5521", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "account-x");
    assert_eq!(
        r.sink().search("lovelace", 10).await.unwrap().len(),
        0,
        "renamed"
    );
    assert!(!files_containing(dir.path(), CANARY).is_empty());

    crypto.forget(&store, &owner).await.unwrap();
    drain(&mut r).await.unwrap();
    assert_eq!(files_containing(dir.path(), CANARY), Vec::<String>::new());
    assert!(r.sink().search("ada", 10).await.unwrap().is_empty());
    assert_eq!(r.sink().get("account-x").await.unwrap(), None);
    let hits = r.sink().search("hoper", 10).await.unwrap();
    assert_eq!(hits.len(), 1, "other owners stay");
    assert_eq!(hits[0].id, "account-y");
    let committed = r.checkpoint();
    assert!(committed.is_some());

    // A restarted runner resumes from the index's checkpoint.
    drop(r);
    let mut resumed = runner(&store, &crypto, dir.path()).await;
    assert_eq!(resumed.step().await.unwrap(), Step::Idle);
    assert_eq!(
        resumed.sink().checkpoint("owner-search").await.unwrap(),
        committed
    );

    // A rebuild after the forget never writes the name at all.
    let fresh = tempfile::tempdir().unwrap();
    let mut rebuild = runner(&store, &crypto, fresh.path()).await;
    drain(&mut rebuild).await.unwrap();
    assert_eq!(files_containing(fresh.path(), CANARY), Vec::<String>::new());
    assert_eq!(rebuild.sink().search("hopper", 10).await.unwrap().len(), 1);
    assert!(
        rebuild
            .sink()
            .search("thistlewaite5521", 10)
            .await
            .unwrap()
            .is_empty()
    );
}
