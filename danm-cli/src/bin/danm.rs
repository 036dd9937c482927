//! danm: the DANM CNI meta-plugin.

use std::process::ExitCode;

fn main() -> ExitCode {
    danm_cli::cni_main::run(&danm_cli::danm::Danm::new())
}
