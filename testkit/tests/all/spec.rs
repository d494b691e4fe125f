//! Spec files: parsed, run case by case, failures reported with the diff.

use std::path::Path;

use corral_fixtures::{CART_COUNTER, PROJECTION_COUNT, ROUTE_EMITTER};
use corral_testkit::spec::{self, SpecError};

use crate::cache_dir;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn cases_pass_and_fail_with_a_readable_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "counter.test.toml",
        &format!(
            r#"
component = {CART_COUNTER:?}

[[case]]
name = "adds"
[case.given]
mutations = [{{ kind = "add", payload = "2" }}, {{ kind = "add", payload = "x" }}]
[case.expect]
state = "2"
emitted = [{{ topic = "counter.changed", payload = "2" }}]
errors = [{{ index = 1, code = "not-a-number" }}]

[[case]]
name = "starts from the given state, and is wrong on purpose"
[case.given]
state = "10"
mutations = [{{ kind = "add", payload = "1" }}]
[case.expect]
state = "12"

[[case]]
name = "has no input"
"#
        ),
    );
    let mut printed = Vec::new();
    let reports = spec::run_file(&path, Some(cache_dir()), |case| printed.push(case.to_string())).await.unwrap();
    assert_eq!(reports.len(), 3);
    assert!(reports[0].outcome.is_ok(), "{:?}", reports[0].outcome);
    let reason = reports[1].outcome.as_ref().unwrap_err();
    assert!(reason.contains(r#"expected: "12""#) && reason.contains(r#"actual: "11""#), "{reason}");
    assert!(reports[2].outcome.as_ref().unwrap_err().contains("exactly one of"), "{:?}", reports[2].outcome);
    assert!(printed[0].starts_with("ok    adds ("), "{}", printed[0]);
    assert!(
        printed[1].starts_with("FAIL  starts from the given state") && printed[1].contains("\n        state differs"),
        "{}",
        printed[1]
    );
}

#[tokio::test]
async fn views_are_checked_in_the_case_tenant_and_json_matches_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "count.test.toml",
        &format!(
            r#"
component = {PROJECTION_COUNT:?}

[[case]]
name = "per tenant"
[case.given]
tenant = "acme"
views = {{ count = {{ "orders.paid" = "5" }} }}
events = [{{ topic = "orders.created", payload = {{ any = "json" }} }}, {{ topic = "orders.paid" }}, {{ topic = "orders.paid", tenant = "other" }}]
[case.expect]
views = {{ "orders.created" = "1", "orders.paid" = 6 }}
"#
        ),
    );
    let reports = spec::run_file(&path, Some(cache_dir()), |_| {}).await.unwrap();
    assert!(reports[0].outcome.is_ok(), "{:?}", reports[0].outcome);
}

#[tokio::test]
async fn bad_specs_are_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = write(
        dir.path(),
        "a.test.toml",
        "component = \"x.wasm\"\n[[case]]\nname = \"a\"\n[case.expect]\nstatus = 200\nstatuss = 1\n",
    );
    let error = spec::run_file(&unknown, None, |_| {}).await.unwrap_err();
    assert!(matches!(error, SpecError::Parse { .. }) && error.to_string().contains("statuss"), "{error}");
    let missing = write(dir.path(), "b.test.toml", "component = \"missing.wasm\"\n[[case]]\nname = \"a\"\n");
    let error = spec::run_file(&missing, None, |_| {}).await.unwrap_err();
    assert!(matches!(error, SpecError::Load { .. }) && error.to_string().contains("missing.wasm"), "{error}");

    std::fs::create_dir_all(dir.path().join("nested/target")).unwrap();
    write(&dir.path().join("nested"), "c.test.toml", "");
    write(&dir.path().join("nested/target"), "d.test.toml", "");
    write(dir.path(), "sidecar.toml", "");
    let found = spec::find(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<_> = found.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["a.test.toml", "b.test.toml", "c.test.toml"]);
}

/// Writes the spec `STEM.test.toml` of `component` with `cases`, naming
/// the sidecar `STEM.toml`, written beside it.
fn with_sidecar(dir: &Path, stem: &str, component: &str, sidecar: &str, cases: &str) -> std::path::PathBuf {
    write(dir, &format!("{stem}.toml"), sidecar);
    write(dir, &format!("{stem}.test.toml"), &format!("component = {component:?}\nsidecar = \"{stem}.toml\"\n{cases}"))
}

/// A sidecar's `[schemas]`, named by the spec, are checked where the host
/// checks them: a mutation's payload before the cart runs, its outcome
/// before it is kept, a route's request body, and what a route emits.
#[tokio::test]
async fn a_sidecars_schemas_are_checked_as_the_host_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let counter = "[schemas]\nstate = { type = \"integer\", maximum = 10 }\nmutations.add = { type = \"integer\", minimum = 1 }\n";
    let cases = r#"
[[case]]
name = "a payload under the minimum and a state over the maximum are refused, the rest applied"
[case.given]
mutations = [{ kind = "add", payload = "0" }, { kind = "add", payload = "5" }, { kind = "add", payload = "6" }]
[case.expect]
state = "5"
emitted = [{ topic = "counter.changed", payload = "5" }]
errors = [{ index = 0, code = "schema_mismatch" }, { index = 2, code = "schema_mismatch" }]
"#;
    let path = with_sidecar(dir.path(), "counter", CART_COUNTER, counter, cases);
    let reports = spec::run_file(&path, Some(cache_dir()), |_| {}).await.unwrap();
    assert!(reports[0].outcome.is_ok(), "{:?}", reports[0].outcome);

    let emitter = "[schemas.events.\"orders.placed\"]\nrequired = [\"id\"]\n\
                   [schemas.routes.\"POST /queue/:topic\"]\nrequest = { type = \"object\" }\n";
    let cases = r#"
[[case]]
name = "the guest's emit is refused"
[case.given]
request = { method = "POST", path = "/emit/orders.placed", body = '{"total": 3}' }
[case.expect]
status = 400
emitted = []

[[case]]
name = "a request body that is no object never reaches the route"
[case.given]
request = { method = "POST", path = "/queue/orders.placed", body = '[1]' }
[case.expect]
status = 400
json = { error = "schema_mismatch", message = "the request body does not match schema emitter/routes/POST /queue/:topic/request at the top: [1] is not of type \"object\" (rule `type`)", violation = { schema = "emitter/routes/POST /queue/:topic/request", path = "", rule = "type", message = "[1] is not of type \"object\"" } }

[[case]]
name = "a matching event is emitted"
[case.given]
request = { method = "POST", path = "/emit/orders.placed", body = '{"id": "o1"}' }
[case.expect]
status = 200
emitted = [{ topic = "orders.placed", payload = { id = "o1" } }]
"#;
    let path = with_sidecar(dir.path(), "emitter", ROUTE_EMITTER, emitter, cases);
    let reports = spec::run_file(&path, Some(cache_dir()), |_| {}).await.unwrap();
    for report in &reports {
        assert!(report.outcome.is_ok(), "{}: {:?}", report.name, report.outcome);
    }

    std::fs::write(dir.path().join("counter.toml"), "[schemas]\nmutations.multiply = true\n").unwrap();
    let error = spec::run_file(&dir.path().join("counter.test.toml"), None, |_| {}).await.unwrap_err();
    assert!(error.to_string().contains("\"multiply\""), "{error}");
}
