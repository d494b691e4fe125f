//! A batch's view writes over the stored views: what a later read sees and
//! what the batch commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Where the views a projection folds into are stored.
pub trait ViewSource: Send + Sync {
    /// The stored value of view `id` of `tenant`.
    fn get(&self, tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String>;
}

/// A batch's view writes over a [`ViewSource`]: what the next event reads,
/// and, in first-write order, what the batch commits. Cheap to clone; the
/// clones share the writes.
#[derive(Clone)]
pub struct PendingViews(Arc<Mutex<Overlay>>);

struct Overlay {
    source: Arc<dyn ViewSource>,
    /// tenant → id → value (none: deleted).
    written: HashMap<String, HashMap<String, Option<Vec<u8>>>>,
    order: Vec<(String, String)>,
}

/// A view change to commit: `((tenant, id), value)`, none deletes.
pub type ViewChange = ((String, String), Option<Vec<u8>>);

impl PendingViews {
    /// No writes yet, reading through to `source`.
    pub fn new(source: Arc<dyn ViewSource>) -> Self {
        PendingViews(Arc::new(Mutex::new(Overlay { source, written: HashMap::new(), order: Vec::new() })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Overlay> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of view `id` of `tenant` as the writes so far left it.
    pub fn get(&self, tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String> {
        let overlay = self.lock();
        match overlay.written.get(tenant).and_then(|views| views.get(id)) {
            Some(value) => Ok(value.clone()),
            None => overlay.source.get(tenant, id),
        }
    }

    /// Writes view `id` of `tenant` (none deletes it).
    pub fn set(&self, tenant: &str, id: String, value: Option<Vec<u8>>) {
        self.write(tenant, &id, value);
    }

    /// [`set`](Self::set) for a borrowed id: copied only when the batch
    /// writes the view for the first time.
    pub(super) fn write(&self, tenant: &str, id: &str, value: Option<Vec<u8>>) {
        let mut overlay = self.lock();
        let Overlay { written, order, .. } = &mut *overlay;
        let views = match written.get_mut(tenant) {
            Some(views) => views,
            None => written.entry(tenant.to_string()).or_default(),
        };
        match views.get_mut(id) {
            Some(written) => *written = value,
            None => {
                order.push((tenant.to_string(), id.to_string()));
                views.insert(id.to_string(), value);
            }
        }
    }

    /// The writes, in first-write order, leaving none behind.
    pub fn take_changes(&self) -> Vec<ViewChange> {
        let mut overlay = self.lock();
        let Overlay { written, order, .. } = &mut *overlay;
        let changes = order
            .drain(..)
            .filter_map(|(tenant, id)| {
                let value = written.get_mut(&tenant)?.remove(&id)?;
                Some(((tenant, id), value))
            })
            .collect();
        written.clear();
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stored;

    impl ViewSource for Stored {
        fn get(&self, _tenant: &str, id: &str) -> Result<Option<Vec<u8>>, String> {
            Ok(Some(format!("stored {id}").into_bytes()))
        }
    }

    #[test]
    fn pending_views_read_through_and_keep_first_write_order() {
        let views = PendingViews::new(Arc::new(Stored));
        assert_eq!(views.get("a", "x").unwrap(), Some(b"stored x".to_vec()));
        views.set("a", "y".into(), Some(b"1".to_vec()));
        views.set("b", "x".into(), None);
        views.set("a", "y".into(), Some(b"2".to_vec()));
        assert_eq!(views.get("a", "y").unwrap(), Some(b"2".to_vec()));
        assert_eq!(views.get("b", "x").unwrap(), None, "a deletion hides the stored value");
        let changes = views.take_changes();
        assert_eq!(changes, vec![(("a".into(), "y".into()), Some(b"2".to_vec())), (("b".into(), "x".into()), None)]);
        assert!(views.take_changes().is_empty());
    }
}
