//! `host new KIND NAME --lang rust|js|python`: writes a folder holding a
//! plugin of one world that builds and loads with no edits.
//!
//! Everything comes from the binary: the templates of `sdk/templates/` and
//! the WIT of `wit/` are embedded at build time (see `build.rs`), and the
//! JavaScript and Python toolchain pins are those of `sdk/js` and
//! `sdk/python`. Only a Rust plugin reaches outside, for `corral-sdk`, which
//! is not published: a path dependency on the SDK of the checkout this host
//! was built from, or on `--sdk PATH`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/templates.rs"));
}

/// The pinned JavaScript toolchain (its `devDependencies`).
const JS_PINS: &str = include_str!("../../../sdk/js/package.json");
/// The pinned Python toolchain.
const PYTHON_PINS: &str = include_str!("../../../sdk/python/requirements.txt");
/// The line of a Rust template's `Cargo.toml` that finds the SDK when the
/// template is built in place; a scaffold points it at the real SDK.
const SDK_DEPENDENCY: &str = r#"corral-sdk = { path = "../../.." }"#;

/// The handler kinds, one per world of `wit/worlds.wit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// HTTP routes.
    Route,
    /// Events from topics and schedules.
    EventHandler,
    /// A deterministic fold of events into views.
    Projection,
    /// A deterministic state machine per entity.
    Cart,
}

impl Kind {
    /// The world, also the template folder's name.
    fn world(self) -> &'static str {
        match self {
            Kind::Route => "route",
            Kind::EventHandler => "event-handler",
            Kind::Projection => "projection",
            Kind::Cart => "cart",
        }
    }

    /// The plugin name in the template, replaced by the scaffold's name.
    fn placeholder(self) -> &'static str {
        match self {
            Kind::Route => "my-route",
            Kind::EventHandler => "my-handler",
            Kind::Projection => "my-projection",
            Kind::Cart => "my-cart",
        }
    }
}

/// The guest languages with a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    /// Rust with corral-sdk (cargo, target wasm32-wasip2).
    Rust,
    /// TypeScript on the Corral SDK, with componentize-js (npm).
    Js,
    /// Python on the Corral SDK, with componentize-py (pip).
    Python,
}

impl Lang {
    fn dir(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Python => "python",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Js => "TypeScript",
            Lang::Python => "Python",
        }
    }

    /// The command that builds the component, run in the plugin's folder.
    fn build_command(self) -> &'static str {
        match self {
            Lang::Rust => "cargo build --release --target wasm32-wasip2",
            Lang::Js => "npm install && npm run build",
            Lang::Python => "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && ./build.sh",
        }
    }
}

/// One file of a scaffold, relative to its folder.
#[derive(Debug)]
struct File {
    path: String,
    contents: String,
    executable: bool,
}

/// `host new`: writes `NAME/` under `parent` and prints what it wrote and
/// what to run next.
pub(crate) fn new(parent: &Path, kind: Kind, name: &str, lang: Lang, sdk: Option<&Path>) -> anyhow::Result<ExitCode> {
    validate_name(name)?;
    if sdk.is_some() && lang != Lang::Rust {
        bail!("--sdk is for Rust plugins only; leave it out with --lang {}", lang.dir());
    }
    let sdk = match lang {
        Lang::Rust => Some(locate_sdk(sdk)?),
        Lang::Js | Lang::Python => None,
    };
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists; choose another NAME or move it away (host new never overwrites)", dir.display());
    }
    let files = render(kind, name, lang, sdk.as_deref())?;
    write(&dir, &files)?;

    println!("created {}/, a {} plugin in {}:", dir.display(), kind.world(), lang.title());
    for file in &files {
        println!("  {}", file.path);
    }
    if let Some(sdk) = &sdk {
        println!(
            "corral-sdk: a path dependency on {} ({}); to use another checkout, edit Cargo.toml or pass --sdk PATH",
            sdk.display(),
            if sdk == Path::new(embedded::SDK_DIR) { "the SDK this host was built from" } else { "--sdk" }
        );
    }
    let wasm = component(name, lang);
    println!("\nnext:");
    println!("  cd {}", dir.display());
    println!("  {}", lang.build_command());
    println!("  host check {wasm}");
    println!("  mkdir -p ../plugins && cp {wasm} ../plugins/{name}.wasm");
    println!("  host run --plugins ../plugins");
    Ok(ExitCode::SUCCESS)
}

