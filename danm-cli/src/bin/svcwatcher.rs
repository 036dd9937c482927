//! svcwatcher: Endpoints and EndpointSlices for DANM Services over any network of a pod.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use danm_cli::controller::{init_logging, kube_client, on_shutdown, spawn_telemetry};
use danm_k8s::runtime::{LeaderElector, Leadership, LeaseTimings, Telemetry, shutdown_signal};
use danm_k8s::svcwatcher::{Config, Context, SvcWatcher, watch_changes};

/// Publish Endpoints and EndpointSlices for Services annotated with `danm.k8s.io/selector` and a network.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
    /// The namespace of the leader election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "kube-system")]
    lease_namespace: String,
    /// The name of the leader election Lease.
    #[arg(long, default_value = "danm-svcwatcher")]
    lease_name: String,
    /// This replica's identity in the election (unique per replica).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Run without leader election: only for a single replica.
    #[arg(long)]
    no_leader_election: bool,
    /// How many Services are written at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds between re-reads of a published Service's Endpoints (repairing edits by others).
    #[arg(long, default_value_t = 600)]
    resync_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging();
    let client = kube_client().await?;
    let telemetry = Telemetry::new("svcwatcher");
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let server = spawn_telemetry(args.metrics_listen, telemetry.clone(), on_shutdown(&stopping)).await?;

    let (leadership, election) = if args.no_leader_election {
        (Leadership::always(), None)
    } else {
        let identity = args.identity.unwrap_or_else(danm_cli::controller::host_name);
        let elector = LeaderElector::new(
            client.clone(),
            &args.lease_namespace,
            &args.lease_name,
            &identity,
            LeaseTimings::default(),
        );
        let leadership = elector.leadership();
        (leadership, Some(tokio::spawn(elector.run(on_shutdown(&stopping)))))
    };
    let config =
        Config { concurrency: args.concurrency, resync: Duration::from_secs(args.resync_seconds), ..Config::default() };
    let ctx = Context::new(client.clone(), config, leadership, &telemetry);
    let watcher = tokio::spawn(SvcWatcher::new(ctx).run(watch_changes(client), on_shutdown(&stopping)));

    shutdown_signal().await;
    let _ = stop.send(true);
    watcher.await?;
    if let Some(election) = election {
        election.await?;
    }
    server.await??;
    Ok(())
}
