//! Filters: a SQL `WHERE` expression over a view's JSON fields, parsed by
//! `sqlparser` and evaluated on each candidate view.
//!
//! What is understood: `AND`, `OR`, `NOT`, parentheses; `=`, `!=`/`<>`,
//! `<`, `<=`, `>`, `>=` between a field and a literal (either side);
//! `[NOT] IN (..)`, `[NOT] BETWEEN .. AND ..`, `IS [NOT] NULL`,
//! `[NOT] LIKE '..'` (`%` and `_`). Fields are identifiers, dotted for
//! nested members (`customer.name`), double-quoted when they are not plain
//! (`"placed-at"`). Literals: numbers, `'strings'`, `TRUE`, `FALSE`.
//! A comparison with a missing field or a value of another type is false
//! (so `NOT (total = 5)` holds for a view without `total`; `total != 5`
//! does not).

use serde_json::Value;
use sqlparser::ast::{BinaryOperator, Expr, InTarget, UnaryOperator, Value as SqlValue};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::QueryError;
use crate::key::{Field, Scalar};

/// Longest filter accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 4096;
/// Deepest nesting of a filter's expressions.
const MAX_DEPTH: usize = 48;
/// Longest `LIKE` pattern, in bytes.
const MAX_PATTERN_BYTES: usize = 256;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Op {
    /// The operator seen from the other side (`5 < total` is `total > 5`).
    fn flipped(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Matches every view (no filter given).
    All,
    /// Every part holds.
    And(Vec<Filter>),
    /// Some part holds.
    Or(Vec<Filter>),
    /// The part does not hold.
    Not(Box<Filter>),
    /// `field OP literal`.
    Compare(Field, Op, Scalar),
    /// `field IN (literals)`.
    In(Field, Vec<Scalar>),
    /// `field IS NULL`: missing or `null`.
    IsNull(Field),
    /// `field LIKE pattern`.
    Like(Field, String),
}

impl Filter {
    /// Parses a SQL `WHERE` expression (without the `WHERE`); empty is
    /// [`Filter::All`].
    pub fn parse(sql: &str) -> Result<Filter, QueryError> {
        if sql.trim().is_empty() {
            return Ok(Filter::All);
        }
        if sql.len() > MAX_FILTER_BYTES {
            return Err(QueryError::Invalid(format!("the filter is {} bytes; at most {MAX_FILTER_BYTES}", sql.len())));
        }
        let dialect = GenericDialect {};
        let syntax = |error: sqlparser::parser::ParserError| QueryError::Invalid(format!("filter: {error}"));
        let mut parser = Parser::new(&dialect).with_recursion_limit(MAX_DEPTH).try_with_sql(sql).map_err(syntax)?;
        let expr = parser.parse_expr().map_err(syntax)?;
        let next = parser.peek_token_ref();
        if next.token != Token::EOF {
            return Err(QueryError::Invalid(format!(
                "filter: unexpected {} at {} (one expression, without WHERE, ORDER BY or LIMIT)",
                next.token, next.span.start
            )));
        }
        lower(&expr)
    }

    /// Whether a view (its JSON; `None` when it is not JSON) matches.
    pub fn matches(&self, view: Option<&Value>) -> bool {
        let at = |field: &Field| view.and_then(|view| field.get(view));
        match self {
            Filter::All => true,
            Filter::And(parts) => parts.iter().all(|part| part.matches(view)),
            Filter::Or(parts) => parts.iter().any(|part| part.matches(view)),
            Filter::Not(part) => !part.matches(view),
            Filter::Compare(field, op, literal) => match literal.compare(at(field)) {
                None => false,
                Some(ordering) => match op {
                    Op::Eq => ordering.is_eq(),
                    Op::Ne => ordering.is_ne(),
                    Op::Lt => ordering.is_lt(),
                    Op::Le => ordering.is_le(),
                    Op::Gt => ordering.is_gt(),
                    Op::Ge => ordering.is_ge(),
                },
            },
            Filter::In(field, literals) => {
                literals.iter().any(|literal| literal.compare(at(field)).is_some_and(|o| o.is_eq()))
            }
            Filter::IsNull(field) => matches!(at(field), None | Some(Value::Null)),
            Filter::Like(field, pattern) => {
                matches!(at(field), Some(Value::String(value)) if like(value.as_bytes(), pattern.as_bytes()))
            }
        }
    }

    /// The parts that must all hold: the parts of a top-level `AND`, or the
    /// filter itself.
    pub(crate) fn conjuncts(&self) -> Vec<&Filter> {
        match self {
            Filter::And(parts) => parts.iter().flat_map(Filter::conjuncts).collect(),
            Filter::All => Vec::new(),
            other => vec![other],
        }
    }

    /// Every field the filter names, in order of appearance.
    pub(crate) fn fields(&self) -> Vec<&Field> {
        match self {
            Filter::All => Vec::new(),
            Filter::And(parts) | Filter::Or(parts) => parts.iter().flat_map(Filter::fields).collect(),
            Filter::Not(part) => part.fields(),
            Filter::Compare(field, ..) | Filter::In(field, _) | Filter::IsNull(field) | Filter::Like(field, _) => {
                vec![field]
            }
        }
    }
}

/// Turns sqlparser's expression into a filter, refusing what views cannot
/// answer (functions, arithmetic, subqueries, two fields compared).
fn lower(expr: &Expr) -> Result<Filter, QueryError> {
    Ok(match expr {
        Expr::Nested(inner) => lower(inner)?,
        Expr::UnaryOp { op: UnaryOperator::Not, expr } => Filter::Not(Box::new(lower(expr)?)),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => Filter::And(vec![lower(left)?, lower(right)?]),
        Expr::BinaryOp { left, op: BinaryOperator::Or, right } => Filter::Or(vec![lower(left)?, lower(right)?]),
        Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Eq => Op::Eq,
                BinaryOperator::NotEq => Op::Ne,
                BinaryOperator::Lt => Op::Lt,
                BinaryOperator::LtEq => Op::Le,
                BinaryOperator::Gt => Op::Gt,
                BinaryOperator::GtEq => Op::Ge,
                other => return Err(unsupported(&format!("the operator {other}"))),
            };
            match (field(left), field(right)) {
                (Some(field), None) => Filter::Compare(field, op, literal(right)?),
                (None, Some(field)) => Filter::Compare(field, op.flipped(), literal(left)?),
                (Some(_), Some(_)) => return Err(unsupported("comparing two fields")),
                (None, None) => return Err(unsupported(&format!("{expr}: compare a field with a literal"))),
            }
        }
        Expr::In { expr: inner, target: InTarget::List(list), negated, .. } => {
            let field = need_field(inner)?;
            let literals = list.iter().map(literal).collect::<Result<Vec<_>, _>>()?;
            negate(Filter::In(field, literals), *negated)
        }
        Expr::Between { expr: inner, negated, low, high } => {
            let field = need_field(inner)?;
            let range = Filter::And(vec![
                Filter::Compare(field.clone(), Op::Ge, literal(low)?),
                Filter::Compare(field, Op::Le, literal(high)?),
            ]);
            negate(range, *negated)
        }
        Expr::IsNull(inner) => Filter::IsNull(need_field(inner)?),
        Expr::IsNotNull(inner) => Filter::Not(Box::new(Filter::IsNull(need_field(inner)?))),
        Expr::Like { negated, any: false, expr: inner, pattern, escape_char: None } => {
            let field = need_field(inner)?;
            let Scalar::String(pattern) = literal(pattern)? else {
                return Err(QueryError::Invalid("LIKE takes a 'string' pattern".into()));
            };
            if pattern.len() > MAX_PATTERN_BYTES {
                return Err(QueryError::Invalid(format!("a LIKE pattern is at most {MAX_PATTERN_BYTES} bytes")));
            }
            negate(Filter::Like(field, pattern), *negated)
        }
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
            // A bare field is a test of a boolean member.
            Filter::Compare(need_field(expr)?, Op::Eq, Scalar::Bool(true))
        }
        other => return Err(unsupported(&other.to_string())),
    })
}

