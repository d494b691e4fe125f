//! `cargo xtask`: the project's own commands, so a fresh machine with only
//! rustup needs nothing else.
//!
//! - `cargo xtask run [-- HOST ARGS]`: builds the example app's plugins and
//!   serves them on the embedded default (`host dev examples/shop`, which
//!   also rebuilds and hot-swaps them when their sources change). The host
//!   is built in the dev profile, which `cargo xtask test` has built already
//!   (Cranelift itself is optimised in it, see the root `Cargo.toml`); the
//!   example's JavaScript and Python plugins are built with the pinned
//!   toolchains of `.tools/`, installed on first use.
//! - `cargo xtask guests-polyglot`: builds the JavaScript and Python guests
//!   and templates from source, installing their toolchains into `.tools/`
//!   on first use (see [`polyglot`]).
//! - `cargo xtask test`: the whole test suite. Builds the JavaScript and
//!   Python guests first; the Rust guests are built by the `corral-fixtures`
//!   build script.
//! - `cargo xtask layout`: the shape rules a compiler does not check (no
//!   import circle between modules, no file over 500 lines; see [`layout`]).
//! - `cargo xtask cluster`: the example shop on a three-node cluster on
//!   this machine: three nats-servers and three hosts (see [`cluster`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

mod cluster;
mod layout;
mod polyglot;
mod python;
mod tool;
mod typescript;

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.skip_while(|a| a == "--").collect();
    let root = root()?;
    match task.as_str() {
        "run" => {
            ensure_wasm_target()?;
            let mut host = cargo(&root);
            host.args(["run", "-p", "corral-host", "--", "dev", "examples/shop"])
                .args(&rest)
                .env("PATH", polyglot::example_path(&root)?);
            run(host)
        }
        "guests-polyglot" => polyglot::build(&root),
        "test" => {
            ensure_wasm_target()?;
            polyglot::build(&root)?;
            let mut test = cargo(&root);
            test.args(["test", "--workspace"]).args(&rest);
            run(test)
        }
        "cluster" => {
            ensure_wasm_target()?;
            cluster::run(&root, polyglot::example_path(&root)?)
        }
        "layout" => {
            let report = layout::check(&root)?;
            if !report.is_clean() {
                bail!("the layout rules are broken:\n{report}");
            }
            println!("layout: no import circle, no file over {} lines", layout::MAX_LINES);
            Ok(())
        }
        other => bail!("unknown task {other:?}; use one of: run, guests-polyglot, test, layout, cluster"),
    }
}

fn root() -> anyhow::Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("xtask lives one level below the repository root")
}

fn cargo(root: &Path) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(root);
    command
}

fn run(mut command: Command) -> anyhow::Result<()> {
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Installs the guest target through rustup when it is missing.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(output) if String::from_utf8_lossy(&output.stdout).lines().any(|l| l.trim() == WASM_TARGET) => Ok(()),
        Ok(_) => {
            let mut add = Command::new("rustup");
            add.args(["target", "add", WASM_TARGET]);
            run(add)
        }
        // No rustup: assume the toolchain was provisioned another way.
        Err(_) => Ok(()),
    }
}
