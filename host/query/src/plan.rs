//! A query and its plan: which index (if any) narrows the candidates, the
//! key range to walk, and whether that walk already yields the requested
//! order (then a page stops after `limit` matches) or the matches must be
//! gathered and sorted.
//!
//! An index is used for equalities on its leading fields, then a range on
//! the next one; it yields the order asked when its last field is the sort
//! field after those equalities (or, unsorted, when every field is equal:
//! then entries are in id order). The plan with the most equalities wins,
//! then one with a range, then one in order.

use serde_json::Value;

use crate::QueryError;
use crate::filter::{Filter, Op};
use crate::index::{Index, Indexes};
use crate::key::{Field, Scalar, encode, successor, type_end, type_start};

/// Most views one page holds.
pub const MAX_LIMIT: usize = 1000;

/// A sort on one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// The field sorted on.
    pub field: Field,
    /// Largest first.
    pub descending: bool,
}

impl Order {
    /// Parses `field`, `field ASC` or `field DESC`; empty is no sort.
    pub fn parse(text: &str) -> Result<Option<Order>, QueryError> {
        let mut words = text.split_whitespace();
        let Some(name) = words.next() else { return Ok(None) };
        let field = Field::parse(name.trim_matches('"'))
            .ok_or_else(|| QueryError::Invalid(format!("order_by: {name:?} is not a field")))?;
        let descending = match words.next().map(str::to_ascii_uppercase).as_deref() {
            None | Some("ASC") => false,
            Some("DESC") => true,
            Some(other) => return Err(QueryError::Invalid(format!("order_by: expected ASC or DESC, found {other}"))),
        };
        if let Some(extra) = words.next() {
            return Err(QueryError::Invalid(format!(
                "order_by: one field and ASC or DESC; found {extra:?} after them"
            )));
        }
        Ok(Some(Order { field, descending }))
    }
}

/// What a client asks of a projection's views (within its tenant).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Which views.
    pub filter: Filter,
    /// In which order (none: by id).
    pub order: Option<Order>,
    /// Only views whose id starts with this.
    pub id_prefix: String,
    /// Most views in the page.
    pub limit: usize,
    /// The sort key of the last view of the previous page.
    pub after: Option<Vec<u8>>,
}

impl Query {
    /// A query from what a client sends: a `WHERE` expression, a sort
    /// (`field [ASC|DESC]`), an id prefix, a cursor from a previous page
    /// (empty: the first page) and a page size (capped at [`MAX_LIMIT`]).
    pub fn parse(
        filter: &str,
        order_by: &str,
        id_prefix: &str,
        cursor: &str,
        limit: usize,
    ) -> Result<Query, QueryError> {
        Ok(Query {
            filter: Filter::parse(filter)?,
            order: Order::parse(order_by)?,
            id_prefix: id_prefix.to_string(),
            limit: limit.clamp(1, MAX_LIMIT),
            after: (!cursor.is_empty()).then(|| Query::parse_cursor(cursor)).transpose()?,
        })
    }

