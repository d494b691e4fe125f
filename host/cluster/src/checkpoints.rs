//! Fenced checkpoints: a sequence number per name (a subscriber's or a
//! projection's position) in a KV bucket, written only by whoever read the
//! latest revision. A dispatcher that lost its lease and still tries to
//! move its checkpoint gets [`ClusterError::Fenced`] and writes nothing.

use bytes::Bytes;

use crate::ClusterError;
use crate::names;
use crate::store::Bucket;

/// The checkpoints bucket; see [`Cluster::checkpoints`](crate::Cluster::checkpoints).
#[derive(Clone)]
pub struct Checkpoints {
    bucket: Bucket,
}

impl Checkpoints {
    pub(crate) fn new(bucket: Bucket) -> Checkpoints {
        Checkpoints { bucket }
    }

    /// The checkpoint's value and revision, read from the leader; `None`
    /// if it was never written.
    pub async fn get(&self, name: &str) -> Result<Option<(u64, u64)>, ClusterError> {
        let tail = self.bucket.read_latest(&names::key(name)?).await?;
        let Some(value) = tail.value else { return Ok(None) };
        let text = std::str::from_utf8(&value).ok();
        match text.and_then(|text| text.parse::<u64>().ok()) {
            Some(number) => Ok(Some((number, tail.revision))),
            None => Err(ClusterError::corrupt(
                format!("checkpoint {name:?} in bucket {}", self.bucket.name()),
                format!("{:?} is not a number", String::from_utf8_lossy(&value)),
            )),
        }
    }

    /// Writes the checkpoint if it is still at revision `expected` (`None`:
    /// if it does not exist yet); returns the new revision. A stale
    /// revision, or a create over an existing checkpoint, is
    /// [`ClusterError::Fenced`] and writes nothing.
    pub async fn put(&self, name: &str, value: u64, expected: Option<u64>) -> Result<u64, ClusterError> {
        let key = names::key(name)?;
        let text = Bytes::from(value.to_string());
        match expected {
            Some(revision) => self.bucket.update(&key, text, revision).await,
            None => match self.bucket.create(&key, text).await? {
                Some(revision) => Ok(revision),
                None => Err(ClusterError::Fenced {
                    what: format!("checkpoint {name:?} in bucket {}", self.bucket.name()),
                    expected: 0,
                }),
            },
        }
    }
}
