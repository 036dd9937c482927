//! danm-k8s: DANM on Kubernetes.
//!
//! This crate will hold the CRD types of `danm.k8s.io/v1`, the Kubernetes implementation of
//! [`danm_core::store::Datastore`] and the controllers (netwatcher, svcwatcher, the admission webhook and
//! the cleaner). It does not hold them yet: today it only names the API coordinates those parts will use,
//! taken from [`danm_core::model`], and offers no client, store or controller.

/// The API group and version of every DANM custom resource.
pub use danm_core::model::API_VERSION;
