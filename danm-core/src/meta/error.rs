//! Errors of the meta-plugin, and the CNI error codes they are reported with.

use crate::cni::{CniError, ErrorCode};
use crate::delegate::DelegateError;
use crate::device::DeviceError;
use crate::ipam::IpamError;
use crate::pod::{AnnotationError, DuplicateInterfaceName, NoDefaultNetwork};
use crate::provision::ProvisionError;
use crate::store::StoreError;

/// The CNI error codes danm reports beyond the specification's (documented in `docs/cni-errors.md`).
pub mod codes {
    use crate::cni::ErrorCode;

    /// The pod is not known to the datastore, or was replaced (another UID).
    pub const POD_NOT_FOUND: ErrorCode = ErrorCode::from_wire(100);
    /// The pod's interfaces annotation is malformed.
    pub const BAD_ANNOTATION: ErrorCode = ErrorCode::from_wire(101);
    /// A network the pod asks for does not exist (in the pod's namespace).
    pub const NETWORK_NOT_FOUND: ErrorCode = ErrorCode::from_wire(102);
    /// The pod's namespace may not use the network.
    pub const ACCESS_DENIED: ErrorCode = ErrorCode::from_wire(103);
    /// An address request cannot be served: outside the subnet, in use, reserved, or no subnet.
    pub const ADDRESS_REJECTED: ErrorCode = ErrorCode::from_wire(104);
    /// The network's allocation pool is exhausted.
    pub const POOL_EXHAUSTED: ErrorCode = ErrorCode::from_wire(105);
    /// A delegate plugin failed, crashed or was not found.
    pub const DELEGATE_FAILED: ErrorCode = ErrorCode::from_wire(106);
    /// Setting up the attachments took longer than the time budget.
    pub const TIMEOUT: ErrorCode = ErrorCode::from_wire(107);
    /// A network object is unusable (fails validation, e.g. a NetworkType that is a path).
    pub const INVALID_NETWORK: ErrorCode = ErrorCode::from_wire(108);
    /// CHECK found an interface or address missing.
    pub const CHECK_FAILED: ErrorCode = ErrorCode::from_wire(109);
    /// The datastore failed.
    pub const STORE_FAILED: ErrorCode = ErrorCode::from_wire(110);
    /// Creating or removing an interface failed, or the built-in backend is not available.
    pub const PROVISION_FAILED: ErrorCode = ErrorCode::from_wire(111);
}

