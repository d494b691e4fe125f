//! `host new`: every kind in every language scaffolds a plugin that builds
//! with the recipe the scaffold itself carries, with no edits, and passes
//! `host check` as the expected world.
//!
//! Rust scaffolds share one target directory (dependencies compile once);
//! JavaScript and Python ones build with the toolchains `cargo xtask
//! guests-polyglot` installed into `.tools/`. Components are checked against
//! a cache that survives between runs, so only a changed component pays
//! Cranelift's ~10 s per JavaScript or Python component.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use corral_test_support::http::get;
use corral_test_support::plugins::plugins_dir;

use crate::Host;

/// Each kind with the world `host check` must report for it.
const KINDS: [(&str, &str); 4] =
    [("route", "route"), ("event-handler", "event-handler"), ("projection", "projection"), ("cart", "cart")];

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

fn host_new(parent: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host")).arg("new").args(args).current_dir(parent).output().unwrap()
}

fn run(mut command: Command) {
    let output = command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `.tools/` executable a language's build needs, or a failure that
/// says how to install it.
fn toolchain(relative: &str) -> PathBuf {
    let tool = repository().join(".tools").join(relative);
    assert!(
        tool.is_file(),
        "{} is missing: run `cargo xtask guests-polyglot` (it installs the pinned JavaScript and Python toolchains \
         into .tools/) before this test",
        tool.display()
    );
    tool
}

/// `PATH` with a toolchain's `bin` folder first.
fn path_with(tool: &Path) -> std::ffi::OsString {
    let bin = tool.parent().unwrap().to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&rest))).unwrap()
}

/// Scaffolds every kind in `lang` under `parent`, named `PREFIX-KIND`;
/// returns (name, folder, world).
fn scaffold_all(parent: &Path, lang: &str, prefix: &str) -> Vec<(String, PathBuf, &'static str)> {
    KINDS
        .iter()
        .map(|&(kind, world)| {
            let name = format!("{prefix}-{kind}");
            let output = host_new(parent, &[kind, &name, "--lang", lang]);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "host new {kind} {name}: {}", String::from_utf8_lossy(&output.stderr));
            assert!(stdout.contains(&format!("created {name}/")), "{stdout}");
            assert!(stdout.contains("host check"), "the next commands are printed: {stdout}");
            let dir = parent.join(&name);
            (name, dir, world)
        })
        .collect()
}

/// Runs `host check` on the components and asserts each one's name and world.
fn check(components: &[(String, PathBuf, &str)]) {
    let output = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("check")
        .arg("--data-dir")
        .arg(tmp("scaffold-check"))
        .args(components.iter().map(|(_, wasm, _)| wasm))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "host check failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for (name, wasm, world) in components {
        let line = format!("ok     {}: {name} 0.1.0 ({world},", wasm.display());
        assert!(stdout.contains(&line), "expected {line:?} in:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_scaffolds_build_and_pass_check() {
    let parent = tempfile::tempdir().unwrap();
    let scaffolds = scaffold_all(parent.path(), "rust", "rs");
    let target = tmp("scaffold-rust");
    let mut components = Vec::new();
    for (name, dir, world) in scaffolds {
        let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        build
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target);
        run(build);
        let wasm = target.join("wasm32-wasip2/release").join(format!("{}.wasm", name.replace('-', "_")));
        components.push((name, wasm, world));
    }
    check(&components);

    // Loads and serves as written: the route greets and counts in kv.
    let plugins = plugins_dir(&[("rs-route", components[0].1.to_str().unwrap())], &[]);
    let data = tempfile::tempdir().unwrap();
    let host = Host::start(plugins.path(), data.path(), &[]);
    for visits in 1..=2 {
        let reply = get(host.public, "/rs-route/ann").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json(), serde_json::json!({"hello": "ann", "visits": visits}));
    }
}

#[test]
fn js_scaffolds_build_and_pass_check() {
    // The scaffold's own `npm run build`, with the installed toolchain on
    // PATH instead of an `npm install` per scaffold.
    build_and_check("js", "js/node_modules/.bin/componentize-js", |_| {
        let mut build = Command::new("npm");
        build.args(["run", "--silent", "build"]);
        build
    });
}

#[test]
fn python_scaffolds_build_and_pass_check() {
    build_and_check("python", "python/bin/componentize-py", |dir| {
        let mut build = Command::new(dir.join("build.sh"));
        build.env("PYTHONDONTWRITEBYTECODE", "1");
        build
    });
}

/// Scaffolds every kind in a componentize language, builds each in its
/// folder (to `NAME.wasm`) with the `.tools/` toolchain on PATH, checks
/// them, and runs each one's `plugin.test.toml` with `host test`.
fn build_and_check(lang: &str, tool: &str, build: impl Fn(&Path) -> Command) {
    let tool = toolchain(tool);
    let parent = tempfile::tempdir().unwrap();
    let mut components = Vec::new();
    for (name, dir, world) in scaffold_all(parent.path(), lang, lang) {
        let mut command = build(&dir);
        command.current_dir(&dir).env("PATH", path_with(&tool));
        run(command);
        components.push((name.clone(), dir.join(format!("{name}.wasm")), world));
    }
    check(&components);
    // Each scaffold's own spec passes against what it built.
    let output = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("test")
        .args(components.iter().map(|(_, wasm, _)| wasm.parent().unwrap()))
        .arg("--data-dir")
        .arg(tmp("scaffold-test"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "host test failed:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.trim_end().ends_with("7 passed, 0 failed"), "{stdout}");
}

#[test]
fn scaffold_refuses_bad_input_and_never_overwrites() {
    let parent = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], expected: &str| {
        let output = host_new(parent.path(), args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in {stderr}");
    };
    refused(&["route", "My_Route"], r#"invalid NAME "My_Route""#);
    refused(&["route", "../escape"], r#"(e.g. "escape")"#);
    refused(&["routes", "shop"], "possible values: route, event-handler, projection, cart");
    refused(&["route", "shop", "--lang", "go"], "possible values: rust, js, python");
    refused(&["route", "shop", "--lang", "js", "--sdk", "/nowhere"], "--sdk is for Rust plugins only");
    refused(&["route", "shop", "--sdk", "/nowhere"], "pass --sdk PATH with the sdk/ folder of a Corral checkout");
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0, "a refused scaffold writes nothing");

    let existing = parent.path().join("shop");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), "mine").unwrap();
    refused(&["cart", "shop", "--lang", "python"], "already exists");
    let left: Vec<_> = std::fs::read_dir(&existing).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["keep.txt"]);

    // --sdk names another checkout's SDK; the manifest depends on it.
    let sdk = repository().join("sdk");
    let output = host_new(parent.path(), &["projection", "views", "--sdk", sdk.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let manifest = std::fs::read_to_string(parent.path().join("views/Cargo.toml")).unwrap();
    let expected = format!("corral-sdk = {{ path = {:?} }}", sdk.canonicalize().unwrap().display().to_string());
    assert!(manifest.contains(&expected), "{manifest}");
}
