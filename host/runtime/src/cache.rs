//! Precompiled artifacts on disk, so a restart does not recompile anything.
//!
//! The key is the component's BLAKE3 content hash plus a hash of every
//! engine setting that affects code generation (wasmtime's compatibility
//! hash), so changing the wasmtime version or the engine configuration can
//! never load a stale artifact.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether a load used the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The precompiled artifact was found and loaded; nothing was compiled.
    Hit,
    /// The component was compiled (and the artifact written, if possible).
    Miss,
    /// No cache directory is configured.
    Disabled,
}

impl CacheOutcome {
    /// A stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Disabled => "disabled",
        }
    }
}

/// A directory of `*.cwasm` artifacts.
#[derive(Clone)]
pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    /// Opens (creating it if needed) the cache directory for this engine.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        restrict_to_owner(dir)?;
        // SipHash with fixed keys: stable across processes of the same build.
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(ArtifactCache { dir: dir.to_path_buf(), engine_key: format!("{:016x}", hasher.finish()) })
    }

    fn artifact(&self, content_hash: &str) -> PathBuf {
        self.dir.join(format!("{content_hash}-{}.cwasm", self.engine_key))
    }

    /// Loads the artifact for `content_hash`, or compiles `bytes` and stores
    /// the artifact. A cache that cannot be read or written only costs a
    /// compile; it never fails the load.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        content_hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.artifact(content_hash);
        if path.is_file() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(error) => tracing::warn!(
                    artifact = %path.display(),
                    "ignoring an unusable cached artifact and recompiling: {error:#}"
                ),
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Err(error) = self.store(&path, &component) {
            tracing::warn!(artifact = %path.display(), "cannot write the compiled artifact to the cache: {error:#}");
        }
        Ok((component, CacheOutcome::Miss))
    }

    /// Writes atomically: a half-written artifact is never visible.
    fn store(&self, path: &Path, component: &Component) -> wasmtime::Result<()> {
        let bytes = component.serialize()?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        file.write_all(&bytes)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[allow(unsafe_code, reason = "loading native code that this host compiled into its own private cache")]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the artifact was produced by `Component::serialize` with an
    // engine of the same compatibility hash (part of the file name) and lives
    // in a directory only this user can write. wasmtime checks the header
    // and engine settings again before using it.
    unsafe { Component::deserialize_file(engine, path) }
}

#[cfg(unix)]
fn restrict_to_owner(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict_to_owner(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
