//! JavaScript and Python guests, built from source.
//!
//! The toolchains are pinned in `sdk/js/package-lock.json` and
//! `sdk/python/requirements.txt` and installed on first use into `.tools/`
//! (gitignored): an npm prefix with componentize-js and a virtual
//! environment with componentize-py. Nothing is installed system-wide.
//!
//! Every guest is one folder with one source file (`app.js`, `app.ts` or
//! `app.py`; an `app.ts` is bundled with the SDK of `sdk/js` first, see
//! `typescript`):
//! the fixtures in `guests/{js,python}/KIND-BEHAVIOUR/` and the templates in
//! `sdk/templates/{js,python}/WORLD/`, each built against `wit/` into
//! `guests/target/polyglot/`; and the example shop's JavaScript and Python
//! plugins (`examples/shop/plugins/NAME/` with a `package.json` or a
//! `build.sh`), built in place by their own recipe — as `host dev` builds
//! them — with the toolchain of `.tools/` on `PATH`. A guest is rebuilt only
//! when its sources, the WIT or the pinned toolchain is newer than its
//! component.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use anyhow::{Context as _, bail};

use crate::{python, typescript};

/// The worlds of `wit/worlds.wit`, each with the kind that names its
/// fixtures (`guests/LANG/KIND-BEHAVIOUR`).
const WORLDS: [(&str, &str); 5] = [
    ("route", "route"),
    ("event", "event-handler"),
    ("projection", "projection"),
    ("batched", "batched-projection"),
    ("cart", "cart"),
];

/// A guest language and how its toolchain is installed and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Js,
    Python,
}

impl Lang {
    const ALL: [Lang; 2] = [Lang::Js, Lang::Python];

    /// The folder name under `guests/` and `sdk/templates/`.
    fn dir(self) -> &'static str {
        match self {
            Lang::Js => "js",
            Lang::Python => "python",
        }
    }

    /// The source files a guest may have, one of them.
    fn sources(self) -> &'static [&'static str] {
        match self {
            Lang::Js => &["app.js", "app.ts"],
            Lang::Python => &["app.py"],
        }
    }

    /// The SDK's sources: a newer one rebuilds the guests written on it.
    fn sdk(self, root: &Path) -> PathBuf {
        match self {
            Lang::Js => root.join("sdk/js/src"),
            Lang::Python => root.join("sdk/python/corral"),
        }
    }

    /// The file that pins the toolchain; a newer pin rebuilds every guest.
    fn pin(self, root: &Path) -> PathBuf {
        match self {
            Lang::Js => root.join("sdk/js/package-lock.json"),
            Lang::Python => root.join("sdk/python/requirements.txt"),
        }
    }
}

/// One guest to build.
#[derive(Debug)]
struct Guest {
    lang: Lang,
    dir: PathBuf,
    /// Its source file (or its recipe's entry).
    source: PathBuf,
    build: Build,
    output: PathBuf,
}

impl Guest {
    /// Whether it is written on its language's SDK: TypeScript (bundled
    /// with the SDK), or Python importing `corral`; either is type-checked
    /// first.
    fn on_sdk(&self) -> bool {
        match self.lang {
            Lang::Js => self.source.extension().is_some_and(|e| e == "ts"),
            Lang::Python => python::uses_sdk(&self.source),
        }
    }
}

