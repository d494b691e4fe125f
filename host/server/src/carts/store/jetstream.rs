//! Carts in the cluster's stream. A cart's journal is the subject
//! `cj.<plugin>.<tenant>.<cart>`: one message per mailbox round, holding
//! that round's entries. A round commits as one atomic batch: the journal
//! message expecting the subject's last sequence (the position the owner
//! loaded, so a stale owner is refused), a record per client id on
//! `ci.<plugin>.<tenant>.<cart>.<id>` expecting the subject to be empty
//! (a client id is applied once, for as long as the stream keeps it, not
//! only within a duplicate window), then the outbox events on `ev.<topic>`.
//! A batch is stored at contiguous sequences, so where each event lands is
//! known relative to the journal message before it is sent.
//!
//! Snapshots go to the snapshots bucket after the commit: advisory, a cart
//! loads from its latest snapshot and the journal messages after the
//! position the snapshot names. A commit whose answer does not come in time
//! is resolved by reading, from the stream leader, the journal message that
//! follows the position it expected: this round's, another's (fenced), or
//! none yet (unknown: the callers are told so, the cart is reloaded).

use std::time::Duration;

use bytes::Bytes;
use corral_cluster::events::OutEvent;
use corral_cluster::journal::{BatchMessage, MAX_BATCH, StoredMessage};
use corral_cluster::names::{escape_token, unescape_token};
use corral_cluster::{BatchError, Cluster, ClusterError};
use corral_storage::carts::{Applied, CartCommit, CartKey, JournalEntry, Recorded, Snapshot, Stored};
use tokio::sync::Semaphore;

use crate::carts::store::codec::{
    self, decode_record, decode_round, decode_snapshot, encode_record, encode_round, encode_snapshot,
};
use crate::carts::store::{Admit, Budget, CartStore, Loaded, StoreError};

/// Names the round a journal message came from, to resolve a timeout.
const HEADER_ROUND: &str = "Corral-Round";
/// The writer's tenure (its lease revision on the cart).
const HEADER_EPOCH: &str = "Corral-Epoch";
/// The writing node.
const HEADER_NODE: &str = "Corral-Node";
/// Most journal messages read to load a cart (its tail after the snapshot).
const MAX_TAIL: usize = 1_000_000;
/// Most commits (atomic batches) in flight from this node at once. The
/// stream takes 50 open batches from all nodes together unless its servers
/// raise `jetstream { limits { batch { max_inflight_per_stream } } }`.
const MAX_INFLIGHT: usize = 32;
/// Bytes kept free in each message for its headers and framing.
const MESSAGE_HEADROOM: usize = 4096;
/// How long a round waits for a commit slot before it is refused as busy.
const SLOT_WAIT: Duration = Duration::from_secs(1);

/// Carts' journals in the cluster's stream.
pub(crate) struct StreamCarts {
    cluster: Cluster,
    inflight: Semaphore,
    /// The largest message the server takes (its `max_payload`).
    max_message_bytes: usize,
}

impl StreamCarts {
    /// Journals in `cluster`'s stream.
    pub(crate) fn new(cluster: Cluster) -> StreamCarts {
        let max_message_bytes = cluster.max_payload();
        StreamCarts { cluster, inflight: Semaphore::new(MAX_INFLIGHT), max_message_bytes }
    }
}

/// One subject token per part; the empty string (the default tenant) is
/// `=`, which no escaped string is.
fn part(raw: &str) -> String {
    if raw.is_empty() { "=".to_string() } else { escape_token(raw) }
}

/// `<plugin>.<tenant>.<cart>`, escaped.
fn cart_token(key: &CartKey) -> String {
    format!("{}.{}.{}", part(&key.plugin), part(&key.tenant), part(&key.cart))
}

fn journal_subject(key: &CartKey) -> String {
    format!("cj.{}", cart_token(key))
}

