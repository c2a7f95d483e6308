//! `tollgate crd`: print the CustomResourceDefinition generated from the Rust types.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct CrdArgs {}

pub fn run(_args: CrdArgs) -> ExitCode {
    match crate::crd::crd_yaml() {
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
