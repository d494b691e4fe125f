//! The traits a plugin implements, one per world, and their export macros.

use crate::{Descriptor, Event, Failure, HttpRequest, HttpResponse, Mutation, Outcome};

/// An HTTP route plugin. Export it with [`export_route!`](crate::export_route).
pub trait Route {
    /// Name, version and routes. Called once, when the host loads the plugin.
    fn describe() -> Descriptor;
    /// Answers one request; every call runs in a fresh instance.
    fn handle(request: HttpRequest) -> HttpResponse;
}

/// An event handler. Export it with [`export_event_handler!`](crate::export_event_handler).
pub trait EventHandler {
    /// Name, version, topics and schedules.
    fn describe() -> Descriptor;
    /// Handles one event. An error makes the host retry, then dead-letter it.
    fn handle(event: Event) -> Result<(), Failure>;
}

/// A deterministic fold of events into views. Export it with
/// [`export_projection!`](crate::export_projection).
///
/// `export_projection!(P)` folds every event in a fresh instance: nothing
/// survives from one event to the next. `export_projection!(P, batched)`
/// folds a whole batch in one instance, many times faster, and in return
/// `P` promises that `key` and `apply` depend on nothing but their
/// arguments, the clock and randomness (which the host keeps per event):
/// no state carried over in statics, no PRNG seeded once and reused, and no
/// iteration order of a `std::collections::HashMap` in the bytes of a view
/// (its hash keys are drawn once per instance, so the order would depend on
/// where a batch started). Use a `BTreeMap`, or sort, where order shows.
pub trait Projection {
    /// Name, version and topics.
    fn describe() -> Descriptor;
    /// The id of the view `event` updates, or `None` to skip it.
    fn key(event: &Event) -> Option<String>;
    /// The view's new value (`None` deletes it). The event is lent: a
    /// batched fold decodes every event of a batch into the same buffers.
    fn apply(current: Option<Vec<u8>>, event: &Event) -> Result<Option<Vec<u8>>, Failure>;
}

/// A deterministic per-entity state machine. Export it with
/// [`export_cart!`](crate::export_cart).
pub trait Cart {
    /// Name, version and mutation kinds.
    fn describe() -> Descriptor;
    /// Applies a mutation to the current state (`None` for a new entity).
    fn apply(state: Option<Vec<u8>>, mutation: Mutation) -> Result<Outcome, Failure>;
}

/// Exports a [`Route`] implementation as the component's `route` world.
#[macro_export]
macro_rules! export_route {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __CorralRoute;
        impl $crate::bindings::route::Guest for __CorralRoute {
            fn describe() -> $crate::Descriptor {
                <$plugin as $crate::Route>::describe()
            }
        }
        impl $crate::bindings::route::exports::corral::plugin::http_handler::Guest for __CorralRoute {
            fn handle(request: $crate::HttpRequest) -> $crate::HttpResponse {
                <$plugin as $crate::Route>::handle(request)
            }
        }
        $crate::bindings::route::export_route_world!(__CorralRoute with_types_in $crate::bindings::route);
    };
}

/// Exports an [`EventHandler`] implementation as the `event-handler` world.
#[macro_export]
macro_rules! export_event_handler {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __CorralEventHandler;
        impl $crate::bindings::event_handler::Guest for __CorralEventHandler {
            fn describe() -> $crate::Descriptor {
                <$plugin as $crate::EventHandler>::describe()
            }
        }
        impl $crate::bindings::event_handler::exports::corral::plugin::event_consumer::Guest for __CorralEventHandler {
            fn handle(event: $crate::Event) -> Result<(), $crate::Failure> {
                <$plugin as $crate::EventHandler>::handle(event)
            }
        }
        $crate::bindings::event_handler::export_event_handler_world!(
            __CorralEventHandler with_types_in $crate::bindings::event_handler
        );
    };
}

/// Exports a [`Projection`] implementation as the `projection` world (one
/// fresh instance per event) or, with `batched`, as the
/// `batched-projection` world (one instance per batch; see [`Projection`]
/// for what that asks of the implementation).
#[macro_export]
macro_rules! export_projection {
    ($plugin:ty, batched) => {
        #[doc(hidden)]
        pub struct __CorralProjection;
        impl $crate::bindings::batched_projection::Guest for __CorralProjection {
            fn describe() -> $crate::Descriptor {
                <$plugin as $crate::Projection>::describe()
            }
        }
        impl $crate::bindings::batched_projection::exports::corral::plugin::batch_projector::Guest
            for __CorralProjection
        {
            fn key(event: $crate::Event) -> Option<String> {
                <$plugin as $crate::Projection>::key(&event)
            }
            fn apply(current: Option<Vec<u8>>, event: $crate::Event) -> Result<Option<Vec<u8>>, $crate::Failure> {
                <$plugin as $crate::Projection>::apply(current, &event)
            }
            fn fold(text: String, events: Vec<u8>) -> Result<(), $crate::Failure> {
                $crate::fold_batch::<$plugin>(text, events)
            }
        }
        $crate::bindings::batched_projection::export_batched_projection_world!(
            __CorralProjection with_types_in $crate::bindings::batched_projection
        );
    };
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __CorralProjection;
        impl $crate::bindings::projection::Guest for __CorralProjection {
            fn describe() -> $crate::Descriptor {
                <$plugin as $crate::Projection>::describe()
            }
        }
        impl $crate::bindings::projection::exports::corral::plugin::projector::Guest for __CorralProjection {
            fn key(event: $crate::Event) -> Option<String> {
                <$plugin as $crate::Projection>::key(&event)
            }
            fn apply(current: Option<Vec<u8>>, event: $crate::Event) -> Result<Option<Vec<u8>>, $crate::Failure> {
                <$plugin as $crate::Projection>::apply(current, &event)
            }
        }
        $crate::bindings::projection::export_projection_world!(
            __CorralProjection with_types_in $crate::bindings::projection
        );
    };
}

/// Exports a [`Cart`] implementation as the `cart` world.
#[macro_export]
macro_rules! export_cart {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __CorralCart;
        impl $crate::bindings::cart::Guest for __CorralCart {
            fn describe() -> $crate::Descriptor {
                <$plugin as $crate::Cart>::describe()
            }
        }
        impl $crate::bindings::cart::exports::corral::plugin::state_machine::Guest for __CorralCart {
            fn apply(state: Option<Vec<u8>>, mutation: $crate::Mutation) -> Result<$crate::Outcome, $crate::Failure> {
                <$plugin as $crate::Cart>::apply(state, mutation)
            }
        }
        $crate::bindings::cart::export_cart_world!(__CorralCart with_types_in $crate::bindings::cart);
    };
}
