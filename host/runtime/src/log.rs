//! `corral:plugin/log`: guest log lines into the host's `tracing`, tagged with
//! the plugin, its version, the request or event id, the tenant, the
//! correlation id and the trace id.

use std::fmt;

use crate::bindings::log::{Host, Level};
use crate::call::{CallContext, Identity};
use crate::deterministic::Inputs;
use crate::fair::Turn;
use crate::log_budget::Verdict;

/// Lines one call may write; later lines are dropped (and counted once).
const MAX_LINES_PER_CALL: u32 = 1000;
/// Longest message kept, in bytes; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 4096;
/// Most bytes of a line's fields, rendered; fields past it are left out.
const MAX_FIELDS_BYTES: usize = 4096;
/// Longest field name kept, in bytes.
const MAX_KEY_BYTES: usize = 128;
/// Longest field value kept, in bytes; longer ones are cut.
const MAX_VALUE_BYTES: usize = 1024;

/// What a call's `log` import writes with: who logs for which request,
/// the lines written so far, and the inputs of a batched fold's segment.
pub(crate) struct LogHost<'a> {
    pub(crate) plugin: &'a Identity,
    pub(crate) call: &'a CallContext,
    pub(crate) lines: &'a mut u32,
    pub(crate) inputs: &'a Inputs,
    /// The call's share of the long-call permits (none outside a call).
    pub(crate) turn: Option<&'a Turn>,
}

crate::bindings::link_view!(log, LogHost);

impl Host for LogHost<'_> {
    async fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        if self.inputs.shared_use() {
            // The line would be tagged with another event's id: the host
            // folds the segment again, one event at a time, and logs it then.
            return;
        }
        *self.lines += 1;
        if *self.lines > MAX_LINES_PER_CALL {
            if *self.lines == MAX_LINES_PER_CALL + 1 {
                tracing::warn!(
                    target: "corral::guest",
                    plugin = %self.plugin.name,
                    request_id = %self.call.request_id,
                    "log limit of {MAX_LINES_PER_CALL} lines per call reached; further lines dropped"
                );
            }
            return give_way(self.turn).await;
        }
        match self.plugin.log_budget.take(self.plugin.limits.log_lines_per_second) {
            Verdict::Write => {}
            Verdict::Drop { report: None } => return give_way(self.turn).await,
            Verdict::Drop { report: Some(dropped) } => {
                tracing::warn!(
                    target: "corral::guest",
                    plugin = %self.plugin.name,
                    "log budget of {} lines a second spent; {dropped} lines dropped since the last report \
                     (raise limits.log_lines_per_second in {})",
                    self.plugin.limits.log_lines_per_second,
                    self.plugin.sidecar,
                );
                return;
            }
        }
        if let Some(turn) = self.turn {
            // Writing a line costs the host more than the guest's fuel says.
            turn.wait_if_long().await;
        }
        let message = cut(&message, MAX_MESSAGE_BYTES);
        let fields = Fields(&fields);
        let plugin = &self.plugin.name;
        let version = &self.plugin.version;
        let call = self.call;
        let (request_id, tenant, correlation_id) = (&call.request_id, &call.tenant, &call.correlation_id);
        let trace_id = call.trace_id().unwrap_or_default();
        macro_rules! line {
            ($macro:ident) => {
                tracing::$macro!(
                    target: "corral::guest",
                    plugin = %plugin,
                    version = %version,
                    request_id = %request_id,
                    tenant = %tenant,
                    correlation_id = %correlation_id,
                    trace_id = %trace_id,
                    fields = %fields,
                    "{message}"
                )
            };
        }
        match level {
            Level::Trace => line!(trace),
            Level::Debug => line!(debug),
            Level::Info => line!(info),
            Level::Warn => line!(warn),
            Level::Error => line!(error),
        }
    }
}

/// After a dropped line: a flood of them is cheap for the host but not
/// free, so a call over its budget runs on only with a long-call permit
/// (`fair`), and each line gives the core to whatever else is waiting
/// (another plugin's request, the accept loop) before the guest goes on.
/// With it a flooding neighbour keeps one core at most (`just
/// bench-isolation`).
async fn give_way(turn: Option<&Turn>) {
    match turn {
        Some(turn) => turn.give_way().await,
        None => tokio::task::yield_now().await,
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Renders guest fields as `key=value` pairs, at most [`MAX_FIELDS_BYTES`]
/// of them (names cut at [`MAX_KEY_BYTES`], values at [`MAX_VALUE_BYTES`]);
/// the fields past that are left out and counted.
struct Fields<'a>(&'a [(String, String)]);

impl fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = 0;
        for (i, (key, value)) in self.0.iter().enumerate() {
            let pair = format!("{}={:?}", cut(key, MAX_KEY_BYTES), cut(value, MAX_VALUE_BYTES));
            let separator = usize::from(i > 0);
            if written + separator + pair.len() > MAX_FIELDS_BYTES {
                let space = if i > 0 { " " } else { "" };
                return write!(f, "{space}({} more fields left out)", self.0.len() - i);
            }
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&pair)?;
            written += separator + pair.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bounded_and_what_is_left_out_is_counted() {
        let few = vec![("a".to_string(), "1".to_string()), ("b".to_string(), "x y".to_string())];
        assert_eq!(Fields(&few).to_string(), "a=\"1\" b=\"x y\"");
        let many: Vec<(String, String)> = (0..10_000).map(|i| (format!("k{i}"), "v".repeat(100))).collect();
        let rendered = Fields(&many).to_string();
        assert!(rendered.len() <= MAX_FIELDS_BYTES + 40, "{} bytes", rendered.len());
        assert!(rendered.ends_with("more fields left out)"), "{}", &rendered[rendered.len() - 60..]);
        let huge = vec![("k".repeat(100_000), "v".repeat(100_000))];
        let cut_short = Fields(&huge).to_string();
        assert_eq!(cut_short, format!("{}={:?}", "k".repeat(MAX_KEY_BYTES), "v".repeat(MAX_VALUE_BYTES)));
    }

    #[test]
    fn cuts_on_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn renders_fields() {
        let fields = vec![("a".to_string(), "1".to_string()), ("b".to_string(), "x y".to_string())];
        assert_eq!(Fields(&fields).to_string(), r#"a="1" b="x y""#);
    }
}
