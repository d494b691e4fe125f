//! Artifacts: deployed components in the JetStream object store, each
//! stored once under its content hash (the name is the server's choice;
//! this crate does not hash). The object store checks its own SHA-256
//! digest on every read; the server checks the content hash it recorded.

use async_nats::jetstream::object_store::{GetErrorKind, InfoErrorKind, ObjectStore};
use tokio::io::AsyncReadExt as _;

use crate::ClusterError;

/// The artifacts object store; see [`Cluster::artifacts`](crate::Cluster::artifacts).
#[derive(Clone)]
pub struct Artifacts {
    store: ObjectStore,
}

impl Artifacts {
    pub(crate) fn new(store: ObjectStore) -> Artifacts {
        Artifacts { store }
    }

    /// Stores `bytes` as `name` unless an object of that name and size is
    /// there already; true if it was written now.
    pub async fn put(&self, name: &str, bytes: &[u8]) -> Result<bool, ClusterError> {
        match self.store.info(name).await {
            Ok(info) if !info.deleted && info.size == bytes.len() => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == InfoErrorKind::NotFound => {}
            Err(e) => return Err(ClusterError::from_nats(format!("looking up artifact {name}"), &e)),
        }
        let mut reader = bytes;
        self.store
            .put(name, &mut reader)
            .await
            .map_err(|e| ClusterError::from_nats(format!("storing artifact {name} ({} bytes)", bytes.len()), &e))?;
        Ok(true)
    }

    /// The object `name`, `None` if it is not stored. A read whose chunks
    /// do not match the object's recorded digest fails.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, ClusterError> {
        let what = || format!("fetching artifact {name}");
        let mut object = match self.store.get(name).await {
            Ok(object) => object,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ClusterError::from_nats(what(), &e)),
        };
        let mut bytes = Vec::with_capacity(object.info().size);
        object.read_to_end(&mut bytes).await.map_err(|e| ClusterError::from_nats(what(), &e))?;
        Ok(Some(bytes))
    }

    /// Stores `bytes` as `name` whatever is there: for tests that tamper
    /// with an artifact, and for repairing one.
    pub async fn replace(&self, name: &str, bytes: &[u8]) -> Result<(), ClusterError> {
        let mut reader = bytes;
        self.store
            .put(name, &mut reader)
            .await
            .map(drop)
            .map_err(|e| ClusterError::from_nats(format!("storing artifact {name} ({} bytes)", bytes.len()), &e))
    }
}
