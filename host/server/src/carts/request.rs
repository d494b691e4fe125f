//! What callers send a cart and get back: [`MutateRequest`], [`CartReply`],
//! and [`CartError`] shaped by what the HTTP, gRPC and import front ends
//! answer.

use corral_runtime::InvokeError;

use corral_schemas::Violation;

/// A mutation as a caller sends it.
#[derive(Debug, Clone, Default)]
pub struct MutateRequest {
    /// One of the plugin's mutation kinds.
    pub kind: String,
    /// The mutation body.
    pub payload: Vec<u8>,
    /// Idempotency id; a repeat returns the recorded result.
    pub client_id: Option<String>,
    /// W3C traceparent, carried into the outbox events.
    pub traceparent: Option<String>,
    /// Another node of the cluster sent this call here (it is served here,
    /// never forwarded again).
    pub forwarded: bool,
    /// How the call reached this node.
    pub transport: Transport,
}

/// How a cart call reached the node that serves it (the `transport` label
/// of `corral_cart_mutations_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// `POST /carts/PLUGIN/ID`.
    #[default]
    Http,
    /// `corral.cart.v1.CartActor/Mutate`.
    Grpc,
    /// A plugin's `carts` import.
    Import,
    /// Forwarded by another node of the cluster to this cart's owner.
    Forwarded,
}

impl Transport {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Grpc => "grpc",
            Transport::Import => "import",
            Transport::Forwarded => "forwarded",
        }
    }
}

/// A cart's state as returned to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartReply {
    /// Mutations applied so far.
    pub version: u64,
    /// The state (none before the first mutation).
    pub state: Option<Vec<u8>>,
    /// Sequences of the events this mutation published.
    pub events: Vec<u64>,
    /// True when a repeated client id was answered from the record.
    pub repeated: bool,
}

/// Why a cart call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CartError {
    /// No cart plugin has that name.
    #[error("no cart plugin named {plugin:?}")]
    UnknownPlugin {
        /// The name asked for.
        plugin: String,
    },
    /// The plugin does not declare the mutation kind.
    #[error("cart plugin {plugin} has no mutation kind {kind:?}; it accepts: {}", declared.join(", "))]
    UnknownKind {
        /// Plugin.
        plugin: String,
        /// The kind asked for.
        kind: String,
        /// The kinds it declares.
        declared: Vec<String>,
    },
    /// The request itself is malformed (bad id, bad body).
    #[error("{0}")]
    Invalid(String),
    /// The mutation's payload does not match its kind's declared schema;
    /// refused before it was queued.
    #[error("the {kind} mutation's payload {violation}")]
    InvalidPayload {
        /// Plugin.
        plugin: String,
        /// The mutation kind.
        kind: String,
        /// What did not match.
        violation: Box<Violation>,
    },
    /// The plugin refused the mutation; nothing changed.
    #[error("cart plugin {plugin} rejected the mutation: {code}: {message}")]
    Rejected {
        /// Plugin.
        plugin: String,
        /// The guest's code.
        code: String,
        /// The guest's message.
        message: String,
    },
    /// The plugin failed (trap, fuel, timeout, busy); nothing changed.
    #[error(transparent)]
    Failed(InvokeError),
    /// The plugin's new state or an event of its outcome does not match
    /// the schema declared for it: the plugin's fault; nothing changed.
    #[error("cart plugin {plugin} returned an outcome that {violation}; fix the plugin (or its declared schema)")]
    Mismatch {
        /// Plugin.
        plugin: String,
        /// What did not match.
        violation: Box<Violation>,
    },
    /// Replaying the journal did not reproduce the recorded state: the
    /// plugin is not deterministic, or not the version that wrote it.
    #[error(
        "cart {cart} of plugin {plugin}: replaying version {version} did not reproduce the recorded state ({detail}); \
         the cart is not served until this is resolved (see `host cart verify {plugin} {cart}`)"
    )]
    Diverged {
        /// Plugin.
        plugin: String,
        /// Cart id.
        cart: String,
        /// The journal entry that diverged.
        version: u64,
        /// What differed.
        detail: String,
    },
    /// Storage failed; the mutation was not acknowledged.
    #[error("cart storage failed: {0}")]
    Storage(String),
    /// The cart's mailbox already holds its most queued commands; nothing
    /// was queued. Retry shortly.
    #[error(
        "cart {cart} of plugin {plugin} already has {max} commands queued (the plugin's [cart] max_queue, else --cart-max-queued); retry shortly"
    )]
    Overloaded {
        /// Plugin.
        plugin: String,
        /// Cart id.
        cart: String,
        /// The cap.
        max: usize,
    },
    /// The cluster's journal takes no more commits right now (too many in
    /// flight); nothing was written. Retry shortly.
    #[error("cart {cart} of plugin {plugin}: the cluster's journal is busy ({detail}); retry shortly")]
    Busy {
        /// Plugin.
        plugin: String,
        /// Cart id.
        cart: String,
        /// The journal's answer.
        detail: String,
    },
    /// Another node owns the cart; a call already forwarded once is not
    /// forwarded again. Nothing was applied: retry (any node).
    #[error("cart {cart} of plugin {plugin} is owned by node {node} now; retry")]
    Elsewhere {
        /// Plugin.
        plugin: String,
        /// Cart id.
        cart: String,
        /// The owning node.
        node: String,
    },
    /// This node lost the cart to another while the call was queued (its
    /// lease expired, or the journal moved on without it). Nothing was
    /// applied: retry (any node).
    #[error("cart {cart} of plugin {plugin} moved to another node while the call waited ({detail}); retry")]
    Moved {
        /// Plugin.
        plugin: String,
        /// Cart id.
        cart: String,
        /// Why.
        detail: String,
    },
    /// The owning node answered a forwarded call with an error.
    #[error("node {node} (the cart's owner) answered: {message}")]
    Forwarded {
        /// The owner.
        node: String,
        /// Its gRPC status code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
}

