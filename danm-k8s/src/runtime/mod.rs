//! What every DANM controller binary runs besides its reconciler: Prometheus metrics with `/metrics`,
//! `/healthz` and `/readyz` ([`Telemetry`], [`serve_telemetry`]), leader election on a
//! `coordination.k8s.io/v1` Lease ([`LeaderElector`]) and graceful shutdown on SIGTERM or SIGINT
//! ([`shutdown_signal`]), and the [`Action`] a reconciliation returns.
//!
//! The controllers return futures; a binary drives them together with the telemetry server and stops
//! them all when [`shutdown_signal`] resolves.

mod leader;
mod telemetry;

pub use leader::{LeaderElector, Leadership, LeaseTimings};
pub use telemetry::{ReconcileMetrics, Telemetry, serve_telemetry};

/// What a reconciliation asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the object or what it depends on changes.
    AwaitChange,
    /// Reconcile again after this long even without a change (a resync, or a retry after an error).
    Requeue(std::time::Duration),
}

/// Resolves on the first SIGTERM (what the kubelet sends to stop a container) or SIGINT.
///
/// When the signal handlers cannot be installed (no signal support), it resolves on SIGINT through
/// `tokio::signal::ctrl_c` only, and if even that fails, it never resolves.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        tracing::info!("SIGINT received, shutting down");
    } else {
        std::future::pending::<()>().await;
    }
}
