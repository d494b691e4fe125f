//! [`Expect`]: what a test expects of a [`Run`], and [`Mismatch`]: every way
//! the run differs, printed as a readable diff. Fields left unset are not
//! checked; failures are always checked (an input that fails unexpectedly is
//! a mismatch, and so is an expected failure that did not happen).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::Deserialize;

use crate::content::{Content, diff, lines, render_bytes};
use crate::run::{Failure, Run};

/// What a run should have produced.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Response status.
    pub status: Option<u16>,
    /// Response headers that must be present with these values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response body (a string: exact text; anything else: JSON).
    pub body: Option<Content>,
    /// Response body as JSON (any JSON value, strings included).
    pub json: Option<serde_json::Value>,
    /// The tenant whose views are checked [default: the run's].
    pub tenant: Option<String>,
    /// Views that must exist with these values, by id.
    #[serde(default)]
    pub views: BTreeMap<String, Content>,
    /// View ids that must not exist.
    #[serde(default)]
    pub views_absent: Vec<String>,
    /// The cart's state.
    pub state: Option<Content>,
    /// The cart must have no state (nothing was accepted).
    #[serde(default)]
    pub state_absent: bool,
    /// Exactly these events, in this order.
    pub emitted: Option<Vec<ExpectedEvent>>,
    /// kv entries (of the plugin's own bucket) that must hold these values.
    #[serde(default)]
    pub kv: BTreeMap<String, Content>,
    /// kv keys that must not exist.
    #[serde(default)]
    pub kv_absent: Vec<String>,
    /// Entries of shared kv buckets, by bucket then key.
    #[serde(default)]
    pub shared_kv: BTreeMap<String, BTreeMap<String, Content>>,
    /// Lines that must have been logged.
    #[serde(default)]
    pub logs: Vec<ExpectedLog>,
    /// Exactly these failures, in this order (none by default).
    #[serde(default)]
    pub errors: Vec<ExpectedError>,
}

/// An expected emitted event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedEvent {
    /// Its topic.
    pub topic: String,
    /// Its payload, if it is to be checked.
    pub payload: Option<Content>,
}

/// An expected log line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedLog {
    /// Its level, if it is to be checked.
    pub level: Option<String>,
    /// Text the message contains.
    pub contains: String,
}

/// An expected failure; unset fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedError {
    /// Position of the failing input, from 0.
    pub index: Option<usize>,
    /// Kind: `trap`, `guest_error`, `out_of_fuel`, ... (see [`Failure::kind`]).
    pub kind: Option<String>,
    /// The guest's error code.
    pub code: Option<String>,
    /// Text the message contains.
    pub message: Option<String>,
}

impl ExpectedError {
    /// A guest error with this code.
    pub fn code(code: &str) -> Self {
        ExpectedError { code: Some(code.into()), ..ExpectedError::default() }
    }

    /// A failure of this kind (`trap`, `out_of_fuel`, ...).
    pub fn kind(kind: &str) -> Self {
        ExpectedError { kind: Some(kind.into()), ..ExpectedError::default() }
    }

    /// ... of the input at `index`.
    pub fn at(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    /// ... whose message contains `text`.
    pub fn containing(mut self, text: &str) -> Self {
        self.message = Some(text.into());
        self
    }

    fn matches(&self, failure: &Failure) -> bool {
        self.index.is_none_or(|index| index == failure.index)
            && self.kind.as_ref().is_none_or(|kind| *kind == failure.kind)
            && self.code.as_ref().is_none_or(|code| failure.code.as_ref() == Some(code))
            && self.message.as_ref().is_none_or(|text| failure.message.contains(text.as_str()))
    }
}

impl fmt::Display for ExpectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            ("index", self.index.map(|i| i.to_string())),
            ("kind", self.kind.clone()),
            ("code", self.code.clone()),
            ("message containing", self.message.clone()),
        ];
        let parts: Vec<String> =
            parts.into_iter().filter_map(|(name, value)| value.map(|v| format!("{name} {v:?}"))).collect();
        if parts.is_empty() { f.write_str("any failure") } else { f.write_str(&parts.join(", ")) }
    }
}

