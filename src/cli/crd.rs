//! `tollgate crd`: print a CustomResourceDefinition generated from the Rust types.

use std::process::ExitCode;

use clap::Args;

use crate::crd::CrdKind;

#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Which CustomResourceDefinition to print.
    #[arg(long, value_enum, default_value = "Rollout")]
    pub kind: CrdKind,
}

pub fn run(args: CrdArgs) -> ExitCode {
    match crate::crd::crd_yaml_of(args.kind) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot render the CRD: {e}");
            ExitCode::from(3)
        }
    }
}
