//! `host dev`: edit a guest's source, and the running host serves the
//! rebuilt component without a restart.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::http::get;

fn guest_source(greeting: &str) -> String {
    format!(
        r#"use corral_sdk::{{Descriptor, HttpRequest, HttpResponse, Route}};
struct Live;
impl Route for Live {{
    fn describe() -> Descriptor {{
        Descriptor::new("live", "0.1.0").route("GET", "/live")
    }}
    fn handle(_request: HttpRequest) -> HttpResponse {{
        HttpResponse::text(200, "{greeting}")
    }}
}}
corral_sdk::export_route!(Live);
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_rebuilds_and_swaps_on_source_changes() {
    let workspace = tempfile::tempdir().unwrap();
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk").canonicalize().unwrap();
    std::fs::create_dir_all(workspace.path().join("src")).unwrap();
    std::fs::write(
        workspace.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"live\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ncorral-sdk = {{ path = {:?} }}\n\n[workspace]\n",
            sdk.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(workspace.path().join("src/lib.rs"), guest_source("first")).unwrap();
    std::fs::write(workspace.path().join("live.toml"), "[limits]\nfuel = 9_000_000\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    // Share the fixtures' build cache so the guest's dependencies are built once.
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests/target");
    let child = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["dev", workspace.path().to_str().unwrap(), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--log-level", "error", "--data-dir", data.path().to_str().unwrap()])
        .env("CARGO_TARGET_DIR", &target)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line.split("http://").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let admin: std::net::SocketAddr = line.split("http://").nth(2).unwrap().split(')').next().unwrap().parse().unwrap();
    assert_eq!(get(addr, "/live").await.text(), "first");
    let plugins = get(admin, "/plugins").await.json();
    assert_eq!(plugins[0]["limits"]["fuel"], 9_000_000, "the crate's sidecar is published too");

    std::fs::write(workspace.path().join("src/lib.rs"), guest_source("second")).unwrap();
    let started = Instant::now();
    loop {
        let reply = get(addr, "/live").await;
        assert_eq!(reply.status, 200, "serving never stops while rebuilding");
        if reply.text() == "second" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the change was never served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A change that does not compile keeps the last good version serving.
    std::fs::write(workspace.path().join("src/lib.rs"), "this is not rust").unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(get(addr, "/live").await.text(), "second");
}

/// The `host dev` process, stopped even when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
