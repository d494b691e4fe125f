//! Watching the plugins folder: a new, replaced or removed `NAME.wasm` or
//! `NAME.toml` is synced into the running host. Changes are debounced; files
//! whose names start with `.` are ignored, so the safe way to deploy is to
//! write the component elsewhere (or under a dot-name) and rename it in —
//! a rename is atomic, a half-written file is never seen.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use notify::Watcher as _;
use tokio::sync::{mpsc, watch};

use crate::plugins::registry::{Deployed, Registry};

/// Quiet time after the last change before syncing.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// The stem of a plugin file, if the path is one.
fn stem_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') {
        return None;
    }
    let (stem, extension) = name.rsplit_once('.')?;
    matches!(extension, "wasm" | "toml").then(|| stem.to_string())
}

fn is_change(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::ModifyKind;
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Starts watching; runs until `stop`.
pub fn spawn(registry: Arc<Registry>, mut stop: watch::Receiver<bool>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (sender, mut changes) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        // Reading a component (as loading does) is an access event: only
        // changes to content or names count, or every load would trigger
        // another.
        Ok(event) if is_change(&event.kind) => {
            for path in event.paths {
                let _ = sender.send(path);
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!("watching the plugins folder: {error}"),
    })
    .context("starting the file watcher")?;
    watcher
        .watch(registry.dir(), notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", registry.dir().display()))?;
    Ok(tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            let first = tokio::select! {
                Some(path) = changes.recv() => path,
                _ = stop.changed() => return,
            };
            let mut stems: BTreeSet<String> = stem_of(&first).into_iter().collect();
            while let Ok(Some(path)) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {
                stems.extend(stem_of(&path));
            }
            for stem in stems {
                match registry.sync(&stem).await {
                    Ok(Some(Deployed::Swapped(m))) => tracing::info!(plugin = m.plugin.name(), "file change deployed"),
                    Ok(Some(Deployed::Canary(m))) => {
                        tracing::info!(plugin = m.plugin.name(), "file change started a canary")
                    }
                    Ok(Some(Deployed::Unchanged(_)) | None) => {}
                    Err(error) => {
                        tracing::warn!(plugin = %stem, cause = error.label(), "file change rejected: {error}")
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plugin_files_count() {
        assert_eq!(stem_of(Path::new("/p/hello.wasm")).as_deref(), Some("hello"));
        assert_eq!(stem_of(Path::new("/p/hello.toml")).as_deref(), Some("hello"));
        assert_eq!(stem_of(Path::new("/p/.hello.wasm")), None);
        assert_eq!(stem_of(Path::new("/p/hello.wasm.tmp")), None);
        assert_eq!(stem_of(Path::new("/p/notes.txt")), None);
    }
}
