//! danm-webhook: DANM's admission webhook (networks, TenantConfigs and pods) over HTTPS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use danm_cli::controller::{init_logging, kube_client, on_shutdown, spawn_telemetry};
use danm_k8s::KubeStore;
use danm_k8s::runtime::{Telemetry, shutdown_signal};
use danm_k8s::webhook::{ServerOptions, Webhook, serve_webhook, tls_config_from_files};

/// Admit DANM networks, TenantConfigs and pods: defaults, TenantNetwork profiles and VNIs, every
/// validation rule, and no deletion of a network in use. See deploy/webhook/ for its registration.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where to serve the webhook (HTTPS).
    #[arg(long, env = "WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// The PEM certificate chain of the server, leaf first (`tls.crt` of a kubernetes.io/tls Secret).
    #[arg(long, env = "WEBHOOK_TLS_CERT", default_value = "/etc/danm-webhook/tls/tls.crt")]
    tls_cert: PathBuf,
    /// The PEM private key of the certificate (`tls.key`).
    #[arg(long, env = "WEBHOOK_TLS_KEY", default_value = "/etc/danm-webhook/tls/tls.key")]
    tls_key: PathBuf,
    /// Where to serve /metrics, /healthz and /readyz (plain HTTP).
    #[arg(long, env = "METRICS_LISTEN", default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging();
    let tls = tls_config_from_files(&args.tls_cert, &args.tls_key).context("loading the TLS certificate")?;
    let client = kube_client().await?;
    let telemetry = Telemetry::new("webhook");
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let metrics = spawn_telemetry(args.metrics_listen, telemetry.clone(), on_shutdown(&stopping)).await?;

    let webhook = Arc::new(Webhook::new(Arc::new(KubeStore::new(client))).with_telemetry(&telemetry));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening for admission requests on {}", args.listen))?;
    tracing::info!(address = %args.listen, "serving admission reviews over HTTPS");
    let server = tokio::spawn(serve_webhook(listener, tls, webhook, ServerOptions::default(), on_shutdown(&stopping)));
    telemetry.set_ready(true);

    shutdown_signal().await;
    telemetry.set_ready(false);
    let _ = stop.send(true);
    server.await?.context("serving admission reviews")?;
    metrics.await??;
    Ok(())
}
