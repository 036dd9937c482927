//! The DANM meta-plugin: what `danm` does for ADD, DEL, CHECK, STATUS and GC, over any Datastore,
//! InterfaceProvisioner and DelegateExecutor.
//!
//! An ADD reads the pod's interfaces request (or falls back to the `default` network), checks access,
//! records one DanmEp per interface *before* anything else happens (so that a crash at any later point
//! leaves a record DEL and GC can undo), allocates addresses, sets every attachment up in parallel under
//! one time budget, and merges the results with `eth0` first. Any failure undoes everything and reports
//! every error. DEL is idempotent; CHECK reads the interfaces back; GC removes what the runtime no longer
//! lists; STATUS answers from local state.

mod add;
mod check;
mod delegate_conf;
mod devices;
mod error;
mod plan;
mod teardown;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::device::DEVICES_ANNOTATION;
pub use error::{MetaError, codes};
pub use plan::{Attachment, Backend, host_interface, plan};

use crate::delegate::DelegateExecutor;
use crate::device::DeviceSource;
use crate::ipam::{AllocatorId, Ipam};
use crate::model::{Network, NetworkKey, NetworkKind, PodRecord};
use crate::pod::{InterfaceRequest, NamingScheme, connections_or_default, interfaces_from_annotations, selector_key};
use crate::provision::InterfaceProvisioner;
use crate::retry::Sleeper;
use crate::store::{Datastore, DatastoreExt, ObjectKey, Query, Result as StoreResult};

/// The DanmEp annotation that marks an endpoint whose ADD has not completed.
pub const PHASE_ANNOTATION: &str = "danm.k8s.io/phase";
/// The value of [`PHASE_ANNOTATION`] while an ADD is in progress.
pub const PHASE_PENDING: &str = "pending";
/// The DanmEp annotation recording when its ADD began, in seconds since the Unix epoch: the cleaner leaves
/// younger records alone.
pub const CREATED_ANNOTATION: &str = "danm.k8s.io/created";
/// The DanmEp annotation holding the attachment's CNI result (CNI 1.1.0 JSON).
pub const RESULT_ANNOTATION: &str = "danm.k8s.io/cni-result";
/// The DanmEp annotation holding the configuration list a delegate was run with.
pub const DELEGATE_ANNOTATION: &str = "danm.k8s.io/delegate-config";

/// Settings of the meta-plugin.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// This node's name: recorded in DanmEps (`Host`), and the IPAM allocator identity.
    pub host: String,
    /// How interface names are derived.
    pub naming: NamingScheme,
    /// The time budget of all attachments of one ADD together.
    pub timeout: Duration,
}

impl Default for MetaConfig {
    fn default() -> Self {
        Self { host: "localhost".into(), naming: NamingScheme::Default, timeout: Duration::from_secs(10) }
    }
}

/// Who is asking: the container and the pod, from the CNI environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodContext {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`, when given.
    pub netns: Option<PathBuf>,
    /// `K8S_POD_NAMESPACE`.
    pub namespace: String,
    /// `K8S_POD_NAME`.
    pub name: String,
    /// `K8S_POD_UID`, when given.
    pub uid: Option<String>,
    /// `CNI_ARGS` as received, passed on to delegates.
    pub args: String,
}

/// The meta-plugin over a store `S`, a provisioner `P` and a delegate executor `D`.
#[derive(Debug)]
pub struct MetaPlugin<S, P, D> {
    store: Arc<S>,
    ipam: Ipam<Arc<S>>,
    provisioner: P,
    delegates: D,
    devices: Option<Arc<dyn DeviceSource>>,
    sleeper: Arc<dyn Sleeper>,
    config: MetaConfig,
}

impl<S: Datastore, P: InterfaceProvisioner, D: DelegateExecutor> MetaPlugin<S, P, D> {
    /// A meta-plugin. `sleeper` must really wait (it enforces the time budget and backs IPAM retries off):
    /// a runtime's timer in async code.
    pub fn new(store: Arc<S>, provisioner: P, delegates: D, sleeper: Arc<dyn Sleeper>, config: MetaConfig) -> Self {
        let ipam = Ipam::new(store.clone(), AllocatorId::new(config.host.clone())).with_sleeper(sleeper.clone());
        Self { store, ipam, provisioner, delegates, devices: None, sleeper, config }
    }

