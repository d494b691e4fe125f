//! View queries against real LMDB: whatever the views, the indexes and the
//! query, the pages an index walk returns are exactly what reading every
//! view of the tenant, filtering and sorting returns — and never a view of
//! another tenant or projection.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers panic on what the test did not expect")]

use std::collections::BTreeMap;

use corral_query::{Filter, IndexSpec, Indexes, Order, Query};
use corral_storage::{Storage, StorageOptions, ViewQueryError};
use proptest::prelude::*;
use serde_json::{Value, json};

const SCOPE: &str = "orders@abc";

fn open() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), &StorageOptions { map_size: 256 << 20 }).unwrap();
    (dir, storage)
}

fn indexes(specs: &[&[&str]]) -> Indexes {
    let specs: Vec<IndexSpec> =
        specs.iter().map(|fields| IndexSpec::Many(fields.iter().map(|f| f.to_string()).collect())).collect();
    Indexes::declare(&specs).unwrap()
}

fn query(filter: &str, order: &str, limit: usize) -> Query {
    Query {
        filter: Filter::parse(filter).unwrap(),
        order: Order::parse(order).unwrap(),
        id_prefix: String::new(),
        limit,
        after: None,
    }
}

/// Every page of a query, followed by its cursors.
fn all_pages(storage: &Storage, tenant: &str, mut query: Query) -> Result<Vec<String>, ViewQueryError> {
    let mut ids = Vec::new();
    loop {
        let page = storage.view_query(tenant, SCOPE, &query, usize::MAX)?;
        assert!(page.views.len() <= query.limit);
        ids.extend(page.views.into_iter().map(|(id, _)| id));
        match page.next_cursor {
            Some(cursor) => query.after = Some(Query::parse_cursor(&cursor).unwrap()),
            None => return Ok(ids),
        }
    }
}

/// What reading every view of the tenant, filtering and sorting gives.
fn reference(views: &BTreeMap<(String, String), Vec<u8>>, tenant: &str, query: &Query) -> Vec<String> {
    let mut matching: Vec<(Vec<u8>, String)> = views
        .iter()
        .filter(|((t, id), _)| t == tenant && id.starts_with(&query.id_prefix))
        .filter_map(|((_, id), value)| {
            let view = serde_json::from_slice::<Value>(value).ok();
            query.filter.matches(view.as_ref()).then(|| (query.sort_key(id, view.as_ref()), id.clone()))
        })
        .collect();
    matching.sort();
    if query.order.as_ref().is_some_and(|order| order.descending) {
        matching.reverse();
    }
    matching.into_iter().map(|(_, id)| id).collect()
}

fn view() -> impl Strategy<Value = Vec<u8>> {
    let customer = prop_oneof![
        Just(json!("ada")),
        Just(json!("bob")),
        Just(json!("")),
        Just(json!("a\u{0}b")),
        Just(json!(7)),
        Just(Value::Null)
    ];
    let total = prop_oneof![4 => (-3i64..12).prop_map(|n| json!(n)), 1 => (-3.0f64..12.0).prop_map(|n| json!(n)), 1 => Just(json!("12"))];
    let placed = prop_oneof![(0u64..12).prop_map(|n| json!(n)), Just(json!(true)), Just(json!([1, 2]))];
    (customer, total, placed, any::<bool>(), 0u8..10).prop_map(|(customer, total, placed, paid, shape)| match shape {
        0 => b"not json".to_vec(),
        1 => json!({"total": total}).to_string().into_bytes(),
        2 => json!({"customer": {"name": customer}, "paid": paid}).to_string().into_bytes(),
        _ => json!({"customer": {"name": customer}, "total": total, "placed_at": placed, "paid": paid})
            .to_string()
            .into_bytes(),
    })
}

