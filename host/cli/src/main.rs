//! `host`: Corral's command line. It serves plugins (`run`, `dev`) with the
//! `corral-server` library, and carries the tools around it: scaffolding,
//! checking, inspecting and testing plugins, and the admin client.
//!
//! # Layout
//!
//! - `cli`: the commands (clap) and their dispatch.
//! - `run`: `host run` itself — bind, serve, stop on a signal.
//! - `observe`: log lines, and OpenTelemetry traces when a collector is
//!   configured.
//! - `args`: `host run`'s flags, environment and config file, resolved into
//!   the server's settings.
//! - `dev`: `host dev`, rebuild-and-swap while editing guests.
//! - `scaffold`: `host new`, a plugin folder from the embedded templates.
//! - `inspect`: `host check` and `host inspect`.
//! - `testing`: `host test`, plugin test specs run by `corral-testkit` (the
//!   only place the test kit is used).
//! - `client`: talking to a running host's admin listener (`emit`,
//!   `deploy`, `projection rebuild`, `cart verify`).

mod args;
mod cli;
mod client;
mod dev;
mod inspect;
mod observe;
mod run;
mod scaffold;
mod testing;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
