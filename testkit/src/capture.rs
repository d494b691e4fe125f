//! Guest log lines, captured. The runtime writes each `corral:plugin/log`
//! line to `tracing` under the target `corral::guest`; the kit runs every
//! call with its own subscriber (scoped to that call's future, so parallel
//! tests and the process's global subscriber see nothing of it) and keeps
//! the lines.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::instrument::WithSubscriber as _;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// The target the runtime logs guest lines under.
const GUEST_TARGET: &str = "corral::guest";

/// One line a guest logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
    /// The guest's key/value fields, rendered `key="value"`.
    pub fields: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.level, self.message)?;
        if !self.fields.is_empty() {
            write!(f, " {}", self.fields)?;
        }
        Ok(())
    }
}

/// Collects guest lines while a future runs under it.
#[derive(Clone)]
pub(crate) struct Capture {
    lines: Arc<Mutex<Vec<LogLine>>>,
    dispatch: Dispatch,
}

impl Capture {
    pub(crate) fn new() -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Collector { lines: lines.clone() });
        Capture { lines, dispatch: Dispatch::new(subscriber) }
    }

    /// Runs `future` with this capture as its subscriber.
    pub(crate) async fn run<F: Future>(&self, future: F) -> F::Output {
        future.with_subscriber(self.dispatch.clone()).await
    }

    /// The lines captured since the last call, in order.
    pub(crate) fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

struct Collector {
    lines: Arc<Mutex<Vec<LogLine>>>,
}

impl<S: Subscriber> Layer<S> for Collector {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != GUEST_TARGET {
            return;
        }
        let mut line = LogLine {
            level: event.metadata().level().as_str().to_ascii_lowercase(),
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut Fields(&mut line));
        self.lines.lock().unwrap_or_else(PoisonError::into_inner).push(line);
    }
}

/// Picks the message and the guest's fields out of a runtime log event.
struct Fields<'a>(&'a mut LogLine);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.0.message = format!("{value:?}"),
            "fields" => self.0.fields = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.0.message = value.to_string(),
            "fields" => self.0.fields = value.to_string(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_guest_lines_of_the_scoped_future_only() {
        let capture = Capture::new();
        capture
            .run(async {
                tracing::warn!(target: "corral::guest", fields = %"a=\"1\"", "from the guest");
                tracing::warn!(target: "corral::other", "not a guest line");
            })
            .await;
        tracing::warn!(target: "corral::guest", "outside the capture");
        let lines = capture.take();
        assert_eq!(
            lines,
            [LogLine { level: "warn".into(), message: "from the guest".into(), fields: "a=\"1\"".into() }]
        );
        assert!(capture.take().is_empty());
    }
}
