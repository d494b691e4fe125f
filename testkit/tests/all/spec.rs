//! Spec files: parsed, run case by case, failures reported with the diff.

use std::path::Path;

use corral_fixtures::{CART_COUNTER, PROJECTION_COUNT};
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