/// Lower-case letters, digits and `-`, starting with a letter: valid as a
/// plugin, crate, npm package and file name alike.
fn validate_name(name: &str) -> anyhow::Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        return Ok(());
    }
    let suggestion: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    let suggestion = suggestion.trim_start_matches(|c: char| c == '-' || c.is_ascii_digit()).trim_end_matches('-');
    let hint = if suggestion.is_empty() { "my-plugin" } else { suggestion };
    bail!(
        "invalid NAME {name:?}: use lower-case letters, digits and '-', starting with a letter and not ending \
         with '-' (e.g. {hint:?})"
    )
}

/// The SDK folder a Rust scaffold depends on: `--sdk`, else the one this
/// host was built from. Absolute, since the scaffold may live anywhere.
fn locate_sdk(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    let (sdk, origin) = match flag {
        Some(path) => (path.to_path_buf(), "--sdk"),
        None => (PathBuf::from(embedded::SDK_DIR), "the checkout this host was built from"),
    };
    let manifest = sdk.join("Cargo.toml");
    let declares_sdk = fs::read_to_string(&manifest).is_ok_and(|m| m.contains(r#"name = "corral-sdk""#));
    if !declares_sdk {
        bail!(
            "{} ({origin}) is not corral-sdk: pass --sdk PATH with the sdk/ folder of a Corral checkout",
            sdk.display()
        );
    }
    sdk.canonicalize().with_context(|| format!("resolving {}", sdk.display()))
}

/// Where the built component lands, relative to the plugin's folder.
fn component(name: &str, lang: Lang) -> String {
    match lang {
        Lang::Rust => format!("target/wasm32-wasip2/release/{}.wasm", name.replace('-', "_")),
        Lang::Js | Lang::Python => format!("{name}.wasm"),
    }
}

/// The files of a scaffold: the template of the kind with the name put in,
/// the language's README, and the build recipe (and, for JavaScript and
/// Python, the WIT it builds against, the SDK, and the world's `host test`
/// spec as `plugin.test.toml`).
fn render(kind: Kind, name: &str, lang: Lang, sdk: Option<&Path>) -> anyhow::Result<Vec<File>> {
    let wasm = component(name, lang);
    let fill =
        |text: &str| text.replace("{{name}}", name).replace("{{world}}", kind.world()).replace("{{wasm}}", &wasm);
    let mut files = Vec::new();
    let template = format!("{}/{}/", lang.dir(), kind.world());
    for (path, contents) in embedded::TEMPLATES {
        if let Some(relative) = path.strip_prefix(&template) {
            let contents = contents.replace(kind.placeholder(), name);
            files.push(File { path: relative.to_string(), contents, executable: false });
        }
    }
    if files.is_empty() {
        bail!("this host has no {} template for {}", lang.title(), kind.world());
    }
    for (path, contents) in embedded::TEMPLATES {
        if let Some(shared) = path.strip_prefix(&format!("{}/", lang.dir()))
            && !shared.contains('/')
        {
            files.push(File {
                path: shared.to_string(),
                contents: fill(contents),
                executable: shared.ends_with(".sh"),
            });
        }
    }
    match lang {
        Lang::Rust => {
            let sdk = sdk.context("a Rust scaffold needs the SDK's path")?;
            let manifest =
                files.iter_mut().find(|f| f.path == "Cargo.toml").context("the Rust template has a Cargo.toml")?;
            if !manifest.contents.contains(SDK_DEPENDENCY) {
                bail!("the Rust template's Cargo.toml lacks the line {SDK_DEPENDENCY}");
            }
            let path = toml::Value::String(sdk.display().to_string());
            manifest.contents = manifest.contents.replace(SDK_DEPENDENCY, &format!("corral-sdk = {{ path = {path} }}"));
        }
        Lang::Js => {
            files.push(File { path: "package.json".into(), contents: package_json(kind, name)?, executable: false });
            files.extend(js_sdk());
        }
        Lang::Python => {
            files.push(File { path: "requirements.txt".into(), contents: requirements(), executable: false });
            files.extend(python_sdk());
        }
    }
    if lang != Lang::Rust {
        // The world's spec (the same for every language), run by `host test .`.
        let spec = format!("specs/{}.test.toml", kind.world());
        let (_, contents) = embedded::TEMPLATES
            .iter()
            .find(|(path, _)| *path == spec)
            .with_context(|| format!("this host has no {spec} template"))?;
        let contents = fill(&contents.replace(kind.placeholder(), name));
        files.push(File { path: "plugin.test.toml".into(), contents, executable: false });
        for (file, contents) in embedded::WIT {
            files.push(File { path: format!("wit/{file}"), contents: contents.to_string(), executable: false });
        }
    }
    files.push(File { path: ".gitignore".into(), contents: gitignore(lang).into(), executable: false });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The SDK a JavaScript scaffold is written on, copied into `corral/`
/// (`tsconfig.json` maps `corral` there): its sources, the types of the
/// WIT imports (`corral/types/`) and its guide.
fn js_sdk() -> impl Iterator<Item = File> {
    let sources = embedded::JS_SDK.iter().map(|(path, contents)| (format!("corral/{path}"), *contents));
    let types = embedded::JS_TYPES.iter().map(|(path, contents)| (format!("corral/types/{path}"), *contents));
    let guide = std::iter::once(("corral/README.md".to_string(), embedded::JS_GUIDE));
    sources.chain(types).chain(guide).map(|(path, contents)| File {
        path,
        contents: contents.into(),
        executable: false,
    })
}

/// The SDK a Python scaffold is written on: the `corral` package, copied
/// into `corral/` (componentize-py finds it beside `app.py`), with its guide.
fn python_sdk() -> impl Iterator<Item = File> {
    let package = embedded::PY_SDK.iter().map(|(path, contents)| (format!("corral/{path}"), *contents));
    let guide = std::iter::once(("corral/README.md".to_string(), embedded::PY_GUIDE));
    package.chain(guide).map(|(path, contents)| File { path, contents: contents.into(), executable: false })
}

/// A `package.json` whose `build` script type-checks `app.ts` with the
/// SDK, bundles them (and any npm packages it imports) with esbuild, and
/// componentizes the bundle, all with the toolchain of `sdk/js` (less jco,
/// which only the SDK's own types need).
fn package_json(kind: Kind, name: &str) -> anyhow::Result<String> {
    let pins: serde_json::Value = serde_json::from_str(JS_PINS).context("parsing sdk/js/package.json")?;
    let pins = pins["devDependencies"].as_object().context("sdk/js/package.json has devDependencies")?;
    let bundle = "esbuild app.ts --bundle --format=esm --platform=neutral --target=es2022 \
                  --main-fields=module,main --external:corral:* --log-level=warning --outfile=dist/app.js";
    let componentize = format!(
        "componentize-js dist/app.js --wit wit --world-name {} --disable http fetch-event --out {}",
        kind.world(),
        component(name, Lang::Js)
    );
    let json = |value: &str| serde_json::Value::from(value).to_string();
    let pins: Vec<String> = pins
        .iter()
        .filter(|(package, _)| package.as_str() != "@bytecodealliance/jco")
        .map(|(package, version)| format!("    {}: {version}", json(package)))
        .collect();
    Ok(format!(
        r#"{{
  "name": {name},
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "description": {description},
  "scripts": {{
    "check": "tsc -p .",
    "bundle": {bundle},
    "build": {build}
  }},
  "devDependencies": {{
{pins}
  }}
}}
"#,
        name = json(name),
        description = json(&format!("A Corral {} plugin in TypeScript.", kind.world())),
        bundle = json(bundle),
        build = json(&format!("npm run check && npm run bundle && {componentize}")),
        pins = pins.join(",\n")
    ))
}

/// `requirements.txt`: the pins of `sdk/python/requirements.txt` without its
/// comments (they describe the repository's own install).
fn requirements() -> String {
    let pins: String = PYTHON_PINS
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    format!("# The Python guest toolchain, pinned (the one Corral is tested with).\n{pins}")
}

fn gitignore(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "target/\n",
        Lang::Js => "node_modules/\ndist/\n*.wasm\n",
        Lang::Python => ".venv/\n.deps/\n__pycache__/\n*.wasm\n",
    }
}

