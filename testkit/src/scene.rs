//! The kit's control plane: in-memory kv and views, an outbox that
//! captures what guests emit, and the carts of the cart plugins loaded beside
//! the plugin under test ([`crate::carts`]). A scene lives from one
//! [`TestKit::reset`](crate::TestKit::reset) to the next: resetting builds a
//! fresh one, and every call is handed the current scene's [`ControlPlane`].

use std::collections::BTreeMap;
use std::sync::Arc;

use corral_runtime::memory::{MemoryKv, MemoryViews};
use corral_runtime::{ControlPlane, Plugin};
use corral_schemas::TopicSchemas;

use crate::carts::KitCarts;
use crate::outbox::Outbox;

/// Everything a plugin's imports reach, in memory.
pub(crate) struct Scene {
    pub(crate) kv: Arc<MemoryKv>,
    pub(crate) views: Arc<MemoryViews>,
    pub(crate) outbox: Arc<Outbox>,
    /// Cart plugins and their carts.
    pub(crate) carts: Arc<KitCarts>,
    /// The plane every call of this scene reaches.
    pub(crate) control: Arc<ControlPlane>,
}

impl Scene {
    /// An empty scene whose carts calls reach `cart_plugins`, and whose
    /// `emit` refuses events not matching `topics`.
    pub(crate) fn new(cart_plugins: &BTreeMap<String, Arc<Plugin>>, topics: Arc<TopicSchemas>) -> Scene {
        let kv = Arc::new(MemoryKv::default());
        let views = Arc::new(MemoryViews::default());
        let outbox = Arc::new(Outbox::new(topics));
        let carts = Arc::new(KitCarts::new(cart_plugins.clone(), outbox.clone()));
        let control = Arc::new(ControlPlane {
            kv: kv.clone(),
            events: outbox.clone(),
            views: views.clone(),
            carts: carts.clone(),
            http: Arc::new(corral_runtime::Unavailable("the test kit makes no outgoing HTTP requests")),
        });
        Scene { kv, views, outbox, carts, control }
    }
}
