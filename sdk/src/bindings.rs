//! Bindings generated from `wit/`, one module per world. The imports shared
//! by several worlds are generated once (in `route`) and reused.
//!
//! Each world's `export!` macro is public and carries that world's exports,
//! so a guest links in exactly the world it exports and the imports it uses.

#![allow(missing_docs, unreachable_pub, reason = "generated code")]
#![allow(clippy::all, reason = "generated code")]

/// The `route` world.
pub mod route {
    wit_bindgen::generate!({
        world: "route",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_route_world",
        default_bindings_module: "corral_sdk::bindings::route",
    });
}

/// The `event-handler` world.
pub mod event_handler {
    wit_bindgen::generate!({
        world: "event-handler",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_event_handler_world",
        default_bindings_module: "corral_sdk::bindings::event_handler",
        with: {
            "corral:plugin/types@0.1.1": crate::bindings::route::corral::plugin::types,
            "corral:plugin/log@0.1.1": crate::bindings::route::corral::plugin::log,
            "corral:plugin/emit@0.1.1": crate::bindings::route::corral::plugin::emit,
            "corral:plugin/kv@0.1.1": crate::bindings::route::corral::plugin::kv,
            "corral:plugin/views@0.1.1": crate::bindings::route::corral::plugin::views,
            "corral:plugin/carts@0.1.1": crate::bindings::route::corral::plugin::carts,
        },
    });
}

/// The `projection` world.
pub mod projection {
    wit_bindgen::generate!({
        world: "projection",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_projection_world",
        default_bindings_module: "corral_sdk::bindings::projection",
        with: {
            "corral:plugin/types@0.1.1": crate::bindings::route::corral::plugin::types,
            "corral:plugin/log@0.1.1": crate::bindings::route::corral::plugin::log,
        },
    });
}

/// The `batched-projection` world: `projection` plus `batch-projector`.
pub mod batched_projection {
    wit_bindgen::generate!({
        world: "batched-projection",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_batched_projection_world",
        default_bindings_module: "corral_sdk::bindings::batched_projection",
        with: {
            "corral:plugin/types@0.1.1": crate::bindings::route::corral::plugin::types,
            "corral:plugin/log@0.1.1": crate::bindings::route::corral::plugin::log,
        },
    });
}

/// The `cart` world.
pub mod cart {
    wit_bindgen::generate!({
        world: "cart",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_cart_world",
        default_bindings_module: "corral_sdk::bindings::cart",
        with: {
            "corral:plugin/types@0.1.1": crate::bindings::route::corral::plugin::types,
            "corral:plugin/log@0.1.1": crate::bindings::route::corral::plugin::log,
        },
    });
}
