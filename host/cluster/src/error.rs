//! Errors, shaped by what callers do next: retry later
//! ([`ClusterError::Unavailable`]), give up a stale write
//! ([`ClusterError::Fenced`], [`ClusterError::LeaseLost`]), fix a call
//! ([`ClusterError::Invalid`]) or an operator's setup
//! ([`ClusterError::Unsupported`]). Atomic batches have their own
//! [`BatchError`], because a batch's outcome can also be unknown.
//!
//! Converting async-nats errors happens here only, so every message names
//! what was being done (stream, bucket, subject) and the cause.

use async_nats::jetstream::ErrorCode;

/// A cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// NATS could not be reached or did not answer in time (disconnected,
    /// timed out, no JetStream leader during an election). Retryable; the
    /// write may or may not have happened, so only idempotent writes
    /// (event ids, expected revisions) should be retried blindly.
    #[error("NATS unavailable while {what}: {cause}")]
    Unavailable {
        /// What was being done.
        what: String,
        /// Why it failed.
        cause: String,
    },
    /// A compare-and-set lost: the entry is no longer at the expected
    /// revision (or already exists, for a create). Nothing was written.
    #[error("{what} is fenced: it is no longer at revision {expected} (another writer moved it)")]
    Fenced {
        /// The entry.
        what: String,
        /// The revision the write expected (0: that the entry did not exist).
        expected: u64,
    },
    /// A lease renewal found the lease expired or taken over: the holder
    /// must stop the work the lease guarded.
    #[error("lease {lease} lost: it is no longer held at revision {revision}")]
    LeaseLost {
        /// The lease name.
        lease: String,
        /// The revision the holder last knew.
        revision: u64,
    },
    /// A name, key, subject or option the cluster cannot use.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// What was invalid.
        what: String,
        /// Why, and what would be valid.
        reason: String,
    },
    /// The NATS server lacks something Corral needs (too old, JetStream off).
    #[error("unsupported NATS server: {0}")]
    Unsupported(String),
    /// JetStream refused an operation for another reason (limits, config
    /// conflicts); its error code and description are in the message.
    #[error("JetStream refused {what}: {cause}")]
    Refused {
        /// What was being done.
        what: String,
        /// The server's answer.
        cause: String,
    },
    /// A stored record could not be decoded.
    #[error("corrupt record in {what}: {cause}")]
    Corrupt {
        /// Where the record was.
        what: String,
        /// What was wrong with it.
        cause: String,
    },
}

impl ClusterError {
    /// Whether retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ClusterError::Unavailable { .. })
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> ClusterError {
        ClusterError::Invalid { what: what.into(), reason: reason.into() }
    }

    pub(crate) fn unavailable(what: impl Into<String>, cause: impl ToString) -> ClusterError {
        ClusterError::Unavailable { what: what.into(), cause: cause.to_string() }
    }

    pub(crate) fn corrupt(what: impl Into<String>, cause: impl ToString) -> ClusterError {
        ClusterError::Corrupt { what: what.into(), cause: cause.to_string() }
    }

    /// Classifies an async-nats error by its text and source chain: its
    /// error kinds differ per operation, but all of them say "timed out",
    /// "no responders", "broken pipe" or carry a JetStream API error.
    pub(crate) fn from_nats(what: impl Into<String>, error: &(dyn std::error::Error + 'static)) -> ClusterError {
        let what = what.into();
        let cause = chain(error);
        if let Some(api) = api_error(error) {
            // 503: no quorum or leader right now (an election, servers down).
            let transient = api.code() == 503
                || matches!(
                    api.error_code(),
                    ErrorCode::CLUSTER_NOT_AVAILABLE | ErrorCode::CLUSTER_NO_PEERS | ErrorCode::CLUSTER_INCOMPLETE
                );
            return if transient {
                ClusterError::Unavailable { what, cause }
            } else {
                ClusterError::Refused { what, cause }
            };
        }
        ClusterError::Unavailable { what, cause }
    }
}

/// An atomic batch publish failed. Except for [`BatchError::Timeout`],
/// nothing of the batch was stored.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A message's expected last subject sequence did not hold (JetStream
    /// error 10071, or 10164 while another write to the subject was still
    /// replicating): another writer appended first. The whole batch was
    /// rejected; for a cart journal, ownership is lost. The server's
    /// description names the subject's actual last sequence but not which
    /// message's expectation failed.
    #[error("atomic batch rejected: an expected last subject sequence did not hold ({0})")]
    WrongLastSequence(String),
    /// A message id was already stored or repeats within the batch (10201):
    /// the whole batch was rejected.
    #[error("atomic batch rejected: duplicate message id ({0})")]
    Duplicate(String),
    /// The stream has as many open batches as the server allows (10210).
    /// Nothing was stored; retry after a pause.
    #[error("atomic batch rejected: too many batches in flight on the stream ({0})")]
    TooManyInflight(String),
    /// The batch never reached its commit (not connected, or the server
    /// abandoned it, e.g. on a leader change). Nothing was stored; retry.
    #[error("atomic batch not committed: {0}")]
    Unavailable(String),
    /// The commit was sent but no answer came in time: the batch may or may
    /// not be stored. Resolve by reading the subject's tail from the leader
    /// ([`Journal::last`](crate::journal::Journal::last)).
    #[error("atomic batch outcome unknown: no commit answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The batch is malformed (empty, too long, a subject outside the stream).
    #[error("invalid atomic batch: {0}")]
    Invalid(String),
    /// JetStream refused the batch for another reason (code and description).
    #[error("atomic batch rejected: {0}")]
    Other(String),
}

impl BatchError {
    /// Maps a JetStream API error answering a batch.
    pub(crate) fn from_api(error: &async_nats::jetstream::Error) -> BatchError {
        let cause = error.to_string();
        match error.error_code() {
            ErrorCode::STREAM_WRONG_LAST_SEQUENCE | ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT => {
                BatchError::WrongLastSequence(cause)
            }
            ErrorCode::ATOMIC_PUBLISH_CONTAINS_DUPLICATE_MESSAGE => BatchError::Duplicate(cause),
            ErrorCode::ATOMIC_PUBLISH_TOO_MANY_INFLIGHT => BatchError::TooManyInflight(cause),
            ErrorCode::ATOMIC_PUBLISH_INCOMPLETE_BATCH => BatchError::Unavailable(cause),
            _ => BatchError::Other(cause),
        }
    }
}

/// Whether JetStream refused a write because an expected last (subject)
/// sequence did not hold: 10071, or 10164 which a clustered stream answers
/// while another write to the subject is still being replicated.
pub(crate) fn is_wrong_last_sequence(error: &(dyn std::error::Error + 'static)) -> bool {
    api_error(error).is_some_and(|api| {
        matches!(
            api.error_code(),
            ErrorCode::STREAM_WRONG_LAST_SEQUENCE | ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
        )
    })
}

/// The JetStream API error in an error's source chain, if any.
pub(crate) fn api_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a async_nats::jetstream::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(api) = error.downcast_ref::<async_nats::jetstream::Error>() {
            return Some(api);
        }
        current = error.source();
    }
    None
}

/// An error and its sources, joined with ": ".
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(source) = current {
        let more = source.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        current = source.source();
    }
    text
}
