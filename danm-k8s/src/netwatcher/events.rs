//! Per-node state as Kubernetes Events on the networks, published when a network's state on this node
//! changes, never on every pass.
//!
//! A network found ready without anything done for it (after a restart of netwatcher, say) is not
//! announced: across a cluster that would be one Event per network and node at every rollout. Problems
//! are announced when first seen, and readiness when a pass made the interface or after a problem.

use std::collections::{BTreeMap, BTreeSet};

use danm_core::netwatch::HolderKey;
use danm_core::netwatch::NetworkReport;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

/// Reason of the Event when a network's host interface is there as wanted.
pub const REASON_READY: &str = "HostInterfaceReady";
/// Reason of the Event when creating or repairing a network's host interface failed.
pub const REASON_FAILED: &str = "HostInterfaceFailed";
/// Reason of the Event when another network holds the interface name with other attributes.
pub const REASON_CONFLICT: &str = "HostInterfaceConflict";
/// Reason of the Event when a network's VLAN/VXLAN attributes cannot be carried out.
pub const REASON_INVALID: &str = "HostInterfaceInvalid";

/// The action every Event names.
const ACTION: &str = "ReconcileHostInterface";
/// The most a note may hold.
const MAX_NOTE: usize = 1024;

/// The Event for `report` on `node`; `None` for states that are not reported (a device absent from
/// this node is normal in a cluster of unlike nodes and would only be noise).
pub(crate) fn event_for(report: &NetworkReport, node: &str) -> Option<Event> {
    let (type_, reason, note) = match report {
        NetworkReport::Ready { interface } => {
            (EventType::Normal, REASON_READY, format!("host interface {interface} is ready on node {node}"))
        }
        NetworkReport::Failed { interface, error } => {
            (EventType::Warning, REASON_FAILED, format!("host interface {interface} on node {node}: {error}"))
        }
        NetworkReport::Conflict { interface, with } => (
            EventType::Warning,
            REASON_CONFLICT,
            format!(
                "host interface {interface} on node {node} has the attributes {with} asks for; this network asks \
                 for others under the same name"
            ),
        ),
        NetworkReport::Invalid { reason } => {
            (EventType::Warning, REASON_INVALID, format!("no host interface on node {node}: {reason}"))
        }
        NetworkReport::DeviceAbsent { .. } => return None,
    };
    Some(Event {
        type_,
        reason: reason.to_owned(),
        note: Some(truncate(note)),
        action: ACTION.to_owned(),
        secondary: None,
    })
}

fn truncate(mut note: String) -> String {
    if note.len() > MAX_NOTE {
        let mut end = MAX_NOTE - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

/// What was last published for each network, so only changes are.
#[derive(Debug, Default)]
pub(crate) struct Published(BTreeMap<HolderKey, NetworkReport>);

impl Published {
    /// Publishes the reports that differ from the last published ones, and forgets networks that are
    /// gone. `changed` names the interfaces this pass created, repaired or recreated. A failed
    /// publication is logged and retried on the next pass.
    pub(crate) async fn publish(
        &mut self,
        recorder: &Recorder,
        node: &str,
        reports: &BTreeMap<HolderKey, NetworkReport>,
        refs: &BTreeMap<HolderKey, ObjectReference>,
        changed: &BTreeSet<String>,
    ) {
        self.0.retain(|key, _| reports.contains_key(key));
        for (key, report) in reports {
            let previous = self.0.get(key);
            if previous == Some(report) {
                continue;
            }
            let quiet = match report {
                NetworkReport::Ready { interface } => previous.is_none() && !changed.contains(interface),
                _ => false,
            };
            let (false, Some(event), Some(reference)) = (quiet, event_for(report, node), refs.get(key)) else {
                self.0.insert(key.clone(), report.clone());
                continue;
            };
            match recorder.publish(&event, reference).await {
                Ok(()) => {
                    self.0.insert(key.clone(), report.clone());
                }
                Err(e) => {
                    tracing::warn!(network = %key, reason = %event.reason, error = %e, "publishing an event failed")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_the_node_and_stay_within_a_kilobyte() {
        let ready = event_for(&NetworkReport::Ready { interface: "vx_a".into() }, "n1").unwrap();
        assert_eq!((ready.type_, ready.reason.as_str()), (EventType::Normal, REASON_READY));
        assert_eq!(ready.note.as_deref(), Some("host interface vx_a is ready on node n1"));
        let failed =
            event_for(&NetworkReport::Failed { interface: "vx_a".into(), error: "é".repeat(900) }, "n1").unwrap();
        assert_eq!(failed.type_, EventType::Warning);
        assert!(failed.note.as_ref().unwrap().len() <= MAX_NOTE);
        assert!(failed.note.unwrap().ends_with("..."));
        assert!(event_for(&NetworkReport::DeviceAbsent { device: "eth9".into() }, "n1").is_none());
    }
}
