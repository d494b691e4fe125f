//! The example shop end to end, started with exactly the README's command —
//! `cargo xtask run` — on free ports and a scratch data folder: items go
//! into a cart through the shop's own API (a Rust route mutating the Rust
//! cart), the checkout reaches the order history (a Rust projection read by
//! the API) and the order confirmation (a JavaScript event handler writing
//! kv), and the abandoned-cart sweeper (Python) is scheduled.
//!
//! Then the same flow on the shop served by three hosts of a cluster on
//! three nats-servers (as `just cluster` serves it), each call going to the
//! next node: carts owned by one node and reached from all, the projection
//! folded on every node, the handler and the schedule once per cluster.
//!
//! A test binary of its own: `cargo xtask run` builds and runs the `host`
//! binary, which must not be replaced under the other tests' feet.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::cell::Cell;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corral_test_support::nats::NatsCluster;
use serde_json::{Value, json};

#[test]
fn the_shop_started_with_the_readme_command_sells_confirms_and_sweeps_on_one_host_and_on_three() {
    let data = tempfile::tempdir().unwrap();
    let shop = Shop::start(data.path());
    sells_confirms_and_sweeps(&shop);
    drop(shop);

    // The plugins `cargo xtask run` built, served by three hosts of a cluster.
    let nats = NatsCluster::start(3);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let shop = Shop::cluster(&nats, &dirs);
    sells_confirms_and_sweeps(&shop);
}

