//! The kit's control plane: in-memory kv and views, an outbox that captures
//! what guests emit, and the carts of the cart plugins loaded beside the
//! plugin under test ([`crate::carts`]). A [`Runtime`](corral_runtime::Runtime) is
//! given its control plane once, so the scene swaps its backends for fresh
//! ones on [`Scene::reset`] instead: one compiled plugin serves every case.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use corral_runtime::memory::{MemoryKv, MemoryViews};
use corral_runtime::{
    Bucket, CartApplied, CartClient, CartMutation, CartState, CartsError, ControlPlane, EmitError, EventSink,
    KvBackend, KvError, KvPage, NewEvent, ViewPage, ViewReader, ViewsError,
};

use crate::carts::KitCarts;

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything a plugin's imports reach, in memory.
#[derive(Default)]
pub(crate) struct Scene {
    kv: Mutex<Arc<MemoryKv>>,
    views: Mutex<Arc<MemoryViews>>,
    outbox: Mutex<Vec<NewEvent>>,
    /// Sequence numbers handed out by `emit` since the last reset.
    published: AtomicU64,
    /// When set, every `emit` fails as unavailable with this reason.
    emit_unavailable: Mutex<Option<String>>,
    /// Cart plugins and their carts.
    pub(crate) carts: KitCarts,
}

impl Scene {
    /// The control plane to build a runtime with.
    pub(crate) fn control(self: &Arc<Self>) -> ControlPlane {
        ControlPlane { kv: self.clone(), events: self.clone(), views: self.clone(), carts: self.clone() }
    }

    /// Empties kv, views and the outbox; emits succeed again.
    pub(crate) fn reset(&self) {
        *lock(&self.kv) = Arc::default();
        *lock(&self.views) = Arc::default();
        lock(&self.outbox).clear();
        self.published.store(0, Ordering::SeqCst);
        *lock(&self.emit_unavailable) = None;
        self.carts.reset();
    }

    pub(crate) fn kv(&self) -> Arc<MemoryKv> {
        lock(&self.kv).clone()
    }

    pub(crate) fn views(&self) -> Arc<MemoryViews> {
        lock(&self.views).clone()
    }

    /// Makes every later `emit` fail (`Some(reason)`) or succeed (`None`).
    pub(crate) fn set_emit_unavailable(&self, reason: Option<String>) {
        *lock(&self.emit_unavailable) = reason;
    }

    /// Events emitted since the last call, in order.
    pub(crate) fn take_emitted(&self) -> Vec<NewEvent> {
        std::mem::take(&mut *lock(&self.outbox))
    }
}

#[async_trait::async_trait]
impl KvBackend for Scene {
    async fn get(&self, bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.kv().get(bucket, key).await
    }

    async fn set(&self, bucket: &Bucket, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.kv().set(bucket, key, value).await
    }

    async fn delete(&self, bucket: &Bucket, key: &str) -> Result<bool, KvError> {
        self.kv().delete(bucket, key).await
    }

    async fn list(&self, bucket: &Bucket, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<KvPage, KvError> {
        self.kv().list(bucket, prefix, cursor, limit).await
    }

    async fn increment(&self, bucket: &Bucket, key: &str, delta: i64) -> Result<i64, KvError> {
        self.kv().increment(bucket, key, delta).await
    }

    async fn compare_and_swap(
        &self,
        bucket: &Bucket,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, KvError> {
        self.kv().compare_and_swap(bucket, key, expected, new).await
    }
}

#[async_trait::async_trait]
impl EventSink for Scene {
    async fn publish(&self, event: NewEvent) -> Result<u64, EmitError> {
        if let Some(reason) = lock(&self.emit_unavailable).clone() {
            return Err(EmitError::Unavailable(reason));
        }
        lock(&self.outbox).push(event);
        Ok(self.published.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

#[async_trait::async_trait]
impl ViewReader for Scene {
    async fn get(&self, tenant: &str, projection: &str, id: &str) -> Result<Option<Vec<u8>>, ViewsError> {
        self.views().get(tenant, projection, id).await
    }

    async fn list(
        &self,
        tenant: &str,
        projection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ViewPage, ViewsError> {
        self.views().list(tenant, projection, prefix, cursor, limit).await
    }
}

#[async_trait::async_trait]
impl CartClient for Scene {
    async fn mutate(
        &self,
        tenant: &str,
        plugin: &str,
        id: &str,
        mutation: CartMutation,
    ) -> Result<CartApplied, CartsError> {
        self.carts.mutate(self, tenant, plugin, id, mutation).await
    }

    async fn get(&self, tenant: &str, plugin: &str, id: &str) -> Result<Option<CartState>, CartsError> {
        self.carts.get(tenant, plugin, id).await
    }
}