fn filter() -> impl Strategy<Value = String> {
    let one = prop_oneof![
        Just("customer.name = 'ada'".to_string()),
        Just("customer.name = 'a\u{0}b'".to_string()),
        Just("customer.name >= 'bob'".to_string()),
        Just("customer.name > 'ada'".to_string()),
        Just("customer.name < 'b'".to_string()),
        (-4i64..13).prop_map(|n| format!("total > {n}")),
        (-4i64..13).prop_map(|n| format!("total <= {n}.5")),
        (-4i64..13).prop_map(|n| format!("total <= {n}")),
        (-4i64..13).prop_map(|n| format!("total = {n}")),
        (-4i64..13).prop_map(|n| format!("total >= {n}")),
        (-4i64..13).prop_map(|n| format!("total < {n}")),
        (0u64..13).prop_map(|n| format!("placed_at BETWEEN {n} AND {}", n + 3)),
        Just("paid".to_string()),
        Just("total IS NULL".to_string()),
        Just("customer.name IN ('bob', 'ada')".to_string()),
        Just("customer.name LIKE 'a%'".to_string()),
        Just("total = '12'".to_string()),
        Just("NOT (placed_at > 10)".to_string()),
    ];
    prop::collection::vec(one, 0..4).prop_flat_map(|parts| {
        let n = parts.len();
        (Just(parts), prop::collection::vec(any::<bool>(), n)).prop_map(|(parts, ors)| {
            let mut sql = String::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    sql.push_str(if ors[i] { " OR " } else { " AND " });
                }
                sql.push_str(part);
            }
            sql
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn index_walks_answer_exactly_what_a_full_scan_does(
        writes in prop::collection::vec(("[ab]", "[a-f]{1,2}", prop::option::weighted(0.9, view())), 30..200),
        late in any::<bool>(),
        filters in prop::collection::vec(filter(), 1..5),
        order in prop_oneof![Just(""), Just("placed_at"), Just("total DESC"), Just("customer.name"), Just("paid DESC")],
        prefix in prop_oneof![Just(""), Just("a"), Just("c")],
        limit in 1usize..7,
    ) {
        let (_dir, storage) = open();
        let declared = indexes(&[&["customer.name", "placed_at"], &["total"], &["paid", "total"], &["placed_at"]]);
        // Indexes declared before the views, or after (rebuilt from them).
        if !late {
            storage.prepare_indexes(SCOPE, &declared).unwrap();
        }
        let mut views = BTreeMap::new();
        for (n, (tenant, id, value)) in writes.iter().enumerate() {
            let change = ((tenant.clone(), id.clone()), value.clone());
            let now = if late { Indexes::default() } else { declared.clone() };
            storage.commit_views(SCOPE, "c", n as u64, &[change], &now).unwrap();
            match value {
                Some(value) => views.insert((tenant.clone(), id.clone()), value.clone()),
                None => views.remove(&(tenant.clone(), id.clone())),
            };
            // Another projection's views share the database, not the answers.
            storage.commit_views("other@abc", "d", n as u64, &[((tenant.clone(), id.clone()), Some(b"{\"total\":1}".to_vec()))], &declared).unwrap();
        }
        if late {
            prop_assert_eq!(storage.prepare_indexes(SCOPE, &declared).unwrap(), Some(views.len()));
        }
        for sql in &filters {
            for tenant in ["a", "b"] {
                let mut q = query(sql, order, limit);
                q.id_prefix = prefix.to_string();
                let got = all_pages(&storage, tenant, q.clone()).unwrap();
                prop_assert_eq!(&got, &reference(&views, tenant, &q), "{} order by {:?} prefix {:?}", sql, order, prefix);
            }
        }
    }
}

#[test]
fn a_query_past_its_scan_limit_is_refused_naming_the_index_it_walked() {
    let (_dir, storage) = open();
    let declared = indexes(&[&["customer"]]);
    storage.prepare_indexes(SCOPE, &declared).unwrap();
    let changes: Vec<_> = (0..50)
        .map(|n| {
            (
                ("t".to_string(), format!("o{n:02}")),
                Some(json!({"customer": "ada", "total": n}).to_string().into_bytes()),
            )
        })
        .collect();
    storage.commit_views(SCOPE, "c", 1, &changes, &declared).unwrap();
    let q = query("total = 49", "", 10);
    match storage.view_query("t", SCOPE, &q, 20) {
        Err(ViewQueryError::TooBroad { limit: 20, index: None }) => {}
        other => panic!("an unindexed query over 20 views is refused: {other:?}"),
    }
    assert_eq!(q.suggested_index().iter().map(ToString::to_string).collect::<Vec<_>>(), ["total"]);
    match storage.view_query("t", SCOPE, &query("customer = 'ada' AND total = 49", "", 10), 20) {
        Err(ViewQueryError::TooBroad { index: Some(index), .. }) => assert_eq!(index, "customer"),
        other => panic!("an index that does not narrow enough is refused too: {other:?}"),
    }
    let page = storage.view_query("t", SCOPE, &query("customer = 'ada'", "", 10), 20).unwrap();
    assert_eq!((page.views.len(), page.scanned, page.index.as_deref()), (10, 11, Some("customer")));
    assert!(
        storage.view_query("u", SCOPE, &query("", "", 10), 20).unwrap().views.is_empty(),
        "another tenant sees none"
    );
}

#[test]
fn long_strings_are_found_whole_though_their_keys_are_cut() {
    let (_dir, storage) = open();
    let declared = indexes(&[&["note"]]);
    storage.prepare_indexes(SCOPE, &declared).unwrap();
    let long = "n".repeat(400);
    let changes: Vec<_> = [("x", format!("{long}a")), ("y", format!("{long}b")), ("z", long.clone())]
        .into_iter()
        .map(|(id, note)| (("t".to_string(), id.to_string()), Some(json!({"note": note}).to_string().into_bytes())))
        .collect();
    storage.commit_views(SCOPE, "c", 1, &changes, &declared).unwrap();
    let found = |sql: String| all_pages(&storage, "t", query(&sql, "", 10)).unwrap();
    assert_eq!(found(format!("note = '{long}b'")), ["y"]);
    assert_eq!(found(format!("note > '{long}'")), ["x", "y"]);
    assert_eq!(found(format!("note <= '{long}a'")), ["x", "z"]);
    // Dropping the declaration drops the entries; queries still answer.
    assert_eq!(storage.prepare_indexes(SCOPE, &Indexes::default()).unwrap(), Some(0));
    assert_eq!(found(format!("note = '{long}b'")), ["y"]);
}

#[test]
fn a_reset_drops_the_entries_with_the_views() {
    let (_dir, storage) = open();
    let declared = indexes(&[&["total"]]);
    storage.prepare_indexes(SCOPE, &declared).unwrap();
    storage
        .commit_views(SCOPE, "c", 1, &[(("t".into(), "a".into()), Some(b"{\"total\":1}".to_vec()))], &declared)
        .unwrap();
    storage.reset_projection(SCOPE, "c").unwrap();
    let page = storage.view_query("t", SCOPE, &query("total = 1", "", 10), 5).unwrap();
    assert!(page.views.is_empty());
    assert_eq!(page.index, None, "the definitions went with the entries; the next fold prepares them again");
    assert_eq!(storage.prepare_indexes(SCOPE, &declared).unwrap(), Some(0));
}

#[test]
fn a_rebuild_over_many_chunks_indexes_every_view_of_the_scope_and_no_other() {
    let (_dir, storage) = open();
    let declared = indexes(&[&["n"]]);
    // More views than one rebuild chunk reads, two scopes interleaved.
    for batch in 0..5 {
        let changes: Vec<_> = (0..6_000)
            .map(|i| {
                let n = batch * 6_000 + i;
                ((format!("t{}", n % 3), format!("v{n:06}")), Some(json!({"n": n % 97}).to_string().into_bytes()))
            })
            .collect();
        storage.commit_views(SCOPE, "c", batch as u64, &changes, &Indexes::default()).unwrap();
        storage.commit_views("other@abc", "d", batch as u64, &changes[..1000], &Indexes::default()).unwrap();
    }
    assert_eq!(storage.prepare_indexes(SCOPE, &declared).unwrap(), Some(30_000));
    assert_eq!(storage.prepare_indexes(SCOPE, &declared).unwrap(), None, "the definitions now agree");
    let q = query("n = 42", "", 1000);
    let page = storage.view_query("t1", SCOPE, &q, 10_000).unwrap();
    assert_eq!(page.index.as_deref(), Some("n"));
    let expected = (0..30_000).filter(|n| n % 3 == 1 && n % 97 == 42).count();
    assert_eq!((page.views.len(), page.scanned), (expected, expected), "every view indexed, nothing else read");
}
