//! Carrying a plan out through a provisioner, and what each network's state is afterwards.

use std::collections::{BTreeMap, BTreeSet};

use super::holder::HolderKey;
use super::plan::{HostAction, HostPlan, Placement};
use crate::error_chain;
use crate::provision::{HostInventory, InterfaceProvisioner, ProvisionError, Removal};

/// One step of a plan and how it went.
#[derive(Debug)]
pub struct StepOutcome {
    /// The step.
    pub action: HostAction,
    /// `Ok` when it was carried out; the provisioner's error otherwise.
    pub result: Result<(), ProvisionError>,
}

/// Where one network stands on this node after a plan was carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkReport {
    /// Its host interface is there as it wants it.
    Ready {
        /// The interface.
        interface: String,
    },
    /// Creating or repairing its host interface failed.
    Failed {
        /// The interface.
        interface: String,
        /// The error, with its causes.
        error: String,
    },
    /// Its `host_device` is not on this node; it needs nothing here.
    DeviceAbsent {
        /// The device.
        device: String,
    },
    /// Its host interface attributes cannot be carried out.
    Invalid {
        /// Why, naming the field.
        reason: String,
    },
    /// Another network holds the interface name with other attributes.
    Conflict {
        /// The interface.
        interface: String,
        /// The network whose attributes the interface has.
        with: HolderKey,
    },
}

impl NetworkReport {
    /// Whether this calls for an operator's attention.
    pub fn is_problem(&self) -> bool {
        matches!(self, Self::Failed { .. } | Self::Invalid { .. } | Self::Conflict { .. })
    }
}

/// Carries out every step of `plan` in order, going on past failures, and returns each step's outcome.
///
/// An [`Ensure`](HostAction::Ensure) or [`Recreate`](HostAction::Recreate) stops at its first failing
/// call; a stale holder of an interface whose creation or repair failed in this run is not released
/// (so a failed repair never leaves the interface with no holder and removes it).
pub async fn apply<P>(plan: &HostPlan, provisioner: &P) -> Vec<StepOutcome>
where
    P: InterfaceProvisioner + HostInventory + ?Sized,
{
    let mut failed: BTreeSet<String> = BTreeSet::new();
    let mut outcomes = Vec::with_capacity(plan.actions.len());
    for action in &plan.actions {
        let result = match action {
            HostAction::Ensure { host, holders, .. } => ensure_all(provisioner, host, holders).await,
            HostAction::Recreate { host, holders, .. } => {
                match provisioner.remove_host(&host.name, Removal::Always).await {
                    Ok(_) => ensure_all(provisioner, host, holders).await,
                    Err(e) => Err(e),
                }
            }
            HostAction::Release { name, .. } if failed.contains(name) => continue,
            HostAction::Release { name, holders } => {
                let mut result = Ok(());
                for holder in holders {
                    if let Err(e) = provisioner.release_host(name, holder).await {
                        result = Err(e);
                        break;
                    }
                }
                result
            }
            // A pod of a new network may have taken the interface since the scan: then it stays.
            HostAction::Remove { name } => provisioner.remove_host(name, Removal::IfUnheld).await.map(|_| ()),
        };
        if result.is_err() {
            failed.insert(action.interface().to_owned());
        }
        outcomes.push(StepOutcome { action: action.clone(), result });
    }
    outcomes
}

async fn ensure_all<P>(
    provisioner: &P,
    host: &crate::provision::HostInterface,
    holders: &[String],
) -> Result<(), ProvisionError>
where
    P: InterfaceProvisioner + ?Sized,
{
    for holder in holders {
        provisioner.ensure_host(host, holder).await?;
    }
    Ok(())
}

/// Where each network of `plan` stands after `outcomes`: a network whose interface was created,
/// repaired or recreated without error, or needed nothing, is [`NetworkReport::Ready`].
pub fn report(plan: &HostPlan, outcomes: &[StepOutcome]) -> BTreeMap<HolderKey, NetworkReport> {
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    for outcome in outcomes {
        if let (HostAction::Ensure { host, .. } | HostAction::Recreate { host, .. }, Err(e)) =
            (&outcome.action, &outcome.result)
        {
            errors.entry(host.name.as_str()).or_insert_with(|| error_chain(e));
        }
    }
    plan.placements
        .iter()
        .map(|(key, placement)| {
            let report = match placement {
                Placement::Interface(name) => match errors.get(name.as_str()) {
                    Some(error) => NetworkReport::Failed { interface: name.clone(), error: error.clone() },
                    None => NetworkReport::Ready { interface: name.clone() },
                },
                Placement::DeviceAbsent { device } => NetworkReport::DeviceAbsent { device: device.clone() },
                Placement::Invalid { reason } => NetworkReport::Invalid { reason: reason.clone() },
                Placement::Conflict { interface, with } => {
                    NetworkReport::Conflict { interface: interface.clone(), with: with.clone() }
                }
            };
            (key.clone(), report)
        })
        .collect()
}

/// The error text of the first failed step, with how many failed; `None` when all succeeded.
pub fn failure_summary(outcomes: &[StepOutcome]) -> Option<String> {
    let failed: Vec<&StepOutcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    let first = failed.first()?;
    let error = first.result.as_ref().err().map(|e| error_chain(e)).unwrap_or_default();
    Some(format!("{} of {} steps failed; first: {}: {error}", failed.len(), outcomes.len(), first.action))
}
