//! Why a version was not deployed ([`DeployError`]), by the step that
//! refused it. The admin API answers each with its own status and label;
//! the folder watcher logs it; `GET /plugins` shows it beside the version
//! that keeps serving.

use std::path::{Path, PathBuf};

use corral_runtime::LoadError;

/// Why a version was refused; the one serving keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Not a component this host runs: not WebAssembly, a core module,
    /// invalid, exporting no world (or several), or built against another
    /// version of `corral:plugin`.
    #[error(transparent)]
    NotAComponent(LoadError),
    /// A component of a known world that imports more than its world provides.
    #[error(transparent)]
    WrongWorld(LoadError),
    /// `describe()` trapped or failed.
    #[error(transparent)]
    DescribeFailed(LoadError),
    /// `describe()` returned what the world cannot serve (a bad name, route,
    /// topic or schedule; a cart without mutation kinds).
    #[error("{path}: {reason}")]
    Descriptor {
        /// The component file.
        path: PathBuf,
        /// The field and what it must be.
        reason: String,
    },
    /// The sidecar does not parse, has an unknown key or a bad value, or
    /// grants what this plugin's world cannot use.
    #[error("{path}: {reason}")]
    Sidecar {
        /// The sidecar file.
        path: PathBuf,
        /// What is wrong, and the fix.
        reason: String,
    },
    /// Its name or a route clashes with another served plugin's.
    #[error("{path}: {reason}")]
    Conflict {
        /// The component file.
        path: PathBuf,
        /// Which name or route, and whose.
        reason: String,
    },
    /// The component's bytes do not hash to what was recorded for it (a
    /// corrupted or tampered artifact): it is not run.
    #[error(
        "{path}: content hash {actual} does not match the recorded {expected}; the artifact is corrupt or was tampered with: deploy the component again"
    )]
    HashMismatch {
        /// The component file.
        path: PathBuf,
        /// The hash recorded for it.
        expected: String,
        /// What its bytes hash to.
        actual: String,
    },
    /// There is no earlier version to roll back to.
    #[error("plugin {plugin} has no previous version to roll back to")]
    NoPrevious {
        /// The plugin file's stem.
        plugin: String,
    },
    /// Reading or writing the plugin's files failed.
    #[error("{path}: {reason}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

impl DeployError {
    /// A short stable label for JSON bodies, logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            DeployError::NotAComponent(_) => "not_a_component",
            DeployError::WrongWorld(_) => "wrong_world",
            DeployError::DescribeFailed(_) => "describe_failed",
            DeployError::Descriptor { .. } => "invalid_descriptor",
            DeployError::Sidecar { .. } => "invalid_sidecar",
            DeployError::Conflict { .. } => "conflict",
            DeployError::HashMismatch { .. } => "hash_mismatch",
            DeployError::NoPrevious { .. } => "no_previous_version",
            DeployError::Storage { .. } => "storage",
        }
    }

    /// Whether the version itself is at fault (a fix of the component or
    /// its sidecar is needed), as opposed to the host's files or the state.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, DeployError::NoPrevious { .. } | DeployError::Storage { .. })
    }

    /// An I/O failure on `path`.
    pub(crate) fn storage(path: &Path, error: impl std::fmt::Display) -> DeployError {
        DeployError::Storage { path: path.to_path_buf(), reason: error.to_string() }
    }
}

impl From<LoadError> for DeployError {
    fn from(error: LoadError) -> Self {
        match error {
            LoadError::Read { path, source } => DeployError::Storage { path, reason: source.to_string() },
            LoadError::Link { .. } => DeployError::WrongWorld(error),
            LoadError::Describe { .. } => DeployError::DescribeFailed(error),
            LoadError::Descriptor { path, reason } => DeployError::Descriptor { path, reason },
            LoadError::NotAComponent { .. }
            | LoadError::Compile { .. }
            | LoadError::UnknownWorld { .. }
            | LoadError::WrongVersion { .. }
            | LoadError::Ambiguous { .. } => DeployError::NotAComponent(error),
        }
    }
}
