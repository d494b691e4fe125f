//! Which world a component targets, read from what it exports.

use std::fmt;

/// The version of the `corral:plugin` package this host implements.
pub const PACKAGE_VERSION: &str = "0.1.1";

/// Whether a component built against `version` of `corral:plugin` runs
/// here: any 0.1.x. Minor releases only add (0.1.1 added `views.query`),
/// and wasmtime resolves a 0.1.0 import or export by its 0.1.1 name.
pub fn is_compatible(version: &str) -> bool {
    version.strip_prefix("0.1.").is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()))
}

/// The kinds of plugin the host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum World {
    /// `corral:plugin/route`: answers HTTP requests with plain records.
    Route,
    /// `corral:plugin/event-handler`: consumes events and schedule ticks.
    EventHandler,
    /// `corral:plugin/projection` (or `batched-projection`): a deterministic
    /// fold of events into views.
    Projection,
    /// `corral:plugin/cart`: a deterministic per-entity state machine.
    Cart,
    /// A standard `wasi:http/proxy` component (`wasi:http/incoming-handler`).
    WasiHttp,
}

impl World {
    /// Whether calls must be reproducible bit for bit (no real clock, random,
    /// environment, filesystem or network).
    pub fn is_deterministic(self) -> bool {
        matches!(self, World::Projection | World::Cart)
    }

    /// The name used in WIT, the CLI and the admin API.
    pub fn name(self) -> &'static str {
        match self {
            World::Route => "route",
            World::EventHandler => "event-handler",
            World::Projection => "projection",
            World::Cart => "cart",
            World::WasiHttp => "wasi-http",
        }
    }

    /// The interfaces whose export identifies the world.
    fn markers(self) -> &'static [&'static str] {
        match self {
            World::Route => &["corral:plugin/http-handler"],
            World::EventHandler => &["corral:plugin/event-consumer"],
            World::Projection => &["corral:plugin/projector", BATCH_PROJECTOR],
            World::Cart => &["corral:plugin/state-machine"],
            World::WasiHttp => &["wasi:http/incoming-handler"],
        }
    }

    const ALL: [World; 5] = [World::Route, World::EventHandler, World::Projection, World::Cart, World::WasiHttp];
}

/// The export of the `batched-projection` world.
const BATCH_PROJECTOR: &str = "corral:plugin/batch-projector";

/// Whether `export` is this package's `batch-projector`: the projection
/// folds batches in one instance.
pub(crate) fn is_batch_projector(export: &str) -> bool {
    export.split_once('@').is_some_and(|(name, version)| name == BATCH_PROJECTOR && is_compatible(version))
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why no world could be chosen from a component's exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detection {
    /// Exactly one world matched.
    Found(World),
    /// The component exports `corral:plugin` interfaces of another version.
    WrongVersion(String),
    /// Nothing matched; the exports are listed for the error message.
    Unknown,
    /// More than one handler interface is exported.
    Ambiguous(Vec<World>),
}

/// Chooses the world from the names of a component's exports, e.g.
/// `corral:plugin/http-handler@0.1.0`.
pub fn detect<'a>(exports: impl IntoIterator<Item = &'a str>) -> Detection {
    let mut found = Vec::new();
    let mut wrong_version = None;
    for export in exports {
        let (name, version) = export.split_once('@').unwrap_or((export, ""));
        let Some(world) = World::ALL.into_iter().find(|w| w.markers().contains(&name)) else {
            continue;
        };
        let version_ok = match world {
            // Any 0.2.x patch release of wasi:http is the same interface.
            World::WasiHttp => version.starts_with("0.2."),
            _ => is_compatible(version),
        };
        if version_ok {
            // A projection may export both of its markers.
            if !found.contains(&world) {
                found.push(world);
            }
        } else {
            wrong_version = Some(export.to_string());
        }
    }
    match (found.as_slice(), wrong_version) {
        ([world], _) => Detection::Found(*world),
        ([], Some(export)) => Detection::WrongVersion(export),
        ([], None) => Detection::Unknown,
        _ => Detection::Ambiguous(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_world_by_its_marker() {
        for world in World::ALL {
            for marker in world.markers() {
                let marker = match world {
                    World::WasiHttp => format!("{marker}@0.2.6"),
                    _ => format!("{marker}@{PACKAGE_VERSION}"),
                };
                let exports = ["corral:plugin/metadata@0.1.0", marker.as_str()];
                assert_eq!(detect(exports), Detection::Found(world));
            }
        }
        assert!(is_batch_projector("corral:plugin/batch-projector@0.1.0"));
        assert!(is_batch_projector("corral:plugin/batch-projector@0.1.1"));
        assert!(is_compatible("0.1.0") && is_compatible("0.1.12"));
        assert!(!is_compatible("0.2.0") && !is_compatible("0.1") && !is_compatible("0.1.x"));
        assert!(!is_batch_projector("corral:plugin/projector@0.1.0"));
    }

    #[test]
    fn reports_other_versions_and_unknown_exports() {
        assert_eq!(
            detect(["corral:plugin/http-handler@0.9.0"]),
            Detection::WrongVersion("corral:plugin/http-handler@0.9.0".into())
        );
        assert_eq!(detect(["wasi:cli/run@0.2.0"]), Detection::Unknown);
        assert_eq!(
            detect(["corral:plugin/http-handler@0.1.0", "corral:plugin/state-machine@0.1.0"]),
            Detection::Ambiguous(vec![World::Route, World::Cart])
        );
    }
}
