//! Relaying the node's own log into the cluster's stream: events committed
//! to the node's LMDB while it was in the cluster but before carts moved
//! into JetStream (a cart's outbox, committed with its journal entry) are
//! published keeping their ids, so a repeat after a crash is stored once.
//! Carts now commit their outbox events in the stream itself (one atomic
//! batch with the journal entry), so on a node that never ran an earlier
//! version the relay finds nothing. Its position is a checkpoint in the
//! node's LMDB.

use std::sync::Arc;
use std::time::Duration;

use corral_storage::stream;
use tokio::sync::watch;

use crate::events::jetstream::ClusterStream;
use crate::events::stream::EventStream;
use crate::shutdown::pause;

/// The local consumer whose checkpoint is the relay's position.
const CONSUMER: &str = "relay.cluster";
/// Events relayed in one publish.
const BATCH: usize = 256;

/// Relays until `stop`.
pub(crate) async fn run(log: Arc<stream::Embedded>, shared: Arc<ClusterStream>, mut stop: watch::Receiver<bool>) {
    'resume: loop {
        if *stop.borrow() {
            return;
        }
        let opened = match log.checkpoint(CONSUMER).await {
            Ok(checkpoint) => log.reader(&[">".to_string()], checkpoint.sequence).map(|reader| (checkpoint, reader)),
            Err(error) => Err(error),
        };
        let (mut checkpoint, mut reader) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                tracing::error!("the outbox relay cannot read the node's log: {error}");
                if pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        loop {
            let events = tokio::select! {
                events = reader.next(BATCH, Duration::from_secs(5)) => events,
                _ = stop.changed() => return,
            };
            let events = match events {
                Ok(events) if events.is_empty() => continue,
                Ok(events) => events,
                Err(error) => {
                    tracing::error!("the outbox relay cannot read the node's log: {error}");
                    continue 'resume;
                }
            };
            let last = events.last().map_or(checkpoint.sequence, |e| e.sequence);
            let relayed = match shared.relay(&events).await {
                Ok(_) => log.ack(&mut checkpoint, last).await,
                Err(error) => Err(error),
            };
            if let Err(error) = relayed {
                tracing::warn!(
                    pending = events.len(),
                    "relaying outbox events to the cluster failed, retrying: {error}"
                );
                if pause(&mut stop, Duration::from_secs(1)).await {
                    return;
                }
                continue 'resume;
            }
        }
    }
}
