//! Bindings generated from `wit/`, one module per world. Imports shared by
//! several worlds are generated once (in `route`) and reused through `with`,
//! so each control-plane interface has exactly one `Host` trait.

#![allow(missing_docs, unreachable_pub, reason = "generated code")]

pub(crate) mod route {
    wasmtime::component::bindgen!({
        world: "route",
        path: "../../wit",
        additional_derives: [PartialEq, Eq],
        imports: { default: async },
        exports: { default: async },
    });
}

pub(crate) mod event_handler {
    wasmtime::component::bindgen!({
        world: "event-handler",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "corral:plugin/types": super::route::corral::plugin::types,
            "corral:plugin/log": super::route::corral::plugin::log,
            "corral:plugin/emit": super::route::corral::plugin::emit,
            "corral:plugin/kv": super::route::corral::plugin::kv,
            "corral:plugin/views": super::route::corral::plugin::views,
            "corral:plugin/carts": super::route::corral::plugin::carts,
        },
    });
}

pub(crate) mod projection {
    wasmtime::component::bindgen!({
        world: "projection",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "corral:plugin/types": super::route::corral::plugin::types,
            "corral:plugin/log": super::route::corral::plugin::log,
        },
    });
}

/// The batched world's `batch` import is linked by hand (`crate::batch`):
/// it needs the store, to give each event its own fuel budget.
pub(crate) mod batched_projection {
    wasmtime::component::bindgen!({
        world: "batched-projection",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "corral:plugin/types": super::route::corral::plugin::types,
            "corral:plugin/log": super::route::corral::plugin::log,
        },
    });
}

pub(crate) mod cart {
    wasmtime::component::bindgen!({
        world: "cart",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "corral:plugin/types": super::route::corral::plugin::types,
            "corral:plugin/log": super::route::corral::plugin::log,
        },
    });
}

pub(crate) use route::corral::plugin::{carts, emit, kv, log, types, views};

/// Links one control-plane interface with a host view: declares a
/// `HasData` marker whose data is `$view<'a>`, and `add_to_linker(linker,
/// get)` adding the interface `$interface` to `linker`, served by the view
/// `get` returns from the store's data.
macro_rules! link_view {
    ($interface:ident, $view:ident) => {
        /// The `HasData` of this interface: its host is the view.
        struct Linked;

        impl wasmtime::component::HasData for Linked {
            type Data<'a> = $view<'a>;
        }

        /// Adds the interface to `linker`, served by the view `get` returns.
        pub(crate) fn add_to_linker<T: Send + 'static>(
            linker: &mut wasmtime::component::Linker<T>,
            get: fn(&mut T) -> $view<'_>,
        ) -> wasmtime::Result<()> {
            crate::bindings::$interface::add_to_linker::<T, Linked>(linker, get)
        }
    };
}

pub(crate) use link_view;
