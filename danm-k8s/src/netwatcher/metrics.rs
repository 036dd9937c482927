//! netwatcher's own Prometheus metrics, besides the reconcile metrics every controller has.

use danm_core::netwatch::{HostAction, NetworkReport, StepOutcome};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::runtime::Telemetry;

type Labels = Vec<(String, String)>;

/// `danm_netwatcher_host_interfaces`, `danm_netwatcher_networks{state}` and
/// `danm_netwatcher_steps_total{step,result}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    interfaces: Gauge,
    networks: Family<Labels, Gauge>,
    steps: Family<Labels, Counter>,
}

const STATES: [&str; 5] = ["ready", "failed", "device_absent", "invalid", "conflict"];

impl Metrics {
    /// New metrics, registered with `telemetry` when there is one.
    pub(crate) fn new(telemetry: Option<&Telemetry>) -> Self {
        let metrics = Self::default();
        if let Some(t) = telemetry {
            t.register(
                "netwatcher_host_interfaces",
                "VLAN/VXLAN host interfaces the networks need on this node, as of the last reconciliation",
                metrics.interfaces.clone(),
            );
            t.register(
                "netwatcher_networks",
                "Networks asking for a host interface, by their state on this node",
                metrics.networks.clone(),
            );
            t.register(
                "netwatcher_steps",
                "Host interface steps carried out, by step and result",
                metrics.steps.clone(),
            );
        }
        metrics
    }

    /// Records one reconciliation's steps and reports, and how many interfaces the node has.
    pub(crate) fn record<'a>(
        &self,
        outcomes: &[StepOutcome],
        reports: impl Iterator<Item = &'a NetworkReport>,
        interfaces: usize,
    ) {
        for outcome in outcomes {
            let step = match &outcome.action {
                HostAction::Ensure { drift, .. } if drift.contains(&danm_core::netwatch::Drift::Missing) => "create",
                HostAction::Ensure { .. } => "repair",
                HostAction::Recreate { .. } => "recreate",
                HostAction::Release { .. } => "release",
                HostAction::Remove { .. } => "remove",
            };
            let result = if outcome.result.is_ok() { "ok" } else { "error" };
            self.steps.get_or_create(&vec![("step".into(), step.into()), ("result".into(), result.into())]).inc();
        }
        let mut counts = [0_i64; STATES.len()];
        for report in reports {
            let index = match report {
                NetworkReport::Ready { .. } => 0,
                NetworkReport::Failed { .. } => 1,
                NetworkReport::DeviceAbsent { .. } => 2,
                NetworkReport::Invalid { .. } => 3,
                NetworkReport::Conflict { .. } => 4,
            };
            counts[index] += 1;
        }
        for (state, count) in STATES.iter().zip(counts) {
            self.networks.get_or_create(&vec![("state".into(), (*state).into())]).set(count);
        }
        self.interfaces.set(i64::try_from(interfaces).unwrap_or(i64::MAX));
    }
}
