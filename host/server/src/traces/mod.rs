//! Distributed traces: joining the host's `tracing` spans into W3C traces.
//!
//! The spans themselves are ordinary `tracing` spans (a request, an event
//! delivery, a plugin call, an import call, a projection batch, a cart
//! mutation); whoever installs the subscriber decides whether they go
//! anywhere. When the binary exports them (OpenTelemetry, see `host run
//! --otlp-endpoint`) it calls [`enable`], and from then on:
//!
//! - a span that starts work on behalf of something with a `traceparent` (an
//!   HTTP request's header, an event's, a cart mutation's) is made its child
//!   with [`adopt`], and
//! - what the work passes on (events it emits, mutations it sends, calls to
//!   peers) carries the traceparent of the span it ran in ([`current_or`]),
//!
//! so a request, the event handler its event reached and the cart that
//! handler mutated form one trace, across the log and across nodes.
//!
//! [`Exporter`] (`export`) sends the spans to an OpenTelemetry collector.
//!
//! While tracing is off none of this runs: a traceparent passes through
//! unchanged, exactly as it arrived, and the fine-grained spans (calls,
//! imports, batches, mutations) are at `trace` level, which a log filter
//! leaves disabled at their call sites.

mod export;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use export::{ExportError, Exporter};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Says that spans are exported: traceparents are taken from and given to
/// them from now on. Called once, by whoever installed the exporting layer.
pub fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// Whether spans are exported.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Makes `span` a child of `traceparent`'s span (when tracing is on and the
/// traceparent is well formed); otherwise `span` stays where it is (a root,
/// or a child of the span it was created in).
pub fn adopt(span: &tracing::Span, traceparent: Option<&str>) {
    if !enabled() {
        return;
    }
    let Some(parent) = traceparent.and_then(parse) else {
        return;
    };
    let context = opentelemetry::Context::new().with_remote_span_context(parent);
    // Fails only when the span is disabled or already started elsewhere.
    let _ = span.set_parent(context);
}

/// Links `span` to `traceparent`'s span: for work done for many traces at
/// once (a projection batch folds events of many requests).
pub fn link(span: &tracing::Span, traceparent: Option<&str>) {
    if !enabled() {
        return;
    }
    if let Some(context) = traceparent.and_then(parse) {
        span.add_link(context);
    }
}

/// The traceparent that work done now passes on: the current span's when
/// tracing is on, else `fallback` (the one the work arrived with).
pub fn current_or(fallback: Option<String>) -> Option<String> {
    if !enabled() {
        return fallback;
    }
    of(&tracing::Span::current()).or(fallback)
}

/// The W3C traceparent of `span`, if it belongs to an exported trace.
pub fn of(span: &tracing::Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| format(&span_context))
}

/// `00-<trace id>-<span id>-<flags>`.
fn format(context: &SpanContext) -> String {
    format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), context.trace_flags().to_u8())
}

/// Reads a version-00 traceparent; anything else (another version, wrong
/// lengths, all-zero ids) is ignored, as the W3C spec asks.
fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace = TraceId::from_hex(trace).ok()?;
    let span = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(trace, span, TraceFlags::new(flags), true, TraceState::default());
    context.is_valid().then_some(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_and_written_back_unchanged() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = parse(text).unwrap();
        assert_eq!(format(&context), text);
        assert!(context.is_remote());
    }

    #[test]
    fn malformed_or_foreign_traceparents_are_ignored() {
        for text in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse(text).is_none(), "{text:?} must be ignored");
        }
    }

    #[test]
    fn while_off_traceparents_pass_through() {
        // Nothing in this test binary enables tracing.
        let arrived = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string());
        assert_eq!(current_or(arrived.clone()), arrived);
        assert_eq!(of(&tracing::Span::current()), None);
    }
}