impl Expect {
    /// Expects nothing yet (but no failures).
    pub fn new() -> Self {
        Expect::default()
    }
    /// The response status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    /// A response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }
    /// The response body.
    pub fn body(mut self, body: impl Into<Content>) -> Self {
        self.body = Some(body.into());
        self
    }
    /// A view's value, in the run's tenant unless [`Expect::tenant`] says otherwise.
    pub fn view(mut self, id: &str, value: impl Into<Content>) -> Self {
        self.views.insert(id.into(), value.into());
        self
    }
    /// A view that must not exist.
    pub fn no_view(mut self, id: &str) -> Self {
        self.views_absent.push(id.into());
        self
    }
    /// The tenant whose views are checked.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.tenant = Some(tenant.into());
        self
    }
    /// The cart's state.
    pub fn state(mut self, state: impl Into<Content>) -> Self {
        self.state = Some(state.into());
        self
    }
    /// The cart has no state.
    pub fn no_state(mut self) -> Self {
        self.state_absent = true;
        self
    }
    /// One more emitted event, with its payload.
    pub fn emits(mut self, topic: &str, payload: impl Into<Content>) -> Self {
        let event = ExpectedEvent { topic: topic.into(), payload: Some(payload.into()) };
        self.emitted.get_or_insert_with(Vec::new).push(event);
        self
    }
    /// One more emitted event, payload unchecked.
    pub fn emits_topic(mut self, topic: &str) -> Self {
        self.emitted.get_or_insert_with(Vec::new).push(ExpectedEvent { topic: topic.into(), payload: None });
        self
    }
    /// No event emitted.
    pub fn emits_nothing(mut self) -> Self {
        self.emitted = Some(Vec::new());
        self
    }
    /// A kv entry.
    pub fn kv(mut self, key: &str, value: impl Into<Content>) -> Self {
        self.kv.insert(key.into(), value.into());
        self
    }
    /// An entry of the shared kv bucket `bucket`.
    pub fn shared_kv(mut self, bucket: &str, key: &str, value: impl Into<Content>) -> Self {
        self.shared_kv.entry(bucket.into()).or_default().insert(key.into(), value.into());
        self
    }

    /// A kv key that must not exist.
    pub fn no_kv(mut self, key: &str) -> Self {
        self.kv_absent.push(key.into());
        self
    }
    /// A logged line at `level` containing `text`.
    pub fn log(mut self, level: &str, text: &str) -> Self {
        self.logs.push(ExpectedLog { level: Some(level.into()), contains: text.into() });
        self
    }
    /// One more expected failure.
    pub fn error(mut self, error: ExpectedError) -> Self {
        self.errors.push(error);
        self
    }

    /// Compares `run` with this expectation.
    pub fn check(&self, run: &Run) -> Result<(), Mismatch> {
        let mut problems = Vec::new();
        self.check_response(run, &mut problems);
        let tenant = self.tenant.as_deref().unwrap_or(&run.tenant);
        let views = |id: &str| run.views.get(&(tenant.to_string(), id.to_string())).map(Vec::as_slice);
        entries("view", &self.views, &self.views_absent, views, &mut problems);
        entries("kv", &self.kv, &self.kv_absent, |key| run.kv.get(key).map(Vec::as_slice), &mut problems);
        for (bucket, expected) in &self.shared_kv {
            let actual = run.shared_kv.get(bucket);
            let lookup = |key: &str| actual.and_then(|entries| entries.get(key)).map(Vec::as_slice);
            entries(&format!("kv bucket {bucket:?}:"), expected, &[], lookup, &mut problems);
        }
        match (&self.state, &run.state) {
            (Some(expected), Some(actual)) if !expected.matches(actual) => {
                problems.push(format!("state differs:\n{}", diff(expected, actual, "  ")));
            }
            (Some(_), None) => problems.push("state: expected a state, but the cart has none".into()),
            _ => {}
        }
        if let (true, Some(actual)) = (self.state_absent, &run.state) {
            problems.push(format!("state: expected none, got:\n{}", indent(&render_bytes(actual))));
        }
        if let Some(expected) = &self.emitted {
            check_emitted(expected, run, &mut problems);
        }
        for log in &self.logs {
            let found = run.logs.iter().any(|line| {
                log.level.as_ref().is_none_or(|level| level.eq_ignore_ascii_case(&line.level))
                    && line.message.contains(&log.contains)
            });
            if !found {
                let level = log.level.as_deref().unwrap_or("any level");
                let logged: Vec<String> = run.logs.iter().map(|line| format!("  {line}")).collect();
                let logged = if logged.is_empty() { "  (nothing)".to_string() } else { logged.join("\n") };
                problems.push(format!("no log line at {level} containing {:?}; logged:\n{logged}", log.contains));
            }
        }
        check_failures(&self.errors, &run.failures, &mut problems);
        if problems.is_empty() { Ok(()) } else { Err(Mismatch { problems }) }
    }

    fn check_response(&self, run: &Run, problems: &mut Vec<String>) {
        let wants_response =
            self.status.is_some() || !self.headers.is_empty() || self.body.is_some() || self.json.is_some();
        let Some(response) = &run.response else {
            if wants_response {
                problems.push("response: expected one, but the call failed (see its failure)".into());
            }
            return;
        };
        if let Some(status) = self.status.filter(|status| *status != response.status) {
            let body = render_bytes(&response.body);
            problems.push(format!("status: expected {status}, got {} with body:\n{}", response.status, indent(&body)));
        }
        for (name, value) in &self.headers {
            match response.header(name) {
                Some(actual) if actual == value => {}
                actual => problems.push(format!("header {name}: expected {value:?}, got {actual:?}")),
            }
        }
        if let Some(body) = self.body.as_ref().filter(|body| !body.matches(&response.body)) {
            problems.push(format!("body differs:\n{}", diff(body, &response.body, "  ")));
        }
        if let Some(json) = &self.json {
            let expected = Content::Json(json.clone());
            if !expected.matches(&response.body) {
                problems.push(format!("json body differs:\n{}", diff(&expected, &response.body, "  ")));
            }
        }
    }
}

