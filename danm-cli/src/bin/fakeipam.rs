//! fakeipam: an IPAM plugin that returns exactly the addresses listed in its configuration.

use std::process::ExitCode;

fn main() -> ExitCode {
    danm_cli::cni_main::run(&danm_cli::FakeIpam)
}
