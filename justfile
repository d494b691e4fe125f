# Corral's everyday recipes. `just --list` shows them.

# Build the example app's plugins and serve them (rebuilt and swapped on change).
run *ARGS:
    cargo xtask run {{ARGS}}

# The example shop on a three-node cluster on this machine: three nats-servers (JetStream) and three hosts on ports 8081-8083 (admin 9091-9093).
cluster:
    cargo xtask cluster

# Build the guest fixtures (Rust, JavaScript, Python) and the example's plugins.
guests: guests-polyglot
    cargo build --release --target wasm32-wasip2 --manifest-path guests/Cargo.toml
    cargo build --release --target wasm32-wasip2 --manifest-path examples/shop/Cargo.toml

# Build the JavaScript and Python guests and templates from source (installs
# componentize-js and componentize-py into .tools/ on first use).
guests-polyglot:
    cargo xtask guests-polyglot

# The whole test suite (what CI runs).
test *ARGS:
    cargo xtask test {{ARGS}}

# Formatting, lints and the layout rules (no import circle, no file over 500 lines), as CI checks them.
lint:
    cargo xtask layout
    cargo fmt --all --check
    cd guests && cargo fmt --all --check
    cargo clippy --all-targets -- -D warnings
    cd guests && cargo clippy --release --target wasm32-wasip2 -- -D warnings

# Runtime benchmark: fresh-instance call vs empty-component floor, fuel vs none.
bench:
    cargo bench -p corral-runtime --bench invoke

# HTTP load benchmark: native hyper vs the route plugin vs wasi:http, with wrk.
bench-http:
    command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
    cargo xtask guests-polyglot
    cargo bench -p corral-server --bench http

# Event throughput: wasm vs native handler on the same log; emit with and without group commit.
bench-events:
    cargo bench -p corral-server --bench events

# Hot-swap latency: file landing to new version serving, cold and warm; then a deploy reaching all 3 nodes of a cluster.
bench-swap:
    cargo bench -p corral-server --bench swap
    cargo bench -p corral-server --bench cluster_swap

# Isolation: a neighbour route's p50/p99 alone and while adversarial plugins (loop, memory, oversized response, log flood) are hammered.
bench-isolation:
    cargo bench -p corral-server --bench isolation

# Outgoing HTTP and in-process plugin calls, each beside its baseline (native hyper client, direct route).
bench-outbound:
    cargo bench -p corral-server --bench outbound

# Projection folds: wasm vs a native fold of the same logic, same batching, into LMDB.
bench-projections:
    cargo bench -p corral-server --bench projections

# Indexed view queries beside a full scan, at 10k, 100k and 1M views.
bench-queries:
    cargo bench -p corral-storage --bench view_queries

# Cluster mode: events to a wasm handler from JetStream vs the embedded log vs a plain async-nats consumer; kv vs plain async-nats KV;
# cart mutations on the owner vs forwarded vs embedded vs plain async-nats atomic batches.
bench-cluster:
    cargo bench -p corral-server --bench cluster
    cargo bench -p corral-server --bench cluster_carts

# Carts: wasm vs the same cart logic compiled natively, same mailboxes, journal and group commit.
bench-carts:
    cargo bench -p corral-server --bench carts

# what checking declared payload schemas costs on emit and on a cart mutation, beside no schema
bench-schemas:
    cargo bench -p corral-server --bench schemas