/// Checks expected entries (views or kv) against `actual`.
fn entries<'a>(
    what: &str,
    expected: &BTreeMap<String, Content>,
    absent: &[String],
    actual: impl Fn(&str) -> Option<&'a [u8]>,
    problems: &mut Vec<String>,
) {
    for (key, value) in expected {
        match actual(key) {
            Some(bytes) if value.matches(bytes) => {}
            Some(bytes) => problems.push(format!("{what} {key:?} differs:\n{}", diff(value, bytes, "  "))),
            None => problems.push(format!("{what} {key:?}: expected a value, but there is none")),
        }
    }
    for key in absent {
        if let Some(bytes) = actual(key) {
            problems.push(format!("{what} {key:?}: expected none, got:\n{}", indent(&render_bytes(bytes))));
        }
    }
}

fn check_emitted(expected: &[crate::expect::ExpectedEvent], run: &Run, problems: &mut Vec<String>) {
    let topics_expected: Vec<&str> = expected.iter().map(|e| e.topic.as_str()).collect();
    let topics_actual: Vec<&str> = run.emitted.iter().map(|e| e.topic.as_str()).collect();
    if topics_expected != topics_actual {
        problems.push(format!(
            "emitted topics differ:\n{}",
            lines(&topics_expected.join("\n"), &topics_actual.join("\n"), "  ")
        ));
        return;
    }
    for (i, (expected, actual)) in expected.iter().zip(&run.emitted).enumerate() {
        if let Some(payload) = expected.payload.as_ref().filter(|p| !p.matches(&actual.payload)) {
            problems.push(format!(
                "emitted [{i}] {} payload differs:\n{}",
                actual.topic,
                diff(payload, &actual.payload, "  ")
            ));
        }
    }
}

fn check_failures(expected: &[ExpectedError], actual: &[Failure], problems: &mut Vec<String>) {
    let pairs_match = expected.len() == actual.len() && expected.iter().zip(actual).all(|(e, a)| e.matches(a));
    if pairs_match {
        return;
    }
    let mut text = String::from("failures differ:\n  expected:\n");
    for error in expected {
        let _ = writeln!(text, "    {error}");
    }
    if expected.is_empty() {
        text.push_str("    (none)\n");
    }
    text.push_str("  actual:\n");
    for failure in actual {
        let _ = writeln!(text, "    [{}] {failure}", failure.index);
    }
    if actual.is_empty() {
        text.push_str("    (none)\n");
    }
    problems.push(text);
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n")
}

/// How a run differs from its expectation: one entry per difference.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub struct Mismatch {
    /// Each difference, readable on its own.
    pub problems: Vec<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "{}", problem.trim_end())?;
        }
        Ok(())
    }
}

/// The diff itself, so a test returning `Result` prints it readably.
impl fmt::Debug for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the plugin did not do what was expected:\n{self}")
    }
}

impl Run {
    /// Checks this run against `expect`; the error shows every difference.
    pub fn expect(&self, expect: &Expect) -> Result<&Run, Mismatch> {
        expect.check(self).map(|()| self)
    }
}
