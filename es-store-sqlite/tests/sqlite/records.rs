//! What the store keeps beyond the shared contract: event ids are unique, and
//! idempotency records are pruned after their retention.

use std::time::Duration;

use es_core::{
    AppendRequest, Error, EventStore, ExpectedVersion, Idempotency, IdempotencyKey, StreamVersion,
};
use es_store_sqlite::testing::fresh_store;

use crate::support::{events_with, read_everything, stream};

#[tokio::test]
async fn an_event_id_already_stored_is_refused_and_nothing_is_written() {
    let store = fresh_store().await;
    let s = stream("duplicate-ids");
    let events = events_with([b"one".to_vec(), b"two".to_vec()]);
    store
        .append(AppendRequest::new(
            s.clone(),
            ExpectedVersion::NoStream,
            events.clone(),
        ))
        .await
        .expect("first append");
    // A retry without idempotency key of an append that did commit.
    let again = store
        .append(AppendRequest::new(s.clone(), ExpectedVersion::Any, events))
        .await;
    assert!(
        matches!(&again, Err(Error::Backend { message, .. }) if message.contains("event id")),
        "{again:?}"
    );
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::new(2)
    );
    assert_eq!(read_everything(&store).await.len(), 2);
}

#[tokio::test]
async fn idempotency_records_are_pruned_after_their_retention() {
    let store = fresh_store().await;
    let s = stream("pruned");
    let key = IdempotencyKey::new("intent").expect("key");
    // The same intent each time: one key, one fingerprint, fresh events.
    let request = || {
        AppendRequest::new(
            s.clone(),
            ExpectedVersion::Any,
            events_with([b"x".to_vec()]),
        )
        .idempotent(Idempotency {
            key: key.clone(),
            fingerprint: [1; 32],
        })
    };
    store.append(request()).await.expect("append");
    assert_eq!(
        store
            .prune_idempotency(Duration::from_secs(3600))
            .await
            .expect("prune"),
        0,
        "a record younger than the retention stays"
    );
    assert!(store.append(request()).await.expect("repeat").deduplicated);

    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        store
            .prune_idempotency(Duration::from_millis(1))
            .await
            .expect("prune"),
        1
    );
    assert!(
        store
            .idempotent_result(&s, &key)
            .await
            .expect("lookup")
            .is_none()
    );
    let rerun = store.append(request()).await.expect("append after pruning");
    assert!(!rerun.deduplicated, "a pruned key is executed again");
    assert_eq!(rerun.version, StreamVersion::new(2));
}