impl CartError {
    /// A short stable label for metrics and JSON bodies.
    pub fn label(&self) -> &'static str {
        match self {
            CartError::UnknownPlugin { .. } => "unknown_plugin",
            CartError::UnknownKind { .. } => "unknown_kind",
            CartError::Invalid(_) => "invalid_request",
            CartError::InvalidPayload { .. } => "schema_mismatch",
            CartError::Rejected { .. } => "rejected",
            CartError::Failed(error) => error.kind.label(),
            CartError::Mismatch { .. } => "schema_mismatch",
            CartError::Diverged { .. } => "diverged",
            CartError::Storage(_) => "storage",
            CartError::Overloaded { .. } => "overloaded",
            CartError::Busy { .. } => "busy",
            CartError::Elsewhere { .. } | CartError::Moved { .. } => "moved",
            CartError::Forwarded { .. } => "forwarded",
        }
    }
}

impl CartError {
    /// Whether nothing was applied because the cart is (or just went)
    /// elsewhere: the call is routed again, at once.
    pub(crate) fn is_moved(&self) -> bool {
        match self {
            CartError::Elsewhere { .. } | CartError::Moved { .. } => true,
            CartError::Forwarded { code, .. } => *code == tonic::Code::Aborted,
            _ => false,
        }
    }

    /// Whether the call may simply be sent again (nothing was applied, and
    /// the obstacle is passing): front ends answer 503 with a retry hint.
    pub fn is_retryable(&self) -> bool {
        match self {
            CartError::Overloaded { .. }
            | CartError::Busy { .. }
            | CartError::Elsewhere { .. }
            | CartError::Moved { .. }
            | CartError::Storage(_) => true,
            CartError::Forwarded { code, .. } => {
                matches!(code, tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Aborted)
            }
            _ => false,
        }
    }
}
