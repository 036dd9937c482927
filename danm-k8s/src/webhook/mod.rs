//! The admission webhook: DANM's rules enforced by the Kubernetes API server.
//!
//! [`Webhook`] answers AdmissionReview `admission.k8s.io/v1` requests with danm-core's
//! [`danm_core::admission::Admission`] decisions over any [`danm_core::store::Datastore`] (the
//! [`crate::KubeStore`] in a cluster):
//!
//! - DanmNet, TenantNetwork and ClusterNetwork CREATE and UPDATE: defaults (`NetworkType`, pool bounds),
//!   every validation rule, and for TenantNetworks the interface profile, VNI (reserved in the
//!   TenantConfig) and NetworkID from the TenantConfig; the result goes back as a JSON patch;
//! - their DELETE: refused while DanmEps use the network; a TenantNetwork's VNI is released;
//! - TenantConfig CREATE and UPDATE: its rules and `alloc` bitmasks;
//! - Pod CREATE, and UPDATE when it changes the interfaces annotation: that annotation.
//!
//! [`serve_webhook`] serves it over HTTPS ([`tls_config_from_files`]) on upstream's paths
//! (`/netvalidation`, `/confvalidation`, `/netdeletion`) and `/podvalidation`, with timeouts and graceful
//! shutdown. Its registrations, TLS Secret and RBAC are in `deploy/webhook/`.
//!
//! The server is hyper 1 over tokio-rustls with ring, the same TLS stack as kube's client; JSON patches
//! are `json_patch::diff` of the object as received and as decided, so the patch is exactly what
//! changed and always applies to the object the API server sent.

mod metrics;
mod review;
mod server;
mod tls;

pub use review::{
    DEFAULT_DECISION_TIMEOUT, NETWORK_DELETE_PATH, NETWORK_PATH, PATHS, POD_PATH, TENANT_CONFIG_PATH, Webhook,
};
pub use server::{ServerOptions, serve_webhook};
pub use tls::{RELOAD_CHECK_INTERVAL, ReloadingCertificate, TlsError, tls_config_from_files, tls_config_from_pem};
