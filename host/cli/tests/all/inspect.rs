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
    assert!(imports.iter().any(|i| i.as_str().unwrap().starts_with("corral:plugin/kv@0.1.1")), "{imports:?}");
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
/// One language at a time: `host check` also checks that the components it
/// is given could be served together, and both languages' templates share
/// their names.
#[test]
fn templates_pass_host_check() {
    for lang in ["js", "python"] {
        let templates: Vec<_> = TEMPLATES.iter().filter(|(l, ..)| *l == lang).collect();
        let worlds: Vec<&str> = templates.iter().map(|(_, w, _)| *w).collect();
        assert_eq!(worlds, ["cart", "event-handler", "projection", "route"], "a {lang} template per world");
        let mut expected = Vec::new();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_host"));
        // A data dir kept between runs: its artifact cache spares recompiling.
        command
            .arg("check")
            .arg("--data-dir")
            .arg(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corral-test-check"));
        for (_, world, template) in templates {
            command.arg(template.path());
            let kind = match *world {
                "event-handler" => "handler",
                other => other,
            };
            expected.push(format!("ok     {}: my-{kind} 0.1.0 ({world},", template.path()));
        }
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        for line in expected {
            assert!(stdout.lines().any(|l| l.starts_with(&line)), "no line {line:?} in:\n{stdout}");
        }
    }
}

/// A folder of components with payload schemas in their sidecars: the
/// emitter (a topic's schema, a route's request schema) and the counter
/// cart (a kind's payload, the state); and a projection.
fn schema_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(corral_fixtures::ROUTE_EMITTER, dir.path().join("emitter.wasm")).unwrap();
    // A route under /events/ too: its schema is a route's, not a topic's.
    let emitter = "routes = [{ method = \"POST\", pattern = \"/queue/:topic\" }, { method = \"POST\", pattern = \"/events/:topic\" }]\n\
                   [schemas.events.\"orders.placed\"]\ntype = \"object\"\nrequired = [\"id\"]\n\
                   [schemas.routes.\"POST /queue/:topic\"]\nrequest = { type = \"object\" }\nresponse = { type = \"string\" }\n\
                   [schemas.routes.\"POST /events/:topic\"]\nrequest = { type = \"array\" }\n";
    std::fs::write(dir.path().join("emitter.toml"), emitter).unwrap();
    std::fs::copy(corral_fixtures::CART_COUNTER, dir.path().join("counter.wasm")).unwrap();
    let counter = "[schemas]\nstate = { type = \"integer\" }\nmutations.add = { type = \"integer\", minimum = 1 }\n";
    std::fs::write(dir.path().join("counter.toml"), counter).unwrap();
    std::fs::copy(corral_fixtures::PROJECTION_COUNT, dir.path().join("count.wasm")).unwrap();
    std::fs::write(
        dir.path().join("count.toml"),
        "[projection]\nindexes = [\"total\", [\"customer\", \"at\"]]\nscan_limit = 500\n",
    )
    .unwrap();
    dir
}

#[test]
fn check_refuses_components_declaring_different_schemas_for_one_topic() {
    let data = tempfile::tempdir().unwrap();
    let dir = schema_folder();
    let folder = dir.path().to_str().unwrap();
    assert!(host(&["check", folder], data.path()).status.success());
    std::fs::copy(corral_fixtures::ROUTE_EMITTER, dir.path().join("late.wasm")).unwrap();
    let late = "name = \"late\"\nroutes = [{ method = \"POST\", pattern = \"/late\" }]\n\
                [schemas.events.\"orders.placed\"]\ntype = \"string\"\n";
    std::fs::write(dir.path().join("late.toml"), late).unwrap();
    let output = host(&["check", folder], data.path());
    assert!(!output.status.success(), "{output:?}");
    let text = stdout(&output);
    assert!(text.contains("ok     ") && text.contains("late.wasm"), "each loads alone: {text}");
    assert!(text.contains("\"orders.placed\"") && text.contains("plugin emitter"), "names both: {text}");
    let export = host(&["schema", "export", folder, "--out", dir.path().join("out").to_str().unwrap()], data.path());
    assert!(!export.status.success(), "nothing is exported for plugins that cannot be served together");
}

#[test]
fn schema_export_writes_each_schema_and_an_openapi_document_that_validates() {
    let data = tempfile::tempdir().unwrap();
    let dir = schema_folder();
    let out = dir.path().join("out");
    let output = host(&["schema", "export", dir.path().to_str().unwrap(), "--out", out.to_str().unwrap()], data.path());
    assert!(output.status.success(), "{output:?}");
    let read = |file: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))).unwrap()
    };
    assert_eq!(read("schemas/emitter.events.orders.placed.json")["required"], serde_json::json!(["id"]));
    assert_eq!(read("schemas/emitter.routes.POST.queue.topic.request.json")["type"], "object");
    assert_eq!(read("schemas/emitter.routes.POST.events.topic.request.json")["type"], "array");
    assert_eq!(read("schemas/counter.mutations.add.json")["minimum"], 1);
    assert_eq!(read("schemas/counter.state.json")["type"], "integer");

    let openapi = read("openapi.json");
    assert_eq!(openapi["openapi"], "3.1.0");
    let queue = &openapi["paths"]["/queue/{topic}"]["post"];
    assert_eq!(queue["requestBody"]["content"]["application/json"]["schema"]["type"], "object", "{queue}");
    assert_eq!(queue["responses"]["200"]["content"]["application/json"]["schema"]["type"], "string");
    assert_eq!(queue["parameters"][0]["name"], "topic");
    let mutate = &openapi["paths"]["/carts/counter/{id}"]["post"];
    let kinds = mutate["requestBody"]["content"]["application/json"]["schema"]["oneOf"].as_array().unwrap();
    assert_eq!(kinds.len(), 2, "add and reset: {mutate}");
    assert_eq!(kinds[0]["properties"]["payload"]["minimum"], 1);
    assert_eq!(mutate["parameters"][0]["name"], "idempotency-key");
    let views = openapi["paths"].as_object().unwrap().keys().filter(|p| p.starts_with("/views/")).count();
    assert_eq!(views, 2, "a page and one view of the projection: {openapi}");
    let page = &openapi["paths"]["/views/count"]["get"];
    assert!(page["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "where"), "{page}");

    // The document is valid OpenAPI 3.1, as the community's validator sees it.
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/python/bin/openapi-spec-validator");
    let checked = Command::new(&tools)
        .arg(out.join("openapi.json"))
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): `cargo xtask guests-polyglot` installs it", tools.display()));
    assert!(checked.status.success(), "{}{}", stdout(&checked), String::from_utf8_lossy(&checked.stderr));

    let inspect = host(&["inspect", dir.path().join("counter.wasm").to_str().unwrap(), "--json"], data.path());
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(report["schemas"]["counter/mutations/add"]["minimum"], 1, "{report}");
    let inspect = host(&["inspect", dir.path().join("count.wasm").to_str().unwrap(), "--json"], data.path());
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(report["indexes"], serde_json::json!(["total", "customer,at"]), "{report}");
    assert_eq!(report["scan_limit"], 500);
}
