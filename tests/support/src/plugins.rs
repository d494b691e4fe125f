//! Plugins folders for tests, built from compiled components.

/// A temporary plugins folder holding `NAME.wasm` copies of components
/// (`(NAME, path)`) and `NAME.toml` sidecars (`(NAME, text)`).
pub fn plugins_dir(components: &[(&str, &str)], sidecars: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("creating a temporary folder: {e}"));
    for (name, component) in components {
        std::fs::copy(component, dir.path().join(format!("{name}.wasm")))
            .unwrap_or_else(|e| panic!("copying {component}: {e}"));
    }
    for (name, toml) in sidecars {
        std::fs::write(dir.path().join(format!("{name}.toml")), toml)
            .unwrap_or_else(|e| panic!("writing the sidecar {name}.toml: {e}"));
    }
    dir
}
