//! Kv buckets: shared between connections, compare-and-swap races with one
//! winner, listing escaped keys by prefix page by page.

use std::time::Duration;

use corral_cluster::ClusterError;

use crate::{connect, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_written_on_one_connection_is_read_on_another() {
    let one = connect("kv-share").await.kv("plugin/a").await.unwrap();
    let other = connect("kv-share").await.kv("plugin/a").await.unwrap();
    let elsewhere = connect("kv-share").await.kv("plugin/b").await.unwrap();
    assert_eq!(one.nats_bucket(), "corral-8-kv-share-kv-plugin_2Fa");

    one.put("user 1", b"alice").await.unwrap();
    assert_eq!(other.get_latest("user 1").await.unwrap().as_deref(), Some(b"alice".as_ref()));
    assert!(eventually(Duration::from_secs(5), async || other.get("user 1").await.unwrap().is_some()).await);
    assert_eq!(elsewhere.get_latest("user 1").await.unwrap(), None, "buckets are separate");

    assert!(other.delete("user 1").await.unwrap());
    assert!(!other.delete("user 1").await.unwrap(), "already gone");
    assert_eq!(one.get_latest("user 1").await.unwrap(), None);
    one.put("user 1", b"again").await.unwrap();
    assert_eq!(other.get_latest("user 1").await.unwrap().as_deref(), Some(b"again".as_ref()));

    assert!(matches!(one.put("", b"x").await, Err(ClusterError::Invalid { .. })));
    assert!(matches!(one.put(&"k".repeat(257), b"x").await, Err(ClusterError::Invalid { .. })));
}

/// Swaps `from` for `to`; true if this call made the swap.
async fn compare_and_swap(bucket: &corral_cluster::kv::KvBucket, key: &str, from: &[u8], to: Vec<u8>) -> bool {
    bucket
        .update(key, |current| {
            Ok::<_, ()>(if current == Some(from) {
                (Some(to.clone()), true)
            } else {
                (current.map(<[u8]>::to_vec), false)
            })
        })
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_racing_compare_and_swaps_wins() {
    let left = connect("kv-race").await.kv("counters").await.unwrap();
    let right = connect("kv-race").await.kv("counters").await.unwrap();
    left.put("slot", b"0").await.unwrap();

    let racers: Vec<_> = (0..12)
        .map(|i| {
            let bucket = if i % 2 == 0 { left.clone() } else { right.clone() };
            tokio::spawn(
                async move { compare_and_swap(&bucket, "slot", b"0", format!("winner-{i}").into_bytes()).await },
            )
        })
        .collect();
    let mut winners = Vec::new();
    for (i, racer) in racers.into_iter().enumerate() {
        if racer.await.unwrap() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = left.get_latest("slot").await.unwrap().unwrap();
    assert_eq!(stored, format!("winner-{}", winners[0]).into_bytes());

    // Increments from both connections: none lost.
    let increments: Vec<_> = (0..10)
        .map(|i| {
            let bucket = if i % 2 == 0 { left.clone() } else { right.clone() };
            tokio::spawn(async move {
                bucket
                    .update("count", |current| {
                        let n: u64 =
                            current.map_or(Ok(0), |c| String::from_utf8_lossy(c).parse().map_err(|_| "nan"))?;
                        Ok::<_, &str>((Some((n + 1).to_string().into_bytes()), n + 1))
                    })
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    let mut seen = Vec::new();
    for increment in increments {
        seen.push(increment.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=10).collect::<Vec<u64>>());
    assert_eq!(right.get_latest("count").await.unwrap(), Some(b"10".to_vec()));

    // An error from the closure aborts without writing.
    let refused = left.update("count", |_| Err::<(Option<Vec<u8>>, ()), _>("no")).await.unwrap();
    assert_eq!(refused, Err("no"));
    assert_eq!(left.get_latest("count").await.unwrap(), Some(b"10".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_escaped_keys_in_key_order() {
    let bucket = connect("kv-list").await.kv("list").await.unwrap();
    let keys = ["a", "a b", "a.b", "a.b.c", "a=1", "a/ü", "aé", "a\u{1F980}", "a-z", "b.a", "ab", "A"];
    for key in keys {
        bucket.put(key, key.as_bytes()).await.unwrap();
    }
    bucket.delete("ab").await.unwrap();
    let mut expected: Vec<&str> = keys.iter().copied().filter(|k| k.starts_with('a') && *k != "ab").collect();
    expected.sort_unstable();

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let (page, next) = bucket.list("a", cursor.as_deref(), 3).await.unwrap();
        pages += 1;
        assert!(page.len() <= 3);
        for (key, value) in page {
            assert_eq!(value, key.as_bytes());
            listed.push(key);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, expected);
    assert_eq!(pages, expected.len().div_ceil(3));

    let (dotted, next) = bucket.list("a.b", None, 10).await.unwrap();
    assert_eq!(dotted.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a.b", "a.b.c"]);
    assert_eq!(next, None);
    let (all, _) = bucket.list("", None, 100).await.unwrap();
    assert_eq!(all.len(), keys.len() - 1);
}
