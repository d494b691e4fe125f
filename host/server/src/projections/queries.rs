//! What a refused view query says, the same over HTTP and through the
//! `views` import: how many views it would have examined, the index it
//! walked, and the fix — the index to declare (in the projection's
//! sidecar) or, when that index exists already, a narrower filter or a
//! higher scan limit.

use corral_query::Query;

use crate::plugins::Mounted;

/// A refusal for a query over the scan limit: the message and the fields
/// of the index that would serve it.
pub(crate) fn too_broad(mounted: &Mounted, limit: usize, index: Option<&str>, query: &Query) -> (String, Vec<String>) {
    let suggested: Vec<String> = query.suggested_index().iter().map(ToString::to_string).collect();
    let sidecar = mounted.plugin.path().with_extension("toml");
    let sidecar = sidecar.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let walked = index.map_or("without an index".to_string(), |index| format!("through the index [{index}]"));
    let declared =
        mounted.indexes.iter().any(|(_, i)| i.fields().iter().map(ToString::to_string).eq(suggested.iter().cloned()));
    let fix = if declared || suggested.is_empty() {
        format!(
            "narrow the filter (equalities on an index's leading fields), or raise [projection] scan_limit in {sidecar}"
        )
    } else {
        format!(
            "add the index {suggested:?} to [projection] indexes in {sidecar} (the views are indexed when it loads)"
        )
    };
    let message = format!(
        "projection {}: the query would examine more than {limit} views {walked}; {fix}",
        mounted.plugin.name()
    );
    (message, suggested)
}
