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

use crate::args::LogFormat;

/// Logs only (every command but `run` and `dev`).
pub(crate) fn init_logging(level: &str, format: LogFormat) {
    if let Err(error) = init(level, format, None) {
        eprintln!("warning: {error:#}");
    }
}

/// Logs, and traces when a collector is named (`endpoint`, or the standard
/// `OTEL_*` variables), as the service instance `instance` (the node id in
/// a cluster). Runs inside the async runtime (the exporter's connection
/// lives there); flush the exporter it returns before exiting.
pub(crate) fn init_with_traces(
    level: &str,
    format: LogFormat,
    endpoint: Option<&str>,
    instance: Option<&str>,
) -> anyhow::Result<Option<Exporter>> {
    let exporter = match Exporter::wanted(endpoint) {
        true => Some(Exporter::start(endpoint, instance)?),
        false => None,
    };
    init(level, format, exporter.as_ref())?;
    if exporter.is_some() {
        corral_server::traces::enable();
    }
    Ok(exporter)
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
