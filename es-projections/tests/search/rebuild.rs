//! Zero-downtime rebuilds of a search index: the rebuilt index holds the same
//! documents, searches during the rebuild never come back empty, and the
//! forgotten owner is absent from every generation's files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use es_core::{Generations, MemoryStore, SubjectId};
use es_projections::{MemoryDeadLetters, Runner, RunnerOptions, SearchIndex, Step};

use crate::disk::{files_containing, open};
use crate::domain::{Command, OwnerSearch, crypto, repo};

const CANARY: &str = "Quillfeather8812";
const ACCOUNTS: u32 = 40;

fn runner(
    store: &MemoryStore,
    crypto: &Arc<es_core::Crypto>,
    index: &SearchIndex,
) -> Runner<OwnerSearch, MemoryStore> {
    Runner::new(
        OwnerSearch,
        index.clone(),
        store.clone(),
        Arc::new(MemoryDeadLetters::new()),
    )
    .with_crypto(Arc::clone(crypto))
    .with_options(RunnerOptions {
        batch_size: 5,
        ..RunnerOptions::default()
    })
}

/// Opens accounts (owner 0 named with the canary), renames some, forgets
/// owner 0.
async fn workload(store: &MemoryStore, crypto: &Arc<es_core::Crypto>) {
    let repo = repo(store, crypto);
    for a in 0..ACCOUNTS {
        let owner = SubjectId::new(format!("owner-{a}")).unwrap();
        let name = if a == 0 {
            format!("Zoe {CANARY}")
        } else {
            format!("Name{a} Person")
        };
        repo.execute(&a.to_string(), Command::Open(owner.clone(), name))
            .await
            .unwrap();
        if a % 3 == 0 {
            repo.execute(
                &a.to_string(),
                Command::Rename(owner, format!("Name{a} Renamed")),
            )
            .await
            .unwrap();
        }
    }
    crypto
        .forget(store, &SubjectId::new("owner-0").unwrap())
        .await
        .unwrap();
}

async fn documents(index: &SearchIndex) -> Vec<Option<Vec<(String, String)>>> {
    let mut all = Vec::new();
    for a in 0..ACCOUNTS {
        all.push(index.get(&format!("account-{a}")).await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuilt_index_equals_the_incremental_one_and_searches_never_come_back_empty() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    workload(&store, &crypto).await;
    let dir = tempfile::tempdir().unwrap();
    let index = open(dir.path()).await;
    let mut live = runner(&store, &crypto, &index);
    while live.step().await.unwrap() != Step::Idle {}
    let incremental = documents(&index).await;
    assert!(incremental.iter().skip(1).all(Option::is_some));

    let stop = Arc::new(AtomicBool::new(false));
    let (searches, empty) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (index, stop) = (index.clone(), Arc::clone(&stop));
        let (searches, empty) = (Arc::clone(&searches), Arc::clone(&empty));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for a in 1..ACCOUNTS {
                    if index
                        .search(&format!("name{a}"), 5)
                        .await
                        .unwrap()
                        .is_empty()
                    {
                        empty.fetch_add(1, Ordering::Relaxed);
                    }
                    searches.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let report = runner(&store, &crypto, &index)
        .rebuild()
        .run()
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    assert_eq!((report.from, report.to), (1, 2));
    assert!(searches.load(Ordering::Relaxed) > 0);
    assert_eq!(empty.load(Ordering::Relaxed), 0, "a search came back empty");
    assert_eq!(documents(&index).await, incremental);
    assert!(
        !dir.path().join("g1").exists(),
        "the old generation is dropped"
    );
    assert_eq!(files_containing(dir.path(), CANARY), Vec::<String>::new());

    // The live runner follows into generation 2.
    repo(&store, &crypto)
        .execute(
            "7",
            Command::Rename(SubjectId::new("owner-7").unwrap(), "After Rebuild".into()),
        )
        .await
        .unwrap();
    while live.step().await.unwrap() != Step::Idle {}
    assert_eq!(index.live_generation().await.unwrap(), 2);
    let hits = index.search("after rebuild", 5).await.unwrap();
    assert_eq!(hits.first().map(|h| h.id.as_str()), Some("account-7"));
}
