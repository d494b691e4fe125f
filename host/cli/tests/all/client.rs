//! The admin client commands against a running `host run`: `host emit`,
//! `host deploy` and `host cart verify` print what the host answered and
//! exit non-zero when it refused; with an admin token they send it, and
//! without one the admin API is never served off loopback.

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

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_token_guards_the_admin_api_and_the_commands_send_it() {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let server = Host::start(plugins.path(), data.path(), &["--admin-token", "s3cret-token"]);
    let admin = format!("http://{}", server.admin);

    let refused = host(&["emit", "orders.paid", "--data", "1"], &admin);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"), "{refused:?}");
    let wrong = host(&["emit", "orders.paid", "--admin-token", "s3cret-tokeN"], &admin);
    assert!(!wrong.status.success(), "{wrong:?}");
    let emitted = host(&["emit", "orders.paid", "--data", "1", "--admin-token", "s3cret-token"], &admin);
    assert!(emitted.status.success(), "{emitted:?}");
    let from_env = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["emit", "orders.paid", "--admin", &admin])
        .env("CORRAL_ADMIN_TOKEN", "s3cret-token")
        .output()
        .unwrap();
    assert!(from_env.status.success(), "{from_env:?}");

    let plugins_list = get(server.admin, "/plugins").await;
    assert_eq!(plugins_list.status, 401);
    assert_eq!(plugins_list.headers["www-authenticate"], "Bearer");
    assert_eq!(get(server.admin, "/healthz").await.status, 200, "probes stay open");
    assert_eq!(get(server.admin, "/readyz").await.status, 200, "probes stay open");
}

#[test]
fn the_admin_api_is_not_served_off_loopback_without_a_token() {
    let plugins = plugins_dir(&[("counter", CART_COUNTER)], &[]);
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "0.0.0.0:0", "--log-level", "error"])
        .arg("--plugins")
        .arg(plugins.path())
        .arg("--data-dir")
        .arg(data.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("host run served the admin API on 0.0.0.0 without a token");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("not a loopback address") && stderr.contains("--admin-token"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quarantine_and_dead_letter_commands_list_skip_and_retry() {
    use corral_fixtures::{EVENT_KV_RECORDER, PROJECTION_COUNT};
    let plugins = plugins_dir(
        &[("count", PROJECTION_COUNT), ("recorder", EVENT_KV_RECORDER)],
        &[("recorder", "[delivery]\nmax_attempts = 1\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let server = Host::start(plugins.path(), data.path(), &["--no-watch"]);
    let admin = format!("http://{}", server.admin);
    // A poison event: the projection halts before it, the handler dead-letters it.
    assert!(host(&["emit", "orders.created", "--data", "poison"], &admin).status.success());
    assert!(host(&["emit", "orders.created", "--data", "fail"], &admin).status.success());
    let started = std::time::Instant::now();
    let (quarantined, letters) = loop {
        let quarantined: serde_json::Value =
            serde_json::from_slice(&host(&["projection", "quarantine", "count"], &admin).stdout).unwrap_or_default();
        let letters: serde_json::Value =
            serde_json::from_slice(&host(&["dead-letter", "list", "kv-recorder"], &admin).stdout).unwrap_or_default();
        if quarantined["state"] == "halted" && letters["dead_letters"].as_array().is_some_and(|l| !l.is_empty()) {
            break (quarantined, letters);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{quarantined} {letters}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let poison = quarantined["quarantined"][0]["sequence"].as_u64().unwrap().to_string();
    let skipped = host(&["projection", "skip", "count", &poison], &admin);
    assert!(skipped.status.success(), "{skipped:?}");
    let retried = host(&["projection", "retry", "count", &poison], &admin);
    assert!(!retried.status.success(), "nothing is halted any more: {retried:?}");
    assert!(String::from_utf8_lossy(&retried.stderr).contains("409"), "{retried:?}");
    let letter = letters["dead_letters"][0]["sequence"].as_u64().unwrap().to_string();
    let failed = host(&["dead-letter", "retry", "kv-recorder", &letter], &admin);
    assert!(!failed.status.success(), "the handler fails it again: {failed:?}");
    let dropped = host(&["dead-letter", "skip", "kv-recorder", &letter], &admin);
    assert!(dropped.status.success(), "{dropped:?}");
    assert!(stdout(&dropped).contains("\"state\":\"skipped\""), "{dropped:?}");
}
