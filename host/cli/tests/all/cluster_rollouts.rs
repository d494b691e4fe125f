//! Rollouts from the command line against `host run --cluster` processes:
//! `host deploy` with a sidecar and rollout flags reaches every node
//! through a canary and waves, `host rollout status` follows it, `host
//! rollout rollback` sends every node back, `host rollout abort` with
//! nothing in progress says so; `host dev` refuses to join a cluster.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use corral_fixtures::{ROUTE_VERSION_A, ROUTE_VERSION_B};
use corral_test_support::http::get;
use corral_test_support::plugins::plugins_dir;

use crate::Host;

fn host(args: &[&str], admin: std::net::SocketAddr) -> Output {
    let admin = format!("http://{admin}");
    Command::new(env!("CARGO_BIN_EXE_host")).args(args).args(["--admin", &admin]).output().unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_status_and_rollback_reach_every_node_from_the_command_line() {
    let nats = tokio::task::spawn_blocking(crate::nats).await.unwrap();
    let urls = nats.urls().join(",");
    let plugins = plugins_dir(&[("versioned", ROUTE_VERSION_A)], &[]);
    let data: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let hosts: Vec<Host> = (0..2)
        .map(|i| {
            let node = format!("node-{i}");
            let flags = ["--cluster", &urls, "--cluster-name", "cli-rollout", "--node-id", &node];
            Host::start(plugins.path(), data[i].path(), &flags)
        })
        .collect();
    for host in &hosts {
        assert_eq!(get(host.public, "/version").await.text(), "a");
    }

    let sidecar = data[0].path().join("versioned.toml");
    std::fs::write(
        &sidecar,
        "routes = [{ method = \"GET\", pattern = \"/version\" }, { method = \"GET\", pattern = \"/v\" }]\n",
    )
    .unwrap();
    let flags = ["--sidecar", sidecar.to_str().unwrap(), "--canary", "50", "--window", "1s", "--waves", "2"];
    let deployed =
        json(&host(&[&["deploy", ROUTE_VERSION_B, "--name", "versioned"][..], &flags].concat(), hosts[1].admin));
    assert_eq!(deployed["outcome"], "rolling_out", "{deployed}");
    let started = Instant::now();
    let status = loop {
        let status = json(&host(&["rollout", "status", "versioned"], hosts[0].admin));
        if status["rollout"]["phase"] == "done" && status["converged"] == true {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the rollout never finished: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["nodes"].as_object().unwrap().len(), 2, "{status}");
    assert!(status["history"].as_array().unwrap().len() >= 2, "{status}");
    for host in &hosts {
        assert_eq!(get(host.public, "/v").await.text(), "b", "the sidecar travelled with the component");
    }

    let nothing = host(&["rollout", "abort", "versioned"], hosts[0].admin);
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no rollout is in progress"), "{nothing:?}");
    let back = json(&host(&["rollout", "rollback", "versioned"], hosts[0].admin));
    assert_eq!(back["rollout"]["phase"], "rolled_back", "{back}");
    for host in &hosts {
        let started = Instant::now();
        while get(host.public, "/version").await.text() != "a" {
            assert!(started.elapsed() < Duration::from_secs(30), "{} never rolled back", host.public);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let dev = Command::new(env!("CARGO_BIN_EXE_host"))
        .args(["dev", plugins.path().to_str().unwrap(), "--cluster", &urls])
        .output()
        .unwrap();
    assert!(!dev.status.success());
    assert!(String::from_utf8_lossy(&dev.stderr).contains("host dev runs one node"), "{dev:?}");
}
