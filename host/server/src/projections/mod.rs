//! Projections: deterministic folds of events into views.
//!
//! - `fold`: one generation's loop — batches from its checkpoint, folded by
//!   the plugin, views and checkpoint committed together, quarantine.
//! - `generations`: every projection's generations — a version builds its
//!   views beside the active one and queries cut over once it caught up
//!   (and its [`CutoverGate`] allows); an operator's skip or retry of the
//!   event a projection halted before.
//! - `quarantine`: quarantined events, kept in storage.
//! - `queries`: what a view query over its scan limit is told.

pub mod fold;
pub mod generations;
pub(crate) mod quarantine;
pub(crate) mod queries;

pub use generations::{CutoverGate, Projections, active_scope};
