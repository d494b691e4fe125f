//! JSON logs over the binary: every line on stderr is one JSON object, and
//! the lines of a call — the guest's own, and the host's about it — carry
//! the plugin, its version, the request id, the tenant, the correlation id
//! and the trace id of the request's `traceparent`. A plugin that floods
//! the log is cut to its budget of lines a second, and told so.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use corral_fixtures::{ROUTE_LOGGER, ROUTE_PANIC};
use corral_test_support::http::{request, send};
use corral_test_support::plugins::plugins_dir;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

async fn get(public: SocketAddr, path: &str, request_id: &str) -> u16 {
    let mut get = request("GET", public, path, b"");
    for (name, value) in [
        ("x-corral-tenant", "acme"),
        ("traceparent", TRACEPARENT),
        ("x-correlation-id", "order-7"),
        ("x-request-id", request_id),
    ] {
        get.headers_mut().insert(name, value.parse().unwrap());
    }
    send(public, get).await.status
}

#[tokio::test(flavor = "multi_thread")]
async fn json_log_lines_of_a_call_carry_the_plugin_request_tenant_correlation_and_trace() {
    let plugins = plugins_dir(
        &[("logger", ROUTE_LOGGER), ("panic", ROUTE_PANIC)],
        &[("logger", "[limits]\nlog_lines_per_second = 20\n")],
    );
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--log-level", "info", "--plugins"])
        .arg(plugins.path())
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let public: SocketAddr = first.split("http://").nth(1).unwrap().split([' ', ')']).next().unwrap().parse().unwrap();

    assert_eq!(get(public, "/log/hello", "req-1").await, 200);
    assert_eq!(get(public, "/panic", "req-2").await, 500);
    assert_eq!(get(public, "/log/flood?lines=300", "req-3").await, 200);
    let stopped = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(child.wait().unwrap().success());

    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}")))
        .collect();
    assert!(lines.len() > 3, "{stderr}");
    // The guest's own line.
    let guest = lines.iter().find(|l| l["fields"]["message"] == "logged hello").unwrap_or_else(|| panic!("{stderr}"));
    let fields = &guest["fields"];
    assert_eq!(
        (&fields["plugin"], &fields["version"], &fields["request_id"], &fields["tenant"]),
        (&"logger".into(), &"1.2.3".into(), &"req-1".into(), &"acme".into()),
        "{guest}"
    );
    assert_eq!((&fields["correlation_id"], &fields["trace_id"]), (&"order-7".into(), &TRACE_ID.into()), "{guest}");
    // The host's line about a failed call, in the request's span.
    let failed = lines
        .iter()
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("call failed")))
        .unwrap_or_else(|| panic!("{stderr}"));
    let span = &failed["span"];
    assert_eq!(
        (&span["plugin"], &span["request_id"], &span["tenant"], &span["correlation_id"], &span["trace_id"]),
        (&"panic".into(), &"req-2".into(), &"acme".into(), &"order-7".into(), &TRACE_ID.into()),
        "{failed}"
    );
    assert!(span["version"].is_string(), "{failed}");

    // The flood: a second's worth of its budget (less the line above, plus
    // what trickles back while the call runs) is written, the rest dropped.
    let flood = lines.iter().filter(|l| l["fields"]["message"] == "logged flood").count();
    assert!((15..=25).contains(&flood), "{flood} of 300 flood lines written over a budget of 20 a second");
    let report = lines
        .iter()
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("log budget of 20 lines a second")))
        .unwrap_or_else(|| panic!("no report of dropped lines in:\n{stderr}"));
    assert_eq!(report["fields"]["plugin"], "logger", "{report}");
    assert_eq!(report["level"], "WARN", "{report}");
    assert!(report["fields"]["message"].as_str().unwrap().contains("logger.toml"), "{report}");
}
