//! `cargo xtask cluster`: the example shop on a three-node cluster on this
//! machine. Three `nats-server`s (the pinned one, installed into
//! `.tools/nats/` on first use) form a JetStream cluster on free loopback
//! ports; `host build examples/shop` builds the plugins, and three `host
//! run --cluster` nodes serve them: the first to start publishes the folder
//! as the cluster's desired state (when the cluster has none), the others
//! follow it; `host deploy` to any node rolls a new version out to all.
//! Each node has its own data folder under `.corral/cluster/`. Ctrl-C stops
//! everything: the hosts drain and leave, the servers are killed.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};
use corral_test_support::nats::NatsCluster;

/// Public and admin ports of node `i`.
fn ports(i: usize) -> (u16, u16) {
    (8081 + i as u16, 9091 + i as u16)
}

/// Starts everything and waits until node 0 exits (Ctrl-C reaches the
/// whole foreground process group).
pub(crate) fn run(root: &Path, path: std::ffi::OsString) -> anyhow::Result<()> {
    println!("starting three nats-servers (JetStream, sync_interval: always)...");
    let nats = NatsCluster::start(3);
    let urls = nats.urls().join(",");
    let build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root)
        .args(["build", "-p", "corral-host"])
        .status()
        .context("building the host")?;
    if !build.success() {
        bail!("building the host failed");
    }
    let host = root.join("target/debug/host");
    let plugins = root.join("examples/shop/target/corral-plugins");
    let data = root.join(".corral/cluster");
    let node = |i: usize, command: &[&str]| -> anyhow::Result<Child> {
        let (public, admin) = ports(i);
        let child = Command::new(&host)
            .current_dir(root)
            .env("PATH", &path)
            .args(command)
            .args(["--cluster", &urls, "--cluster-name", "shop", "--node-id", &format!("node-{i}")])
            .args(["--listen", &format!("127.0.0.1:{public}"), "--admin-listen", &format!("127.0.0.1:{admin}")])
            .arg("--data-dir")
            .arg(data.join(format!("node-{i}")))
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting node {i}"))?;
        Ok(child)
    };
    let built = Command::new(&host)
        .current_dir(root)
        .env("PATH", &path)
        .args(["build", "examples/shop"])
        .status()
        .context("building the shop's plugins")?;
    if !built.success() {
        bail!("building the shop's plugins failed (see above)");
    }
    let plugins = plugins.to_string_lossy().into_owned();
    let mut first = node(0, &["run", "--plugins", &plugins])?;
    wait_serving(&mut first, 0)?;
    let mut others = Vec::new();
    for i in 1..3 {
        let mut child = node(i, &["run", "--plugins", &plugins])?;
        wait_serving(&mut child, i)?;
        others.push(child);
    }
    println!();
    println!("the shop on three nodes of cluster \"shop\" (NATS: {urls}):");
    for i in 0..3 {
        let (public, admin) = ports(i);
        println!("  node-{i}: http://127.0.0.1:{public}  admin http://127.0.0.1:{admin}");
    }
    println!("try: curl -s 127.0.0.1:8081/api/products; curl -s 127.0.0.1:9091/cluster/plugins");
    println!("rebuild and roll out: host build examples/shop && host deploy FILE --admin http://127.0.0.1:9091");
    println!("Ctrl-C stops the nodes and the servers.");
    let status = first.wait().context("waiting for node 0")?;
    for mut child in others {
        let _ = child.wait();
    }
    drop(nats);
    if !status.success() {
        bail!("node 0 exited with {status}");
    }
    Ok(())
}

/// Waits for a node's "serving" line, then lets its output through.
fn wait_serving(child: &mut Child, i: usize) -> anyhow::Result<()> {
    let stdout = child.stdout.take().context("the node's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.context("reading the node's output")?;
        println!("node-{i}: {line}");
        if line.starts_with("corral: serving") {
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    println!("node-{i}: {line}");
                }
            });
            return Ok(());
        }
    }
    bail!("node {i} stopped before serving (see its log above)")
}
