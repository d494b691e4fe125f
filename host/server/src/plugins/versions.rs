//! Every version served, kept by content hash in the data folder
//! (`versions/HASH.wasm`), so a rollback can put the previous component
//! back in the plugins folder and a restart keeps it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::plugins::deploy::DeployError;
use crate::plugins::mounted::Component;

/// The kept versions.
pub(crate) struct Versions {
    dir: PathBuf,
}

impl Versions {
    /// The versions kept under `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> anyhow::Result<Versions> {
        let dir = data_dir.join("versions");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Versions { dir })
    }

    /// Keeps a copy of `component` (written from the bytes that were
    /// loaded, so it is exactly the version served), unless kept already.
    pub(crate) fn keep(&self, component: &Component) {
        let kept = self.dir.join(format!("{}.wasm", component.hash));
        if kept.is_file() {
            return;
        }
        let staged = self.dir.join(format!(".{}.partial", component.hash));
        let written = std::fs::write(&staged, &component.bytes).and_then(|()| std::fs::rename(&staged, &kept));
        if let Err(error) = written {
            let _ = std::fs::remove_file(&staged);
            tracing::warn!(file = %component.path.display(), "cannot keep a copy for rollback: {error}");
        }
    }

    /// Puts the version `hash` back as `plugins/STEM.wasm` (atomically).
    pub(crate) fn restore(&self, hash: &str, plugins: &Path, stem: &str) -> Result<(), DeployError> {
        let kept = self.dir.join(format!("{hash}.wasm"));
        let staged = plugins.join(format!(".{stem}.wasm.rollback"));
        let target = plugins.join(format!("{stem}.wasm"));
        std::fs::copy(&kept, &staged).map_err(|error| DeployError::storage(&kept, error))?;
        std::fs::rename(&staged, &target).map_err(|error| DeployError::storage(&target, error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_version_once_and_restores_it() {
        let data = tempfile::tempdir().unwrap();
        let plugins = tempfile::tempdir().unwrap();
        let versions = Versions::open(data.path()).unwrap();
        let component = Component::uploaded(plugins.path().join("a.wasm"), b"\0asm v1".to_vec());
        versions.keep(&component);
        versions.keep(&component);
        let kept: Vec<_> = std::fs::read_dir(data.path().join("versions")).unwrap().collect();
        assert_eq!(kept.len(), 1, "one copy, no partial file left");
        versions.restore(&component.hash, plugins.path(), "a").unwrap();
        assert_eq!(std::fs::read(plugins.path().join("a.wasm")).unwrap(), b"\0asm v1");
        let missing = versions.restore("nope", plugins.path(), "a").unwrap_err();
        assert_eq!(missing.label(), "storage");
    }
}
