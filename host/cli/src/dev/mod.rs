//! `host dev SOURCE`: the inner loop. Builds the plugins at SOURCE — a
//! cargo workspace of Rust guests, and JavaScript and Python plugin folders
//! (see [`script`]) — serves their components, and on every source change
//! rebuilds what changed and drops the new components into the plugins
//! folder, where the watcher swaps them in: the `spin watch` / `wash dev`
//! experience. `host build SOURCE` builds them once (for `host deploy`, or
//! the hosts of a cluster).

mod cargo;
mod script;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::args::RunConfig;
use cargo::CargoBuild;
use script::ScriptBuild;

/// Quiet time after the last source change before rebuilding.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Everything `host dev` builds from one source folder.
struct Builds {
    source: PathBuf,
    plugins: PathBuf,
    cargo: Option<CargoBuild>,
    scripts: Vec<ScriptBuild>,
}

impl Builds {
    fn new(source: &Path, plugins: &Path) -> anyhow::Result<Builds> {
        let cargo = if source.join("Cargo.toml").is_file() { Some(CargoBuild::new(source)?) } else { None };
        let scripts = ScriptBuild::discover(source)?;
        if cargo.is_none() && scripts.is_empty() {
            anyhow::bail!(
                "{} has no plugins to build: expected a cargo workspace (Cargo.toml), or JavaScript (package.json with a build script) or Python (build.sh + requirements.txt) plugin folders",
                source.display()
            );
        }
        Ok(Builds { source: source.to_path_buf(), plugins: plugins.to_path_buf(), cargo, scripts })
    }

    /// Builds the cargo workspace if `cargo` and the plugin folders listed
    /// in `scripts`, side by side; a failed build is logged and the running
    /// versions keep serving.
    async fn build(&self, cargo: bool, scripts: &[usize]) {
        let started = std::time::Instant::now();
        let rust = async {
            match &self.cargo {
                Some(build) if cargo => report(build.build(&self.plugins).await),
                _ => Vec::new(),
            }
        };
        let others = async {
            let mut published = Vec::new();
            for &index in scripts {
                let build = &self.scripts[index];
                if report(build.build(&self.plugins).await) {
                    published.push(build.name().to_string());
                }
            }
            published
        };
        let (mut published, others) = tokio::join!(rust, others);
        published.extend(others);
        tracing::info!(build_ms = started.elapsed().as_millis() as u64, published = ?published, "plugins rebuilt");
    }

    /// Builds everything.
    async fn build_all(&self) {
        let all: Vec<usize> = (0..self.scripts.len()).collect();
        self.build(true, &all).await;
    }

    /// Builds what the changed files belong to.
    async fn rebuild(&self, changed: &BTreeSet<PathBuf>) {
        let scripts: Vec<usize> =
            (0..self.scripts.len()).filter(|&i| changed.iter().any(|p| self.scripts[i].owns(p))).collect();
        let cargo = changed.iter().any(|path| {
            !self.scripts.iter().any(|s| path.starts_with(&s.dir)) && cargo::is_source(path) && !self.ignored(path)
        });
        if cargo || !scripts.is_empty() {
            tracing::info!(files = changed.len(), "sources changed, rebuilding");
            self.build(cargo, &scripts).await;
        }
    }

    /// After a manifest changed: the builds of the source as it is now, if
    /// plugins were added or removed (a new crate, a new plugin folder).
    fn rediscovered(&self, changed: &BTreeSet<PathBuf>) -> Option<Builds> {
        let manifest = |path: &PathBuf| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            matches!(name, "Cargo.toml" | "package.json" | "build.sh" | "requirements.txt") && !self.ignored(path)
        };
        if !changed.iter().any(manifest) {
            return None;
        }
        match Builds::new(&self.source, &self.plugins) {
            Ok(fresh) if fresh.layout() != self.layout() => Some(fresh),
            Ok(_) => None,
            Err(error) => {
                tracing::error!("{error:#}");
                None
            }
        }
    }

    /// What there is to build: the cargo packages' and the plugin folders.
    fn layout(&self) -> Vec<&Path> {
        let packages = self.cargo.iter().flat_map(CargoBuild::package_dirs);
        packages.chain(self.scripts.iter().map(|s| s.dir.as_path())).collect()
    }

    /// Paths no build reads: the cargo target folder, installed toolchains
    /// and hidden folders (the source itself may live in one, e.g. a
    /// temporary directory).
    fn ignored(&self, path: &Path) -> bool {
        if self.cargo.as_ref().is_some_and(|c| path.starts_with(&c.target_dir)) {
            return true;
        }
        let Ok(relative) = path.strip_prefix(&self.source) else { return true };
        relative.components().any(|c| {
            c.as_os_str().to_str().is_some_and(|s| s.starts_with('.') || s == "node_modules" || s == "__pycache__")
        })
    }
}

