//! `host test`: spec files run through the real binary — the example shop's
//! specs pass, as do those of the TypeScript SDK's imports; a spec whose
//! expectation does not hold fails with its diff.

use std::process::Command;

use corral_fixtures::{EXAMPLE_CART, JS_CART_SDK_COUNTER, JS_ROUTE_SDK_IMPORTS, PYTHON_ROUTE_SDK_IMPORTS};

fn host_test(args: &[&std::ffi::OsStr], data: &std::path::Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("test")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("running host test");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.trim().is_empty(), "host test wrote to stderr: {stderr}");
    (output.status.success(), stdout)
}

#[test]
fn testkit_runs_the_shop_specs_through_host_test() {
    // The shop's specs name the components the fixtures crate (a dev
    // dependency) built into examples/shop/target.
    assert!(std::path::Path::new(EXAMPLE_CART).is_file());
    let shop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/tests");
    let data = tempfile::tempdir().unwrap();
    let (ok, stdout) = host_test(&[shop.as_os_str()], data.path());
    assert!(ok, "{stdout}");
    for spec in ["cart.test.toml", "orders.test.toml", "shop-api.test.toml"] {
        assert!(stdout.contains(spec), "{spec} did not run: {stdout}");
    }
    assert!(stdout.contains("  ok    checkouts and completions fold into one history per customer"), "{stdout}");
    assert!(stdout.contains("  ok    checkout emits cart.checked_out with the order ("), "{stdout}");
    assert!(stdout.contains("  ok    with the event log down the view is still served"), "{stdout}");
    // The cart's spec names its sidecar: its payload schemas are checked.
    assert!(stdout.contains("  ok    a malformed item is refused by the cart's schema"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.trim_end().ends_with("28 passed, 0 failed"), "{stdout}");
}

/// The TypeScript SDK's spec of every import and error kind, run against
/// its fixture and, unchanged but for the component, against the Python
/// SDK's (whose carts calls reach the same TypeScript cart).
#[test]
fn testkit_runs_the_sdk_specs_through_host_test() {
    let spec_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests/js/route-sdk-imports/imports.test.toml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    let data = tempfile::tempdir().unwrap();
    for guest in [JS_ROUTE_SDK_IMPORTS, PYTHON_ROUTE_SDK_IMPORTS] {
        // Absolute paths, so the spec runs from anywhere.
        let spec = spec
            .replace(r#""../../target/polyglot/js/route-sdk-imports.wasm""#, &format!("{:?}", guest.path()))
            .replace(
                r#""../../target/polyglot/js/cart-sdk-counter.wasm""#,
                &format!("{:?}", JS_CART_SDK_COUNTER.path()),
            );
        let file = data.path().join("imports.test.toml");
        std::fs::write(&file, spec).unwrap();
        let (ok, stdout) = host_test(&[file.as_os_str()], data.path());
        assert!(ok && !stdout.contains("FAIL"), "{}: {stdout}", guest.path());
        assert!(stdout.contains("  ok    CartError rejected: the cart's Failure, code and message"), "{stdout}");
        assert!(stdout.trim_end().ends_with("19 passed, 0 failed"), "{}: {stdout}", guest.path());
    }
}

#[test]
fn testkit_failing_spec_exits_non_zero_with_the_diff() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("wrong.test.toml");
    std::fs::write(
        &spec,
        format!(
            r#"
component = {EXAMPLE_CART:?}

[[case]]
name = "checkout of an empty cart is refused"
[case.given]
mutations = [{{ kind = "checkout", payload = {{}} }}]
[case.expect]
errors = [{{ index = 0, code = "empty-cart" }}]

[[case]]
name = "expects a total the cart does not have"
[case.given]
mutations = [{{ kind = "add_item", payload = {{ sku = "tea", name = "Tea", unit_price_cents = 650 }} }}]
[case.expect]
state = {{ id = "cart-1", status = "open", items = [{{ sku = "tea", name = "Tea", quantity = 1, unit_price_cents = 650 }}], subtotal_cents = 650, shipping_cents = 0, total_cents = 700, updated_at_ms = 1767225601000 }}
"#
        ),
    )
    .unwrap();
    let (ok, stdout) = host_test(&[spec.as_os_str()], dir.path());
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("  ok    checkout of an empty cart is refused"), "{stdout}");
    assert!(stdout.contains("  FAIL  expects a total the cart does not have"), "{stdout}");
    assert!(stdout.contains("state differs") && stdout.contains("-   \"total_cents\": 700"), "{stdout}");
    assert!(stdout.contains("+   \"total_cents\": 650"), "{stdout}");
    assert!(stdout.trim_end().ends_with("1 passed, 1 failed"), "{stdout}");

    let (ok, stdout) = host_test(&[dir.path().join("missing.test.toml").as_os_str()], dir.path());
    assert!(!ok && stdout.contains("error") && stdout.contains("missing.test.toml"), "{stdout}");
}