fn record_subject(key: &CartKey, id: &str) -> String {
    format!("ci.{}.{}", cart_token(key), part(id))
}

/// The snapshot's key: a digest, since a cart's names can be longer than a key.
fn snapshot_key(key: &CartKey) -> String {
    blake3::hash(cart_token(key).as_bytes()).to_hex().to_string()
}

fn unavailable(error: ClusterError) -> StoreError {
    StoreError::Failed(error.to_string())
}

#[async_trait::async_trait]
impl CartStore for StreamCarts {
    async fn load(&self, key: &CartKey) -> Result<Loaded, StoreError> {
        let snapshot = self.snapshot(key).await?;
        let (after_version, after_position) = snapshot.as_ref().map_or((0, 0), |(s, position)| (s.version, *position));
        let (entries, tail) = self.entries(key, after_position + 1).await?;
        let entries: Vec<JournalEntry> = entries.into_iter().filter(|e| e.version > after_version).collect();
        // Who wrote last: the tail read, else the message the snapshot covers.
        let tail = match (tail, snapshot.is_some()) {
            (Some(tail), _) => Some(tail),
            (None, true) => self.cluster.journal().last(&journal_subject(key)).await.map_err(unavailable)?,
            (None, false) => None,
        };
        let position = tail.as_ref().map_or(0, |m| m.sequence).max(after_position);
        let writer = tail.as_ref().and_then(|m| header(m, HEADER_NODE)).and_then(unescape_token);
        Ok(Loaded { stored: Stored { snapshot: snapshot.map(|(s, _)| s), entries }, position, writer })
    }

    async fn recorded(&self, key: &CartKey, id: &str) -> Result<Option<Recorded>, StoreError> {
        let subject = record_subject(key, id);
        match self.cluster.journal().last(&subject).await.map_err(unavailable)? {
            Some(message) => decode_record(&message).map(Some),
            None => Ok(None),
        }
    }

    async fn commit(&self, mut commit: CartCommit, position: u64, epoch: u64) -> Result<(CartCommit, u64), StoreError> {
        let round = format!("{:032x}", rand::random::<u128>());
        let subject = journal_subject(&commit.key);
        let (messages, offsets) = batch(&commit, &subject, &round, position, epoch, &self.cluster.options().node_id);
        let journal = self.cluster.journal();
        let Ok(Ok(_slot)) = tokio::time::timeout(SLOT_WAIT, self.inflight.acquire()).await else {
            return Err(StoreError::Busy(format!(
                "{MAX_INFLIGHT} commits of this node are in flight and none finished within {SLOT_WAIT:?}"
            )));
        };
        let first = match journal.atomic_publish(messages).await {
            Ok(ack) => ack.first_sequence,
            Err(BatchError::WrongLastSequence(cause)) => {
                return Err(StoreError::Fenced(format!(
                    "the journal of cart {} moved past sequence {position}: another node owns it now ({cause})",
                    commit.key.cart
                )));
            }
            Err(BatchError::TooManyInflight(cause)) => {
                return Err(StoreError::Busy(format!(
                    "{cause}; raise jetstream {{ limits {{ batch {{ max_inflight_per_stream }} }} }} on the nats-servers"
                )));
            }
            // Only one batch can follow `position`: the journal's next
            // message says whether it was this round.
            Err(BatchError::Timeout(waited)) => match journal.read_from(&subject, position + 1, 1).await {
                Ok(next) if next.first().is_some_and(|m| header(m, HEADER_ROUND) == Some(round.as_str())) => {
                    next[0].sequence
                }
                Ok(next) if !next.is_empty() => {
                    return Err(StoreError::Fenced(format!(
                        "no answer to the commit within {waited:?}, and another round follows sequence {position}: \
                         another node owns the cart now"
                    )));
                }
                outcome => {
                    let read = outcome.err().map_or_else(|| "nothing follows it yet".to_string(), |e| e.to_string());
                    return Err(StoreError::Failed(format!(
                        "no answer to the commit within {waited:?} and the journal after sequence {position} does \
                         not tell ({read}): the outcome is unknown; retry with the same client id"
                    )));
                }
            },
            Err(error) => return Err(StoreError::Failed(error.to_string())),
        };
        for (applied, offsets) in commit.applied.iter_mut().zip(offsets) {
            applied.entry.events = offsets.into_iter().map(|offset| first + offset).collect();
        }
        // The snapshot is not part of the batch: the mailbox keeps it
        // (`keep_snapshot`) once its callers are answered.
        Ok((commit, first))
    }

