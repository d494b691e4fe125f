//! kv in a cluster ([`ClusterKv`]): every plugin bucket (and shared bucket)
//! is a JetStream KV bucket, the same on every node. `increment` and
//! `compare-and-swap` are compare-and-set loops on the entry's revision, so
//! two nodes racing on one key never both win. Reads may come from a
//! replica a moment behind the leader; a write that depends on a read
//! fails and retries instead of overwriting a newer value.

use std::sync::Arc;

use corral_cluster::{Cluster, ClusterError};
use corral_runtime::kv::add_to_counter;
use corral_runtime::{Bucket, KvBackend, KvError, KvPage};

use crate::metrics::Metrics;

/// kv over the cluster's buckets.
pub struct ClusterKv {
    cluster: Cluster,
    metrics: Arc<Metrics>,
}

impl ClusterKv {
    /// kv over `cluster`.
    pub fn new(cluster: Cluster, metrics: Arc<Metrics>) -> ClusterKv {
        ClusterKv { cluster, metrics }
    }

    async fn bucket(&self, bucket: &Bucket, op: &str) -> Result<corral_cluster::kv::KvBucket, KvError> {
        self.metrics.kv_op(op);
        // Fail at once while cut off, rather than when a request times out.
        if !*self.cluster.connection().borrow() {
            return Err(KvError::Unavailable(format!(
                "node {} is cut off from NATS; retry when it is back",
                self.cluster.options().node_id
            )));
        }
        self.cluster.kv(&bucket.to_string()).await.map_err(unavailable)
    }
}

fn unavailable(error: ClusterError) -> KvError {
    KvError::Unavailable(error.to_string())
}

#[async_trait::async_trait]
impl KvBackend for ClusterKv {
    async fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.bucket(bucket, "get").await?.get(key).await.map_err(unavailable)
    }

    async fn set(&self, bucket: &Bucket, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.bucket(bucket, "set").await?.put(key, &value).await.map(drop).map_err(unavailable)
    }

    async fn delete(&self, bucket: &Bucket, key: &str) -> Result<bool, KvError> {
        self.bucket(bucket, "delete").await?.delete(key).await.map_err(unavailable)
    }

    async fn list(&self, bucket: &Bucket, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KvPage, KvError> {
        let (entries, next_cursor) =
            self.bucket(bucket, "list").await?.list(prefix, cursor, limit as usize).await.map_err(unavailable)?;
        Ok(KvPage { entries, next_cursor })
    }

    async fn increment(&self, bucket: &Bucket, key: &str, delta: i64) -> Result<i64, KvError> {
        let bucket = self.bucket(bucket, "increment").await?;
        // The outer error is the cluster's, the inner one the counter's.
        bucket
            .update(key, |current| add_to_counter(current, delta).map(|(next, bytes)| (Some(bytes), next)))
            .await
            .map_err(unavailable)?
    }

    async fn compare_and_swap(
        &self,
        bucket: &Bucket,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, KvError> {
        let bucket = self.bucket(bucket, "compare_and_swap").await?;
        bucket
            .update(key, |current| {
                if current != expected {
                    return Ok::<_, KvError>((current.map(<[u8]>::to_vec), false));
                }
                Ok((new.clone(), true))
            })
            .await
            .map_err(unavailable)?
    }
}
