//! The JavaScript and Python plugins of a `host dev` source: folders laid
//! out as `host new --lang js|python` writes them. A JavaScript plugin has a
//! `package.json` whose `build` script writes `NAME.wasm` (NAME = the
//! folder's name); a Python plugin has a `build.sh` that does the same.
//!
//! Their toolchain (componentize-js, componentize-py) is used from the
//! folder's own install (`node_modules/`, `.venv/`) or else from `PATH`;
//! when neither has it, it is installed into the folder with the plugin's
//! own recipe (`npm install`; a venv with `pip install -r
//! requirements.txt`), once.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::replace_if_changed;

/// Folders below a source that are never plugins nor hold any.
const SKIPPED: [&str; 4] = ["target", "node_modules", "__pycache__", "wit"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Js,
    Python,
}

impl Lang {
    fn title(self) -> &'static str {
        match self {
            Lang::Js => "JavaScript",
            Lang::Python => "Python",
        }
    }

    /// The componentize executable and where the folder's own install keeps it.
    fn tool(self) -> (&'static str, &'static str) {
        match self {
            Lang::Js => ("componentize-js", "node_modules/.bin"),
            Lang::Python => ("componentize-py", ".venv/bin"),
        }
    }
}

/// One JavaScript or Python plugin folder.
#[derive(Debug)]
pub(super) struct ScriptBuild {
    pub(super) dir: PathBuf,
    name: String,
    lang: Lang,
}

impl ScriptBuild {
    /// The plugin folders at `source`, in its subfolders and theirs (e.g.
    /// `plugins/NAME`), outside hidden folders and build outputs.
    pub(super) fn discover(source: &Path) -> anyhow::Result<Vec<ScriptBuild>> {
        let mut found = Vec::new();
        let mut level = vec![source.to_path_buf()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for dir in level {
                if let Some(build) = ScriptBuild::at(&dir)? {
                    found.push(build);
                    continue;
                }
                for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                    let path = entry.with_context(|| format!("reading {}", dir.display()))?.path();
                    let name = file_name(&path);
                    if path.is_dir() && !name.starts_with('.') && !SKIPPED.contains(&name.as_str()) {
                        next.push(path);
                    }
                }
            }
            next.sort();
            level = next;
        }
        Ok(found)
    }

    /// The plugin in `dir`, if it is one.
    fn at(dir: &Path) -> anyhow::Result<Option<ScriptBuild>> {
        let lang = if dir.join("package.json").is_file() {
            let manifest = dir.join("package.json");
            let text = std::fs::read_to_string(&manifest).with_context(|| format!("reading {}", manifest.display()))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", manifest.display()))?;
            if json["scripts"]["build"].as_str().is_none() {
                return Ok(None);
            }
            Lang::Js
        } else if dir.join("build.sh").is_file() && dir.join("requirements.txt").is_file() {
            Lang::Python
        } else {
            return Ok(None);
        };
        Ok(Some(ScriptBuild { dir: dir.to_path_buf(), name: file_name(dir), lang }))
    }

    /// Whether a change at `path` is a change of this plugin's sources (not
    /// of its installed toolchain or of its own output).
    pub(super) fn owns(&self, path: &Path) -> bool {
        let Ok(relative) = path.strip_prefix(&self.dir) else { return false };
        let inside_tooling = relative.components().any(|c| {
            let part = c.as_os_str().to_string_lossy();
            // `dist/`: a TypeScript plugin's bundle, written by its build.
            part.starts_with('.') || matches!(part.as_ref(), "node_modules" | "__pycache__" | "dist")
        });
        let name = file_name(path);
        let generated = name == "package-lock.json" || name.ends_with(".wasm") || name.ends_with(".partial");
        let source = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "js" | "mjs" | "cjs" | "ts" | "py" | "json" | "toml" | "sh" | "txt" | "wit"));
        !inside_tooling && !generated && source
    }

    /// Installs the toolchain if needed, builds, and publishes the component
    /// (and its sidecar `NAME.toml`) into `plugins` if it changed.
    pub(super) async fn build(&self, plugins: &Path) -> anyhow::Result<bool> {
        self.install().await?;
        let mut command = match self.lang {
            Lang::Js => {
                let mut npm = tokio::process::Command::new("npm");
                npm.args(["run", "--silent", "build"]);
                npm
            }
            Lang::Python => {
                let mut sh = tokio::process::Command::new("sh");
                sh.arg("build.sh");
                sh
            }
        };
        command.current_dir(&self.dir);
        self.run(command, "the build").await?;
        let component = self.dir.join(format!("{}.wasm", self.name));
        if !component.is_file() {
            bail!(
                "{}: the build succeeded but wrote no {} (a {} plugin's component is named after its folder)",
                self.dir.display(),
                component.display(),
                self.lang.title()
            );
        }
        let published = replace_if_changed(&component, &plugins.join(format!("{}.wasm", self.name)))?;
        let sidecar = self.dir.join(format!("{}.toml", self.name));
        if sidecar.is_file() {
            replace_if_changed(&sidecar, &plugins.join(format!("{}.toml", self.name)))?;
        }
        Ok(published)
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Installs componentize-js/-py into the folder unless the folder or
    /// `PATH` already has it.
    async fn install(&self) -> anyhow::Result<()> {
        let (tool, local) = self.lang.tool();
        if self.dir.join(local).join(tool).is_file() || on_path(tool) {
            return Ok(());
        }
        tracing::info!(plugin = %self.name, "installing the {} toolchain into {}", self.lang.title(), self.dir.display());
        match self.lang {
            Lang::Js => {
                let mut npm = tokio::process::Command::new("npm");
                npm.args(["install", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&self.dir);
                self.run(npm, "npm install").await
            }
            Lang::Python => {
                let mut venv = tokio::process::Command::new("python3");
                venv.args(["-m", "venv", ".venv"]).current_dir(&self.dir);
                self.run(venv, "creating .venv").await?;
                let mut pip = tokio::process::Command::new(self.dir.join(".venv/bin/pip"));
                pip.args(["install", "--quiet", "--disable-pip-version-check", "-r", "requirements.txt"])
                    .current_dir(&self.dir);
                self.run(pip, "pip install -r requirements.txt").await
            }
        }
    }

    async fn run(&self, mut command: tokio::process::Command, what: &str) -> anyhow::Result<()> {
        let program = command.as_std().get_program().to_string_lossy().into_owned();
        let output = match command.output().await {
            Ok(output) => output,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "{}: a {} plugin; building it needs {} on PATH ({program} was not found)",
                self.dir.display(),
                self.lang.title(),
                match self.lang {
                    Lang::Js => "Node.js 20+ with npm",
                    Lang::Python => "python3 (3.10+, with venv)",
                }
            ),
            Err(error) => return Err(error).with_context(|| format!("{}: running {program}", self.dir.display())),
        };
        if !output.status.success() {
            let mut text = output.stdout;
            text.extend_from_slice(&output.stderr);
            bail!("{}: {what} failed ({}):\n{}", self.dir.display(), output.status, super::tail(&text));
        }
        Ok(())
    }
}