    async fn keep_snapshot(&self, key: &CartKey, snapshot: Snapshot, position: u64) -> Result<(), StoreError> {
        let value = encode_snapshot(&snapshot, position);
        self.cluster.snapshots().put(&snapshot_key(key), &value).await.map_err(unavailable)?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "jetstream"
    }

    async fn journal(&self, key: &CartKey) -> Result<(Vec<JournalEntry>, Option<Snapshot>), StoreError> {
        let (entries, _) = self.entries(key, 1).await?;
        let snapshot = self.snapshot(key).await?.map(|(snapshot, _)| snapshot);
        Ok((entries, snapshot))
    }

    fn admit(&self, used: &mut Budget, applied: &Applied) -> Admit {
        let events = applied.outbox.len();
        let messages = usize::from(applied.client_id) + events;
        let entry = codec::entry_len(&applied.entry, events);
        let limit = self.max_message_bytes;
        let record = if applied.client_id { codec::record_len(applied.state.len(), events) } else { 0 };
        let event = applied.outbox.iter().map(|e| e.payload.len() + e.topic.len()).max().unwrap_or(0);
        if 1 + messages > MAX_BATCH {
            return Admit::Never(format!(
                "the mutation publishes {events} events; a cart's commit in a cluster holds at most {}",
                MAX_BATCH - 2
            ));
        }
        if let Some((what, size)) =
            [("its journal entry", entry), ("the state it records", record), ("an event", event)]
                .into_iter()
                .find(|(_, size)| *size + MESSAGE_HEADROOM > limit)
        {
            return Admit::Never(format!(
                "{what} is {size} bytes; a message to the cluster's NATS holds at most {limit} (its max_payload)"
            ));
        }
        if used.messages + 1 + messages > MAX_BATCH || used.bytes + entry + MESSAGE_HEADROOM > limit {
            return Admit::NextRound;
        }
        used.messages += messages;
        used.bytes += entry;
        Admit::Fits
    }
}

impl StreamCarts {
    /// The latest snapshot and the journal position it was taken at.
    async fn snapshot(&self, key: &CartKey) -> Result<Option<(Snapshot, u64)>, StoreError> {
        let stored = self.cluster.snapshots().get_latest(&snapshot_key(key)).await.map_err(unavailable)?;
        stored.map(|bytes| decode_snapshot(&bytes)).transpose()
    }

    /// The journal's entries from sequence `from`, and its last message
    /// (none when there is none from `from` on).
    async fn entries(
        &self,
        key: &CartKey,
        from: u64,
    ) -> Result<(Vec<JournalEntry>, Option<StoredMessage>), StoreError> {
        let subject = journal_subject(key);
        let mut messages = self.cluster.journal().read_from(&subject, from, MAX_TAIL).await.map_err(unavailable)?;
        let mut entries = Vec::new();
        for message in &messages {
            entries.extend(decode_round(message)?);
        }
        Ok((entries, messages.pop()))
    }
}

