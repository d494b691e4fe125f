//! The command line: clap's definition of every `host` command and the
//! dispatch to the module that carries it out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{args, client, dev, inspect, observe, run, scaffold, testing};

/// Corral: a WebAssembly component host where every handler is a sandboxed plugin.
#[derive(Debug, Parser)]
#[command(
    name = "host",
    version,
    about = "Corral: a WebAssembly component host in which every handler is a sandboxed plugin."
)]
struct Cli {
    /// Directory for the host's data; precompiled components are cached in
    /// its `cache/` folder.
    /// [default: .corral]
    #[arg(long, global = true, env = "CORRAL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The admin API's bearer token: `host run` requires it on every admin
    /// request but /healthz and /readyz (and to serve the admin listener off
    /// loopback); `host emit`, `deploy`, `projection` and `cart` send it.
    #[arg(long, global = true, env = "CORRAL_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the plugins in a folder: HTTP routes on the public listener,
    /// health, metrics and the plugin list on the admin listener.
    Run(Box<args::RunArgs>),
    /// The inner loop: builds the plugins at SOURCE (a cargo workspace of
    /// Rust guests, built for wasm32-wasip2, and JavaScript and Python
    /// plugin folders as `host new` writes them), serves their components,
    /// and rebuilds and hot-swaps them whenever a source file changes.
    Dev {
        /// The plugin sources: a cargo workspace (or crate), plugin folders,
        /// or both.
        source: PathBuf,
        #[command(flatten)]
        run: Box<args::RunArgs>,
    },
    /// Builds the plugins at SOURCE once (as `host dev` does, without
    /// serving): their components land in SOURCE/target/corral-plugins.
    Build {
        /// The plugin sources: a cargo workspace (or crate), plugin folders, or both.
        source: PathBuf,
        /// Where the components go [default: SOURCE/target/corral-plugins].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Loads and validates components (files, or every `.wasm` in a folder)
    /// and checks that they could be served together, as one plugins folder
    /// (plugin names, routes, topic schemas); exits non-zero with the
    /// reasons if anything fails.
    Check {
        /// Component files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Deploys a component to a running host through its admin listener
    /// (`PUT /plugins/NAME`); the host validates it before swapping it in.
    /// To a node of a cluster, it becomes the desired version on every node,
    /// rolled out as the flags (or the sidecar's `[rollout]`) say.
    Deploy {
        /// The component file.
        file: PathBuf,
        /// The plugin file name to deploy as [default: the file's stem].
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        rollout: client::RolloutFlags,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Follows and steers a plugin's rollout across a cluster.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
    },
    /// The payload schemas components declare (in their sidecars).
    Schema {
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Operates a running host's projections through its admin listener.
    Projection {
        #[command(subcommand)]
        command: ProjectionCommand,
    },
    /// An event handler's dead letters: list them, deliver one again, or skip one.
    DeadLetter {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
    /// Operates a running host's carts through its admin listener.
    Cart {
        #[command(subcommand)]
        command: CartCommand,
    },
    /// Publishes an event through a running host's admin listener.
    Emit {
        /// Topic, e.g. `orders.created`.
        topic: String,
        /// The payload (JSON by convention).
        #[arg(long, default_value = "")]
        data: String,
        /// Tenant of the event.
        #[arg(long, default_value = "")]
        tenant: String,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Runs plugin test specs (`*.test.toml` files, or folders holding them)
    /// in-process against in-memory kv, views and a captured emit and log;
    /// prints one line per case and exits non-zero if any fails.
    Test {
        /// Spec files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Writes a new folder NAME/ holding a plugin of KIND in a language,
    /// ready to build and load with no edits, and prints the next commands.
    New {
        /// The world the plugin exports.
        kind: scaffold::Kind,
        /// The plugin's name (lower-case letters, digits and `-`); also the
        /// folder created in the current directory.
        name: String,
        /// The plugin's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: scaffold::Lang,
        /// Rust: the `sdk/` folder of a Corral checkout to depend on
        /// [default: the one this host was built from].
        #[arg(long, env = "CORRAL_SDK")]
        sdk: Option<PathBuf>,
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

/// Runs the command line.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => {
                let mut config = args.resolve(cli.data_dir)?;
                config.server.admin_token = cli.admin_token;
                let traces = observe::init_serving(&config)?;
                let served = run::serve(config).await;
                observe::flush(traces).await;
                served.map(|()| ExitCode::SUCCESS)
            }
            Command::Dev { source, run } => {
                let plugins = source.join("target").join("corral-plugins");
                let mut config = run.with_default_plugins(plugins).resolve(cli.data_dir)?;
                if config.server.cluster.is_some() {
                    anyhow::bail!(
                        "host dev runs one node, rebuilding and swapping plugins from their sources: drop --cluster \
                         (and CORRAL_CLUSTER), or deploy to a cluster with `host deploy FILE --admin URL`"
                    );
                }
                config.server.admin_token = cli.admin_token;
                let traces = observe::init_serving(&config)?;
                let served = dev::dev(&source, config).await;
                observe::flush(traces).await;
                served.map(|()| ExitCode::SUCCESS)
            }
            Command::Build { source, out } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                let out = out.unwrap_or_else(|| source.join("target").join("corral-plugins"));
                dev::build(&source, &out).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Check { paths } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                inspect::check(&data_dir(cli.data_dir), &paths).await
            }
            Command::Deploy { file, name, rollout, admin } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                client::deploy(&admin, cli.admin_token.as_deref(), &file, name.as_deref(), &rollout).await
            }
            Command::Rollout { command } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                let (action, name, admin) = match &command {
                    RolloutCommand::Status { name, admin } => ("status", name, admin),
                    RolloutCommand::Abort { name, admin } => ("abort", name, admin),
                    RolloutCommand::Rollback { name, admin } => ("rollback", name, admin),
                };
                client::rollout(admin, cli.admin_token.as_deref(), action, name).await
            }
            Command::Projection { command } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                let token = cli.admin_token.as_deref();
                match command {
                    ProjectionCommand::Rebuild { name, admin } => client::rebuild(&admin, token, &name).await,
                    ProjectionCommand::Quarantine { name, admin } => {
                        client::quarantine(&admin, token, &name, None).await
                    }
                    ProjectionCommand::Retry { name, sequence, admin } => {
                        client::quarantine(&admin, token, &name, Some((sequence, "retry"))).await
                    }
                    ProjectionCommand::Skip { name, sequence, admin } => {
                        client::quarantine(&admin, token, &name, Some((sequence, "skip"))).await
                    }
                }
            }
            Command::DeadLetter { command } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                let token = cli.admin_token.as_deref();
                match command {
                    DeadLetterCommand::List { plugin, admin } => {
                        client::dead_letters(&admin, token, &plugin, None).await
                    }
                    DeadLetterCommand::Retry { plugin, sequence, admin } => {
                        client::dead_letters(&admin, token, &plugin, Some((sequence, "retry"))).await
                    }
                    DeadLetterCommand::Skip { plugin, sequence, admin } => {
                        client::dead_letters(&admin, token, &plugin, Some((sequence, "skip"))).await
                    }
                }
            }
            Command::Cart { command: CartCommand::Verify { plugin, cart, tenant, admin } } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                client::verify_cart(&admin, cli.admin_token.as_deref(), &plugin, &cart, &tenant).await
            }
            Command::Emit { topic, data, tenant, admin } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                client::emit(&admin, cli.admin_token.as_deref(), &topic, data.into_bytes(), &tenant).await
            }
            Command::Test { paths } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                testing::test(&data_dir(cli.data_dir), &paths).await
            }
            Command::New { kind, name, lang, sdk } => scaffold::new(Path::new(""), kind, &name, lang, sdk.as_deref()),
            Command::Schema { command: SchemaCommand::Export { paths, out } } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                inspect::export(&data_dir(cli.data_dir), &paths, &out).await
            }
            Command::Inspect { file, json } => {
                observe::init_logging("warn", args::LogFormat::Pretty);
                inspect::inspect(&data_dir(cli.data_dir), &file, json).await
            }
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