/// How a guest is built.
#[derive(Debug, Clone, Copy)]
enum Build {
    /// `app.js`/`app.py` componentized for this world.
    World(&'static str),
    /// The folder's own recipe (`npm run build`, `sh build.sh`), writing
    /// `NAME.wasm` into the folder.
    Recipe,
}

/// Installs the toolchains if needed and builds every JS and Python guest
/// (fixtures and templates) whose component is missing or stale. The two
/// languages build side by side: each componentize run is mostly one core.
pub(crate) fn build(root: &Path) -> anyhow::Result<()> {
    let guests = discover(root)?;
    let guests = guests.as_slice();
    let wit_changed = newest(&root.join("wit"))?;
    std::thread::scope(|scope| {
        let builds: Vec<_> =
            Lang::ALL.map(|lang| scope.spawn(move || build_lang(root, lang, guests, wit_changed))).into();
        builds.into_iter().try_for_each(|build| match build.join() {
            Ok(result) => result,
            Err(_) => bail!("a guest build thread panicked"),
        })
    })
}

/// `PATH` with the pinned toolchains of the example shop's JavaScript and
/// Python plugins in front, installing them first, so `host dev` builds
/// those plugins with the versions the tests use. A toolchain that cannot
/// be installed is reported and left out: `host dev` then names what is
/// missing for that plugin, and the other plugins serve.
pub(crate) fn example_path(root: &Path) -> anyhow::Result<std::ffi::OsString> {
    let mut dirs = Vec::new();
    for lang in Lang::ALL {
        let wanted = subfolders(&root.join("examples/shop/plugins"))?.iter().any(|dir| match lang {
            Lang::Js => dir.join("package.json").is_file(),
            Lang::Python => dir.join("build.sh").is_file(),
        });
        if !wanted {
            continue;
        }
        match install(root, lang) {
            Ok(tool) => dirs.extend(tool.parent().map(Path::to_path_buf)),
            Err(error) => eprintln!("warning: the example's {} plugins will not build: {error:#}", lang.dir()),
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(dirs.into_iter().chain(std::env::split_paths(&path))).context("joining PATH")
}

fn build_lang(root: &Path, lang: Lang, guests: &[Guest], wit_changed: SystemTime) -> anyhow::Result<()> {
    let sdk_changed = newest(&lang.sdk(root))?;
    let mut stale = Vec::new();
    for guest in guests.iter().filter(|g| g.lang == lang) {
        let inputs = if guest.on_sdk() { wit_changed.max(sdk_changed) } else { wit_changed };
        if is_stale(guest, &lang.pin(root), inputs)? {
            stale.push(guest);
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    let tool = install(root, lang)?;
    let bin = tool.parent().context("a tool lives in a folder")?;
    // A guest's own packages first: the type check and the build read them.
    for guest in &stale {
        match lang {
            Lang::Js => typescript::install_packages(&guest.dir)?,
            Lang::Python => python::install_requirements(bin, &guest.dir)?,
        }
    }
    let on_sdk: Vec<&Guest> = stale.iter().copied().filter(|guest| guest.on_sdk()).collect();
    if !on_sdk.is_empty() {
        match lang {
            Lang::Js => typescript::check(root, bin, wit_changed)?,
            Lang::Python => {
                let sources: Vec<&Path> = on_sdk.iter().map(|guest| guest.source.as_path()).collect();
                python::check(root, bin, &sources)?;
            }
        }
    }
    stale.into_iter().try_for_each(|guest| componentize(root, &tool, guest))
}

/// The fixtures (`guests/LANG/KIND-BEHAVIOUR`, world from the kind) and the
/// templates (`sdk/templates/LANG/WORLD`).
fn discover(root: &Path) -> anyhow::Result<Vec<Guest>> {
    let out = root.join("guests/target/polyglot");
    let mut guests = Vec::new();
    for lang in Lang::ALL {
        for dir in subfolders(&root.join("guests").join(lang.dir()))? {
            let name = file_name(&dir);
            let kind = name.split('-').next().unwrap_or_default();
            let Some(&(_, world)) = WORLDS.iter().find(|(k, _)| *k == kind) else {
                bail!(
                    "{}: a guest folder is named KIND-BEHAVIOUR, KIND one of route, event, projection, batched, cart",
                    dir.display()
                );
            };
            let output = out.join(lang.dir()).join(format!("{name}.wasm"));
            let source = source_of(lang, &dir)?;
            guests.push(Guest { lang, dir, source, build: Build::World(world), output });
        }
        for dir in subfolders(&root.join("sdk/templates").join(lang.dir()))? {
            let name = file_name(&dir);
            let Some(&(_, world)) = WORLDS.iter().find(|(_, w)| *w == name) else {
                bail!(
                    "{}: a template folder is named after its world (route, event-handler, projection, batched-projection, cart)",
                    dir.display()
                );
            };
            let output = out.join("templates").join(lang.dir()).join(format!("{name}.wasm"));
            let source = source_of(lang, &dir)?;
            guests.push(Guest { lang, dir, source, build: Build::World(world), output });
        }
    }
    for dir in subfolders(&root.join("examples/shop/plugins"))? {
        let lang = if dir.join("package.json").is_file() {
            Lang::Js
        } else if dir.join("build.sh").is_file() {
            Lang::Python
        } else {
            continue;
        };
        let output = dir.join(format!("{}.wasm", file_name(&dir)));
        let source = source_of(lang, &dir)?;
        guests.push(Guest { lang, dir, source, build: Build::Recipe, output });
    }
    Ok(guests)
}

/// The one source file of the guest in `dir`.
fn source_of(lang: Lang, dir: &Path) -> anyhow::Result<PathBuf> {
    let found: Vec<PathBuf> = lang.sources().iter().map(|name| dir.join(name)).filter(|p| p.is_file()).collect();
    match found.as_slice() {
        [source] => Ok(source.clone()),
        [] => bail!("{}: missing {}", dir.display(), lang.sources().join(" or ")),
        _ => bail!("{}: has both {}; keep one", dir.display(), lang.sources().join(" and ")),
    }
}

fn subfolders(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
        if path.is_dir() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn is_stale(guest: &Guest, pin: &Path, wit_changed: SystemTime) -> anyhow::Result<bool> {
    let Ok(built) = fs::metadata(&guest.output).and_then(|m| m.modified()) else {
        return Ok(true);
    };
    let pinned = fs::metadata(pin).and_then(|m| m.modified()).with_context(|| format!("reading {}", pin.display()))?;
    Ok(newest(&guest.dir)? > built || wit_changed > built || pinned > built)
}

/// The latest modification time of any file under `dir` (caches excluded).
fn newest(dir: &Path) -> anyhow::Result<SystemTime> {
    let mut latest = SystemTime::UNIX_EPOCH;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let path = entry.path();
        let modified = if path.is_dir() {
            if matches!(file_name(&path).as_str(), "__pycache__" | "node_modules" | ".venv" | ".deps" | "dist") {
                continue;
            }
            newest(&path)?
        } else {
            entry.metadata().and_then(|m| m.modified()).with_context(|| format!("reading {}", path.display()))?
        };
        latest = latest.max(modified);
    }
    Ok(latest)
}

/// Installs the pinned toolchain into `.tools/LANG` unless the installed
/// copy matches the pin; returns the componentize executable.
fn install(root: &Path, lang: Lang) -> anyhow::Result<PathBuf> {
    let home = root.join(".tools").join(lang.dir());
    let pin = lang.pin(root);
    let tool = match lang {
        Lang::Js => home.join("node_modules/.bin/componentize-js"),
        Lang::Python => home.join("bin/componentize-py"),
    };
    // A copy of the pin, written only once the install succeeded: an
    // interrupted install is redone next time.
    let stamp = home.join("installed.pin");
    let wanted = fs::read(&pin).with_context(|| format!("reading {}", pin.display()))?;
    if tool.is_file() && fs::read(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(tool);
    }
    eprintln!("installing the {} guest toolchain into {}", lang.dir(), home.display());
    fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    match lang {
        Lang::Js => {
            for file in ["package.json", "package-lock.json"] {
                let from = root.join("sdk/js").join(file);
                fs::copy(&from, home.join(file)).with_context(|| format!("copying {}", from.display()))?;
            }
            let mut npm = Command::new("npm");
            npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&home);
            run_tool(npm, "npm (Node.js 20 or later) is needed to build the JavaScript guests")?;
        }
        Lang::Python => {
            let mut venv = Command::new(python());
            venv.args(["-m", "venv"]).arg(&home);
            run_tool(venv, "python3 (3.10 or later, with venv) is needed to build the Python guests")?;
            let mut pip = Command::new(home.join("bin/pip"));
            pip.args(["install", "--quiet", "--disable-pip-version-check", "-r"]).arg(&pin);
            run_tool(pip, "pip could not install componentize-py")?;
        }
    }
    if !tool.is_file() {
        bail!("installing the {} toolchain did not produce {}", lang.dir(), tool.display());
    }
    fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(tool)
}

/// `PYTHON` if set, else `python3`.
fn python() -> std::ffi::OsString {
    std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into())
}

fn run_tool(mut command: Command, missing: &str) -> anyhow::Result<()> {
    let status = match command.status() {
        Ok(status) => status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{missing}: {command:?} was not found"),
        Err(e) => return Err(e).with_context(|| format!("running {command:?}")),
    };
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// The module componentize-js takes for a JavaScript guest: its `app.js`,
/// or its `app.ts` bundled with the SDK beside the partial output.
fn entry(root: &Path, tool: &Path, guest: &Guest, partial: &Path) -> anyhow::Result<PathBuf> {
    if !guest.on_sdk() {
        return Ok(guest.source.clone());
    }
    let bundle = partial.with_extension("bundle.js");
    typescript::bundle(root, tool.parent().context("a tool lives in a folder")?, &guest.source, &bundle)?;
    Ok(bundle)
}

/// Builds one guest. A world build writes a temporary file renamed into
/// place, so a failed build never leaves a component that looks up to date;
/// a recipe writes its own output.
fn componentize(root: &Path, tool: &Path, guest: &Guest) -> anyhow::Result<()> {
    let parent = guest.output.parent().context("a component path has a parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let partial = guest.output.with_extension("wasm.partial");
    let wit = root.join("wit");
    let mut command = Command::new(tool);
    match (guest.build, guest.lang) {
        // Without `-d http fetch-event` the component imports wasi:http,
        // which the deterministic worlds do not link; guests have no
        // network anyway.
        (Build::World(world), Lang::Js) => command
            .arg(entry(root, tool, guest, &partial)?)
            .arg("--wit")
            .arg(&wit)
            .args(["--world-name", world, "--disable", "http", "fetch-event", "--out"])
            .arg(&partial),
        // The guest, the SDK, and the packages of its requirements-plugin.txt.
        (Build::World(world), Lang::Python) => command
            .arg("--wit-path")
            .arg(&wit)
            .args(["--world", world, "componentize", "--python-path"])
            .arg(&guest.dir)
            .arg("--python-path")
            .arg(root.join("sdk/python"))
            .args(
                python::deps(&guest.dir)
                    .into_iter()
                    .flat_map(|deps| [std::ffi::OsString::from("--python-path"), deps.into_os_string()]),
            )
            .args(["app", "--output"])
            .arg(&partial),
        (Build::Recipe, lang) => {
            let tools = tool.parent().context("a tool lives in a folder")?;
            let path = std::env::var_os("PATH").unwrap_or_default();
            let path = std::env::join_paths(std::iter::once(tools.to_path_buf()).chain(std::env::split_paths(&path)))
                .context("joining PATH")?;
            command = match lang {
                Lang::Js => Command::new("npm"),
                Lang::Python => Command::new("sh"),
            };
            match lang {
                Lang::Js => command.args(["run", "--silent", "build"]),
                Lang::Python => command.arg("build.sh"),
            }
            .current_dir(&guest.dir)
            .env("PATH", path)
        }
    };
    command.env("PYTHONDONTWRITEBYTECODE", "1");
    let before = fs::metadata(&guest.output).and_then(|m| m.modified()).ok();
    let started = Instant::now();
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "building {} failed ({}):\n{}{}",
            guest.dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let how = match guest.build {
        Build::World(world) => {
            fs::rename(&partial, &guest.output).with_context(|| format!("writing {}", guest.output.display()))?;
            format!("{world} world")
        }
        Build::Recipe if fs::metadata(&guest.output).and_then(|m| m.modified()).ok() > before => {
            "its own recipe".to_string()
        }
        Build::Recipe => bail!("building {} wrote no {}", guest.dir.display(), guest.output.display()),
    };
    let size = fs::metadata(&guest.output).map(|m| m.len()).unwrap_or_default();
    eprintln!(
        "built {} ({how}, {:.1} MB, {:.1} s)",
        guest.output.strip_prefix(root).unwrap_or(&guest.output).display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
