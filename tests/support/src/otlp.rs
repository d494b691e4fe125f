//! An OpenTelemetry collector for tests: a real OTLP/gRPC trace service
//! (tonic, the protocol's own types) on a loopback port, keeping every span
//! it is sent so a test can check what a host exported.
//!
//! It runs on its own thread and runtime, so it serves plain `#[test]`s,
//! async tests and benchmarks alike, and stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

/// A received span with the name of the service that sent it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `service.name` of the span's resource.
    pub service: String,
    /// `service.instance.id` of the span's resource (empty if none).
    pub instance: String,
    /// The span as sent.
    pub span: Span,
}

impl Received {
    /// The span's attribute `key` as text (strings as they are; numbers and
    /// booleans formatted), if it has one.
    pub fn attribute(&self, key: &str) -> Option<String> {
        attribute(&self.span.attributes, key)
    }

    /// The trace id, in hex.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// The span id, in hex.
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent's span id, in hex; empty for a root span.
    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
}

/// The collector; stops serving when dropped.
pub struct Collector {
    /// Where it listens: give `http://{addr}` as the OTLP endpoint.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    counted: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    /// Starts serving on a free loopback port, keeping every span.
    pub fn start() -> Collector {
        Collector::serve(true)
    }

    /// Starts serving, counting spans without keeping them (for load).
    pub fn counting() -> Collector {
        Collector::serve(false)
    }

    fn serve(keep: bool) -> Collector {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding the collector: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("the collector's address: {e}"));
        listener.set_nonblocking(true).unwrap_or_else(|e| panic!("a non-blocking collector socket: {e}"));
        let (received, counted) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicU64::new(0)));
        let service = TraceServiceServer::new(Sink { received: received.clone(), counted: counted.clone(), keep })
            .max_decoding_message_size(64 * 1024 * 1024);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("the collector's runtime: {e}"));
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .unwrap_or_else(|e| panic!("the collector's listener: {e}"));
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                let served = tonic::transport::Server::builder().add_service(service).serve_with_incoming_shutdown(
                    incoming,
                    async {
                        let _ = stopped.await;
                    },
                );
                if let Err(error) = served.await {
                    eprintln!("the test OTLP collector stopped: {error}");
                }
            });
        });
        Collector { addr, received, counted, stop: Some(stop), thread: Some(thread) }
    }

    /// The endpoint to export to.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many spans were received so far (kept or not).
    pub fn count(&self) -> u64 {
        self.counted.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` until `done` holds for the spans received,
    /// then returns them (whether or not it held: the caller asserts).
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || Instant::now() >= deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Sink {
    received: Arc<Mutex<Vec<Received>>>,
    counted: Arc<AtomicU64>,
    keep: bool,
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        let spans = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum();
        self.counted.fetch_add(spans, Ordering::Relaxed);
        if !self.keep {
            return Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }));
        }
        let mut received = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_spans in request.resource_spans {
            let resource = |key: &str| {
                resource_spans.resource.as_ref().and_then(|r| attribute(&r.attributes, key)).unwrap_or_default()
            };
            let (service, instance) = (resource("service.name"), resource("service.instance.id"));
            for scope in resource_spans.scope_spans {
                received.extend(scope.spans.into_iter().map(|span| Received {
                    service: service.clone(),
                    instance: instance.clone(),
                    span,
                }));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn attribute(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    Some(match value {
        Value::StringValue(text) => text.clone(),
        Value::BoolValue(flag) => flag.to_string(),
        Value::IntValue(number) => number.to_string(),
        Value::DoubleValue(number) => number.to_string(),
        other => format!("{other:?}"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
