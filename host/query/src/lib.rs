//! View queries: what a client may ask of a projection's JSON views beyond
//! "the view with this id" — a filter written as a SQL `WHERE` expression,
//! a sort on one field, a page size and a cursor — and the secondary
//! indexes a projection declares to answer them without reading every
//! view. It knows nothing of LMDB, HTTP or wasm: storage keeps the entries
//! and walks the plan this crate makes.
//!
//! # Layout
//!
//! - `key`: [`Field`]s of a view, [`Scalar`] literals, and the
//!   order-preserving encoding index keys are made of.
//! - `filter`: [`Filter`], parsed from SQL by `sqlparser` and evaluated on
//!   a view.
//! - `index`: [`Indexes`], declared in a sidecar, and each view's entries.
//! - `plan`: [`Query`] and its [`Plan`] — which index, which key range, and
//!   whether the walk is already in the order asked.

mod filter;
mod index;
mod key;
mod plan;

pub use filter::{Filter, MAX_FILTER_BYTES, Op};
pub use index::{Index, IndexSpec, Indexes, MAX_FIELDS, MAX_INDEXES};
pub use key::{Field, Scalar, encode, successor};
pub use plan::{Access, MAX_LIMIT, Order, Plan, Query};

/// A query or an index declaration that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Malformed or unsupported: the message says what and how to write it.
    #[error("{0}")]
    Invalid(String),
}