/// Whether an executable of that name is on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_js_and_python_plugins_below_a_source_and_owns_only_their_sources() {
        let source = tempfile::tempdir().unwrap();
        let js = source.path().join("plugins/confirm");
        let py = source.path().join("plugins/sweep");
        let rust = source.path().join("plugins/cart");
        for dir in [&js, &py, &rust, &js.join("node_modules/x")] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(js.join("package.json"), r#"{"scripts": {"build": "componentize-js app.js"}}"#).unwrap();
        std::fs::write(js.join("node_modules/x/package.json"), r#"{"scripts": {"build": "x"}}"#).unwrap();
        std::fs::write(py.join("build.sh"), "").unwrap();
        std::fs::write(py.join("requirements.txt"), "").unwrap();
        std::fs::write(rust.join("Cargo.toml"), "").unwrap();

        let found = ScriptBuild::discover(source.path()).unwrap();
        let names: Vec<(&str, Lang)> = found.iter().map(|b| (b.name(), b.lang)).collect();
        assert_eq!(names, [("confirm", Lang::Js), ("sweep", Lang::Python)]);

        let confirm = &found[0];
        assert!(confirm.owns(&js.join("app.js")));
        assert!(confirm.owns(&js.join("confirm.toml")));
        assert!(confirm.owns(&js.join("app.ts")));
        for generated in ["confirm.wasm", "package-lock.json", "node_modules/x/index.js", ".cache/a.js", "dist/app.js"]
        {
            assert!(!confirm.owns(&js.join(generated)), "{generated}");
        }
        assert!(!confirm.owns(&py.join("app.py")));
    }
}
