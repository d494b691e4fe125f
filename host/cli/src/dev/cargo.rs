//! The Rust plugins of a `host dev` source: one cargo workspace (or crate),
//! built for `wasm32-wasip2` in release mode; one component per package.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::replace_if_changed;

/// Builds a guest workspace and publishes its components.
pub(super) struct CargoBuild {
    manifest: PathBuf,
    pub(super) target_dir: PathBuf,
    packages: Vec<(String, PathBuf)>,
}

impl CargoBuild {
    pub(super) fn new(source: &Path) -> anyhow::Result<CargoBuild> {
        let manifest = source.join("Cargo.toml");
        let output = std::process::Command::new(cargo())
            .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
            .arg(&manifest)
            .output()
            .with_context(|| format!("running cargo metadata for {}", manifest.display()))?;
        if !output.status.success() {
            anyhow::bail!(
                "{} is not a cargo workspace: {}",
                source.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).context("reading cargo metadata")?;
        let target_dir = PathBuf::from(metadata["target_directory"].as_str().unwrap_or_default());
        let packages = metadata["packages"]
            .as_array()
            .map(|packages| {
                packages
                    .iter()
                    .filter_map(|p| {
                        let name = p["name"].as_str()?.to_string();
                        let dir = Path::new(p["manifest_path"].as_str()?).parent()?.to_path_buf();
                        Some((name, dir))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(CargoBuild { manifest, target_dir, packages })
    }

    /// The folders of the workspace's packages.
    pub(super) fn package_dirs(&self) -> impl Iterator<Item = &Path> {
        self.packages.iter().map(|(_, dir)| dir.as_path())
    }

    /// Builds; on success publishes every changed component (and sidecar)
    /// into `plugins` and returns the names published.
    pub(super) async fn build(&self, plugins: &Path) -> anyhow::Result<Vec<String>> {
        let output = tokio::process::Command::new(cargo())
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(&self.manifest)
            .output()
            .await
            .context("running cargo build")?;
        if !output.status.success() {
            anyhow::bail!(
                "cargo build of {} failed; the running versions keep serving:\n{}",
                self.manifest.display(),
                super::tail(&output.stderr)
            );
        }
        self.publish(plugins)
    }

    fn publish(&self, plugins: &Path) -> anyhow::Result<Vec<String>> {
        let built = self.target_dir.join("wasm32-wasip2/release");
        let mut published = Vec::new();
        for (name, dir) in &self.packages {
            let candidates =
                [built.join(format!("{}.wasm", name.replace('-', "_"))), built.join(format!("{name}.wasm"))];
            let Some(component) = candidates.into_iter().find(|p| p.is_file()) else { continue };
            if replace_if_changed(&component, &plugins.join(format!("{name}.wasm")))? {
                published.push(name.clone());
            }
            let sidecar = dir.join(format!("{name}.toml"));
            if sidecar.is_file() {
                replace_if_changed(&sidecar, &plugins.join(format!("{name}.toml")))?;
            }
        }
        Ok(published)
    }
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A Rust, TOML or WIT file.
pub(super) fn is_source(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "rs" | "toml" | "wit"))
}