    /// Answers by reading every view given (`(id, value)`, one tenant's):
    /// filtered, sorted, after the cursor, one page and the next cursor.
    /// What an index walk must agree with; used where there are no indexes
    /// (the test kit's in-memory views).
    pub fn answer<'v>(
        &self,
        views: impl IntoIterator<Item = (&'v str, &'v [u8])>,
    ) -> (Vec<(String, Vec<u8>)>, Option<String>) {
        let matches = views
            .into_iter()
            .filter(|(id, _)| id.starts_with(&self.id_prefix))
            .filter_map(|(id, value)| {
                let view = serde_json::from_slice::<Value>(value).ok();
                self.filter
                    .matches(view.as_ref())
                    .then(|| (self.sort_key(id, view.as_ref()), id.to_string(), value.to_vec()))
            })
            .collect();
        self.page(matches, false)
    }

    /// One page of matching views `(sort key, id, value)`: sorted and cut
    /// at the cursor unless they came `in_order` (from a walk that already
    /// started after it), at most `limit`, and the cursor of what follows.
    pub fn page(
        &self,
        mut matches: Vec<(Vec<u8>, String, Vec<u8>)>,
        in_order: bool,
    ) -> (Vec<(String, Vec<u8>)>, Option<String>) {
        let descending = self.order.as_ref().is_some_and(|order| order.descending);
        if !in_order {
            matches.sort_by(|a, b| if descending { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
            if let Some(after) = &self.after {
                matches.retain(|(key, ..)| if descending { key < after } else { key > after });
            }
        }
        let more = matches.len() > self.limit;
        matches.truncate(self.limit);
        let next = more.then(|| matches.last().map(|(key, ..)| Query::cursor(key))).flatten();
        (matches.into_iter().map(|(_, id, value)| (id, value)).collect(), next)
    }

    /// The cursor a page ends with, as the client passes it back.
    pub fn cursor(sort_key: &[u8]) -> String {
        sort_key.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Reads a cursor back.
    pub fn parse_cursor(cursor: &str) -> Result<Vec<u8>, QueryError> {
        let bad = || QueryError::Invalid("cursor: pass back the next_cursor of the previous page".into());
        if !cursor.len().is_multiple_of(2) || cursor.len() > 2048 {
            return Err(bad());
        }
        (0..cursor.len())
            .step_by(2)
            .map(|i| cursor.get(i..i + 2).and_then(|hex| u8::from_str_radix(hex, 16).ok()).ok_or_else(bad))
            .collect()
    }

    /// The fields of an index that would serve this query: its equalities,
    /// then its sort field or its first range. What a refusal suggests.
    pub fn suggested_index(&self) -> Vec<Field> {
        let conditions = Conditions::of(&self.filter);
        let mut fields: Vec<Field> = conditions.equal.iter().map(|(field, _)| (*field).clone()).collect();
        let next = match &self.order {
            Some(order) => Some(order.field.clone()),
            None => conditions.ranges.first().map(|(field, ..)| (*field).clone()),
        };
        fields.extend(next.filter(|next| !fields.contains(next)));
        if fields.is_empty() {
            fields.extend(self.filter.fields().first().map(|field| (*field).clone()));
        }
        fields.truncate(crate::index::MAX_FIELDS);
        fields
    }

    /// The sort key of a matching view when the plan does not yield order:
    /// the sort field's full encoding (if any), then the id.
    pub fn sort_key(&self, id: &str, view: Option<&Value>) -> Vec<u8> {
        let mut key = Vec::new();
        if let Some(order) = &self.order {
            encode(view.and_then(|view| order.field.get(view)), usize::MAX, &mut key);
        }
        key.extend_from_slice(id.as_bytes());
        key
    }
}

/// How the candidates are found.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Every view of the tenant, in id order.
    Scan,
    /// A range of one index's entries: keys (after the index's prefix)
    /// from `lower` (included) to `upper` (excluded; none: the end).
    Index {
        /// The index's number.
        number: u8,
        /// The index's name.
        name: String,
        /// The encoded equalities every entry in the range starts with.
        equal: Vec<u8>,
        /// First key of the range.
        lower: Vec<u8>,
        /// First key after the range.
        upper: Option<Vec<u8>>,
    },
}

/// A plan: the access path and whether it yields the requested order (the
/// sort key of a candidate is then its key after `equal`, or its id).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// How candidates are found.
    pub access: Access,
    /// Whether the candidates arrive in the requested order.
    pub ordered: bool,
}

impl Plan {
    /// Plans a query over a projection's indexes.
    pub fn new(indexes: &Indexes, query: &Query) -> Plan {
        let conditions = Conditions::of(&query.filter);
        let mut best: Option<((usize, bool, bool), Plan)> = None;
        for (number, index) in indexes.iter() {
            let (score, plan) = conditions.plan(number, index, query.order.as_ref());
            let usable = score.0 > 0 || score.1 || score.2;
            if usable && best.as_ref().is_none_or(|(best, _)| score > *best) {
                best = Some((score, plan));
            }
        }
        best.map(|(_, plan)| plan).unwrap_or(Plan { access: Access::Scan, ordered: query.order.is_none() })
    }

