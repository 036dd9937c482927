//! danmctl: the operator's tool for DANM networks.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use danm_core::ipam::{Family, Pool};
use danm_core::model::Network;

/// Inspect DANM networks.
#[derive(Debug, Parser)]
#[command(name = "danmctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the address pools a network manifest (JSON or YAML, one network) describes.
    Pools {
        /// The manifest file.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Pools { file } => pools(&file),
    }
}

fn pools(file: &PathBuf) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let network: Network = serde_yaml::from_str(&text).with_context(|| format!("decoding {}", file.display()))?;
    println!("{:<6} {:<24} {:<42} {:>22}", "FAMILY", "SUBNET", "DYNAMIC RANGE", "CAPACITY");
    let mut any = false;
    for family in [Family::V4, Family::V6] {
        if let Some(pool) = Pool::from_options(&network.spec.options, family)? {
            any = true;
            let range = format!("{} - {}", pool.start(), pool.end());
            println!(
                "{:<6} {:<24} {:<42} {:>22}",
                family.to_string(),
                pool.subnet().to_string(),
                range,
                pool.capacity()
            );
        }
    }
    if !any {
        bail!("{} has neither spec.Options.cidr nor spec.Options.net6: it is an L2-only network", network.key());
    }
    Ok(())
}
