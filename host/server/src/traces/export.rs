//! Sending spans to an OpenTelemetry collector: a batching OTLP/gRPC
//! exporter and the `tracing` layer that feeds it.
//!
//! Traces are wanted when a collector is named — by the caller (`host run
//! --otlp-endpoint`) or by the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` — unless `OTEL_SDK_DISABLED=true` or
//! `OTEL_TRACES_EXPORTER=none` says otherwise. The SDK reads the other
//! standard variables itself: `OTEL_SERVICE_NAME` (else `corral`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` (parent-based always-on
//! by default, so a caller's sampling decision is kept), `OTEL_BSP_*` for
//! batching and `OTEL_EXPORTER_OTLP_HEADERS` / `..._TIMEOUT`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The service name spans carry unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "corral";

/// Why traces cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot export traces to {endpoint}: {reason}; give the collector as http://HOST:PORT \
     (OTLP over gRPC, usually port 4317) with --otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT"
)]
pub struct ExportError {
    endpoint: String,
    reason: String,
}

/// A running exporter. Install its [`layer`](Exporter::layer) in the
/// process's subscriber, then call [`super::enable`]; [`shutdown`](Exporter::shutdown)
/// flushes what is buffered before the process exits.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Whether traces are to be exported: a collector is named (`endpoint`,
    /// or the standard variables) and the standard switches do not turn the
    /// SDK or the trace exporter off.
    pub fn wanted(endpoint: Option<&str>) -> bool {
        let set = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|value| value.eq_ignore_ascii_case("true")) {
            return false;
        }
        if set("OTEL_TRACES_EXPORTER").is_some_and(|value| value.eq_ignore_ascii_case("none")) {
            return false;
        }
        endpoint.is_some()
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
            || set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
    }

    /// Starts a batching exporter to `endpoint` (else where the standard
    /// variables say), its spans marked `service.instance.id = instance`
    /// (the node id in a cluster) when given. Call it inside the Tokio
    /// runtime: the connection to the collector lives there. Nothing is sent
    /// until spans end; an unreachable collector costs dropped batches,
    /// never requests.
    pub fn start(endpoint: Option<&str>, instance: Option<&str>) -> Result<Exporter, ExportError> {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter.build().map_err(|error| ExportError {
            endpoint: endpoint.unwrap_or("the collector OTEL_EXPORTER_OTLP_ENDPOINT names").to_string(),
            reason: error.to_string(),
        })?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(SERVICE_NAME);
        }
        if let Some(instance) = instance {
            resource =
                resource.with_attribute(opentelemetry::KeyValue::new("service.instance.id", instance.to_string()));
        }
        let provider =
            SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
        Ok(Exporter { provider })
    }

    /// The layer that turns the host's spans into exported ones: spans only
    /// (log lines stay logs), and only Corral's own.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("corral"))
            // No clock reads on every poll (busy/idle time) and no source
            // location or thread attributes: each span costs less, and its
            // name and attributes already say what it is.
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span() && meta.target().starts_with("corral_")
            }))
    }

    /// Sends what is still buffered and stops exporting.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // Blocks while the last batch is exported: off the async workers.
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = flushed {
            tracing::warn!("flushing traces at exit failed: {error}");
        }
    }
}
