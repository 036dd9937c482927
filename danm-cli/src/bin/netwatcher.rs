//! netwatcher: keeps this node's VLAN and VXLAN host interfaces in line with all DANM networks and
//! NetworkAttachmentDefinitions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use danm_cli::controller::{init_logging, kube_client, on_shutdown, spawn_telemetry};
use danm_k8s::netwatcher::{self, Config};
use danm_k8s::runtime::{Telemetry, shutdown_signal};
use danm_netlink::{NODE_LOCK_PATH, NetlinkProvisioner};

/// Create, repair and remove this node's VLAN and VXLAN host interfaces as the DanmNets, TenantNetworks,
/// ClusterNetworks and NetworkAttachmentDefinitions ask, reference counted over them, and report each
/// one's state on this node as Events.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The node this instance runs on (in a DaemonSet: from the downward API).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_LISTEN", default_value = "0.0.0.0:9741")]
    metrics_listen: SocketAddr,
    /// Seconds between passes when nothing changes (they repair interfaces changed behind DANM's back).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    resync: u64,
    /// The node-wide lock file shared with the danm plugin.
    #[arg(long, default_value = NODE_LOCK_PATH)]
    node_lock: PathBuf,
    /// Manage the interfaces of the network namespace at this path (e.g. `/proc/1/ns/net`) instead of
    /// the process's own; entering it needs CAP_SYS_ADMIN besides CAP_NET_ADMIN.
    #[arg(long)]
    host_netns: Option<PathBuf>,
    /// Leave NetworkAttachmentDefinitions alone (NAD mode off). Without this flag they are watched when
    /// the API server serves them: a single-plugin config with `master` and `vlan` or `vxlan` gets its
    /// host interface, and its `master` is rewritten to it.
    #[arg(long)]
    no_nad: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging();
    let provisioner = match &args.host_netns {
        Some(path) => NetlinkProvisioner::with_host_netns(path)
            .with_context(|| format!("opening the network namespace {}", path.display()))?,
        None => NetlinkProvisioner::new().context("opening this host's network namespace")?,
    };
    let provisioner = provisioner.with_node_lock(args.node_lock);
    let client = kube_client().await?;
    let telemetry = Telemetry::new("netwatcher");
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let server = spawn_telemetry(args.metrics_listen, telemetry.clone(), on_shutdown(&stopping)).await?;

    let config =
        Config { resync: Duration::from_secs(args.resync), attachments: !args.no_nad, ..Config::new(args.node_name) };
    let controller =
        tokio::spawn(netwatcher::run(client, provisioner, config, Some(telemetry), on_shutdown(&stopping)));

    shutdown_signal().await;
    let _ = stop.send(true);
    controller.await?;
    server.await??;
    Ok(())
}
