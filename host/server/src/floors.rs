//! What retention never trims past: the checkpoints of this node's
//! subscribers (shared in a cluster) and projections, in a cluster every
//! node's projections as they report them, and the consumers of removed
//! plugins until they are forgotten ([`Consumers`]).

use std::sync::Arc;

use corral_storage::Storage;

use crate::events::consumers::Consumers;
use crate::events::dispatch::Dispatch;
use crate::events::retention;
use crate::events::stream::{EventStream, StreamError};
use crate::node::Node;
use crate::projections::Projections;

/// The floors retention reads before each trim.
pub(crate) fn floors(
    dispatch: &Arc<Dispatch>,
    projections: &Arc<Projections>,
    stream: &Arc<dyn EventStream>,
    storage: &Storage,
    consumers: &Arc<Consumers>,
    node: Option<Arc<Node>>,
) -> retention::Floors {
    let (dispatch, projections, stream, storage, consumers) =
        (dispatch.clone(), projections.clone(), stream.clone(), storage.clone(), consumers.clone());
    Arc::new(move || {
        let (dispatch, projections, stream, storage, consumers, node) =
            (dispatch.clone(), projections.clone(), stream.clone(), storage.clone(), consumers.clone(), node.clone());
        Box::pin(async move {
            let unavailable = |e: corral_storage::StorageError| StreamError::Unavailable(e.to_string());
            let mut floors = Vec::new();
            let mut live = dispatch.consumers();
            for consumer in &live {
                floors.push(stream.checkpoint(consumer).await?.sequence);
            }
            for consumer in projections.consumers() {
                floors.push(storage.checkpoint(&consumer).map_err(unavailable)?);
                live.push(consumer);
            }
            for orphan in consumers.observe(&live).into_iter().filter(|orphan| !orphan.forgotten) {
                let checkpoint = match orphan.consumer.starts_with("handler.") {
                    true => stream.checkpoint(&orphan.consumer).await?.sequence,
                    false => storage.checkpoint(&orphan.consumer).map_err(unavailable)?,
                };
                // Nothing kept (a discarded generation, or nothing ever done).
                if checkpoint == 0 {
                    consumers.drop_record(&orphan.consumer);
                    continue;
                }
                floors.push(checkpoint);
            }
            if let Some(node) = node {
                floors.extend(node.reported_floors().await.map_err(|e| StreamError::Unavailable(e.to_string()))?);
            }
            Ok(floors)
        })
    })
}
