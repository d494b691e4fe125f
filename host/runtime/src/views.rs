//! `corral:plugin/views`: read-only projection views through a [`ViewReader`],
//! always scoped to the tenant of the call.

use crate::bindings::views::{
    Host, QueryError as WitQueryError, View, ViewPage as WitViewPage, ViewsError as WitViewsError,
};
use crate::call::CallContext;

/// Most views one `list` call returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Longest view id a projection may name, in bytes: with the tenant and
/// the projection's scope it stays within a storage key.
pub const MAX_VIEW_ID_BYTES: usize = 256;

/// Checks a view id a projection named: at most [`MAX_VIEW_ID_BYTES`], no
/// NUL. A fold that names another id fails for that event alone (and is
/// quarantined), rather than failing the commit of its whole batch.
pub fn check_view_id(id: &str) -> Result<(), String> {
    if id.len() > MAX_VIEW_ID_BYTES {
        let shown: String = id.chars().take(40).collect();
        return Err(format!("view id {shown:?}... is {} bytes; at most {MAX_VIEW_ID_BYTES}", id.len()));
    }
    if id.contains('\0') {
        return Err(format!("view id {id:?} contains a NUL byte"));
    }
    Ok(())
}

/// A page of views in id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewPage {
    /// `(id, value)` pairs in id order.
    pub views: Vec<(String, Vec<u8>)>,
    /// The last id returned when more may follow.
    pub next_cursor: Option<String>,
}

/// Why a view read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewsError {
    /// No projection of that name.
    #[error("no projection named {0:?}")]
    NoSuchProjection(String),
    /// The view store failed.
    #[error("views unavailable: {0}")]
    Unavailable(String),
}

/// Why a view query was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewQueryError {
    /// No projection of that name.
    #[error("no projection named {0:?}")]
    NoSuchProjection(String),
    /// The filter, sort or cursor cannot be used (the message says why).
    #[error("{0}")]
    Invalid(String),
    /// It would examine more views than allowed (the message names the
    /// index to add).
    #[error("{0}")]
    TooBroad(String),
    /// The view store failed.
    #[error("views unavailable: {0}")]
    Unavailable(String),
}

impl From<ViewsError> for ViewQueryError {
    fn from(error: ViewsError) -> Self {
        match error {
            ViewsError::NoSuchProjection(name) => ViewQueryError::NoSuchProjection(name),
            ViewsError::Unavailable(reason) => ViewQueryError::Unavailable(reason),
        }
    }
}

/// What a guest asks with `views.query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewQuery {
    /// A SQL `WHERE` expression; empty: every view.
    pub filter: String,
    /// `field [ASC|DESC]`; empty: by id.
    pub order_by: String,
    /// A previous page's cursor; empty: the first page.
    pub cursor: String,
    /// Most views in the page (capped at [`MAX_LIST_LIMIT`]).
    pub limit: u32,
}

/// Reads the views projections maintain.
#[async_trait::async_trait]
pub trait ViewReader: Send + Sync + 'static {
    /// One view of one tenant.
    async fn get(&self, tenant: &str, projection: &str, id: &str) -> Result<Option<Vec<u8>>, ViewsError>;
    /// Views of one tenant whose id starts with `prefix`, after `cursor`.
    async fn list(
        &self,
        tenant: &str,
        projection: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ViewPage, ViewsError>;
    /// Views of one tenant matching a query, in its order.
    async fn query(&self, tenant: &str, projection: &str, query: &ViewQuery) -> Result<ViewPage, ViewQueryError>;
}

impl From<ViewQueryError> for WitQueryError {
    fn from(error: ViewQueryError) -> Self {
        match error {
            ViewQueryError::NoSuchProjection(name) => WitQueryError::NoSuchProjection(name),
            ViewQueryError::Invalid(reason) => WitQueryError::Invalid(reason),
            ViewQueryError::TooBroad(reason) => WitQueryError::TooBroad(reason),
            ViewQueryError::Unavailable(reason) => WitQueryError::Unavailable(reason),
        }
    }
}

impl From<ViewsError> for WitViewsError {
    fn from(error: ViewsError) -> Self {
        match error {
            ViewsError::NoSuchProjection(name) => WitViewsError::NoSuchProjection(name),
            ViewsError::Unavailable(reason) => WitViewsError::Unavailable(reason),
        }
    }
}

/// What a call's `views` import reaches: the reader chosen for the call,
/// scoped to the call's tenant.
pub(crate) struct ViewsHost<'a> {
    pub(crate) reader: &'a dyn ViewReader,
    pub(crate) call: &'a CallContext,
}

crate::bindings::link_view!(views, ViewsHost);

impl Host for ViewsHost<'_> {
    #[tracing::instrument(level = "trace", name = "views.get", skip_all, fields(projection = %projection))]
    async fn get(&mut self, projection: String, id: String) -> Result<Option<Vec<u8>>, WitViewsError> {
        Ok(self.reader.get(&self.call.tenant, &projection, &id).await?)
    }

    #[tracing::instrument(level = "trace", name = "views.list", skip_all, fields(projection = %projection))]
    async fn list(
        &mut self,
        projection: String,
        prefix: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<WitViewPage, WitViewsError> {
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        let page = self.reader.list(&self.call.tenant, &projection, &prefix, cursor.as_deref(), limit).await?;
        Ok(WitViewPage {
            views: page.views.into_iter().map(|(id, value)| View { id, value }).collect(),
            next_cursor: page.next_cursor,
        })
    }

    #[tracing::instrument(level = "trace", name = "views.query", skip_all, fields(projection = %projection))]
    async fn query(
        &mut self,
        projection: String,
        filter: String,
        order_by: String,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<WitViewPage, WitQueryError> {
        let query =
            ViewQuery { filter, order_by, cursor: cursor.unwrap_or_default(), limit: limit.clamp(1, MAX_LIST_LIMIT) };
        let page = self.reader.query(&self.call.tenant, &projection, &query).await?;
        Ok(WitViewPage {
            views: page.views.into_iter().map(|(id, value)| View { id, value }).collect(),
            next_cursor: page.next_cursor,
        })
    }
}
