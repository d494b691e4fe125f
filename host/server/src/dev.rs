//! `host dev SOURCE`: the inner loop. Builds the guest workspace at SOURCE
//! for `wasm32-wasip2`, serves its components, and on every source change
//! rebuilds and drops the new components into the plugins folder, where the
//! watcher swaps them in — the `spin watch` / `wash dev` experience.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::config::RunConfig;

/// Quiet time after the last source change before rebuilding.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Builds a guest workspace and publishes its components.
struct Builder {
    manifest: PathBuf,
    target_dir: PathBuf,
    packages: Vec<(String, PathBuf)>,
    plugins: PathBuf,
}

impl Builder {
    fn new(source: &Path, plugins: &Path) -> anyhow::Result<Builder> {
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
        Ok(Builder { manifest, target_dir, packages, plugins: plugins.to_path_buf() })
    }

    /// Builds; on success publishes every changed component (and sidecar).
    async fn build(&self) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let output = tokio::process::Command::new(cargo())
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(&self.manifest)
            .output()
            .await
            .context("running cargo build")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
            anyhow::bail!("the build failed; the running versions keep serving:\n{}", tail.join("\n"));
        }
        let published = self.publish()?;
        tracing::info!(build_ms = started.elapsed().as_millis() as u64, published = ?published, "guests rebuilt");
        Ok(())
    }

    /// Copies changed components and sidecars into the plugins folder, each
    /// staged under a dot-name and renamed in.
    fn publish(&self) -> anyhow::Result<Vec<String>> {
        let built = self.target_dir.join("wasm32-wasip2/release");
        let mut published = Vec::new();
        for (name, dir) in &self.packages {
            let candidates =
                [built.join(format!("{}.wasm", name.replace('-', "_"))), built.join(format!("{name}.wasm"))];
            let Some(component) = candidates.into_iter().find(|p| p.is_file()) else { continue };
            if replace_if_changed(&component, &self.plugins.join(format!("{name}.wasm")))? {
                published.push(name.clone());
            }
            let sidecar = dir.join(format!("{name}.toml"));
            if sidecar.is_file() {
                replace_if_changed(&sidecar, &self.plugins.join(format!("{name}.toml")))?;
            }
        }
        Ok(published)
    }
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn replace_if_changed(from: &Path, to: &Path) -> anyhow::Result<bool> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    if std::fs::read(to).is_ok_and(|current| current == bytes) {
        return Ok(false);
    }
    let name = to.file_name().and_then(|n| n.to_str()).unwrap_or("plugin");
    let staged = to.with_file_name(format!(".{name}.building"));
    std::fs::write(&staged, &bytes).with_context(|| format!("writing {}", staged.display()))?;
    std::fs::rename(&staged, to).with_context(|| format!("renaming into {}", to.display()))?;
    Ok(true)
}

/// Builds, serves, and rebuilds on change until a shutdown signal.
pub(crate) async fn dev(source: &Path, config: RunConfig) -> anyhow::Result<()> {
    let source = source.canonicalize().with_context(|| format!("finding the guest workspace {}", source.display()))?;
    std::fs::create_dir_all(&config.plugins).with_context(|| format!("creating {}", config.plugins.display()))?;
    let builder = Builder::new(&source, &config.plugins)?;
    if let Err(error) = builder.build().await {
        tracing::error!("{error:#}");
    }
    let (sender, mut changes) = mpsc::unbounded_channel();
    let ignored = builder.target_dir.clone();
    let root = source.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && matches!(
                event.kind,
                notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_)
            )
        {
            for path in event.paths.into_iter().filter(|p| !p.starts_with(&ignored) && is_source(&root, p)) {
                let _ = sender.send(path);
            }
        }
    })
    .context("starting the source watcher")?;
    watcher
        .watch(&source, notify::RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", source.display()))?;
    let rebuilding = tokio::spawn(async move {
        let _watcher = watcher;
        while let Some(first) = changes.recv().await {
            let mut changed: BTreeSet<PathBuf> = BTreeSet::from([first]);
            while let Ok(Some(path)) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {
                changed.insert(path);
            }
            tracing::info!(files = changed.len(), "sources changed, rebuilding");
            if let Err(error) = builder.build().await {
                tracing::error!("{error:#}");
            }
        }
    });
    let served = crate::serve::run(config).await;
    rebuilding.abort();
    served
}

/// A Rust, TOML or WIT file of the workspace, outside hidden folders (the
/// workspace itself may live in one, e.g. a temporary directory).
fn is_source(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else { return false };
    let hidden = relative.components().any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with('.')));
    !hidden && path.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "rs" | "toml" | "wit"))
}