fn sells_confirms_and_sweeps(shop: &Shop) {
    let products = shop.call("GET", "/api/products", None, &[]);
    assert_eq!(products.0, 200, "{}", products.1);
    let tea_price = products.1.as_array().unwrap().iter().find(|p| p["id"] == "tea").unwrap()["price_cents"].clone();

    // Prices come from the catalogue, not from the client.
    let cart = "/api/carts/e2e-1";
    let added = shop.call("POST", &format!("{cart}/items"), Some(json!({"sku": "tea", "quantity": 2})), &[]);
    assert_eq!(added.0, 200, "{}", added.1);
    assert_eq!(added.1["cart"]["items"][0]["unit_price_cents"], tea_price);
    let added = shop.call("POST", &format!("{cart}/items"), Some(json!({"sku": "mug", "customer": "ada"})), &[]);
    assert_eq!(added.0, 200, "{}", added.1);
    let unknown = shop.call("POST", &format!("{cart}/items"), Some(json!({"sku": "teapot"})), &[]);
    assert_eq!(unknown.0, 404, "{}", unknown.1);
    let removed = shop.call("DELETE", &format!("{cart}/items/mug"), None, &[]);
    assert_eq!(removed.1["cart"]["items"].as_array().unwrap().len(), 1, "{}", removed.1);
    let early = shop.call("POST", &format!("{cart}/checkout"), Some(json!({})), &[]);
    assert_eq!((early.0, early.1["code"].as_str()), (422, Some("no-delivery")), "{}", early.1);
    let delivery = json!({"method": "standard", "address": "1 Main St"});
    assert_eq!(shop.call("PUT", &format!("{cart}/delivery"), Some(delivery), &[]).0, 200);

    let key = [("idempotency-key", "e2e-checkout-1")];
    let checkout = shop.call("POST", &format!("{cart}/checkout"), Some(json!({})), &key);
    assert_eq!(checkout.0, 200, "{}", checkout.1);
    let order_id = checkout.1["order_id"].as_str().unwrap().to_string();
    let total = checkout.1["cart"]["total_cents"].as_u64().unwrap();
    assert_eq!(checkout.1["cart"]["status"], "checked_out");
    let again = shop.call("POST", &format!("{cart}/checkout"), Some(json!({})), &key);
    assert_eq!(again.1["order_id"], order_id.as_str(), "the same key answers the same checkout");
    let state = shop.call("GET", cart, None, &[]);
    assert_eq!((state.1["version"].as_u64(), &state.1["cart"]["status"]), (Some(5), &json!("checked_out")));

    // The orders projection folds the checkout into ada's history.
    let history = shop.eventually("ada's order history", |shop| {
        let (status, body) = shop.call("GET", "/api/customers/ada/orders", None, &[]);
        (status == 200).then_some(body)
    });
    assert_eq!(history["orders"][0]["order_id"], order_id.as_str());
    assert_eq!(history["spent_cents"], total);
    let sales = shop.call("GET", "/api/sales", None, &[]).1;
    assert_eq!((sales["orders"].as_u64(), sales["revenue_cents"].as_u64()), (Some(1), Some(total)));

    // The JavaScript handler confirms it in kv, once, and says so.
    let confirmation = shop.eventually("the order confirmation", |shop| {
        let (status, body) = shop.call("GET", &format!("/api/orders/{order_id}"), None, &[]);
        (status == 200 && body["published"] == true).then_some(body)
    });
    assert_eq!((confirmation["customer"].as_str(), confirmation["total_cents"].as_u64()), (Some("ada"), Some(total)));
    assert!(confirmation["code"].as_str().unwrap().starts_with("C-"), "{confirmation}");
    let by_plugin = |name: &str| shop.subscription(name);
    let confirmations = by_plugin("confirmations").expect("the JavaScript handler subscribes");
    assert_eq!(confirmations["dead_lettered"], 0, "{confirmations}");

    // The Python sweeper runs every minute: at its first tick it asks the
    // cart plugin to abandon the cart left open, which refuses (it changed
    // a moment ago), so the cart stays open and nothing fails.
    let open = "/api/carts/e2e-2";
    assert_eq!(shop.call("POST", &format!("{open}/items"), Some(json!({"sku": "kettle"})), &[]).0, 200);
    let sweeper = by_plugin("sweeper").expect("the Python sweeper subscribes");
    assert_eq!(sweeper["schedules"][0]["cron"], "0 * * * * *", "{sweeper}");
    // cart.opened twice, cart.checked_out once, then a tick.
    let sweeper = shop.eventually_within(Duration::from_secs(90), "a sweep", |shop| {
        let sweeper = shop.subscription("sweeper").unwrap();
        (sweeper["delivered"].as_u64() >= Some(4)).then_some(sweeper)
    });
    assert_eq!((sweeper["retried"].as_u64(), sweeper["dead_lettered"].as_u64()), (Some(0), Some(0)), "{sweeper}");
    assert_eq!(shop.call("GET", open, None, &[]).1["cart"]["status"], "open");
    let plugins = shop.admin("/plugins");
    let loaded = |name: &str| {
        let plugin = plugins.as_array().unwrap().iter().find(|p| p["name"] == name);
        plugin
            .and_then(|p| p["world"].as_str())
            .unwrap_or_else(|| panic!("{name} is not loaded: {plugins}"))
            .to_string()
    };
    for (name, world) in
        [("cart", "cart"), ("shop-api", "route"), ("confirmations", "event-handler"), ("sweeper", "event-handler")]
    {
        assert_eq!(loaded(name), world);
    }
    assert!(loaded("orders").ends_with("projection"));
}

/// The shop as `cargo xtask run` serves it, or as three cluster nodes;
/// each process group is stopped when dropped.
struct Shop {
    children: Vec<Child>,
    /// Each node's public and admin addresses.
    nodes: Vec<(SocketAddr, SocketAddr)>,
    /// The node the next call goes to.
    next: Cell<usize>,
}

