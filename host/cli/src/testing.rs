//! `host test`: runs plugin test specs (`*.test.toml`) with the test kit,
//! which owns the format; this module only finds, runs and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use corral_testkit::spec;

/// Runs every spec under `paths`: one line per case, the diff under a
/// failing one, a summary; non-zero exit if any case or spec fails.
pub(crate) async fn test(data_dir: &Path, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = spec::find(paths)?;
    if files.is_empty() {
        anyhow::bail!("no test specs (*{}) under {}", spec::SUFFIX, display(paths));
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        println!("{}", file.display());
        match spec::run_file(file, Some(data_dir.join("cache")), |case| println!("  {case}")).await {
            Ok(reports) => {
                let bad = reports.iter().filter(|case| case.outcome.is_err()).count();
                failed += bad;
                passed += reports.len() - bad;
            }
            Err(error) => {
                failed += 1;
                println!("  error {error}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn display(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
