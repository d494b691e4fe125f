//! Reading projection views (route and event-handler worlds), scoped by the
//! host to the tenant of the current request or event.

use crate::bindings::route::corral::plugin::views as host;
pub use crate::bindings::route::corral::plugin::views::{View, ViewPage, ViewsError};

/// Reads one view.
pub fn get(projection: &str, id: &str) -> Result<Option<Vec<u8>>, ViewsError> {
    host::get(projection, id)
}

/// One page of the views whose id starts with `prefix`.
pub fn list(projection: &str, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ViewPage, ViewsError> {
    host::list(projection, prefix, cursor, limit)
}
