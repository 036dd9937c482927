//! The webhook's Prometheus metrics.

use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use crate::runtime::Telemetry;

type Labels = Vec<(String, String)>;

/// Request counts by kind, operation and result, and decision times by kind.
#[derive(Debug, Clone)]
pub(super) struct WebhookMetrics {
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
}

impl WebhookMetrics {
    pub(super) fn register(telemetry: &Telemetry) -> Self {
        let requests = Family::<Labels, Counter>::default();
        let durations = Family::<Labels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.000_5, 2.0, 16))) as fn() -> Histogram,
        );
        telemetry.register("webhook_requests", "Admission requests answered", requests.clone());
        telemetry.register("webhook_request_duration_seconds", "Time one admission decision took", durations.clone());
        Self { requests, durations }
    }

    pub(super) fn observe(&self, kind: &str, operation: &str, result: &str, started: Instant) {
        let labels = vec![
            ("kind".to_owned(), kind.to_owned()),
            ("operation".to_owned(), operation.to_owned()),
            ("result".to_owned(), result.to_owned()),
        ];
        self.requests.get_or_create(&labels).inc();
        let kind = vec![("kind".to_owned(), kind.to_owned())];
        self.durations.get_or_create(&kind).observe(started.elapsed().as_secs_f64());
    }
}