/// Why a meta-plugin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The pod record does not exist.
    #[error("pod {namespace}/{name} not found")]
    PodNotFound {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// The pod exists with another UID than CNI_ARGS names.
    #[error("pod {namespace}/{name} has UID {found}, not K8S_POD_UID {expected}: it was replaced")]
    PodReplaced {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// UID from CNI_ARGS.
        expected: String,
        /// UID in the store.
        found: String,
    },
    /// The interfaces annotation is malformed.
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
    /// Two interfaces would get one name.
    #[error(transparent)]
    DuplicateName(#[from] DuplicateInterfaceName),
    /// No annotation and no `default` network.
    #[error(transparent)]
    NoDefault(#[from] NoDefaultNetwork),
    /// A requested network does not exist.
    #[error("interface {index} ({field}): {kind} `{name}` does not exist in namespace {namespace}{elsewhere}")]
    NetworkNotFound {
        /// Position in the annotation.
        index: usize,
        /// The annotation key: `network`, `tenantNetwork` or `clusterNetwork`.
        field: &'static str,
        /// The kind.
        kind: crate::model::NetworkKind,
        /// The name.
        name: String,
        /// The pod's namespace.
        namespace: String,
        /// A hint when a network of that name exists in other namespaces.
        elsewhere: String,
    },
    /// The pod's namespace is not among a ClusterNetwork's AllowedTenants.
    #[error("interface {index}: namespace {namespace} is not in spec.AllowedTenants of ClusterNetwork {name}")]
    AccessDenied {
        /// Position in the annotation.
        index: usize,
        /// The ClusterNetwork.
        name: String,
        /// The pod's namespace.
        namespace: String,
    },
    /// A network object is unusable.
    #[error("network {network}: {field}: {reason}")]
    InvalidNetwork {
        /// The network, as text.
        network: String,
        /// The offending field.
        field: String,
        /// Why.
        reason: String,
    },
    /// An address could not be allocated.
    #[error("interface {interface} on {network}: {source}")]
    Ipam {
        /// The interface name.
        interface: String,
        /// The network, as text.
        network: String,
        /// The IPAM error.
        #[source]
        source: Box<IpamError>,
    },
    /// A delegate failed.
    #[error("interface {interface} on {network}: {source}")]
    Delegate {
        /// The interface name.
        interface: String,
        /// The network, as text.
        network: String,
        /// The delegate error.
        #[source]
        source: Box<DelegateError>,
    },
    /// A delegate's configuration or output is unusable.
    #[error("interface {interface} on {network}: {reason}")]
    DelegateConfig {
        /// The interface name.
        interface: String,
        /// The network, as text.
        network: String,
        /// Why.
        reason: String,
    },
    /// The pod's devices could not be learned from the device source.
    #[error("interface {interface} on {network}: the devices of pool {pool}: {source}")]
    Devices {
        /// The interface name.
        interface: String,
        /// The network, as text.
        network: String,
        /// The network's `device_pool`.
        pool: String,
        /// The device source's error.
        #[source]
        source: Box<DeviceError>,
    },
    /// The provisioner failed.
    #[error("interface {interface} on {network}: {source}")]
    Provision {
        /// The interface name.
        interface: String,
        /// The network, as text.
        network: String,
        /// The provisioner error.
        #[source]
        source: Box<ProvisionError>,
    },
    /// The attachments did not finish within the time budget.
    #[error("interface {interface} on {network} was not set up within the {seconds} s time budget")]
    Timeout {
        /// The interface name.
        interface: String,
        /// The network, as text.
        network: String,
        /// The budget.
        seconds: f64,
    },
    /// CHECK found something missing.
    #[error("CHECK: {0}")]
    Check(String),
    /// The datastore failed.
    #[error("datastore: {0}")]
    Store(#[from] StoreError),
    /// Several attachments failed; all are reported.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Many(Vec<MetaError>),
}

impl MetaError {
    /// The CNI error code this error is reported with.
    pub fn code(&self) -> ErrorCode {
        use codes::*;
        match self {
            Self::PodNotFound { .. } | Self::PodReplaced { .. } => POD_NOT_FOUND,
            Self::Annotation(_) | Self::DuplicateName(_) => BAD_ANNOTATION,
            Self::NoDefault(_) | Self::NetworkNotFound { .. } => NETWORK_NOT_FOUND,
            Self::AccessDenied { .. } => ACCESS_DENIED,
            Self::InvalidNetwork { .. } => INVALID_NETWORK,
            Self::Ipam { source, .. } => match source.as_ref() {
                IpamError::Exhausted { .. } => POOL_EXHAUSTED,
                IpamError::Store(e) => store_code(e),
                e if e.is_transient() => ErrorCode::TRY_AGAIN_LATER,
                IpamError::InvalidNetwork { .. } => INVALID_NETWORK,
                _ => ADDRESS_REJECTED,
            },
            Self::Devices { source, .. }
                if matches!(source.as_ref(), DeviceError::Busy { .. } | DeviceError::Timeout { .. }) =>
            {
                ErrorCode::TRY_AGAIN_LATER
            }
            Self::Delegate { .. } | Self::DelegateConfig { .. } | Self::Devices { .. } => DELEGATE_FAILED,
            Self::Provision { .. } => PROVISION_FAILED,
            Self::Timeout { .. } => TIMEOUT,
            Self::Check(_) => CHECK_FAILED,
            Self::Store(e) => store_code(e),
            Self::Many(errors) => errors.first().map_or(PROVISION_FAILED, MetaError::code),
        }
    }

    /// The error as the CNI reports it.
    pub fn to_cni(&self) -> CniError {
        let err = CniError::new(self.code(), self.to_string());
        match self {
            Self::Many(errors) if errors.len() > 1 => err.with_details(format!("{} attachments failed", errors.len())),
            _ => err,
        }
    }

    /// Folds several errors into one; `None` when there are none.
    pub fn many(mut errors: Vec<MetaError>) -> Option<MetaError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Self::Many(errors)),
        }
    }
}

fn store_code(e: &StoreError) -> ErrorCode {
    match e {
        StoreError::Conflict { .. } | StoreError::Backend(_) => ErrorCode::TRY_AGAIN_LATER,
        _ => codes::STORE_FAILED,
    }
}

impl From<MetaError> for CniError {
    fn from(e: MetaError) -> Self {
        e.to_cni()
    }
}
