//! `host check` and `host inspect`, run as a user would.

use std::path::{Path, PathBuf};

use corral_fixtures::TEMPLATES;
use std::process::{Command, Output};

pub(crate) fn host(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host")).args(args).arg("--data-dir").arg(data_dir).output().expect("running host")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn check_accepts_good_components() {
    let data = tempfile::tempdir().unwrap();
    let output = host(&["check", corral_fixtures::ROUTE_HELLO, corral_fixtures::CART_COUNTER], data.path());
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("hello 1.0.0 (route"), "{text}");
    assert!(text.contains("counter 1.0.0 (cart"), "{text}");
}

#[test]
fn check_rejects_bad_files_naming_file_and_cause() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let malformed = dir.path().join("malformed.wasm");
    std::fs::write(&malformed, b"definitely not wasm").unwrap();
    let core = dir.path().join("core-module.wasm");
    // The smallest valid core module: magic and version 1.
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let cases = [
        (malformed.to_str().unwrap(), "not a WebAssembly binary"),
        (core.to_str().unwrap(), "not a component"),
        (corral_fixtures::COMMAND_UNKNOWN_WORLD, "targets no world this host runs"),
    ];
    for (path, cause) in cases {
        let output = host(&["check", path], data.path());
        assert!(!output.status.success(), "{path} must fail");
        let text = stdout(&output);
        assert!(text.contains(path), "names the file: {text}");
        assert!(text.contains(cause), "names the cause: {text}");
    }
}

#[test]
fn check_reports_every_file_of_a_folder_and_fails_if_one_is_bad() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(corral_fixtures::ROUTE_HELLO, dir.path().join("hello.wasm")).unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"nope").unwrap();
    let output = host(&["check", dir.path().to_str().unwrap()], data.path());
    assert!(!output.status.success());
    let text = stdout(&output);
    assert!(text.contains("ok     ") && text.contains("hello.wasm"), "{text}");
    assert!(text.contains("error  ") && text.contains("broken.wasm"), "{text}");
}

#[test]
fn check_rejects_a_sidecar_with_unknown_keys() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let component = dir.path().join("hello.wasm");
    std::fs::copy(corral_fixtures::ROUTE_HELLO, &component).unwrap();
    std::fs::write(dir.path().join("hello.toml"), "[limits]\nfuell = 1\n").unwrap();
    let output = host(&["check", component.to_str().unwrap()], data.path());
    assert!(!output.status.success());
    let text = stdout(&output);
    assert!(text.contains("hello.toml") && text.contains("fuell"), "{text}");
}

#[test]
fn inspect_shows_world_imports_describe_and_limits() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let component = dir.path().join("kv.wasm");
    std::fs::copy(corral_fixtures::ROUTE_KV_COUNTER, &component).unwrap();
    let sidecar = "[limits]\nfuel = 12345\n[kv]\nbuckets = [\"team\"]\n[http]\nallowed_hosts = [\"https://api.example.com\"]\n[instances]\nreuse = true\nmax_calls = 50\n";
    std::fs::write(dir.path().join("kv.toml"), sidecar).unwrap();
    let output = host(&["inspect", component.to_str().unwrap(), "--json"], data.path());
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["world"], "route");
    assert_eq!(report["name"], "kv-counter");
    assert_eq!(report["limits"]["fuel"], 12345);
    assert_eq!(report["kv_grants"], serde_json::json!(["team"]));
    assert_eq!(report["http_grants"]["allowed_hosts"], serde_json::json!(["https://api.example.com"]));
    assert_eq!(report["instances"]["reuse"], true);
    assert_eq!(report["instances"]["max_calls"], 50);
    assert!(report["instances"]["carries_over"].as_str().unwrap().contains("never the host's data"), "{report}");
    assert!(report["describe"]["routes"].as_array().unwrap().contains(&"GET /kv".into()));
    let imports = report["imports"].as_array().unwrap();
    assert!(imports.iter().any(|i| i.as_str().unwrap().starts_with("corral:plugin/kv@0.1.0")), "{imports:?}");
    // The first inspect compiled it; the second finds it in the cache.
    let again = host(&["inspect", component.to_str().unwrap(), "--json"], data.path());
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["cache"], "hit");

    let text = host(&["inspect", component.to_str().unwrap()], data.path());
    let text = stdout(&text);
    assert!(text.contains("world      route") && text.contains("fuel             12345"), "{text}");
}

/// Every template of `sdk/templates/` builds with no edits (the build step
/// proved that) and loads: `host check` finds its world and its `describe()`.
#[test]
fn templates_pass_host_check() {
    let mut expected = Vec::new();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_host"));
    // A data dir kept between runs: its artifact cache spares recompiling.
    command.arg("check").arg("--data-dir").arg(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corral-test-check"));
    for (_, world, template) in TEMPLATES {
        command.arg(template.path());
        let kind = match *world {
            "event-handler" => "handler",
            other => other,
        };
        expected.push(format!("ok     {}: my-{kind} 0.1.0 ({world},", template.path()));
    }
    for lang in ["js", "python"] {
        let worlds: Vec<&str> = TEMPLATES.iter().filter(|(l, ..)| *l == lang).map(|(_, w, _)| *w).collect();
        assert_eq!(worlds, ["cart", "event-handler", "projection", "route"], "a {lang} template per world");
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    for line in expected {
        assert!(stdout.lines().any(|l| l.starts_with(&line)), "no line {line:?} in:\n{stdout}");
    }
}
