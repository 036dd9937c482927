//! danm-k8s: DANM on Kubernetes.
//!
//! What it is today: the custom resources of `danm.k8s.io/v1` as Rust types ([`crd`]): upstream DANM's
//! DanmNet, TenantNetwork, ClusterNetwork, TenantConfig and DanmEp, with its field names and short
//! names, and danm-rs's own DanmIpamBlock and DanmIpamCursor, which hold the IPAM state one block and
//! one cursor per object. Each implements kube's `Resource` and `CustomResourceExt`, converts to and
//! from its [`danm_core::model`] value, and generates its CustomResourceDefinition; [`crd::manifest`]
//! renders them as the YAML under `deploy/crds/` (`danmctl crds` prints them).
//!
//! For tests, feature `test-util` adds the `testing` module: an in-process fake API server that keeps real
//! state (resource versions, conflicts, selectors, watches) behind a real `kube::Client`.
//!
//! [`KubeStore`] is danm-core's [`danm_core::store::Datastore`] on an API server over these types: one
//! object per stored object, compare-and-swap on `resourceVersion` with 409 mapped to `Conflict` by status
//! code, DanmEps found by label selector, IPAM state in its own objects. It passes the same conformance
//! suite as the in-memory and SQLite stores, against the fake API server.
//!
//! [`netwatcher`] is the per-node controller (a DaemonSet) that keeps the node's VLAN and VXLAN host
//! interfaces in line with all networks (and Multus' NetworkAttachmentDefinitions, [`nad`], whose
//! `master` it points at the interface), through danm-core's plan and any provisioner, and reports each
//! network's state on the node as Events.
//!
//! [`webhook`] is the admission webhook: AdmissionReview v1 over HTTPS, answered with danm-core's
//! admission decisions (defaults, TenantNetwork profiles and VNIs, every validation rule, deletes of
//! networks in use refused, pod annotations) as JSON patches or denials naming each field.
//!
//! [`podresources`] is a client of the kubelet's PodResources API (gRPC on a unix socket), danm-core's
//! [`danm_core::device::DeviceSource`] for the devices of `sriov` attachments.
//!
//! What it will also hold, and does not yet: building a client from a kubeconfig for the `danm` plugin
//! and danmctl, and the controllers (svcwatcher, the admission webhook and the cleaner).
//!
//! What it is not: the network model, validation and IPAM logic live in danm-core, which knows nothing
//! of Kubernetes; this crate only maps them onto Kubernetes objects.
//!
//! Dependencies: kube 5 (the derive and kube-core's schema rewriting; the client, over any
//! `tower::Service`, and the runtime),
//! k8s-openapi 0.29 for the Kubernetes types, and schemars 1 for the schemas, through danm-core's
//! `schemars` feature. Like every library on k8s-openapi, this crate enables no Kubernetes version
//! feature of it: a binary does (danm-cli picks `v1_33`), and so do this crate's tests.

pub mod crd;
pub mod nad;
pub mod netwatcher;
pub mod podresources;
pub mod runtime;
pub mod store;
pub mod svcwatcher;
pub mod webhook;

pub use crd::{
    ClusterNetwork, ConversionError, DanmEp, DanmIpamBlock, DanmIpamCursor, DanmNet, NetworkResource, TenantConfig,
    TenantNetwork, all_crds,
};
pub use nad::NetworkAttachmentDefinition;
pub use store::{KubeStore, client_from_kubeconfig};

/// The API group and version of every DANM custom resource.
pub use danm_core::model::API_VERSION;

#[cfg(feature = "test-util")]
pub mod testing;
