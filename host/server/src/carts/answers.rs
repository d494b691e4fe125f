//! Answering a mailbox round's callers: each command's [`Answer`] once the
//! round is committed ([`finish`]) or failed ([`fail`]), with the
//! mutations counted by plugin, transport and outcome and timed from
//! their arrival.

use std::time::Instant;

use corral_storage::carts::{Applied, CartKey};
use tokio::sync::oneshot;

use crate::carts::request::{CartError, CartReply, Transport};
use crate::metrics::CartMetrics;

type Reply = oneshot::Sender<Result<CartReply, CartError>>;

/// How a command of the round is answered, once the round is committed.
pub(super) enum Answer {
    /// Known already (a read, an error, a recorded result); a mutation's
    /// arrival (none for a read).
    Ready(Reply, Result<CartReply, CartError>, Option<Arrival>),
    /// The `n`th mutation applied in this round (`true`: a repeat of its
    /// client id within the round).
    Applied(Reply, usize, Arrival, bool),
}

/// When a mutation arrived, and how (for its latency and its count).
#[derive(Clone, Copy)]
pub(super) struct Arrival {
    pub(super) at: Instant,
    pub(super) transport: Transport,
}

/// Answers every caller of a committed round and records the metrics.
pub(super) fn finish(metrics: &CartMetrics, key: &CartKey, answers: Vec<Answer>, applied: &[Applied]) {
    let plugin = key.plugin.as_str();
    let latency = metrics.latency.with_label_values(&[plugin]);
    for answer in answers {
        let (reply, result, arrived, outcome) = match answer {
            Answer::Applied(reply, index, arrived, repeated) => {
                let Some(done) = applied.get(index) else { continue };
                let value = CartReply {
                    version: done.entry.version,
                    state: Some(done.state.clone()),
                    events: done.entry.events.clone(),
                    repeated,
                };
                (reply, Ok(value), Some(arrived), if repeated { "repeated" } else { "applied" })
            }
            Answer::Ready(reply, result, arrived) => {
                let outcome = match &result {
                    Ok(value) if value.repeated => "repeated",
                    Ok(_) => "read",
                    Err(CartError::Rejected { .. } | CartError::UnknownKind { .. } | CartError::Invalid(_)) => {
                        "rejected"
                    }
                    Err(_) => "failed",
                };
                (reply, result, arrived, outcome)
            }
        };
        if let Some(arrived) = arrived {
            latency.observe(arrived.at.elapsed().as_secs_f64());
            metrics.mutations.with_label_values(&[plugin, arrived.transport.label(), outcome]).inc();
        }
        let _ = reply.send(result);
    }
}

/// Answers every caller of a round whose commit failed: what was applied
/// gets `failed`, what was known already keeps its answer.
pub(super) fn fail(metrics: &CartMetrics, key: &CartKey, answers: Vec<Answer>, failed: &CartError) {
    for answer in answers {
        let (reply, result, arrival) = match answer {
            Answer::Ready(reply, Ok(_), arrival) => (reply, Err(failed.clone()), arrival),
            Answer::Applied(reply, _, arrival, _) => (reply, Err(failed.clone()), Some(arrival)),
            Answer::Ready(reply, result, arrival) => (reply, result, arrival),
        };
        if let Some(arrival) = arrival {
            let labels = [key.plugin.as_str(), arrival.transport.label(), "failed"];
            metrics.mutations.with_label_values(&labels).inc();
        }
        let _ = reply.send(result);
    }
}
