//! danm-core: the DANM network model, validation, scalable IPAM, CNI types and backend traits.
//!
//! This crate is sans-IO: it holds data types and pure decisions, and reaches storage only through the
//! [`store::Datastore`] trait. It depends on no async runtime, no Kubernetes client and no netlink
//! library; the crates `danm-k8s`, `danm-netlink` and `danm-cli` bring those.
//!
//! - [`model`]: DanmNet, TenantNetwork, ClusterNetwork, TenantConfig and DanmEp, serde-exact with upstream.
//! - [`cni`]: the CNI protocol: versions 0.3.0 to 1.1.0, configs, results and their conversion, errors.
//! - [`pod`]: the pod interfaces annotation, interface naming and the `default` network fallback.
//! - [`service`]: the Service annotations of DANM's service discovery.
//! - [`discovery`]: which addresses a DANM Service publishes, from DanmEps and pods.
//! - [`gc`]: the cleaner: freeing the addresses and records of pods that are gone.
//! - [`manifest`]: decoding multi-document YAML/JSON manifests into model objects.
//! - [`netwatch`]: netwatcher's plan for a node's VLAN/VXLAN host interfaces, reference counted over
//!   networks, and carrying it out.
//! - [`meta`]: the DANM meta-plugin (ADD, DEL, CHECK, STATUS, GC) over the three seams.
//! - [`delegate`]: the DelegateExecutor seam for running other CNI plugins.
//! - [`device`]: the DeviceSource seam: which devices (SR-IOV VFs) the device plugins gave a pod.
//! - [`provision`]: the InterfaceProvisioner seam and its do-nothing, refusing and recording backends.
//! - [`ipam`]: address pools and the block-based allocation driver.
//! - [`store`]: the Datastore seam, its in-memory implementation and wrappers.
//! - [`validate`]: every rule of upstream's admission webhook, and ours, as pure functions.
//! - [`admission`]: the admission decisions (defaults, TenantConfig profiles and VNIs, deletes, pods) over
//!   the Datastore, shared by the webhook and danmctl.
//! - [`retry`]: bounded, jittered retries.
//! - [`error_chain`]: an error and its sources on one line.

pub mod admission;
pub mod cni;
pub mod delegate;
pub mod device;
pub mod discovery;
mod fieldpath;
pub mod gc;
pub mod ipam;
pub mod manifest;
pub mod meta;
pub mod model;
pub mod netwatch;
pub mod pod;
pub mod provision;
pub mod retry;
pub mod service;
pub mod store;
pub mod validate;

/// An error and its sources, `: `-separated: the one line a log, an Event or an admission denial shows.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