/// The round's batch, and each mutation's event offsets from the journal
/// message (its first message).
fn batch(
    commit: &CartCommit,
    subject: &str,
    round: &str,
    position: u64,
    epoch: u64,
    node: &str,
) -> (Vec<BatchMessage>, Vec<Vec<u64>>) {
    let records = commit.applied.iter().filter(|a| a.client_id).count() as u64;
    let mut next_event = 1 + records;
    let offsets: Vec<Vec<u64>> = commit
        .applied
        .iter()
        .map(|applied| {
            let first = next_event;
            next_event += applied.outbox.len() as u64;
            (first..next_event).collect()
        })
        .collect();
    let mut messages = Vec::with_capacity(next_event as usize);
    let journal = BatchMessage::new(subject, encode_round(commit, &offsets))
        .expect_last_subject_sequence(position)
        .header(HEADER_ROUND, round)
        .header(HEADER_EPOCH, epoch.to_string())
        .header(HEADER_NODE, corral_cluster::names::escape_token(node));
    messages.push(journal);
    for (applied, offsets) in commit.applied.iter().zip(&offsets) {
        if applied.client_id {
            let at = messages.len() as u64;
            let relative: Vec<u64> = offsets.iter().map(|offset| offset - at).collect();
            let record = Recorded { version: applied.entry.version, state: applied.state.clone(), events: relative };
            let message = BatchMessage::new(record_subject(&commit.key, &applied.entry.id), encode_record(&record))
                .expect_last_subject_sequence(0);
            messages.push(message);
        }
    }
    for applied in &commit.applied {
        for record in &applied.outbox {
            messages.push(BatchMessage::event(&OutEvent {
                id: format!("{:032x}", rand::random::<u128>()),
                topic: record.topic.clone(),
                tenant: record.tenant.clone(),
                correlation_id: record.correlation_id.clone(),
                traceparent: record.traceparent.clone(),
                source: record.source.clone(),
                timestamp_ms: applied.entry.timestamp_ms,
                payload: Bytes::from(record.payload.clone()),
            }));
        }
    }
    (messages, offsets)
}