    /// The index used, if any.
    pub fn index(&self) -> Option<&str> {
        match &self.access {
            Access::Scan => None,
            Access::Index { name, .. } => Some(name),
        }
    }
}

/// The conditions an index can use: a filter's top-level equalities and
/// ranges on fields.
struct Conditions<'a> {
    equal: Vec<(&'a Field, &'a Scalar)>,
    ranges: Vec<(&'a Field, Op, &'a Scalar)>,
}

impl<'a> Conditions<'a> {
    fn of(filter: &'a Filter) -> Conditions<'a> {
        let mut conditions = Conditions { equal: Vec::new(), ranges: Vec::new() };
        for conjunct in filter.conjuncts() {
            match conjunct {
                Filter::Compare(field, Op::Eq, literal)
                    if !conditions.equal.iter().any(|(known, _)| *known == field) =>
                {
                    conditions.equal.push((field, literal));
                }
                Filter::Compare(field, op @ (Op::Lt | Op::Le | Op::Gt | Op::Ge), literal) => {
                    conditions.ranges.push((field, *op, literal));
                }
                _ => {}
            }
        }
        conditions
    }

    fn equal_to(&self, field: &Field) -> Option<&'a Scalar> {
        self.equal.iter().find(|(known, _)| *known == field).map(|(_, literal)| *literal)
    }

    /// This index's plan and its score: (equalities, a range, in order).
    fn plan(&self, number: u8, index: &Index, order: Option<&Order>) -> ((usize, bool, bool), Plan) {
        let fields = index.fields();
        let mut equal = Vec::new();
        let mut k = 0;
        while let Some(literal) = fields.get(k).and_then(|field| self.equal_to(field)) {
            literal.encode(index.cap(), &mut equal);
            k += 1;
        }
        let mut lower = equal.clone();
        let mut upper = successor(&equal).filter(|_| !equal.is_empty());
        let mut ranged = false;
        if let Some(field) = fields.get(k) {
            // Bounds of the first range's type only: a range of another
            // type could not match the same values anyway.
            let kind = self.ranges.iter().find(|(f, ..)| *f == field).map(|(_, _, literal)| type_start(literal));
            for (_, op, literal) in self.ranges.iter().filter(|(f, _, l)| *f == field && Some(type_start(l)) == kind) {
                let mut block = equal.clone();
                let cut = literal.encode(index.cap(), &mut block);
                let after_block = successor(&block);
                if !ranged {
                    lower = [&equal[..], &[type_start(literal)]].concat();
                    upper = Some([&equal[..], &[type_end(literal)]].concat());
                    ranged = true;
                }
                match op {
                    Op::Gt if !cut => lower = lower.max(after_block.unwrap_or_default()),
                    Op::Gt | Op::Ge => lower = lower.max(block),
                    Op::Lt if !cut => upper = tighter(upper, Some(block)),
                    Op::Lt | Op::Le => upper = tighter(upper, after_block),
                    Op::Eq | Op::Ne => {}
                }
            }
        }
        let ordered = match order {
            None => k == fields.len(),
            Some(order) => k + 1 == fields.len() && fields[k] == order.field,
        };
        let access = Access::Index { number, name: index.name(), equal, lower, upper };
        ((k, ranged, ordered), Plan { access, ordered })
    }
}