impl Shop {
    fn start(data: &Path) -> Shop {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corral-test-cache");
        let mut child = Command::new(cargo)
            .args(["xtask", "run", "--", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data)
            .arg("--cache-dir")
            .arg(cache)
            .args(["--log-level", "warn"])
            .current_dir(&root)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("running cargo xtask run");
        let addresses = serving(&mut child, "cargo xtask run");
        Shop { children: vec![child], nodes: vec![addresses], next: Cell::new(0) }
    }

    /// Three `host run` nodes of one cluster on `nats`, serving the plugins
    /// `cargo xtask run` built.
    fn cluster(nats: &NatsCluster, data: &[tempfile::TempDir]) -> Shop {
        let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/target/corral-plugins");
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corral-test-cache");
        let urls = nats.urls().join(",");
        let mut shop = Shop { children: Vec::new(), nodes: Vec::new(), next: Cell::new(0) };
        for (i, dir) in data.iter().enumerate() {
            let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
                .args(["run", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "warn"])
                .arg("--plugins")
                .arg(&plugins)
                .arg("--data-dir")
                .arg(dir.path())
                .arg("--cache-dir")
                .arg(&cache)
                .args(["--cluster", &urls, "--cluster-name", "shop-e2e", "--node-id", &format!("node-{i}")])
                .process_group(0)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("running host run");
            shop.nodes.push(serving(&mut child, "host run --cluster"));
            shop.children.push(child);
        }
        shop
    }

    /// The subscription of `plugin` as the node running it reports it (in
    /// a cluster, the one that delivered the most).
    fn subscription(&self, plugin: &str) -> Option<Value> {
        let mut found: Option<Value> = None;
        for (_, admin) in &self.nodes {
            let (status, bytes) = http(*admin, "GET", "/subscriptions", String::new(), &[]);
            assert_eq!(status, 200);
            let all: Value = serde_json::from_slice(&bytes).unwrap();
            let entry = all.as_array().unwrap().iter().find(|s| s["plugin"] == plugin).cloned();
            if let Some(entry) = entry
                && found.as_ref().is_none_or(|f| f["delivered"].as_u64() < entry["delivered"].as_u64())
            {
                found = Some(entry);
            }
        }
        found
    }

    /// One request to the public listener: status and JSON body.
    fn call(&self, method: &str, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> (u16, Value) {
        let n = self.next.get();
        self.next.set(n + 1);
        let public = self.nodes[n % self.nodes.len()].0;
        let (status, bytes) = http(public, method, path, body.map(|b| b.to_string()).unwrap_or_default(), headers);
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{method} {path}: {status}, not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
        });
        (status, json)
    }

    fn admin(&self, path: &str) -> Value {
        let (status, bytes) = http(self.nodes[0].1, "GET", path, String::new(), &[]);
        assert_eq!(status, 200, "{path}");
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Polls until `check` gives a value (the log is asynchronous).
    fn eventually<T>(&self, what: &str, check: impl Fn(&Shop) -> Option<T>) -> T {
        self.eventually_within(Duration::from_secs(60), what, check)
    }

    fn eventually_within<T>(&self, timeout: Duration, what: &str, check: impl Fn(&Shop) -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            assert!(Instant::now() < deadline, "{what}: not there after {timeout:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        for child in &mut self.children {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
    }
}

/// Reads what a starting host prints up to the line naming the addresses
/// it serves on (public, admin), then keeps reading in the background (a
/// host that prints to a closed pipe fails).
fn serving(child: &mut Child, what: &str) -> (SocketAddr, SocketAddr) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let addresses: Vec<SocketAddr> = line
            .split("http://")
            .skip(1)
            .filter_map(|part| part.split([' ', ')']).next().and_then(|a| a.trim().parse().ok()))
            .collect();
        if let [public, admin] = addresses[..] {
            std::thread::spawn(move || lines.map_while(Result::ok).for_each(|line| eprintln!("{line}")));
            return (public, admin);
        }
        seen.push(line);
    }
    panic!("{what} did not start the shop: {seen:?}")
}

/// One HTTP/1.1 request on its own connection; the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: String, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    if !body.is_empty() {
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    stream.write_all(format!("{head}\r\n{body}").as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    (status, response[split + 4..].to_vec())
}