fn header<'a>(message: &'a StoredMessage, name: &str) -> Option<&'a str> {
    message.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use corral_cluster::ClusterOptions;
    use corral_storage::carts::Applied;
    use corral_storage::log::NewRecord;
    use corral_test_support::nats::NatsCluster;

    use super::*;

    fn applied(version: u64, id: &str, client_id: bool, events: usize) -> Applied {
        let state = format!("state-{version}").into_bytes();
        let outbox = (0..events)
            .map(|i| NewRecord {
                topic: "cart.changed".into(),
                tenant: String::new(),
                correlation_id: id.into(),
                traceparent: None,
                source: "shop".into(),
                payload: format!("{version}/{i}").into_bytes(),
            })
            .collect();
        Applied {
            entry: JournalEntry {
                version,
                id: id.into(),
                kind: "add".into(),
                timestamp_ms: 1000 + version,
                payload: vec![version as u8],
                state_digest: *blake3::hash(&state).as_bytes(),
                applied_by: "1.0.0".into(),
                events: Vec::new(),
            },
            state,
            client_id,
            outbox,
        }
    }

    /// Two owners of one cart in turn, as after a takeover: the one whose
    /// position is stale is refused and writes nothing; records, events and
    /// snapshots land with the entries and load back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_owner_is_fenced_and_what_lands_loads_back() {
        let nats = tokio::task::spawn_blocking(|| NatsCluster::start(1)).await.unwrap();
        let connect = |node: &str| Cluster::connect(ClusterOptions::new(nats.urls(), "fence", node));
        let (first, second) =
            (StreamCarts::new(connect("a").await.unwrap()), StreamCarts::new(connect("b").await.unwrap()));
        let cart = key("t1", "c.1");
        let commit =
            |applied: Vec<Applied>, snapshot: Option<Snapshot>| CartCommit { key: cart.clone(), applied, snapshot };

        let loaded = first.load(&cart).await.unwrap();
        assert_eq!((loaded.position, loaded.stored.entries.len()), (0, 0));
        let (done, p1) = first.commit(commit(vec![applied(1, "m1", true, 2)], None), 0, 7).await.unwrap();
        assert_eq!(done.applied[0].entry.events, [p1 + 2, p1 + 3], "journal, record, then the events");

        // The second owner takes over and appends; the first, still at p1, is fenced.
        let taken = second.load(&cart).await.unwrap();
        assert_eq!((taken.position, taken.stored.entries.len()), (p1, 1));
        let snapshot = Snapshot { version: 2, state: b"state-2".to_vec() };
        let (_, p2) =
            second.commit(commit(vec![applied(2, "m2", false, 1)], Some(snapshot.clone())), p1, 9).await.unwrap();
        second.keep_snapshot(&cart, snapshot.clone(), p2).await.unwrap();
        let stale = first.commit(commit(vec![applied(2, "m3", true, 1)], None), p1, 7).await;
        assert!(matches!(stale, Err(StoreError::Fenced(_))), "{:?}", stale.map(|(_, p)| p));
        assert_eq!(first.recorded(&cart, "m3").await.unwrap(), None, "the fenced round's record was not written");

        // A client id is applied once: a second record for it refuses the round.
        let repeat = second.commit(commit(vec![applied(3, "m1", true, 0)], None), p2, 9).await;
        assert!(matches!(repeat, Err(StoreError::Fenced(_))), "{:?}", repeat.map(|(_, p)| p));
        let recorded = first.recorded(&cart, "m1").await.unwrap().unwrap();
        assert_eq!((recorded.version, recorded.events), (1, vec![p1 + 2, p1 + 3]));

        // Loading starts at the snapshot; the whole journal has both entries.
        let reloaded = first.load(&cart).await.unwrap();
        assert_eq!(
            (reloaded.position, reloaded.stored.snapshot, reloaded.stored.entries.len()),
            (p2, Some(snapshot.clone()), 0)
        );
        let (entries, latest) = first.journal(&cart).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(latest, Some(snapshot));
        // Another cart with a similar name is apart.
        assert_eq!(first.load(&key("t1", "c")).await.unwrap().position, 0);

        // A round stops before its journal message outgrows what the
        // server takes; a mutation no message could hold is refused.
        let limit = first.max_message_bytes;
        let mut big = applied(4, "m4", true, 1);
        big.entry.payload = vec![b'0'; limit / 2];
        let mut used = Budget::default();
        assert!(matches!(first.admit(&mut used, &big), Admit::Fits));
        assert_eq!(used.messages, 2, "a record and an event besides the journal message");
        assert!(matches!(first.admit(&mut used, &big), Admit::NextRound));
        big.entry.payload = vec![b'0'; limit];
        let refused = first.admit(&mut Budget::default(), &big);
        assert!(matches!(&refused, Admit::Never(reason) if reason.contains("journal entry")), "{refused:?}");
        big.entry.payload.clear();
        big.state = vec![b'0'; limit];
        let refused = first.admit(&mut Budget::default(), &big);
        assert!(matches!(&refused, Admit::Never(reason) if reason.contains("the state it records")), "{refused:?}");
        let many = applied(4, "m4", false, MAX_BATCH);
        assert!(matches!(first.admit(&mut Budget::default(), &many), Admit::Never(_)));
    }

    fn key(tenant: &str, cart: &str) -> CartKey {
        CartKey { tenant: tenant.into(), plugin: "shop".into(), cart: cart.into() }
    }

    #[test]
    fn subjects_keep_carts_apart_and_inside_the_stream() {
        assert_eq!(journal_subject(&key("", "c1")), "cj.shop.=.c1");
        assert_eq!(journal_subject(&key("t1", "a.b")), "cj.shop.t1.a=2Eb");
        assert_ne!(journal_subject(&key("=", "c")), journal_subject(&key("", "c")));
        assert_eq!(record_subject(&key("t", "c"), "id 1"), "ci.shop.t.c.id=201");
        assert_ne!(snapshot_key(&key("a", "b")), snapshot_key(&key("", "b")));
    }
}
