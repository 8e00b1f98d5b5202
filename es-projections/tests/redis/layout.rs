//! Where `RedisKv` puts things, and what it refuses.

use es_core::testing::kv_conformance::at;
use es_core::{Generations, KvBatch, Sink, SinkError};
use es_projections::RedisKv;

use crate::support::{connect, dump, fresh_kv, raw, redis_url, unique_prefix};

fn owned(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
        .collect()
}

#[tokio::test]
async fn every_key_lives_under_the_prefix() {
    let kv = fresh_kv().await;
    let p = kv.prefix().to_owned();
    let mut batch = KvBatch::default();
    batch
        .set("owner", "Ada")
        .tag("subject-1", "owner")
        .incr_by("n", 3);
    kv.commit("balances", batch, None, at(7)).await.unwrap();
    assert_eq!(
        dump(&redis_url(), &p).await,
        owned(&[
            (&format!("{p}g1:c:balances"), &["7:7"]),
            (&format!("{p}g1:i"), &["n", "owner"]),
            (&format!("{p}g1:t:subject-1"), &["owner"]),
            (&format!("{p}g1:v:n"), &["3"]),
            (&format!("{p}g1:v:owner"), &["Ada"]),
        ])
    );
    assert_eq!(kv.keys().await.unwrap(), ["n", "owner"]);
    // A second generation, switched to: the live pointer appears, and the old
    // generation goes with its drop.
    kv.at_generation(2)
        .commit("balances", KvBatch::default(), None, at(7))
        .await
        .unwrap();
    kv.switch_generation("balances", 1, 2).await.unwrap();
    kv.drop_generation(1).await.unwrap();
    assert_eq!(
        dump(&redis_url(), &p).await,
        owned(&[
            (&format!("{p}g2:c:balances"), &["7:7"]),
            (&format!("{p}live"), &["2"]),
        ])
    );
    kv.drop_all().await.unwrap();
}

#[tokio::test]
async fn prefixes_are_isolated_and_drop_all_takes_only_its_own() {
    // Glob characters in a prefix are matched literally.
    let base = unique_prefix();
    let odd = connect(&redis_url(), &format!("{base}a*[b]?\\:")).await;
    let other = connect(&redis_url(), &format!("{base}a-b-:")).await;
    for kv in [&odd, &other] {
        let mut batch = KvBatch::default();
        batch.set("k", kv.prefix()).tag("s", "k");
        kv.commit("p", batch, None, at(1)).await.unwrap();
    }
    assert_eq!(odd.get("k").await.unwrap().as_deref(), Some(odd.prefix()));
    assert_eq!(odd.keys().await.unwrap(), ["k"]);
    odd.drop_all().await.unwrap();
    assert!(dump(&redis_url(), odd.prefix()).await.is_empty());
    assert_eq!(odd.checkpoint("p").await.unwrap(), None);
    assert_eq!(
        other.get("k").await.unwrap().as_deref(),
        Some(other.prefix())
    );
    assert_eq!(other.checkpoint("p").await.unwrap(), Some(at(1)));
    other.drop_all().await.unwrap();
}

#[tokio::test]
async fn a_malformed_stored_checkpoint_is_a_failure_not_a_fence() {
    let kv = fresh_kv().await;
    let mut connection = raw(&redis_url()).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{}g1:c:p", kv.prefix()))
        .arg("garbage")
        .query_async(&mut connection)
        .await
        .unwrap();
    let read = kv.checkpoint("p").await;
    assert!(matches!(read, Err(SinkError::Failed { .. })), "{read:?}");
    for expected in [None, Some(at(1))] {
        let result = kv.commit("p", KvBatch::default(), expected, at(2)).await;
        assert!(
            matches!(result, Err(SinkError::Failed { .. })),
            "{result:?}"
        );
    }
    kv.drop_all().await.unwrap();
}

/// The repro of a hostile account id: `__tags` and `__checkpoint` were once
/// reserved names, and a key under them broke every later commit. Now any key
/// is the application's, next to the sink's own records.
#[tokio::test]
async fn keys_that_look_like_the_sinks_own_are_plain_keys() {
    let kv = fresh_kv().await;
    let p = kv.prefix().to_owned();
    let mut batch = KvBatch::default();
    batch
        .set("__checkpoint:p", "not a checkpoint")
        .set("__tags:status", "open")
        .set("c:p", "x")
        .tag("s", "t:s")
        .set("t:s", "y");
    kv.commit("p", batch, None, at(1)).await.unwrap();
    assert_eq!(kv.checkpoint("p").await.unwrap(), Some(at(1)));
    assert_eq!(kv.get("c:p").await.unwrap().as_deref(), Some("x"));
    assert_eq!(
        kv.get("__tags:status").await.unwrap().as_deref(),
        Some("open")
    );
    assert_eq!(kv.generations().await.unwrap(), [1]);
    let mut batch = KvBatch::default();
    batch.purge("s").incr_by("__checkpoint:n", 2);
    kv.commit("p", batch, Some(at(1)), at(2)).await.unwrap();
    assert_eq!(kv.get("t:s").await.unwrap(), None);
    assert_eq!(kv.checkpoint("p").await.unwrap(), Some(at(2)));
    assert_eq!(
        kv.keys().await.unwrap(),
        ["__checkpoint:n", "__checkpoint:p", "__tags:status", "c:p"]
    );
    assert!(
        dump(&redis_url(), &p)
            .await
            .iter()
            .all(|(k, _)| k.starts_with(&format!("{p}g1:"))),
    );
    kv.drop_all().await.unwrap();
}

#[tokio::test]
async fn an_empty_prefix_and_a_bad_url_are_refused() {
    let empty = RedisKv::connect(&redis_url(), "").await;
    assert!(matches!(empty, Err(SinkError::Failed { .. })), "{empty:?}");
    let bad = RedisKv::connect("not a url", "es:").await;
    assert!(matches!(bad, Err(SinkError::Failed { .. })), "{bad:?}");
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_is_unavailable() {
    let port = crate::support::free_port();
    let result = RedisKv::connect(&format!("redis://127.0.0.1:{port}"), "es:").await;
    assert!(
        matches!(result, Err(SinkError::Unavailable { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_large_batch_and_a_large_purge_commit_in_one_script() {
    let kv = fresh_kv().await;
    let mut batch = KvBatch::default();
    for i in 0..5000 {
        batch.set(format!("k{i}"), "v").tag("big", format!("k{i}"));
        batch.incr_by("count", 1);
    }
    kv.commit("p", batch, None, at(1)).await.unwrap();
    assert_eq!(kv.get("count").await.unwrap().as_deref(), Some("5000"));
    assert_eq!(kv.keys().await.unwrap().len(), 5001);
    let mut batch = KvBatch::default();
    batch.purge("big");
    kv.commit("p", batch, Some(at(1)), at(2)).await.unwrap();
    assert_eq!(kv.keys().await.unwrap(), ["count"]);
    kv.drop_all().await.unwrap();
}

#[tokio::test]
async fn a_server_that_lost_the_script_is_sent_it_again() {
    let kv = fresh_kv().await;
    let mut connection = raw(&redis_url()).await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut batch = KvBatch::default();
    batch.set("k", "v");
    kv.commit("p", batch, None, at(1)).await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some("v"));
    kv.drop_all().await.unwrap();
}
