//! TypeScript guests and the JavaScript SDK (`sdk/js`): the SDK's types
//! generated from `wit/` by jco, the SDK and every TypeScript guest
//! type-checked by `tsc` against them, and a guest's `app.ts` bundled with
//! the SDK by esbuild into the one module componentize-js takes. All three
//! tools are pinned in `sdk/js/package.json` and installed with the rest of
//! the JavaScript toolchain.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use anyhow::Context as _;

use crate::tool::run;

/// The worlds whose guest types the SDK carries.
const WORLDS: [&str; 5] = ["route", "event-handler", "projection", "batched-projection", "cart"];

/// Regenerates `sdk/js/types` when `wit/` is newer, then type-checks the SDK
/// and every TypeScript guest (`sdk/js/tsconfig.json` names them).
pub(crate) fn check(root: &Path, tools: &Path, wit_changed: SystemTime) -> anyhow::Result<()> {
    let types = root.join("sdk/js/types");
    // The oldest world's types; none when a world has none yet.
    let generated = WORLDS
        .iter()
        .map(|world| fs::metadata(types.join(format!("{world}.d.ts"))).and_then(|m| m.modified()).ok())
        .min()
        .flatten();
    if generated.is_none_or(|generated| generated < wit_changed) {
        for world in WORLDS {
            // jco runs sandboxed: it reads `wit` relative to the root only.
            let mut jco = Command::new(tools.join("jco"));
            jco.args(["guest-types", "wit", "--world-name", world, "-o", "sdk/js/types"]).current_dir(root);
            run(jco, &format!("generating the SDK's types for the {world} world"))?;
        }
        eprintln!("generated sdk/js/types from wit/");
    }
    let mut tsc = Command::new(tools.join("tsc"));
    tsc.args(["-p", "sdk/js/tsconfig.json"]).current_dir(root);
    run(tsc, "type-checking the JavaScript SDK and the TypeScript guests (tsc -p sdk/js)")
}

/// Installs the npm packages a TypeScript guest's `package-lock.json` pins
/// into its own `node_modules` (what `npm install` does in a scaffold), if
/// it has one and they are not installed as pinned yet.
pub(crate) fn install_packages(dir: &Path) -> anyhow::Result<()> {
    let lock = dir.join("package-lock.json");
    let Ok(wanted) = fs::read(&lock) else {
        return Ok(());
    };
    // A copy of the lock, written once the install succeeded.
    let stamp = dir.join("node_modules/.corral-installed.lock");
    if fs::read(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(());
    }
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(dir);
    run(npm, &format!("installing the npm packages of {}", dir.display()))?;
    fs::write(&stamp, wanted).with_context(|| format!("writing {}", stamp.display()))
}

/// Bundles `entry` (an `app.ts`) with the SDK and any npm packages it
/// imports into `out`, one ES module; the `corral:` imports stay imports.
pub(crate) fn bundle(root: &Path, tools: &Path, entry: &Path, out: &Path) -> anyhow::Result<()> {
    let mut esbuild = Command::new(tools.join("esbuild"));
    esbuild
        .arg(entry)
        .args(["--bundle", "--format=esm", "--platform=neutral", "--target=es2022", "--main-fields=module,main"])
        .arg(format!("--tsconfig={}", root.join("sdk/js/tsconfig.json").display()))
        .args(["--external:corral:*", "--log-level=warning"])
        .arg(format!("--outfile={}", out.display()));
    run(esbuild, &format!("bundling {}", entry.display()))
}
