//! The WIT record types the host and guests exchange, re-exported from the
//! generated bindings under stable names.

pub use crate::bindings::cart::exports::corral::plugin::state_machine::Outcome;
pub use crate::bindings::types::{
    Descriptor, Event, Failure, HttpRequest, HttpResponse, Mutation, OutgoingEvent, Route, Schedule,
};