fn negate(filter: Filter, negated: bool) -> Filter {
    if negated { Filter::Not(Box::new(filter)) } else { filter }
}

fn unsupported(what: &str) -> QueryError {
    QueryError::Invalid(format!(
        "filter: {what} is not supported (fields compared with literals, IN, BETWEEN, IS NULL, LIKE, AND/OR/NOT)"
    ))
}

/// The field an expression names, if it is one.
fn field(expr: &Expr) -> Option<Field> {
    match expr {
        Expr::Identifier(ident) => Field::new(vec![ident.value.clone()]),
        Expr::CompoundIdentifier(parts) => Field::new(parts.iter().map(|p| p.value.clone()).collect()),
        Expr::Nested(inner) => field(inner),
        _ => None,
    }
}

fn need_field(expr: &Expr) -> Result<Field, QueryError> {
    field(expr).ok_or_else(|| QueryError::Invalid(format!("filter: expected a field, found {expr}")))
}

/// The literal an expression is: a number (signed), a string or a boolean.
fn literal(expr: &Expr) -> Result<Scalar, QueryError> {
    let number = |text: &str, negative: bool| {
        text.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| Scalar::Number(if negative { -n } else { n }))
            .ok_or_else(|| QueryError::Invalid(format!("filter: {text} is not a finite number")))
    };
    match expr {
        Expr::Nested(inner) => literal(inner),
        Expr::Value(value) => match &value.value {
            SqlValue::Number(text, _) => number(text, false),
            SqlValue::SingleQuotedString(text) => Ok(Scalar::String(text.clone())),
            SqlValue::Boolean(value) => Ok(Scalar::Bool(*value)),
            SqlValue::Null => Err(QueryError::Invalid("filter: compare with NULL using IS NULL or IS NOT NULL".into())),
            other => Err(unsupported(&format!("the literal {other} ('single-quoted' strings)"))),
        },
        Expr::UnaryOp { op: UnaryOperator::Minus, expr: inner } => match inner.as_ref() {
            Expr::Value(value) => match &value.value {
                SqlValue::Number(text, _) => number(text, true),
                _ => Err(unsupported(&expr.to_string())),
            },
            _ => Err(unsupported(&expr.to_string())),
        },
        other => Err(QueryError::Invalid(format!("filter: expected a literal, found {other}"))),
    }
}

