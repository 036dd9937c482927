//! What a pod asks of DANM: the interfaces annotation, the `default` network fallback, and the names of
//! the interfaces created inside the pod; and what DANM tells about it: the `network-status` annotation.
//!
//! Everything here is pure: parsing, validation of the annotation's own syntax, and naming. Checks that
//! need the network objects (an address inside `cidr`, `AllowedTenants`, ...) live elsewhere.

mod annotation;
mod fallback;
mod naming;
mod raw;
mod status;

pub use annotation::{
    AnnotationError, INTERFACES_ANNOTATION, INTERFACES_ANNOTATION_ALT, InterfaceRequest, MAX_INTERFACES, NetworkRef,
    interfaces_from_annotations, interfaces_to_annotation, parse_interfaces, selector_key,
};
pub use fallback::{
    DEFAULT_NETWORK, NoDefaultNetwork, connections_or_default, default_connection, default_network_candidates,
    resolve_default_network,
};
pub use naming::{
    DEFAULT_PREFIX, DuplicateInterfaceName, FIRST_INTERFACE, NamingScheme, NamingSchemeParseError, check_unique_names,
    interface_name,
};
pub use status::{NETWORK_STATUS_ANNOTATION, NetworkStatus, network_status_to_annotation, parse_network_status};
