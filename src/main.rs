//! The `tollgate` binary (also installed as `kubectl-tollgate`): hands the command line to
//! [`tollgate::cli::run`] and exits with its code; everything else lives in the library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    tollgate::cli::run()
}
