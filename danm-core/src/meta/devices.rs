//! The devices of `sriov` attachments: from the pod's [`DEVICES_ANNOTATION`] when it has one, otherwise
//! from the device source, asked at most once per ADD and only when an attachment needs a device. The
//! *k*-th `sriov` attachment of a pool takes the pool's *k*-th device.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::plan::{Attachment, Backend};
use super::{MetaError, MetaPlugin, PodContext};
use crate::delegate::DelegateExecutor;
use crate::device::{DEVICES_ANNOTATION, DeviceError, PodDevices, PodRef};
use crate::model::PodRecord;
use crate::provision::InterfaceProvisioner;
use crate::store::Datastore;

/// The pod's devices, learnt once and shared by every attachment that needs one.
pub(super) type DeviceLookup<'a> = Shared<BoxFuture<'a, Result<Arc<Known>, LookupError>>>;

/// The pod's devices and where they came from, as messages name it.
#[derive(Debug)]
pub(super) struct Known {
    devices: PodDevices,
    origin: String,
}

/// Why the pod's devices are not known.
#[derive(Debug, Clone)]
pub(super) enum LookupError {
    /// The annotation is malformed.
    Annotation(String),
    /// The device source failed.
    Source(DeviceError),
}

impl<S: Datastore, P: InterfaceProvisioner, D: DelegateExecutor> MetaPlugin<S, P, D> {
    /// The lookup of `pod`'s devices. Nothing is asked until an attachment awaits it.
    pub(super) fn device_lookup<'a>(&'a self, ctx: &'a PodContext, pod: &'a PodRecord) -> DeviceLookup<'a> {
        async move {
            if let Some(raw) = pod.metadata.annotations.get(DEVICES_ANNOTATION) {
                let devices = PodDevices::from_annotation(raw).map_err(LookupError::Annotation)?;
                return Ok(Arc::new(Known { devices, origin: format!("annotation {DEVICES_ANNOTATION}") }));
            }
            let Some(source) = &self.devices else {
                let origin = format!("no annotation {DEVICES_ANNOTATION} and no device source");
                return Ok(Arc::new(Known { devices: PodDevices::new(), origin }));
            };
            let pod = PodRef { namespace: &ctx.namespace, name: &ctx.name };
            let devices = source.pod_devices(pod).await.map_err(LookupError::Source)?;
            Ok(Arc::new(Known { devices, origin: format!("as told by {}", source.describe()) }))
        }
        .boxed()
        .shared()
    }
}

/// The device of attachment `a`, the `rank`-th `sriov` attachment of its pool (from 0).
pub(super) async fn device_of(a: &Attachment, lookup: &DeviceLookup<'_>, rank: usize) -> Result<String, MetaError> {
    let pool = &a.network.spec.options.device_pool;
    let known = lookup.clone().await.map_err(|e| match e {
        LookupError::Annotation(reason) => {
            MetaError::DelegateConfig { interface: a.name.clone(), network: a.network_label(), reason }
        }
        LookupError::Source(source) => MetaError::Devices {
            interface: a.name.clone(),
            network: a.network_label(),
            pool: pool.clone(),
            source: Box::new(source),
        },
    })?;
    let devices = known.devices.of(pool);
    devices.get(rank).cloned().ok_or_else(|| MetaError::DelegateConfig {
        interface: a.name.clone(),
        network: a.network_label(),
        reason: format!(
            "the pod has {} device(s) of pool {pool} ({}), and this is sriov attachment {} of that pool",
            devices.len(),
            known.origin,
            rank + 1
        ),
    })
}

/// For each attachment, how many earlier attachments use the same device pool through `sriov`.
pub(super) fn device_ranks(attachments: &[Attachment]) -> Vec<usize> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    attachments
        .iter()
        .map(|a| match a.backend {
            Backend::Sriov => {
                let n = seen.entry(a.network.spec.options.device_pool.as_str()).or_default();
                *n += 1;
                *n - 1
            }
            _ => 0,
        })
        .collect()
}
