//! kv and views on LMDB ([`Embedded`]): the runtime's `KvBackend` (embedded
//! mode) and `ViewReader` (every mode: views are always a node's own, folded
//! into its LMDB; reads name only served projections). kv writes are
//! group-committed by `KvWrites`' thread (concurrent writes share one
//! commit; each is undone alone if it fails).

use std::sync::{Arc, OnceLock, Weak};

use corral_query::Query;
use corral_runtime::kv::add_to_counter;
use corral_runtime::{Bucket, KvBackend, KvError, KvPage, ViewPage, ViewQuery, ViewQueryError, ViewReader, ViewsError};
use corral_storage::kv_writes::KvWrites;
use corral_storage::{Storage, ViewQueryError as Refused};

use crate::metrics::Metrics;
use crate::plugins::Registry;
use crate::projections::active_scope;
use crate::projections::queries::too_broad;

/// kv and views over one LMDB environment.
#[derive(Clone)]
pub struct Embedded {
    storage: Storage,
    writes: Arc<KvWrites>,
    metrics: Arc<Metrics>,
    /// What is served, once the registry exists: a view read naming no
    /// served projection is refused (`no-such-projection`). Weak, as the
    /// registry's runtime reaches these views.
    registry: Arc<OnceLock<Weak<Registry>>>,
}

impl Embedded {
    /// kv and views over `storage` (starts the kv writes' committing thread).
    pub fn new(storage: Storage, metrics: Arc<Metrics>) -> Result<Self, corral_storage::StorageError> {
        let writes = Arc::new(KvWrites::new(storage.clone())?);
        Ok(Embedded { storage, writes, metrics, registry: Arc::default() })
    }

    /// From now on, view reads name only projections `registry` serves.
    pub(crate) fn follow(&self, registry: &Arc<Registry>) {
        let _ = self.registry.set(Arc::downgrade(registry));
    }

    /// The active generation's scope of a served projection.
    fn scope(&self, projection: &str) -> Result<Option<String>, ViewsError> {
        let served = self.registry.get().and_then(Weak::upgrade).is_none_or(|r| r.catalog().has_projection(projection));
        if !served {
            return Err(ViewsError::NoSuchProjection(projection.to_string()));
        }
        Ok(active_scope(&self.storage, projection))
    }
}

fn unavailable(error: corral_storage::StorageError) -> KvError {
    KvError::Unavailable(error.to_string())
}

#[async_trait::async_trait]
impl KvBackend for Embedded {
    async fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.metrics.kv_op("get");
        self.storage.kv_get(&bucket.to_string(), key).map_err(|e| KvError::Unavailable(e.to_string()))
    }

    async fn set(&self, bucket: &Bucket, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.metrics.kv_op("set");
        self.writes.set(bucket.to_string(), key.to_string(), value).await.map_err(unavailable)
    }

    async fn delete(&self, bucket: &Bucket, key: &str) -> Result<bool, KvError> {
        self.metrics.kv_op("delete");
        self.writes.delete(bucket.to_string(), key.to_string()).await.map_err(unavailable)
    }

    async fn list(&self, bucket: &Bucket, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KvPage, KvError> {
        self.metrics.kv_op("list");
        let (entries, next_cursor) = self
            .storage
            .kv_list(&bucket.to_string(), prefix, cursor, limit as usize)
            .map_err(|e| KvError::Unavailable(e.to_string()))?;
        Ok(KvPage { entries, next_cursor })
    }

    async fn increment(&self, bucket: &Bucket, key: &str, delta: i64) -> Result<i64, KvError> {
        self.metrics.kv_op("increment");
        let update =
            move |current: Option<&[u8]>| add_to_counter(current, delta).map(|(next, bytes)| (Some(bytes), next));
        self.writes.update(bucket.to_string(), key.to_string(), update).await.map_err(unavailable)?
    }

    async fn compare_and_swap(
        &self,
        bucket: &Bucket,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, KvError> {
        self.metrics.kv_op("compare_and_swap");
        let expected = expected.map(<[u8]>::to_vec);
        let swap = move |current: Option<&[u8]>| -> Result<_, KvError> {
            if current != expected.as_deref() {
                return Ok((current.map(<[u8]>::to_vec), false));
            }
            Ok((new, true))
        };
        self.writes.update(bucket.to_string(), key.to_string(), swap).await.map_err(unavailable)?
    }
}

#[async_trait::async_trait]
impl ViewReader for Embedded {
    async fn get(&self, tenant: &str, projection: &str, id: &str) -> Result<Option<Vec<u8>>, ViewsError> {
        let Some(scope) = self.scope(projection)? else { return Ok(None) };
        self.storage.view_get(tenant, &scope, id).map_err(|e| ViewsError::Unavailable(e.to_string()))
    }

    async fn list(
        &self,
        tenant: &str,
        projection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ViewPage, ViewsError> {
        let Some(scope) = self.scope(projection)? else {
            return Ok(ViewPage::default());
        };
        let (views, next_cursor) = self
            .storage
            .view_list(tenant, &scope, prefix, cursor, limit as usize)
            .map_err(|e| ViewsError::Unavailable(e.to_string()))?;
        Ok(ViewPage { views, next_cursor })
    }

    async fn query(&self, tenant: &str, projection: &str, query: &ViewQuery) -> Result<ViewPage, ViewQueryError> {
        let parsed = Query::parse(&query.filter, &query.order_by, "", &query.cursor, query.limit as usize)
            .map_err(|error| ViewQueryError::Invalid(error.to_string()))?;
        // The served projection: its scan limit and its sidecar's name.
        let registry = self.registry.get().and_then(Weak::upgrade);
        let catalog = registry.as_ref().map(|registry| registry.catalog());
        let Some(mounted) = catalog.as_ref().and_then(|catalog| catalog.projection(projection)).cloned() else {
            return Err(ViewQueryError::NoSuchProjection(projection.to_string()));
        };
        let Some(scope) = active_scope(&self.storage, projection) else {
            return Ok(ViewPage::default());
        };
        let scan_limit = mounted.sidecar.projection.scan_limit;
        let storage = self.storage.clone();
        let tenant = tenant.to_string();
        let answered =
            tokio::task::spawn_blocking(move || (storage.view_query(&tenant, &scope, &parsed, scan_limit), parsed))
                .await
                .map_err(|error| ViewQueryError::Unavailable(error.to_string()))?;
        match answered {
            (Ok(page), _) => Ok(ViewPage { views: page.views, next_cursor: page.next_cursor }),
            (Err(Refused::TooBroad { limit, index }), parsed) => {
                Err(ViewQueryError::TooBroad(too_broad(&mounted, limit, index.as_deref(), &parsed).0))
            }
            (Err(Refused::Storage(error)), _) => Err(ViewQueryError::Unavailable(error.to_string())),
        }
    }
}
