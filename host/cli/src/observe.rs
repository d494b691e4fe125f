//! What the process tells about itself: log lines on stderr (pretty or
//! JSON, filtered by the log level) and, when a collector is configured,
//! OpenTelemetry traces (`corral_server::traces::Exporter`).
//!
//! The log filter applies to the log layer only: the exporter sees every
//! span of Corral's whatever the log level, and while no exporter is
//! installed the fine-grained spans (plugin calls, imports, batches,
//! mutations: `trace` level) are disabled where they are written.

use corral_server::traces::Exporter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::args::{LogFormat, RunConfig};

/// Logs only (every command but `run` and `dev`).
pub(crate) fn init_logging(level: &str, format: LogFormat) {
    if let Err(error) = init(level, format, None) {
        eprintln!("warning: {error:#}");
    }
}

/// Logs, and traces when a collector is named (`--otlp-endpoint`, or the
/// standard `OTEL_*` variables), as the service instance of the node id in
/// a cluster. Runs inside the async runtime (the exporter's connection
/// lives there); give what it returns to [`flush`] before exiting.
pub(crate) fn init_serving(config: &RunConfig) -> anyhow::Result<Option<Exporter>> {
    let endpoint = config.otlp_endpoint.as_deref();
    let instance = config.server.cluster.as_ref().map(|cluster| cluster.node_id.as_str());
    let exporter = match Exporter::wanted(endpoint) {
        true => Some(Exporter::start(endpoint, instance)?),
        false => None,
    };
    init(&config.log_level, config.log_format, exporter.as_ref())?;
    if exporter.is_some() {
        corral_server::traces::enable();
    }
    Ok(exporter)
}

/// Sends the spans still buffered, if traces are exported.
pub(crate) async fn flush(traces: Option<Exporter>) {
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
}

fn init(level: &str, format: LogFormat, exporter: Option<&Exporter>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|error| {
        eprintln!("warning: invalid log level {level:?} ({error}); using info");
        tracing_subscriber::EnvFilter::new("info")
    });
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Pretty => logs.boxed(),
        LogFormat::Json => logs.json().boxed(),
    };
    let traces = exporter.map(Exporter::layer);
    tracing_subscriber::registry().with(logs.with_filter(filter)).with(traces).try_init()?;
    Ok(())
}