/// SQL `LIKE`: `%` any run, `_` one character; greedy with one backtrack
/// point, so linear in practice and never exponential.
fn like(text: &[u8], pattern: &[u8]) -> bool {
    let text: Vec<char> = String::from_utf8_lossy(text).chars().collect();
    let pattern: Vec<char> = String::from_utf8_lossy(pattern).chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(sql: &str, view: Value) -> bool {
        Filter::parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}")).matches(Some(&view))
    }

    #[test]
    fn comparisons_follow_sql() {
        let order = json!({"customer": {"name": "ada"}, "total": 120.5, "paid": true, "tags": ["a"]});
        assert!(holds("customer.name = 'ada' AND total > 100", order.clone()));
        assert!(holds("100 < total", order.clone()));
        assert!(holds("total BETWEEN 100 AND 200 AND paid", order.clone()));
        assert!(!holds("total NOT BETWEEN 100 AND 200", order.clone()));
        assert!(holds("customer.name IN ('bob', 'ada')", order.clone()));
        assert!(holds("customer.name LIKE 'a%' AND customer.name LIKE '_d_'", order.clone()));
        assert!(holds("missing IS NULL AND total IS NOT NULL", order.clone()));
        assert!(holds("total >= -1 OR total = 'x'", order.clone()));
        assert!(!holds("total = '120.5'", order.clone()), "a string literal never equals a number");
        assert!(!holds("missing != 5", order.clone()), "a comparison with a missing field is false");
        assert!(holds("NOT (missing = 5)", order.clone()));
        assert!(!holds("tags = 'a'", order), "arrays compare with nothing");
    }

    #[test]
    fn what_views_cannot_answer_is_refused_with_the_reason() {
        for (sql, said) in [
            ("total = NULL", "IS NULL"),
            ("total + 1 > 2", "not supported"),
            ("a = b", "two fields"),
            ("lower(name) = 'x'", "not supported"),
            ("total > 1 ORDER BY total", "unexpected"),
            ("total >", "filter:"),
            ("total = 1e999", "finite"),
        ] {
            let error = Filter::parse(sql).unwrap_err().to_string();
            assert!(error.contains(said), "{sql}: {error}");
        }
        let deep = format!("{}total = 1{}", "(".repeat(200), ")".repeat(200));
        assert!(Filter::parse(&deep).is_err(), "nesting is bounded");
        assert!(Filter::parse(&"a = 1 AND ".repeat(1000)).is_err(), "length is bounded");
    }

    #[test]
    fn like_handles_runs_and_single_characters() {
        assert!(like(b"abcabc", b"%abc"));
        assert!(like(b"abc", b"a%c%"));
        assert!(!like(b"abc", b"a_"));
        assert!(like("café".as_bytes(), b"caf_"));
        assert!(like(b"", b"%"));
        assert!(!like(&[b'a'; 300], b"%b"));
    }
}
