//! Queries over one tenant's views of one scope: the plan `corral-query`
//! makes from the scope's stored index definitions, walked in one read
//! transaction, every candidate view re-checked against the whole filter.
//!
//! Reading views costs: each candidate examined counts, and a query that
//! would examine more than its scan limit is refused (nothing returned)
//! with the index that would have served it.

use std::ops::Bound;

use corral_query::{Access, Plan, Query, successor};
use serde_json::Value;

use super::index::index_prefix;
use crate::{Storage, StorageError, compose};

/// One page of a query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    /// The views, `(id, value)`, in the order asked.
    pub views: Vec<(String, Vec<u8>)>,
    /// Pass back for the next page; none when this page is the last.
    pub next_cursor: Option<String>,
    /// Views examined to answer.
    pub scanned: usize,
    /// The index walked (its fields joined by commas); none for a scan.
    pub index: Option<String>,
}

/// Why a query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ViewQueryError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Answering would examine more views than allowed.
    #[error("the query would examine more than {limit} views")]
    TooBroad {
        /// The scan limit.
        limit: usize,
        /// The index walked, if any.
        index: Option<String>,
    },
}

/// A candidate that matched: its sort key, id and value.
type Match = (Vec<u8>, String, Vec<u8>);

/// The walk's tally.
struct Walk<'q> {
    query: &'q Query,
    ordered: bool,
    scanned: usize,
    scan_limit: usize,
    matches: Vec<Match>,
}

impl Walk<'_> {
    /// Examines one candidate; false when the page is full.
    fn examine(&mut self, sort_key: &[u8], id: &str, value: &[u8]) -> Result<bool, ViewQueryError> {
        self.scanned += 1;
        if self.scanned > self.scan_limit {
            return Err(ViewQueryError::TooBroad { limit: self.scan_limit, index: None });
        }
        if !id.starts_with(&self.query.id_prefix) {
            return Ok(true);
        }
        let view = serde_json::from_slice::<Value>(value).ok();
        if !self.query.filter.matches(view.as_ref()) {
            return Ok(true);
        }
        let key = if self.ordered { sort_key.to_vec() } else { self.query.sort_key(id, view.as_ref()) };
        self.matches.push((key, id.to_string(), value.to_vec()));
        Ok(!self.ordered || self.matches.len() <= self.query.limit)
    }
}

impl Storage {
    /// Answers a query over one tenant's views of a projection scope,
    /// examining at most `scan_limit` views.
    pub fn view_query(
        &self,
        tenant: &str,
        scope: &str,
        query: &Query,
        scan_limit: usize,
    ) -> Result<QueryPage, ViewQueryError> {
        let txn = self.env.read_txn().map_err(StorageError::from)?;
        let indexes = self.index_definitions(&txn, scope)?;
        let plan = Plan::new(&indexes, query);
        let mut walk = Walk { query, ordered: plan.ordered, scanned: 0, scan_limit, matches: Vec::new() };
        let walked = match &plan.access {
            Access::Scan => self.scan(&txn, tenant, scope, &mut walk),
            Access::Index { number, equal, lower, upper, .. } => {
                let prefix = index_prefix(scope, *number, tenant);
                let full = |suffix: &[u8]| [&prefix[..], suffix].concat();
                let mut start = Bound::Included(full(lower));
                let mut end = match upper {
                    Some(upper) => Bound::Excluded(full(upper)),
                    None => successor(&prefix).map_or(Bound::Unbounded, Bound::Excluded),
                };
                let descending = query.order.as_ref().is_some_and(|order| order.descending);
                if let (true, Some(after)) = (plan.ordered, &query.after) {
                    let cursor = full(&[&equal[..], after].concat());
                    if descending {
                        end = match end {
                            Bound::Excluded(end) if end <= cursor => Bound::Excluded(end),
                            _ => Bound::Excluded(cursor),
                        };
                    } else if matches!(&start, Bound::Included(start) if *start <= cursor) {
                        start = Bound::Excluded(cursor);
                    }
                }
                let sort_from = prefix.len() + equal.len();
                self.walk_index(&txn, tenant, scope, (start, end), descending && plan.ordered, sort_from, &mut walk)
            }
        };
        walked.map_err(|error| match error {
            ViewQueryError::TooBroad { limit, .. } => {
                ViewQueryError::TooBroad { limit, index: plan.index().map(str::to_string) }
            }
            other => other,
        })?;
        let (views, next_cursor) = query.page(walk.matches, walk.ordered);
        Ok(QueryPage { views, next_cursor, scanned: walk.scanned, index: plan.index().map(str::to_string) })
    }

    /// Walks a tenant's views of a scope in id order.
    fn scan(
        &self,
        txn: &heed::RoTxn<'_>,
        tenant: &str,
        scope: &str,
        walk: &mut Walk<'_>,
    ) -> Result<(), ViewQueryError> {
        let base = compose(&[tenant, scope, ""])?;
        let wanted = [&base[..], walk.query.id_prefix.as_bytes()].concat();
        let mut start = Bound::Included(wanted.clone());
        if let (true, Some(after)) = (walk.ordered, &walk.query.after) {
            let cursor = [&base[..], after].concat();
            if cursor >= wanted {
                start = Bound::Excluded(cursor);
            }
        }
        let end = successor(&wanted).map_or(Bound::Unbounded, Bound::Excluded);
        let range = (as_slice(&start), as_slice(&end));
        for item in self.views.range(txn, &range).map_err(StorageError::from)? {
            let (key, value) = item.map_err(StorageError::from)?;
            let id = String::from_utf8_lossy(&key[base.len()..]);
            if !walk.examine(&key[base.len()..], &id, value)? {
                break;
            }
        }
        Ok(())
    }

    /// Walks a range of index entries, reading each entry's view.
    #[allow(clippy::too_many_arguments, reason = "one walk's whole context; a struct would only rename it")]
    fn walk_index(
        &self,
        txn: &heed::RoTxn<'_>,
        tenant: &str,
        scope: &str,
        (start, end): (Bound<Vec<u8>>, Bound<Vec<u8>>),
        reverse: bool,
        sort_from: usize,
        walk: &mut Walk<'_>,
    ) -> Result<(), ViewQueryError> {
        let range = (as_slice(&start), as_slice(&end));
        let mut visit = |key: &[u8], id: &[u8]| -> Result<bool, ViewQueryError> {
            let id = String::from_utf8_lossy(id);
            let Some(value) = self.views.get(txn, &compose(&[tenant, scope, &id])?).map_err(StorageError::from)? else {
                return Ok(true);
            };
            walk.examine(key.get(sort_from..).unwrap_or_default(), &id, value)
        };
        if reverse {
            for item in self.view_index.rev_range(txn, &range).map_err(StorageError::from)? {
                let (key, id) = item.map_err(StorageError::from)?;
                if !visit(key, id)? {
                    break;
                }
            }
        } else {
            for item in self.view_index.range(txn, &range).map_err(StorageError::from)? {
                let (key, id) = item.map_err(StorageError::from)?;
                if !visit(key, id)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key),
        Bound::Excluded(key) => Bound::Excluded(key),
        Bound::Unbounded => Bound::Unbounded,
    }
}
