//! `corral-testkit`: tests for Corral plugins, in any language. It drives the
//! compiled component, not its source: the component is loaded on a real
//! [`corral_runtime::Runtime`] (the host's engine settings, limits and
//! deterministic clocks) against in-memory kv and views, with `emit` and
//! `log` captured. It never starts a server and knows nothing of LMDB.
//!
//! # Layout
//!
//! - [`kit`]: [`TestKit`] — load a component, give it inputs, get a [`Run`].
//! - [`given`]: the inputs: [`Request`], [`Event`], [`Mutation`].
//! - [`run`]: what came out: response, views, cart state, emitted events,
//!   kv, log lines and failures.
//! - [`expect`]: [`Expect`] and [`Mismatch`], the readable diff.
//! - [`content`]: [`Content`], how tests write bytes (text or JSON).
//! - [`spec`]: test specs written as TOML files, run by `host test`.
//! - `scene`, `outbox`, `carts`, `capture`: the in-memory control plane,
//!   the captured emits, the cart plugins beside the plugin under test, and
//!   the guest log capture; `declared`: the payload schemas a sidecar
//!   declares, checked where the host checks them (`corral-schemas`).
//!   Routing uses the host's own route table (`corral-routes`).
//!
//! # In Rust
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use corral_testkit::{Event, Expect, ExpectedError, Mutation, Request, TestKit};
//! use serde_json::json;
//!
//! // Routes: request → response (and kv, emitted events, logs).
//! let mut kit = TestKit::load("hello.wasm").await?;
//! kit.request(Request::get("/hello/ada")).await?.expect(&Expect::new().status(200).body("hello, ada"))?;
//!
//! // Projections: events → views (per tenant).
//! let mut kit = TestKit::load("count.wasm").await?;
//! let run = kit.events([Event::new("orders.created", "a"), Event::new("orders.created", "b")]).await?;
//! run.expect(&Expect::new().view("orders.created", "2"))?;
//!
//! // Carts: mutations → state and outbox events; refusals by index.
//! let mut kit = TestKit::load("cart.wasm").await?;
//! let run = kit.mutations("cart-1", [Mutation::new("checkout", json!({}))]).await?;
//! run.expect(&Expect::new().no_state().emits_nothing().error(ExpectedError::code("empty-cart").at(0)))?;
//! # Ok(()) }
//! ```
//!
//! Event handlers take [`TestKit::events`] too and are checked on their kv
//! ([`Expect::kv`]) and emitted events ([`Expect::emits`]). Kv, views and
//! cart states carry over from one call to the next until
//! [`TestKit::reset`]; ids, sequence numbers and timestamps the test leaves
//! out are filled in deterministically (clock from [`kit::CLOCK_START_MS`],
//! one second per input). A [`Mismatch`] prints every difference, JSON
//! pretty-printed and diffed line by line. Compiled components are cached
//! on disk ([`kit::Options::cache_dir`]), so a 15 MB JS or Python component
//! is compiled once, not once per test.
//!
//! # Test specs (`host test`)
//!
//! A spec is a TOML file named `*.test.toml`; `host test PATH...` runs
//! every case and prints one line per case (the diff under a failing one),
//! exiting non-zero if any fails. Each case starts from an empty scene.
//!
//! ```toml
//! component = "../target/wasm32-wasip2/release/cart.wasm"  # relative to this file
//! # name = "..."; config = { KEY = "value" }; kv_buckets = ["shared"]   (like a sidecar)
//! # carts = { cart = "../target/wasm32-wasip2/release/cart.wasm" }   (cart plugins its `carts` calls reach)
//! # sidecar = "../plugins/cart/cart.toml"   (its [schemas] are checked where the host checks them)
//!
//! [[case]]
//! name = "checkout emits cart.checked_out"
//! [case.given]
//! cart = "c1"                     # carts: the cart id [default: "cart-1"]
//! tenant = ""                     # the tenant of every input
//! mutations = [
//!   { kind = "add_item", payload = { sku = "tea", name = "Tea", unit_price_cents = 650 } },
//!   { kind = "checkout", payload = {}, id = "m-2", timestamp_ms = 1000 },
//! ]
//! # or: request = { method = "GET", path = "/hello/ada?x=1", headers = { accept = "text/plain" }, body = "..." }
//! # or: events = [{ topic = "orders.created", payload = "x", tenant = "acme", id = "e1", timestamp_ms = 5 }]
//! # preconditions: kv = { key = "value" }; shared_kv = { bucket = { key = "value" } };
//! #                views = { projection = { id = "value" } };
//! #                state = { ... } (carts); emit_unavailable = true
//! [case.expect]
//! state = { status = "checked_out" }           # checked as JSON: the whole document must be equal
//! emitted = [{ topic = "cart.checked_out" }]   # exactly these, in order; `payload` optional
//! # status = 200; headers = { content-type = "text/plain" }; body = "hello, ada"; json = { ... }
//! # views = { "orders.created" = "2" }; views_absent = ["x"]; tenant = "acme"
//! # kv = { "seen.orders.created" = "1" }; kv_absent = ["k"]; state_absent = true
//! # shared_kv = { bucket = { key = "value" } }
//! # logs = [{ level = "warn", contains = "could not publish" }]
//! # errors = [{ index = 1, kind = "guest_error", code = "empty-cart", message = "empty" }]
//! ```
//!
//! Everywhere a value is given or expected, a string means its text, byte for
//! byte, and anything else (table, array, number, boolean) means JSON, compared
//! as JSON (an object member that is null counts as missing: TOML has no
//! null). Unknown keys are an error. Failures are always checked: a case
//! whose input fails passes only if `errors` lists that failure.

pub mod content;
pub mod expect;
pub mod given;
pub mod kit;
pub mod run;
pub mod spec;

mod capture;
mod carts;
mod declared;
mod outbox;
mod scene;

pub use capture::LogLine;
pub use content::Content;
pub use expect::{Expect, ExpectedError, ExpectedEvent, ExpectedLog, Mismatch};
pub use given::{Event, Mutation, Request};
pub use kit::{KitError, Options, TestKit};
pub use run::{Emitted, Failure, Response, Run};