/// The lower of two upper bounds, none being no bound.
fn tighter(a: Option<Vec<u8>>, b: Option<Vec<u8>>) -> Option<Vec<u8>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexSpec;

    fn indexes(specs: &[&[&str]]) -> Indexes {
        let specs: Vec<IndexSpec> =
            specs.iter().map(|fields| IndexSpec::Many(fields.iter().map(|f| f.to_string()).collect())).collect();
        Indexes::declare(&specs).unwrap()
    }

    fn query(filter: &str, order: &str) -> Query {
        Query {
            filter: Filter::parse(filter).unwrap(),
            order: Order::parse(order).unwrap(),
            id_prefix: String::new(),
            limit: 10,
            after: None,
        }
    }

    #[test]
    fn the_index_with_most_equalities_then_order_is_chosen() {
        let indexes = indexes(&[&["total"], &["customer"], &["customer", "placed_at"]]);
        let plan = Plan::new(&indexes, &query("customer = 'ada' AND total > 100", "placed_at DESC"));
        assert_eq!((plan.index(), plan.ordered), (Some("customer,placed_at"), true));
        let plan = Plan::new(&indexes, &query("customer = 'ada'", ""));
        assert_eq!((plan.index(), plan.ordered), (Some("customer"), true), "all equal: id order");
        let plan = Plan::new(&indexes, &query("total > 100", ""));
        assert_eq!((plan.index(), plan.ordered), (Some("total"), false));
        let plan = Plan::new(&indexes, &query("status = 'paid'", "total"));
        assert_eq!((plan.index(), plan.ordered), (Some("total"), true), "walk the sort's index");
        let plan = Plan::new(&indexes, &query("status = 'paid'", ""));
        assert_eq!((plan.access, plan.ordered), (Access::Scan, true));
        let plan = Plan::new(&indexes, &query("status = 'paid'", "status"));
        assert_eq!((plan.access, plan.ordered), (Access::Scan, false));
    }

    #[test]
    fn ranges_bound_the_walk_to_their_type() {
        let indexes = indexes(&[&["total"]]);
        let Access::Index { lower, upper, .. } = Plan::new(&indexes, &query("total > 5 AND total <= 9", "")).access
        else {
            panic!("the index is used")
        };
        let key = |n: f64| {
            let mut key = Vec::new();
            Scalar::Number(n).encode(64, &mut key);
            key
        };
        assert!(lower > key(5.0) && lower <= key(5.000001), "after every 5");
        assert!(upper.clone().is_some_and(|upper| upper > key(9.0) && upper <= key(9.000001)));
        let Access::Index { upper, .. } = Plan::new(&indexes, &query("total > 5", "")).access else { panic!() };
        assert_eq!(upper, Some(vec![0x05]), "numbers end where strings start");
    }

    #[test]
    fn suggestions_name_equalities_then_the_sort() {
        let q = query("total > 3 AND customer = 'ada' AND (a = 1 OR b = 2)", "placed_at");
        let names: Vec<String> = q.suggested_index().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["customer", "placed_at"]);
        let names: Vec<String> = query("total > 3", "").suggested_index().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["total"]);
        let names: Vec<String> =
            query("a = 1 OR b = 2", "").suggested_index().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["a"]);
    }

    #[test]
    fn a_scan_answers_page_by_page() {
        let views: Vec<(String, Vec<u8>)> =
            (0..7).map(|n| (format!("v{n}"), format!("{{\"n\":{}}}", n % 3).into_bytes())).collect();
        let mut q = Query::parse("n >= 1", "n DESC", "", "", 3).unwrap();
        let mut seen = Vec::new();
        loop {
            let (page, next) = q.answer(views.iter().map(|(id, v)| (id.as_str(), v.as_slice())));
            seen.extend(page.into_iter().map(|(id, _)| id));
            match next {
                Some(cursor) => q = Query::parse("n >= 1", "n DESC", "", &cursor, 3).unwrap(),
                None => break,
            }
        }
        assert_eq!(seen, ["v5", "v2", "v4", "v1"]);
        assert!(Query::parse("", "", "", "xyz", 3).is_err());
    }

    #[test]
    fn orders_and_cursors_parse_or_say_why_not() {
        assert_eq!(Order::parse("placed_at desc").unwrap().map(|o| o.descending), Some(true));
        assert!(Order::parse("a b").is_err());
        assert!(Order::parse("a DESC b").is_err());
        assert_eq!(Query::parse_cursor(&Query::cursor(b"\x00ab\xff")).unwrap(), b"\x00ab\xff");
        assert!(Query::parse_cursor("zz").is_err());
    }
}
