//! Reading projection views (route and event-handler worlds), scoped by the
//! host to the tenant of the current request or event.

use crate::bindings::route::corral::plugin::views as host;
pub use crate::bindings::route::corral::plugin::views::{QueryError, View, ViewPage, ViewsError};

/// Reads one view.
pub fn get(projection: &str, id: &str) -> Result<Option<Vec<u8>>, ViewsError> {
    host::get(projection, id)
}

/// One page of the views whose id starts with `prefix`.
pub fn list(projection: &str, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ViewPage, ViewsError> {
    host::list(projection, prefix, cursor, limit)
}

/// One page of the views matching `filter`, a SQL `WHERE` expression over
/// their JSON fields (`"customer = 'ada' AND total > 100"`; empty: all),
/// sorted by `order_by` (`"placed_at DESC"`; empty: by id), after `cursor`
/// (the previous page's `next_cursor`). Served by the projection's
/// declared indexes; a query that would read too many views without one is
/// refused with [`QueryError::TooBroad`], naming the index to declare.
/// Needs a host implementing `corral:plugin@0.1.1`.
pub fn query(
    projection: &str,
    filter: &str,
    order_by: &str,
    cursor: Option<&str>,
    limit: u32,
) -> Result<ViewPage, QueryError> {
    host::query(projection, filter, order_by, cursor, limit)
}
