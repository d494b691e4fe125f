//! The errors of loading and invoking plugins, shaped by what callers branch on.

use std::path::PathBuf;
use std::time::Duration;

/// Why a component could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read the file: {source}")]
    Read {
        /// The component file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component.
    #[error("{path}: {reason}")]
    NotAComponent {
        /// The component file.
        path: PathBuf,
        /// What the file is instead, and how to fix it.
        reason: String,
    },
    /// wasmtime rejected the component.
    #[error("{path}: the component does not compile: {reason}")]
    Compile {
        /// The component file.
        path: PathBuf,
        /// The compiler's message.
        reason: String,
    },
    /// The component exports none of the worlds this host runs.
    #[error(
        "{path}: the component targets no world this host runs (exports: {exports}); \
         export one of corral:plugin@0.1.x's worlds (route, event-handler, projection, cart) \
         or wasi:http/incoming-handler@0.2"
    )]
    UnknownWorld {
        /// The component file.
        path: PathBuf,
        /// What it exports, comma-separated.
        exports: String,
    },
    /// The component was built against another version of `corral:plugin`.
    #[error(
        "{path}: the component exports {export}, but this host implements corral:plugin@0.1.1 (and runs any 0.1.x); \
         rebuild it against this host's wit/"
    )]
    WrongVersion {
        /// The component file.
        path: PathBuf,
        /// The export with the other version.
        export: String,
    },
    /// The component exports the handlers of more than one world.
    #[error("{path}: the component exports the handlers of several worlds ({worlds}); a plugin is one world")]
    Ambiguous {
        /// The component file.
        path: PathBuf,
        /// The worlds found.
        worlds: String,
    },
    /// The component imports something its world does not provide.
    #[error("{path}: the {world} world cannot satisfy the component's imports: {reason}")]
    Link {
        /// The component file.
        path: PathBuf,
        /// The detected world.
        world: crate::World,
        /// wasmtime's message, naming the import.
        reason: String,
    },
    /// `describe()` trapped or failed.
    #[error("{path}: describe() failed: {reason}")]
    Describe {
        /// The component file.
        path: PathBuf,
        /// The trap, or why the call failed.
        reason: String,
    },
    /// `describe()` returned something the world cannot serve (a bad name,
    /// route pattern, topic or schedule; a cart without kinds).
    #[error("{path}: describe() returned an unusable descriptor: {reason}")]
    Descriptor {
        /// The component file.
        path: PathBuf,
        /// The invalid field and what it must be.
        reason: String,
    },
}

impl LoadError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            LoadError::Read { path, .. }
            | LoadError::NotAComponent { path, .. }
            | LoadError::Compile { path, .. }
            | LoadError::UnknownWorld { path, .. }
            | LoadError::WrongVersion { path, .. }
            | LoadError::Ambiguous { path, .. }
            | LoadError::Link { path, .. }
            | LoadError::Describe { path, .. }
            | LoadError::Descriptor { path, .. } => path,
        }
    }
}

/// A failed call: which plugin, which version, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin {plugin}@{version}: {kind}")]
pub struct InvokeError {
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// What went wrong; callers branch on this.
    pub kind: InvokeErrorKind,
}

/// The causes of a failed call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeErrorKind {
    /// The guest trapped (panic, `unreachable`, stack overflow, bad memory access).
    #[error("trapped: {0}")]
    Trap(String),
    /// The call used up its fuel budget.
    #[error("ran out of fuel (budget {budget})")]
    OutOfFuel {
        /// The budget the call had.
        budget: u64,
    },
    /// The call ran past its wall-clock deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The guest tried to grow its memory or tables past the limit.
    #[error("exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// The plugin already runs its maximum number of concurrent calls.
    #[error("is busy: {max} calls already in flight")]
    Busy {
        /// The concurrency cap.
        max: u32,
    },
    /// The guest returned an error on purpose.
    #[error("returned error {code}: {message}")]
    Guest {
        /// The guest's error code.
        code: String,
        /// The guest's message.
        message: String,
    },
    /// A route returned a body over the caller's cap; refused while it was
    /// lifted, before the host copied it.
    #[error("returned a response body of {bytes} bytes, over the limit of {limit}")]
    ResponseTooLarge {
        /// The body's length.
        bytes: u64,
        /// The cap.
        limit: u64,
    },
    /// The host could not run the call (e.g. the instance pool is exhausted).
    #[error("could not be run: {0}")]
    Host(String),
    /// The call succeeded but the events it queued with
    /// `publish-on-success` could not be appended; none is assumed
    /// published, so the caller retries the call.
    #[error("succeeded, but the events it queued could not be published (retry the call): {0}")]
    Unpublished(String),
}

impl InvokeErrorKind {
    /// A short stable label for metrics and JSON bodies.
    pub fn label(&self) -> &'static str {
        match self {
            InvokeErrorKind::Trap(_) => "trap",
            InvokeErrorKind::OutOfFuel { .. } => "out_of_fuel",
            InvokeErrorKind::Timeout(_) => "timeout",
            InvokeErrorKind::MemoryLimit { .. } => "memory_limit",
            InvokeErrorKind::Busy { .. } => "busy",
            InvokeErrorKind::Guest { .. } => "guest_error",
            InvokeErrorKind::Unpublished(_) => "unpublished",
            InvokeErrorKind::ResponseTooLarge { .. } => "response_too_large",
            InvokeErrorKind::Host(_) => "host",
        }
    }
}
