//! One runner per projection: the advisory lock.

use std::time::Duration;

use es_store_postgres::testing::fresh_store;

use crate::support::terminate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runner_lock_per_projection_and_takeover_when_its_holder_dies() {
    let store = fresh_store().await;
    let mut first = store
        .try_lock_projection("balances")
        .await
        .unwrap()
        .expect("free at first");
    assert!(first.is_held().await);
    assert!(
        store
            .try_lock_projection("balances")
            .await
            .unwrap()
            .is_none(),
        "held by the first runner"
    );
    let other = store.try_lock_projection("search").await.unwrap();
    assert!(other.is_some(), "other projections are independent");

    let waiting = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .lock_projection("balances", Duration::from_millis(20))
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "the second runner waits");

    // The holder's process dies: its connection goes, and with it the lock.
    let pid = first.backend_pid().await.unwrap();
    terminate(&store, pid).await;
    let mut second = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting runner takes over")
        .unwrap();
    assert!(second.is_held().await);
    assert!(
        !first.is_held().await,
        "the dead holder knows it lost the lock"
    );
    assert_eq!(second.projection(), "balances");

    second.release().await.unwrap();
    assert!(
        store
            .try_lock_projection("balances")
            .await
            .unwrap()
            .is_some()
    );
}