/// Logs a failed build, which then publishes nothing.
fn report<T: Default>(result: anyhow::Result<T>) -> T {
    result.unwrap_or_else(|error| {
        tracing::error!("{error:#}");
        T::default()
    })
}

/// The last lines of a build's output.
fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().rev().take(30).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
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

/// `host build SOURCE`: builds every plugin at `source` once into
/// `plugins`; fails naming each build that failed.
pub(crate) async fn build(source: &Path, plugins: &Path) -> anyhow::Result<()> {
    let source = source.canonicalize().with_context(|| format!("finding the plugin sources {}", source.display()))?;
    std::fs::create_dir_all(plugins).with_context(|| format!("creating {}", plugins.display()))?;
    let builds = Builds::new(&source, plugins)?;
    let mut failed = Vec::new();
    if let Some(cargo) = &builds.cargo
        && let Err(error) = cargo.build(plugins).await
    {
        failed.push(format!("{error:#}"));
    }
    for script in &builds.scripts {
        if let Err(error) = script.build(plugins).await {
            failed.push(format!("{}: {error:#}", script.name()));
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("{} of the builds failed:\n{}", failed.len(), failed.join("\n"));
    }
    println!("built the plugins of {} into {}", source.display(), plugins.display());
    Ok(())
}

/// Builds, serves, and rebuilds on change until a shutdown signal.
pub(crate) async fn dev(source: &Path, config: RunConfig) -> anyhow::Result<()> {
    let source = source.canonicalize().with_context(|| format!("finding the plugin sources {}", source.display()))?;
    let plugins = config.server.plugins.clone();
    std::fs::create_dir_all(&plugins).with_context(|| format!("creating {}", plugins.display()))?;
    let mut builds = Builds::new(&source, &plugins)?;
    builds.build_all().await;
    let (sender, mut changes) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && matches!(
                event.kind,
                notify::EventKind::Create(_) | notify::EventKind::Modify(_) | notify::EventKind::Remove(_)
            )
        {
            for path in event.paths {
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
            if let Some(fresh) = builds.rediscovered(&changed) {
                tracing::info!("plugins added or removed, building them all");
                builds = fresh;
                builds.build_all().await;
            } else {
                builds.rebuild(&changed).await;
            }
        }
    });
    let served = crate::run::serve(config).await;
    rebuilding.abort();
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_folder_added_while_running_is_found_and_an_edit_is_not_a_new_layout() {
        let source = tempfile::tempdir().unwrap();
        let plugins = source.path().join("target/corral-plugins");
        let js = source.path().join("plugins/confirm");
        std::fs::create_dir_all(&js).unwrap();
        std::fs::write(js.join("package.json"), r#"{"scripts": {"build": "componentize-js app.js"}}"#).unwrap();
        let builds = Builds::new(source.path(), &plugins).unwrap();
        assert_eq!(builds.layout(), [js.as_path()]);

        let edited = BTreeSet::from([js.join("package.json"), js.join("app.js")]);
        assert!(builds.rediscovered(&edited).is_none(), "the same plugins");
        let installed = BTreeSet::from([js.join("node_modules/x/package.json")]);
        assert!(builds.rediscovered(&installed).is_none(), "an installed package is no plugin");

        let py = source.path().join("plugins/sweep");
        std::fs::create_dir_all(&py).unwrap();
        std::fs::write(py.join("requirements.txt"), "").unwrap();
        std::fs::write(py.join("build.sh"), "").unwrap();
        let fresh = builds.rediscovered(&BTreeSet::from([py.join("build.sh")])).expect("a new plugin folder");
        assert_eq!(fresh.layout(), [js.as_path(), py.as_path()]);
    }
}
