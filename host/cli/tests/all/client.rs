//! The admin client commands against a running `host run`: `host emit`,
//! `host deploy` and `host cart verify` print what the host answered and
//! exit non-zero when it refused.

use std::process::{Command, Output};

use corral_fixtures::{CART_COUNTER, ROUTE_VERSION_A, ROUTE_VERSION_B};
use corral_test_support::http::{get, post};
use corral_test_support::plugins::plugins_dir;

use crate::Host;

fn host(args: &[&str], admin: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host")).args(args).args(["--admin", admin]).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn emit_deploy_and_cart_verify_talk_to_the_admin_listener() {
    let plugins = plugins_dir(&[("versioned", ROUTE_VERSION_A), ("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let server = Host::start(plugins.path(), data.path(), &["--no-watch"]);
    let admin = format!("http://{}", server.admin);

    let emitted = host(&["emit", "orders.paid", "--data", "6"], &admin);
    assert!(emitted.status.success(), "{emitted:?}");
    assert!(stdout(&emitted).contains("\"sequence\":1"), "{emitted:?}");
    let refused = host(&["emit", "orders..paid"], &admin);
    assert!(!refused.status.success(), "an invalid topic is refused");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("400"), "{refused:?}");

    let deployed = host(&["deploy", ROUTE_VERSION_B, "--name", "versioned"], &admin);
    assert!(deployed.status.success(), "{deployed:?}");
    assert!(stdout(&deployed).contains("\"outcome\":\"swapped\""), "{deployed:?}");
    assert_eq!(get(server.public, "/version").await.text(), "b");
    let not_wasm = data.path().join("notes.wasm");
    std::fs::write(&not_wasm, "not a component").unwrap();
    let rejected = host(&["deploy", not_wasm.to_str().unwrap(), "--name", "versioned"], &admin);
    assert!(!rejected.status.success(), "{rejected:?}");
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(stderr.contains("422") && stderr.contains("not_a_component"), "{stderr}");

    for n in 1..=3u64 {
        let body = serde_json::json!({"kind": "add", "payload": n}).to_string();
        assert_eq!(post(server.public, "/carts/counter/c1", body.as_bytes()).await.status, 200);
    }
    let verified = host(&["cart", "verify", "counter", "c1"], &admin);
    assert!(verified.status.success(), "{verified:?}");
    let report: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!((report["ok"].clone(), report["replayed"].clone()), (true.into(), 3.into()));
    let unknown = host(&["cart", "verify", "nope", "c1"], &admin);
    assert!(!unknown.status.success(), "{unknown:?}");
}