/// Creates `dir` (never over an existing one) and writes the files; on
/// failure removes what it wrote, so a retry starts clean.
fn write(dir: &Path, files: &[File]) -> anyhow::Result<()> {
    fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let written = files.iter().try_for_each(|file| {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, &file.contents).with_context(|| format!("writing {}", path.display()))?;
        if file.executable {
            make_executable(&path)?;
        }
        Ok(())
    });
    if written.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    written
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [Kind; 4] = [Kind::Route, Kind::EventHandler, Kind::Projection, Kind::Cart];

    #[test]
    fn every_kind_and_language_has_a_template_with_the_name_put_in() {
        let sdk = Path::new("/opt/corral/sdk");
        for lang in [Lang::Rust, Lang::Js, Lang::Python] {
            for kind in KINDS {
                let files = render(kind, "shop-api", lang, Some(sdk)).unwrap();
                let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
                assert!(paths.contains(&"README.md") && paths.contains(&".gitignore"), "{paths:?}");
                for file in &files {
                    // The SDK's guide (`corral/`) is copied as it is.
                    let copied = file.path.starts_with("corral/");
                    assert!(copied || !file.contents.contains(kind.placeholder()), "{lang:?} {kind:?} {}", file.path);
                    assert!(!file.contents.contains("{{"), "{lang:?} {kind:?} {} keeps a placeholder", file.path);
                }
                let source = match lang {
                    Lang::Rust => "src/lib.rs",
                    Lang::Js => "app.ts",
                    Lang::Python => "app.py",
                };
                let source = files.iter().find(|f| f.path == source).unwrap();
                let named = ["\"shop-api\"", "'shop-api'"].iter().any(|quoted| source.contents.contains(quoted));
                assert!(named, "{lang:?} {kind:?}: describe() names the plugin");
                if lang == Lang::Rust {
                    assert!(!paths.iter().any(|p| p.starts_with("wit/")));
                } else {
                    assert!(paths.contains(&"wit/worlds.wit"), "{paths:?}");
                }
            }
        }
    }

    #[test]
    fn the_rust_manifest_points_at_the_sdk() {
        let files = render(Kind::Cart, "basket", Lang::Rust, Some(Path::new("/opt/corral/sdk"))).unwrap();
        let manifest = &files.iter().find(|f| f.path == "Cargo.toml").unwrap().contents;
        let parsed: toml::Table = toml::from_str(manifest).unwrap();
        assert_eq!(parsed["package"]["name"].as_str(), Some("basket"));
        assert_eq!(parsed["dependencies"]["corral-sdk"]["path"].as_str(), Some("/opt/corral/sdk"));
        assert!(parsed.contains_key("workspace"), "a scaffold is its own workspace");
    }

    #[test]
    fn the_js_build_uses_the_pinned_toolchain_without_http() {
        let files = render(Kind::Projection, "totals", Lang::Js, None).unwrap();
        let package: serde_json::Value =
            serde_json::from_str(&files.iter().find(|f| f.path == "package.json").unwrap().contents).unwrap();
        let mut pins: serde_json::Value = serde_json::from_str(JS_PINS).unwrap();
        pins["devDependencies"].as_object_mut().unwrap().remove("@bytecodealliance/jco");
        assert_eq!(package["devDependencies"], pins["devDependencies"]);
        assert!(
            package["devDependencies"]["typescript"].is_string() && package["devDependencies"]["esbuild"].is_string()
        );
        let build = package["scripts"]["build"].as_str().unwrap();
        assert!(build.starts_with("npm run check && npm run bundle && componentize-js dist/app.js"), "{build}");
        assert!(build.contains("--world-name projection --disable http fetch-event --out totals.wasm"), "{build}");
        // The SDK travels with the scaffold: sources, WIT types, guide.
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        for file in [
            "tsconfig.json",
            "corral/index.ts",
            "corral/projection.ts",
            "corral/types/projection.d.ts",
            "corral/README.md",
        ] {
            assert!(paths.contains(&file), "{file} in {paths:?}");
        }
    }

    #[test]
    fn the_python_build_pins_componentize_py_and_is_executable() {
        let files = render(Kind::Route, "hello", Lang::Python, None).unwrap();
        let requirements = &files.iter().find(|f| f.path == "requirements.txt").unwrap().contents;
        assert!(requirements.lines().any(|l| l.starts_with("componentize-py==")), "{requirements}");
        let build = files.iter().find(|f| f.path == "build.sh").unwrap();
        assert!(build.executable);
        assert!(build.contents.contains("-w route componentize -p . app -o hello.wasm"), "{}", build.contents);
        assert!(build.contents.contains("-p . -p .deps app"), "the plugin's own packages are built in");
        // The SDK travels with the scaffold.
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        for file in ["corral/__init__.py", "corral/_http.py", "corral/_cart.py", "corral/README.md"] {
            assert!(paths.contains(&file), "{file} in {paths:?}");
        }
    }

    #[test]
    fn names_are_checked_with_a_suggestion() {
        for good in ["a", "shop-api", "v2-cart"] {
            validate_name(good).unwrap();
        }
        for (bad, hint) in [("Shop_API", "shop-api"), ("2fast", "fast"), ("cart-", "cart"), ("", "my-plugin")] {
            let error = validate_name(bad).unwrap_err().to_string();
            assert!(error.contains(&format!("{hint:?}")), "{bad}: {error}");
        }
    }
}