    /// Asks `source` for the devices of a pod's `sriov` attachments when the pod record has no
    /// [`DEVICES_ANNOTATION`]. Without a source, such a pod has no devices.
    pub fn with_device_source(mut self, source: Arc<dyn DeviceSource>) -> Self {
        self.devices = Some(source);
        self
    }

    /// The datastore.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The IPAM driver.
    pub fn ipam(&self) -> &Ipam<Arc<S>> {
        &self.ipam
    }

    /// The settings.
    pub fn config(&self) -> &MetaConfig {
        &self.config
    }

    /// Runs `work` under the time budget; what does not finish in time is dropped (stopping its
    /// delegates) and reported as a timeout of `what`.
    pub(crate) async fn budget<T>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, MetaError>>,
    ) -> Result<T, MetaError> {
        let timer = self.sleeper.sleep(self.config.timeout);
        match futures::future::select(Box::pin(work), timer).await {
            futures::future::Either::Left((out, _)) => out,
            futures::future::Either::Right(_) => Err(MetaError::Timeout {
                interface: what.to_owned(),
                network: "-".to_owned(),
                seconds: self.config.timeout.as_secs_f64(),
            }),
        }
    }

    /// STATUS: whether this node can serve ADD. It reads one key from the store and nothing else.
    pub async fn status(&self) -> Result<(), MetaError> {
        self.store.get(&ObjectKey::TenantConfig("danm-status-probe".into())).await?;
        Ok(())
    }

    /// The pod record, checked against the UID the runtime gave.
    async fn pod(&self, ctx: &PodContext) -> Result<PodRecord, MetaError> {
        let key = ObjectKey::Pod { namespace: ctx.namespace.clone(), name: ctx.name.clone() };
        let pod = self
            .store
            .get_as::<PodRecord>(&key)
            .await?
            .map(|v| v.value)
            .ok_or_else(|| MetaError::PodNotFound { namespace: ctx.namespace.clone(), name: ctx.name.clone() })?;
        if let (Some(expected), Some(found)) = (&ctx.uid, &pod.metadata.uid)
            && !expected.is_empty()
            && expected != found
        {
            return Err(MetaError::PodReplaced {
                namespace: ctx.namespace.clone(),
                name: ctx.name.clone(),
                expected: expected.clone(),
                found: found.clone(),
            });
        }
        Ok(pod)
    }

    /// The pod's interface requests (or the default connection) and the networks they name.
    async fn requests(
        &self,
        pod: &PodRecord,
        namespace: &str,
    ) -> Result<(Vec<InterfaceRequest>, Vec<Network>), MetaError> {
        let explicit = interfaces_from_annotations(&pod.metadata.annotations)?;
        let requests = match explicit {
            Some(list) if !list.is_empty() => list,
            _ => {
                let mut present = Vec::new();
                for key in crate::pod::default_network_candidates(namespace) {
                    if self.store.get(&ObjectKey::Network(key.clone())).await?.is_some() {
                        present.push(key);
                        break;
                    }
                }
                connections_or_default(None, namespace, |k: &NetworkKey| present.contains(k))?
            }
        };
        let mut networks = Vec::with_capacity(requests.len());
        for (index, req) in requests.iter().enumerate() {
            let key = req.network.key(namespace);
            match self.store.get_as::<Network>(&ObjectKey::Network(key)).await? {
                Some(v) => networks.push(v.value),
                None => return Err(self.not_found(index, req, namespace).await),
            }
        }
        Ok((requests, networks))
    }

    /// The error for a missing network, naming other namespaces that have one of that name.
    async fn not_found(&self, index: usize, req: &InterfaceRequest, namespace: &str) -> MetaError {
        let kind = req.network.kind;
        let mut elsewhere = String::new();
        if kind != NetworkKind::ClusterNetwork {
            let all: StoreResult<Vec<_>> =
                self.store.list_as::<Network>(&Query::Networks { kind: Some(kind), namespace: None }).await;
            let others: Vec<String> = all
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.value.key())
                .filter(|k| k.name == req.network.name)
                .filter_map(|k| k.namespace)
                .filter(|ns| ns != namespace)
                .collect();
            if !others.is_empty() {
                elsewhere =
                    format!(" (it exists in namespace {}, which pods of {namespace} cannot use)", others.join(", "));
            }
        }
        MetaError::NetworkNotFound {
            index,
            field: selector_key(kind),
            kind,
            name: req.network.name.clone(),
            namespace: namespace.to_owned(),
            elsewhere,
        }
    }
}
