//! The `host` binary; everything lives in the `corral_host` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    corral_host::main()
}
