//! What the controller binaries (svcwatcher, netwatcher, danm-webhook) share around their library
//! code: logs, the Kubernetes client, and serving telemetry until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use danm_k8s::runtime::{Telemetry, serve_telemetry};

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as one line per event; colours only on a
/// terminal.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// The Kubernetes client: from `KUBECONFIG` or `~/.kube/config`, or the in-cluster service account.
pub async fn kube_client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default().await.context("no Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster)")
}

/// Starts serving `/metrics`, `/healthz` and `/readyz` on `address` until `shutdown` resolves.
pub async fn spawn_telemetry(
    address: SocketAddr,
    telemetry: Arc<Telemetry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening for telemetry on {address}"))?;
    tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(serve_telemetry(listener, telemetry, shutdown)))
}

/// A future that resolves when `tx` is sent to or dropped: one shutdown fanned out to several tasks.
pub fn on_shutdown(rx: &tokio::sync::watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// This host's name (in a pod: the pod's name), for an identity when none is given.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}
