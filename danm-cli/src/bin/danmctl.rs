//! danmctl: the operator's tool for DANM networks, on the local or the Kubernetes datastore, and the printer of
//! the CRDs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use danm_cli::ctl::{self, Format, Resource};
use danm_cli::store::{AnyStore, SqliteStore};
use danm_core::ipam::{Family, Pool};
use danm_core::model::Network;

/// Manage DANM networks, TenantConfigs and pod records, and inspect endpoints and address pools.
#[derive(Debug, Parser)]
#[command(name = "danmctl", version, about)]
struct Cli {
    /// The datastore: `local:PATH` (a SQLite file), `kube` (the cluster of `KUBECONFIG`, `~/.kube/config`
    /// or the pod's service account), or `kube:PATH` (the cluster of the kubeconfig file at PATH).
    #[arg(long, global = true, env = "DANM_DATASTORE", default_value = "local:/var/lib/danm/danm.db")]
    datastore: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update the objects of a YAML or JSON file (`-` reads stdin).
    Apply {
        /// The file.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// The namespace of namespaced objects that name none.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Validate and report, but write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete a network (refused while in use), a TenantConfig, a pod record or a Service.
    Delete {
        /// networks, danmnets, tenantnetworks, clusternetworks, tenantconfigs, pods or services.
        resource: Resource,
        /// The name.
        name: String,
        /// The namespace.
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
    },
    /// List objects, or what DANM Services publish (`get endpoints [SERVICE]`).
    Get {
        /// networks, danmnets, tenantnetworks, clusternetworks, tenantconfigs, eps, pods, services or
        /// endpoints.
        resource: Resource,
        /// With `endpoints`: only this Service.
        name: Option<String>,
        /// Only this namespace (all namespaces when not given).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// json or yaml (a Kubernetes List); a table when not given.
        #[arg(short = 'o', long, default_value = "table")]
        output: Format,
    },
    /// Show a network: its spec, the use of its pools, and its endpoints.
    Describe {
        /// Always `network`.
        what: String,
        /// The network's name.
        name: String,
        /// The namespace (ignored for ClusterNetworks).
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Also list every allocated address and the pod interface holding it.
        #[arg(long)]
        addresses: bool,
    },
    /// One pass of the cleaner: free the addresses and remove the DanmEps of pods that are gone or were
    /// replaced (another UID), leaving records younger than the grace period alone.
    Gc {
        /// Leave records younger than this many seconds alone.
        #[arg(long, default_value_t = 60)]
        grace: u64,
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Run as the cleaner controller: sweep every this many seconds until stopped. A failed pass (the
        /// datastore unreachable) is reported and the next one tried.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        every: Option<u64>,
    },
    /// Play upstream DANM's multi-domain service discovery demo end to end on a temporary store.
    Demo {
        /// Create no interface even as root: a provisioner that changes nothing stands in.
        #[arg(long)]
        dry_run: bool,
        /// Keep the demo's store and manifests afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// Print the CustomResourceDefinitions of every DANM kind as YAML (for `kubectl apply -f -`), or
    /// write one file per CRD into a directory.
    Crds {
        /// Write `<crd name>.yaml` files into this directory instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show the address pools a network manifest describes, without a datastore.
    Pools {
        /// The manifest file.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

async fn open(spec: &str) -> Result<AnyStore> {
    if let Some(path) = spec.strip_prefix("local:") {
        return Ok(AnyStore::Local(SqliteStore::open(path).with_context(|| format!("opening the datastore {path}"))?));
    }
    let client = match spec.strip_prefix("kube") {
        Some("") => kube::Client::try_default().await.context("connecting to the cluster")?,
        Some(rest) if rest.starts_with(':') => {
            let path = &rest[1..];
            danm_k8s::client_from_kubeconfig(std::path::Path::new(path))
                .await
                .with_context(|| format!("connecting with the kubeconfig {path}"))?
        }
        _ => bail!("--datastore `{spec}`: use local:PATH, kube or kube:PATH"),
    };
    Ok(AnyStore::Kube(danm_k8s::KubeStore::new(client)))
}

fn read(file: &PathBuf) -> Result<String> {
    if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo and the store-less commands run as they are; the others on a runtime (the Kubernetes client
    // needs one, and the demo starts its own for each CNI call).
    let result = match cli.command {
        Command::Demo { .. } | Command::Pools { .. } | Command::Crds { .. } => run_plain(cli),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
            .and_then(|rt| rt.block_on(run(cli))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Apply { file, namespace, dry_run } => {
            let text = read(&file)?;
            let store = open(&cli.datastore).await?;
            for line in ctl::apply(&store, &text, &namespace, dry_run).await? {
                println!("{line}{}", if dry_run { " (dry run)" } else { "" });
            }
        }
        Command::Delete { resource, name, namespace } => {
            println!("{}", ctl::delete(&open(&cli.datastore).await?, resource, &name, &namespace).await?);
        }
        Command::Get { resource, name, namespace, output } => {
            let store = open(&cli.datastore).await?;
            let text = match (resource, name) {
                (Resource::ServiceEndpoints, name) => {
                    ctl::service_endpoints(&store, namespace.as_deref(), name.as_deref(), output).await?
                }
                (_, Some(name)) => bail!("`get` takes a name only with `endpoints` (got {name})"),
                (resource, None) => ctl::get(&store, resource, namespace.as_deref(), output).await?,
            };
            print!("{text}");
        }
        Command::Describe { what, name, namespace, addresses } => {
            if !matches!(what.as_str(), "network" | "networks" | "net" | "dn" | "tn" | "cn") {
                bail!("describe `{what}`: only `describe network NAME` is supported");
            }
            print!("{}", ctl::describe_network(&open(&cli.datastore).await?, &name, &namespace, addresses).await?);
        }
        Command::Gc { grace, dry_run, every } => {
            let store = open(&cli.datastore).await?;
            let grace = std::time::Duration::from_secs(grace);
            let Some(every) = every else {
                let swept = danm_core::gc::sweep(&store, grace, dry_run).await?;
                report_sweep(&swept, dry_run);
                let reclaimed = danm_core::gc::reclaim_ids(&store, grace, dry_run).await?;
                report_reclaimed(&reclaimed, dry_run);
                return Ok(());
            };
            loop {
                match danm_core::gc::sweep(&store, grace, dry_run).await {
                    Ok(swept) if swept.is_empty() => {}
                    Ok(swept) => report_sweep(&swept, dry_run),
                    Err(e) => eprintln!("danmctl gc: this pass failed, the next one is in {every} s: {e}"),
                }
                match danm_core::gc::reclaim_ids(&store, grace, dry_run).await {
                    Ok(reclaimed) => report_reclaimed(&reclaimed, dry_run),
                    Err(e) => eprintln!("danmctl gc: reclaiming IDs failed, the next pass is in {every} s: {e}"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(every)).await;
            }
        }
        Command::Demo { .. } | Command::Pools { .. } | Command::Crds { .. } => return run_plain(cli),
    }
    Ok(())
}

/// Prints what one sweep removed (or would remove), and how many.
fn report_sweep(swept: &[danm_core::gc::Swept], dry_run: bool) {
    let verb = if dry_run { "would remove" } else { "removed" };
    for s in swept {
        println!("{verb} {}: {}", s.attachment, s.reason);
    }
    let summary = if dry_run { "would be removed" } else { "removed" };
    println!("{} stale attachment(s) {summary}", swept.len());
    // A long-running cleaner's output goes to a pipe or a log: each pass shows up when it ends.
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// Prints the VLAN/VXLAN IDs one pass released from TenantConfigs (or would release); nothing when none.
fn report_reclaimed(reclaimed: &[danm_core::gc::Reclaimed], dry_run: bool) {
    if reclaimed.is_empty() {
        return;
    }
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let verb = if dry_run { "would release" } else { "released" };
    for r in reclaimed {
        println!(
            "{verb} {} {} of profile {} in TenantConfig {}: reserved, and held by no network for {} s",
            r.id.vni_type.as_str(),
            r.id.id,
            r.id.profile,
            r.tenant_config,
            now.saturating_sub(r.id.unheld_since)
        );
    }
    let summary = if dry_run { "would be released" } else { "released" };
    println!("{} reserved ID(s) {summary}", reclaimed.len());
    let _ = std::io::Write::flush(&mut std::io::stdout());
}

/// The commands that need no datastore runtime: pools, crds and the demo.
fn run_plain(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pools { file } => pools(&file)?,
        Command::Crds { dir: None } => print!("{}", danm_k8s::crd::manifest::all_yaml().context("rendering the CRDs")?),
        Command::Crds { dir: Some(dir) } => {
            for path in
                danm_k8s::crd::manifest::write_dir(&dir).with_context(|| format!("writing {}", dir.display()))?
            {
                println!("wrote {}", path.display());
            }
        }
        Command::Demo { dry_run, keep } => {
            let checks = danm_cli::demo::run(danm_cli::demo::DemoOptions { dry_run, keep }, &mut std::io::stdout())?;
            let failed = checks.iter().filter(|(_, ok)| !ok).count();
            if failed > 0 {
                bail!("{failed} of {} demo checks failed", checks.len());
            }
        }
        _ => bail!("not a plain command"),
    }
    Ok(())
}

fn pools(file: &PathBuf) -> Result<()> {
    let network: Network =
        serde_yaml::from_str(&read(file)?).with_context(|| format!("decoding {}", file.display()))?;
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