/// `host projection ...`.
#[derive(Debug, Subcommand)]
enum ProjectionCommand {
    /// Clears a projection's views and checkpoint and replays the log.
    Rebuild {
        /// The projection's name.
        name: String,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Lists a projection's quarantined events (kept across restarts).
    Quarantine {
        /// The projection's name.
        name: String,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Folds the event a halted projection stopped before again (after a
    /// fix is deployed, or when it failed on a limit).
    Retry {
        /// The projection's name.
        name: String,
        /// The event's sequence.
        sequence: u64,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Skips the event a halted projection stopped before, and folds on.
    Skip {
        /// The projection's name.
        name: String,
        /// The event's sequence.
        sequence: u64,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
}

/// `host schema ...`.
#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Writes every schema the components declare as a JSON Schema document
    /// (OUT/schemas/NAME.json), and an OpenAPI 3.1 document of their routes
    /// and cart APIs (OUT/openapi.json), for client generators. Refuses
    /// components that could not be served together, as `host check` does.
    Export {
        /// Component files or folders (sidecars beside them).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where the documents go.
        #[arg(long, default_value = "schemas")]
        out: PathBuf,
    },
}

/// `host rollout ...`.
#[derive(Debug, Subcommand)]
enum RolloutCommand {
    /// Shows the plugin's desired version, its rollout, what every node
    /// runs, and its past revisions.
    Status {
        /// The plugin.
        name: String,
        /// The admin listener of any node of the cluster.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Stops the rollout in progress: every node runs the previous version.
    Abort {
        /// The plugin.
        name: String,
        /// The admin listener of any node of the cluster.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Sends every node back to the plugin's previous version.
    Rollback {
        /// The plugin.
        name: String,
        /// The admin listener of any node of the cluster.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
}

/// `host dead-letter ...`.
#[derive(Debug, Subcommand)]
enum DeadLetterCommand {
    /// Lists the handler's dead letters with what was done about each.
    List {
        /// The event handler plugin.
        plugin: String,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Delivers a dead letter's event to the handler again, now.
    Retry {
        /// The event handler plugin.
        plugin: String,
        /// The dead letter's sequence (as listed).
        sequence: u64,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
    /// Marks a dead letter as dealt with, without delivering it.
    Skip {
        /// The event handler plugin.
        plugin: String,
        /// The dead letter's sequence (as listed).
        sequence: u64,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
}

/// `host cart ...`.
#[derive(Debug, Subcommand)]
enum CartCommand {
    /// Replays a cart's whole journal from empty with the current plugin and
    /// reports whether it reproduces the stored state (exit code 1 if not).
    Verify {
        /// The cart plugin's name.
        plugin: String,
        /// The cart id.
        cart: String,
        /// The cart's tenant.
        #[arg(long, default_value = "")]
        tenant: String,
        /// The admin listener of the running host.
        #[arg(long, env = "CORRAL_ADMIN_URL", default_value = "http://127.0.0.1:9090")]
        admin: String,
    },
}

fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| PathBuf::from(".corral"))
}
