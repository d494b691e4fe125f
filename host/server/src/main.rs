//! `host`: Corral's command line.
//!
//! # Layout
//!
//! - `main.rs`: the CLI (clap) and dispatch.
//! - [`sidecar`]: the operator's `NAME.toml` beside each component.
//! - [`inspect`]: `host check` and `host inspect`, loading components the way
//!   the server will and reporting what it found.
//!
//! The binary is the only place that knows the CLI; the runtime below it
//! knows nothing of sockets, storage or configuration files.

mod inspect;
mod sidecar;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Corral: a WebAssembly component host where every handler is a sandboxed plugin.
#[derive(Debug, Parser)]
#[command(name = "host", version, about)]
struct Cli {
    /// Directory for the host's data; precompiled components are cached in
    /// its `cache/` folder.
    #[arg(long, global = true, env = "CORRAL_DATA_DIR", default_value = ".corral")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Loads and validates components (files, or every `.wasm` in a folder);
    /// exits non-zero with the reasons if any fails.
    Check {
        /// Component files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Shows a component's world, imports, exports, what `describe()` says and
    /// the limits that would apply.
    Inspect {
        /// The component file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check { paths } => inspect::check(&cli.data_dir, &paths).await,
            Command::Inspect { file, json } => inspect::inspect(&cli.data_dir, &file, json).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
