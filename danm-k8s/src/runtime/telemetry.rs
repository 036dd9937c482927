//! Prometheus metrics and health endpoints of a controller process.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
use tokio::net::TcpListener;

type Labels = Vec<(String, String)>;

/// The metrics registry and health state of one controller process, shared by its tasks.
///
/// Every metric is prefixed `danm_`. Built in: `danm_reconcile_total`, `danm_reconcile_errors_total`
/// and `danm_reconcile_duration_seconds` (labelled `controller`), and `danm_ready` (1 while
/// [`Telemetry::set_ready`] says so). `/healthz` answers 200 while the process is healthy (until
/// [`Telemetry::set_healthy`]`(false)`), `/readyz` 200 while it is ready.
#[derive(Debug)]
pub struct Telemetry {
    component: String,
    registry: Mutex<Registry>,
    healthy: AtomicBool,
    ready: AtomicBool,
    ready_gauge: Gauge,
    reconciles: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
}

impl Telemetry {
    /// The telemetry of the process `component` (e.g. `svcwatcher`), healthy and not yet ready.
    pub fn new(component: &str) -> Arc<Self> {
        let mut registry = Registry::with_prefix_and_labels(
            "danm",
            [(std::borrow::Cow::Borrowed("component"), std::borrow::Cow::Owned(component.to_owned()))].into_iter(),
        );
        let reconciles = Family::<Labels, Counter>::default();
        let failures = Family::<Labels, Counter>::default();
        let durations = Family::<Labels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_5, 2.0, 16))) as fn() -> Histogram,
        );
        let ready_gauge = Gauge::default();
        registry.register("reconcile", "Reconciliations run", reconciles.clone());
        registry.register("reconcile_errors", "Reconciliations that failed", failures.clone());
        registry.register("reconcile_duration_seconds", "Time one reconciliation took", durations.clone());
        registry.register("ready", "1 while the process is ready", ready_gauge.clone());
        Arc::new(Self {
            component: component.to_owned(),
            registry: Mutex::new(registry),
            healthy: AtomicBool::new(true),
            ready: AtomicBool::new(false),
            ready_gauge,
            reconciles,
            failures,
            durations,
        })
    }

    /// The component name given to [`Telemetry::new`].
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Registers a metric of the caller's under `danm_<name>`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner).register(name, help, metric);
    }

    /// The reconciliation metrics of `controller`.
    pub fn reconcile_metrics(&self, controller: &str) -> ReconcileMetrics {
        let labels = vec![("controller".to_owned(), controller.to_owned())];
        ReconcileMetrics {
            reconciles: self.reconciles.get_or_create_owned(&labels),
            failures: self.failures.get_or_create_owned(&labels),
            duration: self.durations.get_or_create_owned(&labels),
        }
    }

    /// Marks the process ready (`/readyz` 200, `danm_ready` 1) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
        self.ready_gauge.set(i64::from(ready));
    }

    /// Whether the process is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the process healthy or not (`/healthz`); an unhealthy process gets restarted by its
    /// liveness probe.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Whether the process is healthy.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Every metric in the Prometheus text format (OpenMetrics 1.0).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }

    fn respond(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let text = |status: StatusCode, body: String, content_type: &'static str| {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
            response
        };
        let plain = "text/plain; charset=utf-8";
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into(), plain);
        }
        let state = |ok: bool| match ok {
            true => text(StatusCode::OK, "ok\n".into(), plain),
            false => text(StatusCode::SERVICE_UNAVAILABLE, "not ok\n".into(), plain),
        };
        match request.uri().path() {
            "/metrics" => {
                text(StatusCode::OK, self.encode(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
            }
            "/healthz" | "/livez" => state(self.is_healthy()),
            "/readyz" => state(self.is_ready()),
            _ => text(StatusCode::NOT_FOUND, "not found\n".into(), plain),
        }
    }
}

/// The reconciliation metrics of one controller (see [`Telemetry::reconcile_metrics`]).
#[derive(Debug, Clone)]
pub struct ReconcileMetrics {
    reconciles: Counter,
    failures: Counter,
    duration: Histogram,
}

impl ReconcileMetrics {
    /// Records one reconciliation that started at `started` and succeeded or not.
    pub fn observe(&self, started: Instant, ok: bool) {
        self.reconciles.inc();
        if !ok {
            self.failures.inc();
        }
        self.duration.observe(started.elapsed().as_secs_f64());
    }
}

/// Serves `/metrics`, `/healthz` (also `/livez`) and `/readyz` of `telemetry` on `listener` (plain
/// HTTP/1.1) until `shutdown` resolves; connections still open then are dropped.
pub async fn serve_telemetry(
    listener: TcpListener,
    telemetry: Arc<Telemetry>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A connection that failed before it was accepted (reset, out of descriptors) is
                // the client's loss; the server goes on.
                Err(e) => {
                    tracing::debug!(error = %e, "accepting a telemetry connection failed");
                    continue;
                }
            },
        };
        let telemetry = telemetry.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = telemetry.respond(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
    Ok(())
}
