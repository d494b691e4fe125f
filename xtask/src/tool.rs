//! Running a guest toolchain's command and reporting its output when it
//! fails (a leaf: `typescript` and `python` both use it).

use std::process::Command;

use anyhow::{Context as _, bail};

/// Runs `command`, failing with `what`, its status and its output.
pub(crate) fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("{what}: running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
